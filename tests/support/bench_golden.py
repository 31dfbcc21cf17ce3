"""Golden bench documents: real runs on a loopback demo fleet, each kept as what the engine
measured (the BenchResult, histograms encoded with their exact sums and bounds) beside the
``latcli.bench/v1`` document the report code made of it when the runs were recorded.

``tests/reports/test_bench_golden.py`` rebuilds every document from the recorded results with
today's code and compares, so the JSON contract cannot drift by one key or value. Record again
(only when the contract changes on purpose): ``uv run python tests/support/bench_golden.py``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from latcli.core.sla import evaluate, parse_threshold
from latcli.reports.bench_model import (
    AgentTally,
    BenchPlan,
    BenchResult,
    IntervalSample,
    PhaseTally,
)
from latcli.reports.histogram import LatencyHistogram

GOLDEN = Path(__file__).resolve().parent.parent / "reports" / "golden" / "bench_runs.json"


def _hist(h: LatencyHistogram) -> dict[str, Any]:
    low = round((h.min_ms or 0.0) * 1000)
    return {"encoded": h.encode().decode("ascii"), "sum_us": h.sum_us, "bounds": [low, h.max_us]}


def _hist_of(d: Mapping[str, Any]) -> LatencyHistogram:
    low, high = d["bounds"]
    return LatencyHistogram.decode(str(d["encoded"]), int(d["sum_us"]), (int(low), int(high)))


def _tally(t: PhaseTally | None) -> dict[str, Any] | None:
    return None if t is None else {p: _hist(h) for p, h in t.hists.items()}


def _tally_of(d: Mapping[str, Any] | None) -> PhaseTally | None:
    return None if d is None else PhaseTally({p: _hist_of(h) for p, h in d.items()})


def result_json(r: BenchResult) -> dict[str, Any]:
    """Everything a report is made of, as JSON (the histograms exactly)."""
    return {
        "latency": _hist(r.latency),
        "service_time": _hist(r.service_time) if r.service_time else None,
        "schedule_lag": _hist(r.schedule_lag) if r.schedule_lag else None,
        "ok": r.ok,
        "errors": r.errors,
        "status_codes": {str(k): v for k, v in r.status_codes.items()},
        "agents": {
            k: {"requests": a.requests, "latency": _hist(a.latency), "phases": _tally(a.phases)}
            for k, a in r.agents.items()
        },
        "intervals": [
            {
                "start_s": iv.start_s,
                "length_s": iv.length_s,
                "errors": iv.errors,
                "histogram": _hist(iv.histogram),
                "phases": _tally(iv.phase_tally()),
            }
            for iv in r.intervals
        ],
        "elapsed_s": r.elapsed_s,
        "started_at": r.started_at,
        "dropped_in_flight": r.dropped_in_flight,
        "interrupted": r.interrupted,
        "achieved_rate": r.achieved_rate,
        "valid": r.valid,
        "invalid_reason": r.invalid_reason,
        "phases": _tally(r.phases),
    }


def result_of(d: Mapping[str, Any]) -> BenchResult:
    """The inverse of :func:`result_json`."""
    return BenchResult(
        latency=_hist_of(d["latency"]),
        service_time=_hist_of(d["service_time"]) if d["service_time"] else None,
        schedule_lag=_hist_of(d["schedule_lag"]) if d["schedule_lag"] else None,
        ok=d["ok"],
        errors=dict(d["errors"]),
        status_codes={int(k): v for k, v in d["status_codes"].items()},
        agents={
            k: AgentTally(a["requests"], _hist_of(a["latency"]), _tally_of(a["phases"]))
            for k, a in d["agents"].items()
        },
        intervals=[
            IntervalSample(
                iv["start_s"],
                iv["length_s"],
                _hist_of(iv["histogram"]),
                iv["errors"],
                _tally_of(iv["phases"]),
            )
            for iv in d["intervals"]
        ],
        elapsed_s=d["elapsed_s"],
        started_at=d["started_at"],
        dropped_in_flight=d["dropped_in_flight"],
        interrupted=d["interrupted"],
        achieved_rate=d["achieved_rate"],
        valid=d["valid"],
        invalid_reason=d["invalid_reason"],
        phases=_tally_of(d["phases"]),
    )


def plan_json(plan: BenchPlan) -> dict[str, Any]:
    return dataclasses.asdict(plan)


def plan_of(d: Mapping[str, Any]) -> BenchPlan:
    return BenchPlan(**d)


def document_of(plan: BenchPlan, result: BenchResult, exprs: Sequence[str]) -> dict[str, Any]:
    """The document ``latcli bench`` makes of ``result`` (cli/bench.py ``_report``)."""
    from latcli.reports.bench_build import run_report
    from latcli.reports.bench_sla import observation

    verdicts = evaluate([parse_threshold(e) for e in exprs], observation(result))
    return run_report(plan, result, verdicts).to_json()


# --- recording -----------------------------------------------------------------------------

RUNS: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
    # (name, target, BenchPlan fields, SLA expressions)
    ("closed_message", "weather", {"endpoint": "message", "concurrency": 4, "requests": 200},
     ("p99<500ms", "p50<1ms", "error_rate<1%", "availability>=99%")),
    ("open_flaky", "news", {"endpoint": "message", "rate": 150.0, "duration_s": 2.5},
     ("p99<100ms", "rps>=100", "error_rate<0.1%")),
    ("stream", "assistant", {"endpoint": "stream", "concurrency": 8, "requests": 40},
     ("first_artifact.p95<5s", "gap.p50<1s")),
    ("shard_0", "weather", {"endpoint": "health", "rate": 100.0, "duration_s": 2.0,
                            "shard": 0, "shards": 2}, ("p99<1s",)),
    ("shard_1", "weather", {"endpoint": "health", "rate": 100.0, "duration_s": 2.0,
                            "shard": 1, "shards": 2}, ("p99<1s",)),
]  # fmt: skip


def record() -> list[dict[str, Any]]:
    """Run every plan of RUNS on a demo fleet on free loopback ports."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from conftest import write_inventory

    from latcli.cli.options import request_shape_of
    from latcli.config.loading import load_inventory
    from latcli.demo.fleet import DEMO_INVENTORY, Fleet, free_port
    from latcli.engines.bench.stream import streaming_target
    from latcli.engines.bench.targets import shaped_target
    from latcli.engines.bench.workers import run_bench

    demo = load_inventory(DEMO_INVENTORY, {}).agents
    ports = {a.id: free_port() for a in demo}
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        inv_path = write_inventory(Path(tmp) / "agents.yaml", ports)
        inv = load_inventory(inv_path, {})
        with Fleet(inv.agents, seed=7):
            for name, target, fields, exprs in RUNS:
                resolved = shaped_target(inv, target, request_shape_of(None))
                if fields["endpoint"] == "stream":
                    resolved = streaming_target(resolved)
                plan = BenchPlan(target, resolved.kind, **fields)
                result = run_bench(plan, resolved)
                doc = document_of(plan, result, exprs)
                out.append(
                    {
                        "name": name,
                        "plan": plan_json(plan),
                        "exprs": list(exprs),
                        "result": result_json(result),
                        "document": doc,
                    }
                )
    return out


HLOGS = ("open_flaky", "stream")  # runs whose .hlog is read back as a report
# (name, runs merged, thresholds): the merges `latcli report` makes of the runs' documents
MERGES = [
    ("shards", ("shard_0", "shard_1"), None),
    ("rejudged", ("closed_message",), ("p50<1s", "mean<1ms")),
    ("json_and_hlog", ("open_flaky", "hlog:open_flaky"), None),
]


def hlog_document(result: BenchResult, name: str, folder: Path) -> dict[str, Any]:
    """The report ``latcli report NAME.hlog`` reads from the run's ``.hlog``."""
    from latcli.reports.hlog import report_from_hlog, write_hlog

    path = folder / f"{name}.hlog"
    write_hlog(path, result)
    return report_from_hlog(path).to_json()


def merged_document(
    docs: Sequence[Mapping[str, Any]], thresholds: Sequence[str] | None
) -> dict[str, Any]:
    from latcli.reports.bench import BenchReport
    from latcli.reports.bench_merge import merge_reports

    chosen = None if thresholds is None else [parse_threshold(e) for e in thresholds]
    reports = [BenchReport.from_json(d) for d in docs]
    return merge_reports(reports, thresholds=chosen).to_json()


def main() -> None:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    runs = record()
    by_name = {r["name"]: r for r in runs}
    hlogs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in HLOGS:
            hlogs[name] = hlog_document(result_of(by_name[name]["result"]), name, Path(tmp))
    docs = {**{k: v["document"] for k, v in by_name.items()},
            **{f"hlog:{k}": v for k, v in hlogs.items()}}  # fmt: skip
    merges = {
        name: merged_document([docs[p] for p in parts], thresholds)
        for name, parts, thresholds in MERGES
    }
    golden = {"runs": runs, "hlogs": hlogs, "merges": merges}
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n", encoding="utf-8")
    print(f"{GOLDEN}: {len(runs)} runs, {len(hlogs)} hlogs, {len(merges)} merges")


if __name__ == "__main__":
    main()
