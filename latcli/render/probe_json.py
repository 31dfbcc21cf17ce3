"""``latcli.probe/v1``: the probe JSON contract (DESIGN §6)."""

from __future__ import annotations

import json
from typing import Any

from latcli.core.redact import redact_text, redact_url
from latcli.engines.probe import ProbeReport, ProbeResult

SCHEMA = "latcli.probe/v1"


def _r(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 3)


def agent_json(result: ProbeResult) -> dict[str, Any]:
    a, t = result.agent, result.timings
    error = None
    if result.error is not None:
        message = None if result.message is None else redact_text(result.message)
        error = {"kind": result.error.value, "message": message}
    return {
        "id": a.id,
        "type": a.type,
        "url": redact_url(a.url),
        "protocol": a.protocol,
        "healthy": result.healthy,
        "status": result.status,
        "latency_ms": _r(result.latency_ms),
        "timings_ms": {
            "connect": _r(t.connect),
            "tls": _r(t.tls),
            "ttfb": _r(t.ttfb),
            "total": _r(t.total),
        },
        "discovery_ms": _r(result.discovery_ms),
        "card": _card(result),
        "error": error,
        "checks": result.checks,
        "failures": result.failures,
        "p50_ms": _r(result.percentile(50)),
        "p99_ms": _r(result.percentile(99)),
        "min_ms": _r(min(result.samples)) if result.samples else None,
        "max_ms": _r(max(result.samples)) if result.samples else None,
        "answer": _answer(result),
    }


def _answer(result: ProbeResult) -> dict[str, Any] | None:
    """``probe --message``: the answer's verdict, state and phases (null without it)."""
    answer = result.answer
    if answer is None:
        return None
    error = None
    if answer.error is not None:
        message = None if answer.message is None else redact_text(answer.message)
        error = {"kind": answer.error.value, "message": message}
    phases = None if answer.stream is None else answer.stream.to_json()
    return {
        "ok": answer.ok,
        "state": answer.state,
        "latency_ms": _r(answer.latency_ms),
        "first_artifact_ms": _r(answer.stream.first_artifact_ms) if answer.stream else None,
        "stream": None if phases is None else {k: _r(v) for k, v in phases.items()},
        "reply": answer.reply,
        "error": error,
    }


def _card(result: ProbeResult) -> dict[str, Any] | None:
    if result.card is None:
        return None
    summary = result.card.summary()
    return {**summary, "url": redact_url(str(summary["url"]))}


def probe_json(report: ProbeReport) -> str:
    doc = {"schema": SCHEMA, "ok": report.ok, "agents": [agent_json(r) for r in report.results]}
    return json.dumps(doc, indent=2)
