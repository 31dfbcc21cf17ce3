"""``latcli.watch/v1``: one JSON object per watch tick (DESIGN §6)."""

from __future__ import annotations

import json
from typing import Any

from latcli.engines.watch.loop import event_dict
from latcli.render.text import json_safe
from latcli.reports.watch import AgentRow, WatchSnapshot

SCHEMA = "latcli.watch/v1"


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def agent_json(a: AgentRow) -> dict[str, Any]:
    return {
        "id": a.id,
        "type": a.type,
        "state": a.state,
        "ewma_ms": _r(a.ewma_ms),
        "ewma_penalty": a.ewma_penalty,  # failure penalties hold ewma_ms above the latencies
        "p50_ms": _r(a.p50_ms),
        "p99_ms": _r(a.p99_ms),
        "success_rate": _r(a.success_rate, 6),
        "breaker": a.breaker,
        "in_flight": a.in_flight,
        "url": a.url,
        "protocol": a.protocol,
        "retry_in_s": _r(a.retry_in_s),
        "cooling_s": _r(a.cooling_s),  # rate-limited: set aside this long more; null: not
        "last_error": a.last_error,
        "last_message": a.last_message,
        "checks": a.checks,
        "sla_breached": a.sla_breached,
        "sla": [
            {"name": s.name, "expr": s.expr, "observed": _r(s.observed, 6), "pass": s.passed}
            for s in a.sla
        ],
    }


def watch_dict(s: WatchSnapshot) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "t": round(s.at, 3),
        "tick": s.tick,
        "lag_ms": round(s.lag_ms, 3),
        "interval_s": s.interval_s,
        "strategy": s.strategy,
        "inventory": s.inventory,
        "agents": [agent_json(a) for a in s.agents],
        "picks": dict(s.picks),
        "events": [event_dict(e) for e in s.events],
        "notes": list(s.notes),
    }


def watch_json(s: WatchSnapshot) -> str:
    """One line: JSON lines mode prints one of these per tick."""
    return json_safe(json.dumps(watch_dict(s), ensure_ascii=False, separators=(",", ":")))
