"""What reading bench reports as typed values costs: ``latcli report``'s steps (load a JSON
report, merge two, write the JSON, render the summary and the HTML page) with this tree's
``BenchReport`` beside a baseline commit's dict-based code, same files, alternating rounds.

    uv run python scripts/bench_typed_report.py --baseline 890bee8 [--points 600] [--rounds 3]

Each side runs in its own process (``git archive BASELINE latcli`` unpacked in a temporary
directory is the baseline's package); the figures are per-step medians, the ratio is this tree
over the baseline (below 1: faster). The files are a long open-model run's reports: two agents,
``--points`` one-second timeline points each with its histogram (600 is the cap a report keeps).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in the side's process: times each step over REPEAT calls, prints {step: [seconds...]}.
STEPS = r"""
import io, json, sys, time
from rich.console import Console
from latcli.reports.bench_load import load_report
from latcli.reports.bench_merge import merge_reports
from latcli.render.bench_view import bench_summary
from latcli.render.html_bench import bench_html
import latcli.reports.bench as bench

a, b, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = getattr(bench, "json_text", None) or bench.to_json  # this tree / the baseline

def timed(step):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter(); step(); out.append(time.perf_counter() - t0)
    return out

one, two = load_report(a), load_report(b)
def summary():
    Console(file=io.StringIO(), width=100).print(bench_summary(one))
print(json.dumps({
    "load": timed(lambda: load_report(a)),
    "merge": timed(lambda: merge_reports([one, two])),
    "merge+json": timed(lambda: text(merge_reports([one, two]))),
    "json": timed(lambda: text(one)),
    "summary": timed(summary),
    "html": timed(lambda: bench_html(one)),
}))
"""


def make_reports(folder: Path, points: int) -> tuple[Path, Path]:
    """Two long runs' reports (this tree writes them; the golden tests hold it to the old
    bytes), as ``latcli bench -o`` would."""
    from latcli.core.sla import evaluate, parse_threshold
    from latcli.reports.bench import write_json
    from latcli.reports.bench_build import build_report
    from latcli.reports.bench_model import AgentTally, BenchPlan, BenchResult, IntervalSample
    from latcli.reports.bench_sla import observation
    from latcli.reports.histogram import LatencyHistogram

    paths = []
    for seed in (1, 2):
        r = BenchResult(started_at=1_700_000_000.0 + seed, elapsed_s=float(points))
        r.service_time, r.schedule_lag = LatencyHistogram(), LatencyHistogram()
        for s in range(points):
            second = LatencyHistogram()
            for i in range(200):
                v = 2_000 + (i * 7919 + s * 104_729 + seed) % 58_000
                second.record_us(v)
                r.latency.record_us(v)
                r.service_time.record_us(v * 3 // 4)
                r.schedule_lag.record_us(v // 4)
                tally = r.agents.setdefault(f"weather-{i % 2 + 1}", AgentTally())
                tally.requests += 1
                tally.latency.record_us(v)
            r.intervals.append(IntervalSample(float(s), 1.0, second))
        r.ok = 200 * points
        plan = BenchPlan("weather", "type", endpoint="message", rate=200.0, duration_s=points)
        exprs = [parse_threshold(e) for e in ("p99<50ms", "error_rate<1%")]
        report = build_report(
            plan, r, evaluate(exprs, observation(r)), valid=True, target_rate=200.0,
            achieved_rate=200.0, schedule_lag_p99_ms=1.0,
        )  # fmt: skip
        path = folder / f"run{seed}.json"
        write_json(path, report)
        paths.append(path)
    return paths[0], paths[1]


def run_side(pythonpath: Path, a: Path, b: Path, repeat: int) -> dict[str, list[float]]:
    proc = subprocess.run(
        [sys.executable, "-c", STEPS, str(a), str(b), str(repeat)],
        capture_output=True,
        text=True,
        check=True,
        cwd=pythonpath,  # its latcli/ comes first on the path
        env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"},
    )
    out: dict[str, list[float]] = json.loads(proc.stdout)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="a commit with dict-based reports")
    parser.add_argument("--points", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        base.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.baseline, "latcli"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        a, b = make_reports(Path(tmp), args.points)
        size = a.stat().st_size
        sides: dict[str, dict[str, list[float]]] = {"baseline": {}, "typed": {}}
        for _ in range(args.rounds):
            for name, where in (("baseline", base), ("typed", ROOT)):
                for step, times in run_side(where, a, b, args.repeat).items():
                    sides[name].setdefault(step, []).extend(times)
    print(f"two reports of {args.points} points, {size / 1024:.0f} KiB each; "
          f"medians of {args.rounds} x {args.repeat}")  # fmt: skip
    print(f"{'step':<10} {'baseline ms':>12} {'typed ms':>10} {'ratio':>7}")
    for step, times in sides["baseline"].items():
        old, new = statistics.median(times), statistics.median(sides["typed"][step])
        print(f"{step:<10} {old * 1000:12.1f} {new * 1000:10.1f} {new / old:7.2f}")


if __name__ == "__main__":
    main()
