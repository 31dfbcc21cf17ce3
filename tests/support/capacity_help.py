"""Capacity test helpers: a step measured at a rate, and the capacity JSON contract checked."""

from __future__ import annotations

from typing import Any

from latcli.core.capacity import LatencySummary, StepMeasure
from latcli.reports.capacity import SCHEMA, CapacityReport

FLAT = LatencySummary(min=19.0, p50=20.0, p90=21.0, p95=22.0, p99=25.0, max=30.0, mean=20.5)


def measure(rate: float, **kw: Any) -> StepMeasure:
    """A healthy step at ``rate``: everything sent, 20 ms flat, no errors; ``kw`` overrides."""
    base: dict[str, Any] = {
        "rate": rate,
        "achieved_rps": rate,
        "throughput_rps": rate,
        "latency": FLAT,
        "requests": max(1, round(rate * 5)),
        "interval_p50_ms": (20.0,) * 5,
    }
    return StepMeasure(**{**base, **kw})


CONTRACT_TOP = {
    "schema", "target", "endpoint", "sla", "replicas", "step_duration_s", "steps", "knee",
    "sustainable_rps", "per_replica_rps", "target_rps", "headroom", "replicas_needed",
    "reasoning", "pass",
}  # fmt: skip

CONTRACT_STEP = {
    "rate", "achieved_rps", "throughput_rps", "latency_ms", "error_rate", "in_flight", "pass",
    "reason",
}  # fmt: skip

LATENCY_KEYS = {"min", "p50", "p90", "p95", "p99", "max", "mean"}


def check_contract(doc: dict[str, Any]) -> None:
    """The fields the HTML report is written against, with their types; and the typed report
    reads the document back whole (``to_json(from_json(doc)) == doc``)."""
    assert CapacityReport.from_json(doc).to_json() == doc
    assert set(doc) >= CONTRACT_TOP
    assert doc["schema"] == SCHEMA
    assert isinstance(doc["target"], str) and isinstance(doc["endpoint"], str)
    assert all(isinstance(s, str) for s in doc["sla"])
    assert isinstance(doc["replicas"], int) and isinstance(doc["step_duration_s"], float)
    assert isinstance(doc["headroom"], float) and isinstance(doc["pass"], bool)
    assert all(isinstance(line, str) for line in doc["reasoning"])
    for step in doc["steps"]:
        assert set(step) >= CONTRACT_STEP
        assert set(step["latency_ms"]) == LATENCY_KEYS
        assert isinstance(step["pass"], bool)
        assert step["reason"] is None or isinstance(step["reason"], str)
        for key in ("rate", "achieved_rps", "throughput_rps", "error_rate", "in_flight"):
            assert isinstance(step[key], float | int)
    if doc["knee"] is not None:
        assert doc["steps"][doc["knee"]["index"]]["rate"] == doc["knee"]["rate"]
        assert doc["steps"][doc["knee"]["index"]]["pass"] is True
        assert doc["sustainable_rps"] == doc["knee"]["rate"]
    else:
        assert doc["sustainable_rps"] is None and doc["pass"] is False
