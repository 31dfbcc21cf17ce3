"""``latcli send`` output: the JSON contract (DESIGN §6) and the human decision line."""

from __future__ import annotations

import json
from typing import Any

from latcli.router import FanOut, RouteResult
from latcli.units import format_ms, plural

SCHEMA = "latcli.send/v1"


def _result_json(r: RouteResult) -> dict[str, Any]:
    return {
        "type": r.type,
        "agent": r.agent,
        "ok": r.ok,
        "reply": r.reply,
        "latency_ms": round(r.latency_ms, 3),
        "error": r.error,
        "failovers": max(0, r.failovers),
        "attempts": [
            {
                "agent": a.agent,
                "outcome": a.outcome,
                "status": a.status,
                "latency_ms": round(a.latency_ms, 3),
                "hedge": a.hedge,
                "panic": a.panic,
            }
            for a in r.attempts
        ],
    }


def send_json(fan: FanOut) -> str:
    doc = {
        "schema": SCHEMA,
        "ok": fan.ok,
        "strategy": fan.strategy,
        "latency_ms": round(fan.latency_ms, 3),
        "results": [_result_json(r) for r in fan.results],
    }
    return json.dumps(doc, indent=2)


def reply_text(fan: FanOut) -> str:
    """Replies for stdout: bare for one type, ``type: reply`` lines for a fan-out."""
    if len(fan.results) == 1:
        return fan.results[0].reply or "" if fan.results[0].ok else ""
    return "\n".join(f"{r.type}: {r.reply}" for r in fan.results if r.ok)


def decision_lines(fan: FanOut) -> list[str]:
    """For stderr: ``→ weather-2 · p2c · 41 ms · 1 failover`` per type, failures with attempts."""
    lines = []
    for r in fan.results:
        prefix = f"{r.type} " if len(fan.results) > 1 else ""
        if r.ok:
            extra = f" · {plural(r.failovers, 'failover')}"
            hedged = " · hedged" if any(a.hedge for a in r.attempts) else ""
            lines.append(
                f"{prefix}→ {r.agent} · {r.strategy} · {format_ms(r.latency_ms)}"
                f"{extra if r.failovers else ''}{hedged}"
            )
        else:
            lines.append(f"{prefix}✗ no answer ({r.error}) after {format_ms(r.latency_ms)}")
            for a in r.attempts:
                status = f" HTTP {a.status}" if a.status else ""
                lines.append(f"    {a.agent}: {a.outcome}{status} in {format_ms(a.latency_ms)}")
    if len(fan.results) > 1:
        lines.append(
            f"coordination: {format_ms(fan.latency_ms)} for {plural(len(fan.results), 'type')}"
        )
    return lines
