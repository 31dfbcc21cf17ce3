"""``latcli.probe/v1``: the probe JSON contract (DESIGN §6)."""

from __future__ import annotations

import json
from typing import Any

from latcli.probe import ProbeReport, ProbeResult

SCHEMA = "latcli.probe/v1"


def _r(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 3)


def agent_json(result: ProbeResult) -> dict[str, Any]:
    a, t = result.agent, result.timings
    error = None
    if result.error is not None:
        error = {"kind": result.error.value, "message": result.message}
    return {
        "id": a.id,
        "type": a.type,
        "url": a.url,
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
        "card": result.card.summary() if result.card else None,
        "error": error,
        "checks": result.checks,
        "failures": result.failures,
        "p50_ms": _r(result.percentile(50)),
        "p99_ms": _r(result.percentile(99)),
        "min_ms": _r(min(result.samples)) if result.samples else None,
        "max_ms": _r(max(result.samples)) if result.samples else None,
    }


def probe_json(report: ProbeReport) -> str:
    doc = {"schema": SCHEMA, "ok": report.ok, "agents": [agent_json(r) for r in report.results]}
    return json.dumps(doc, indent=2)
