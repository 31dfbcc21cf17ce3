"""Cost of never cropping a digit: a probe table of 1,000 agents rendered by rich as it is and
through ``render.layout.fit`` (which measures a one-row stand-in first), interleaved in one loop
so the machine's noise hits both alike; prints medians and the ratio.

Usage: uv run python scripts/bench_fit.py [--agents 1000] [--runs 9]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

from rich.console import Console, RenderableType

from latcli.config.model import Agent
from latcli.render.layout import Fitted
from latcli.render.probe_view import probe_table
from latcli.reports.probe import ProbeReport, ProbeResult
from latcli.transport.base import Timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    results = []
    for i in range(args.agents):
        agent = Agent(id=f"agent-{i}", type="t", url=f"http://127.0.0.1:{9000 + i}")
        timings = Timings(connect=1.2, tls=None, ttfb=3.4 + i / 1000, total=5.6)
        results.append(ProbeResult(agent, True, 200, timings, (5.6 + i / 100,), 1, 0))
    fitted = probe_table(ProbeReport(tuple(results)), 1)
    assert isinstance(fitted, Fitted)
    cases: dict[str, tuple[RenderableType, int]] = {"rich table": (fitted.table, 200)}
    cases["fit, fits"] = (fitted, 200)
    cases["fit, 60 columns"] = (fitted, 60)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, (renderable, width) in cases.items():
            console = Console(file=io.StringIO(), width=width)
            t0 = time.perf_counter()
            console.print(renderable)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["rich table"])
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:16} median {med * 1000:7.1f} ms  ×{med / base:.2f}")


if __name__ == "__main__":
    main()
