"""Golden capacity runs: the judged steps of real ``latcli capacity`` runs against demo agents,
stored with the ``latcli.capacity/v1`` document the code of their day produced from them, so a
test can rebuild the estimate from the same steps and compare documents byte for byte.

The files in tests/reports/data/capacity_golden/ (NAME.json: steps and document, NAME.view.txt:
the summary at 100 columns, NAME.html: the page) were written by the code before the capacity
JSON moved from latcli/core/capacity.py to latcli/reports/capacity.py (issue 13, commit e4dc2a5):
rerunning this records today's code instead, so do it only when the output changes on purpose.
Usage: uv run python tests/support/capacity_golden.py
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from latcli.core.capacity import CapacityPlan, LatencySummary, Step, StepMeasure
from latcli.core.sla import MetricKind, Verdict
from latcli.render.capacity_view import capacity_summary
from latcli.render.html_capacity import capacity_html
from latcli.reports.capacity import CapacityReport, capacity_report

GOLDEN = Path(__file__).resolve().parents[1] / "reports" / "data" / "capacity_golden"


def encode_step(step: Step) -> dict[str, Any]:
    """A judged step as plain JSON (floats keep every digit: Python writes them round-trip)."""
    m = asdict(step.measure)
    m["sla"] = [{**asdict(v), "kind": v.kind.value} for v in step.measure.sla]
    return {"measure": m, "phase": step.phase, "reasons": list(step.reasons)}


def decode_step(obj: dict[str, Any]) -> Step:
    m = dict(obj["measure"])
    m["latency"] = LatencySummary(**m["latency"])
    m["sla"] = tuple(Verdict(**{**v, "kind": MetricKind(v["kind"])}) for v in m["sla"])
    m["phases"] = (
        None if m["phases"] is None else {p: LatencySummary(**s) for p, s in m["phases"].items()}
    )
    for key in ("interval_p50_ms", "interval_first_token_p50_ms"):
        m[key] = tuple(m[key])
    return Step(StepMeasure(**m), obj["phase"], tuple(obj["reasons"]))


def view_text(report: CapacityReport) -> str:
    """The human summary as plain text, 100 columns wide."""
    console = Console(width=100, record=True, color_system=None, file=io.StringIO())
    console.print(capacity_summary(report))
    return console.export_text()


def load_case(path: Path) -> tuple[dict[str, Any], list[Step], CapacityPlan]:
    """(the stored case, its steps, its plan)."""
    case = json.loads(path.read_text(encoding="utf-8"))
    return case, [decode_step(s) for s in case["steps"]], CapacityPlan(**case["plan"])


def _record(name: str, inv: Path, target: str, args: dict[str, Any]) -> None:
    """One real run through the command's own pieces, and the document of that day's code."""
    from latcli.cli.capacity import _plan, _streaming, _thresholds
    from latcli.cli.options import request_shape_of
    from latcli.config.loading import load_inventory
    from latcli.core.capacity import summarize
    from latcli.engines.bench.targets import shaped_target
    from latcli.engines.capacity import run_capacity
    from latcli.reports.bench_model import BenchPlan

    plan = _plan(args.get("target_rps"), "30%", args["start"], args.get("max"), args["step"])
    loaded = load_inventory(inv, {})
    resolved = shaped_target(loaded, target, request_shape_of(None))
    endpoint = args["endpoint"]
    if endpoint == "stream":
        resolved = _streaming(resolved, True)
    thresholds = _thresholds(args.get("sla"), loaded, endpoint)
    template = BenchPlan(target, resolved.kind, endpoint, rate=1.0, message="ping", verify=True)
    run = run_capacity(plan, template, resolved, thresholds)
    result = summarize(plan, run.steps, len(resolved.agents), run.interrupted)
    sla = [t.expr for t in thresholds]
    report = capacity_report(result, target=target, endpoint=endpoint, sla=sla)
    doc = report.to_json()
    case = {
        "plan": asdict(plan),
        "replicas": len(resolved.agents),
        "interrupted": run.interrupted,
        "target": target,
        "endpoint": endpoint,
        "sla": sla,
        "steps": [encode_step(s) for s in run.steps],
        "document": doc,
    }
    GOLDEN.mkdir(parents=True, exist_ok=True)
    (GOLDEN / f"{name}.json").write_text(json.dumps(case, indent=1) + "\n", encoding="utf-8")
    (GOLDEN / f"{name}.view.txt").write_text(view_text(report), encoding="utf-8")
    (GOLDEN / f"{name}.html").write_text(capacity_html(report), encoding="utf-8")
    print(name, len(run.steps), "steps, knee", doc["knee"])


def main() -> None:
    import tempfile

    import yaml

    from latcli.config.loading import load_inventory
    from latcli.demo.fleet import Fleet, free_port

    assistant = {"app": "assistant", "ttft": "100ms", "tokens_per_s": 50, "chunk_tokens": 5,
                 "answer_tokens": 10, "fail_tasks": 0.0, "input_required": 0.0,
                 "concurrency_limit": 4}  # fmt: skip
    agents = [
        {"id": "cap-a", "type": "capped", "url": f"http://127.0.0.1:{free_port()}",
         "demo": {"latency": "20ms", "errors": 0.0, "concurrency_limit": 2}},
        {"id": "cap-b", "type": "capped", "url": f"http://127.0.0.1:{free_port()}",
         "demo": {"latency": "20ms", "errors": 0.0, "concurrency_limit": 2}},
        {"id": "flaky", "type": "flaky", "url": f"http://127.0.0.1:{free_port()}",
         "demo": {"latency": "5ms", "errors": 1.0}},
        {"id": "asst-1", "type": "asst", "url": f"http://127.0.0.1:{free_port()}",
         "protocol": "a2a", "demo": assistant},
    ]  # fmt: skip
    doc = {"version": 1, "defaults": {"timeout": "2s"},
           "sla": {"message": "p90 < 500ms", "error_rate": "< 0.1%"}, "agents": agents}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        inv = Path(tmp) / "agents.yaml"
        inv.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        with Fleet(load_inventory(inv, {}).agents, seed=3):
            _record("message_type", inv, "capped", {"endpoint": "message", "start": 60.0,
                    "step": "1s", "target_rps": 500.0})  # fmt: skip
            stream = {"endpoint": "stream", "start": 8.0, "step": "1.5s", "target_rps": 50.0,
                      "sla": ["first_artifact.p95<1s"]}  # fmt: skip
            _record("stream", inv, "asst-1", stream)
            _record("first_step_fails", inv, "flaky", {"endpoint": "message", "start": 10.0,
                    "step": "0.5s", "sla": ["error_rate<1%"]})  # fmt: skip


if __name__ == "__main__":
    main()
