"""``bench --endpoint stream`` against its peers, side by side in one run (issue 11, speed).

The agent: tests/support/stream_agent.py (raw asyncio, its own process): first artifact 200 ms after
the request, then chunks 20 ms apart, 5 chunks in all, then completed (7 SSE events a stream).
It reports how late it really wrote each first artifact (``/stats``), so a client's overhead can
be told from the agent's own lateness on a shared machine.

Each round, one after the other against the same agent, for --duration each:

  latcli    engine raw, closed model, C concurrent streams, in a child process; CPU is that
            process's own time around the run (imports and start-up excluded)
  floor     the least a Python client does per event (scripts/stream_peer_floor.py: uvloop,
            httptools, msgspec, nothing else), C connections: the machine's share of the CPU
            figure (wake-ups, system calls), which drifts with its load; latcli / floor does less
  aiohttp   the bare aiohttp SSE loop of vLLM's serving benchmark / genai-perf
            (scripts/stream_peer_aiohttp.py, `uv run --with aiohttp`), C loops
  locust    FastHttpUser reading the stream (scripts/locust_stream.py, `uv run --with locust`),
            C users, one process
  open      latcli open model at --rate R (R x 0.28 s = ~300 concurrent streams), one process:
            achieved rate, schedule lag p99, first artifact

Printed: per tool the median over rounds and the spread (min..max) of first_artifact p50/p99,
the agent's own first-artifact lateness in the same run, CPU µs per SSE event, and ratios
(latcli's CPU over the floor's is taken round by round, then the median).
For latcli's runs, where each stream's time over the schedule went, matched by task id with the
agent's own clock readings (``/tasks``; perf_counter and monotonic are one clock on Linux):
"send -> agent read" (from latcli's write of the request, the zero of its phases, until the
agent reads it: loopback and the agent's queue; its schedule starts there), "agent late"
(writing the first artifact after its due time), and "write -> stamp" (from the agent's
write until latcli stamped the bytes: loopback, the wait for the event loop, data_received).

Usage: uv run python scripts/bench_stream.py [--rounds 3] [--duration 10] [-c 100] [--rate 1070]
       [--skip locust,aiohttp,floor] [--chunks 5] [--gap-ms 20] [--warmup S]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

FIRST_MS = 200.0


def child_latcli(
    url: str, concurrency: int, rate: float, seconds: float, chunks: int, warmup: float = 0.0
) -> dict[str, Any]:
    """One latcli run in this process (the child): the engine as `latcli bench` drives it."""
    from latcli.config.model import Inventory
    from latcli.engines.bench.stream import streaming_target
    from latcli.engines.bench.targets import resolve_target
    from latcli.engines.bench.workers import run_bench
    from latcli.reports.bench_model import BenchPlan

    plan = BenchPlan(
        target=url,
        target_kind="url",
        endpoint="stream",
        concurrency=None if rate else concurrency,
        rate=rate or None,
        duration_s=seconds,
        message="ping",
        engine="raw",
        warmup_s=warmup,
    )
    target = streaming_target(resolve_target(Inventory(path=None, agents=()), url))
    # A first short run imports what the engine imports lazily: not the run's CPU.
    run_bench(replace(plan, concurrency=1, rate=None, duration_s=None, requests=2), target)
    firsts = _trace_first_artifacts()
    cpu0 = time.process_time()
    measured_from = time.perf_counter() + warmup  # the split leaves the warm-up out too
    result = run_bench(plan, target)
    cpu = time.process_time() - cpu0
    assert result.phases is not None
    first = result.phases.hists["first_artifact"]
    # working, the chunks, completed; the warm-up's streams took CPU too
    events = (result.ok + result.warmup_requests) * (chunks + 2)
    lag = result.schedule_lag.percentile_ms(99.0) if result.schedule_lag else None
    return {
        "tool": "latcli open" if rate else "latcli",
        "streams": result.ok,
        "errors": sum(result.errors.values()),
        "events": events,
        "first_artifact_p50": first.percentile_ms(50.0),
        "first_artifact_p99": first.percentile_ms(99.0),
        "total_p50": result.phases.hists["total"].percentile_ms(50.0),
        "cpu_s": cpu,
        "cpu_us_per_event": cpu / events * 1e6 if events else None,
        "achieved_rate": result.achieved_rate,
        "valid": result.valid,
        "schedule_lag_p99": lag,
        "in_flight_mean": (result.achieved_rate or 0.0)
        * (result.phases.hists["total"].mean_ms or 0.0)
        / 1000.0,
        **_split_first_artifacts(url, [f for f in firsts if f[1] >= measured_from]),
    }


def _trace_first_artifacts() -> list[tuple[str, float, float]]:
    """Each answered stream's (task id, send instant, first artifact instant) from here on, as
    the engine reads it (one coroutine frame more per stream: noise in the CPU figure)."""
    from latcli.engines.bench import stream as engine

    firsts: list[tuple[str, float, float]] = []
    read_stream = engine.read_stream

    async def traced(outcome: Any, card: Any) -> Any:
        reply = await read_stream(outcome, card)
        stream = reply.stream
        if reply.task_id and stream is not None and stream.first_artifact_ms is not None:
            firsts.append((reply.task_id, outcome.sent, stream.first_artifact_ms))
        return reply

    engine.read_stream = traced
    return firsts


def nearest_rank(values: list[float], p: float) -> float | None:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * int(p) // 100) - 1)] if ordered else None


def _split_first_artifacts(url: str, firsts: list[tuple[str, float, float]]) -> dict[str, Any]:
    """The p50/p99 (ms) of each part of the first artifact's time: the agent's clock readings
    (``/tasks``) against latcli's stamps, stream by stream."""
    with urllib.request.urlopen(url + "/tasks", timeout=30) as answer:  # loopback
        tasks: dict[str, list[float]] = json.loads(answer.read())
    read, stamp = [], []
    for task, sent, first_ms in firsts:
        if task in tasks:
            t0, written = tasks[task]
            read.append((t0 - sent) * 1000.0)
            stamp.append((sent + first_ms / 1000.0 - written) * 1000.0)
    return {
        "matched": len(read),
        "agent_read_p50": nearest_rank(read, 50),
        "agent_read_p99": nearest_rank(read, 99),
        "stamp_p50": nearest_rank(stamp, 50),
        "stamp_p99": nearest_rank(stamp, 99),
    }


def agent_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/stats?reset", timeout=10) as answer:  # loopback
        doc: dict[str, Any] = json.loads(answer.read())
    return doc


def run_tool(tool: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    d, c = str(args.duration), str(args.concurrency)
    # byte-compiled imports (as an installed latcli runs), and the peers' venvs beside ours
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    }
    if tool in ("latcli", "open"):
        rate = str(args.rate if tool == "open" else 0)
        cmd = [sys.executable, __file__, "--child", url, c, rate, d, str(args.chunks),
               str(args.warmup)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))
    if tool == "floor":
        cmd = [sys.executable, str(ROOT / "scripts/stream_peer_floor.py"), url + "/", c, d]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))
    if tool == "aiohttp":
        cmd = ["uv", "run", "--quiet", "--with", "aiohttp", "python",
               str(ROOT / "scripts/stream_peer_aiohttp.py"), url + "/", c, d]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))
    with tempfile.NamedTemporaryFile(suffix=".json") as samples:
        cmd = ["uv", "run", "--quiet", "--with", "locust", "locust", "-f",
               str(ROOT / "scripts/locust_stream.py"), "--headless", "-u", c, "-r", c,
               "-t", f"{args.duration:g}s", "-H", url, "--only-summary",
               "--loglevel", "ERROR"]  # fmt: skip
        env["LOCUST_STREAM_OUT"] = samples.name
        done = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=args.duration + 120)  # fmt: skip
        text = Path(samples.name).read_text()
        if not text:
            raise SystemExit(f"locust wrote no samples: {done.stderr[-2000:]}")
        doc = json.loads(text)
    firsts = sorted(s[0] for s in doc["samples"])
    totals = sorted(s[1] for s in doc["samples"])

    events = int(doc["events"])
    return {
        "tool": "locust",
        "streams": len(firsts),
        "errors": 0,
        "events": events,
        "first_artifact_p50": nearest_rank(firsts, 50),
        "first_artifact_p99": nearest_rank(firsts, 99),
        "total_p50": nearest_rank(totals, 50),
        "cpu_s": doc["cpu_s"],  # locust's whole process, start-up included
        "cpu_us_per_event": doc["cpu_s"] / events * 1e6 if events else None,
    }


def spread(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    med = statistics.median(known)
    return f"{med:8.2f} ({min(known):.2f}..{max(known):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("-c", "--concurrency", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1070.0)
    parser.add_argument(
        "--skip", default="", help="comma-separated: latcli,floor,aiohttp,locust,open"
    )
    parser.add_argument("--chunks", type=int, default=5, help="artifact chunks per stream")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="between chunks")
    parser.add_argument(
        "--warmup", type=float, default=0.0,
        help="latcli runs only: seconds left out at the start (the 100 connections' opening "
        "burst), as `latcli bench --warmup`; the peers measure from their start",
    )  # fmt: skip
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, c, rate, d, n, w = args.child
        print(json.dumps(child_latcli(url, int(c), float(rate), float(d), int(n), float(w))))
        return 0
    from stream_agent import run_stream_agent

    tools = [
        t for t in ("latcli", "floor", "aiohttp", "locust", "open") if t not in args.skip.split(",")
    ]
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
    load = [os.getloadavg()[0]]
    schedule = ("--chunks", str(args.chunks), "--gap-ms", str(args.gap_ms))
    with run_stream_agent(*schedule) as agent:
        for r in range(args.rounds):
            order = tools[r % len(tools) :] + tools[: r % len(tools)]  # rotate: spread the noise
            for tool in order:
                agent_stats(agent.url)  # reset
                got = run_tool(tool, agent.url, args)
                own = agent_stats(agent.url)["first_artifact_late_us"]
                got["agent_late_p50"] = (own["p50"] or 0) / 1000.0
                got["agent_late_p99"] = (own["p99"] or 0) / 1000.0
                got["load"] = os.getloadavg()[0]
                load.append(got["load"])
                runs[tool].append(got)
                print(f"round {r + 1} {tool}: " + json.dumps(got), file=sys.stderr, flush=True)
    print(f"\nstream agent: first artifact at {FIRST_MS:g} ms, {args.chunks} chunks "
          f"{args.gap_ms:g} ms apart; "
          f"{args.rounds} rounds x {args.duration:g} s; C={args.concurrency}; load average "
          f"{min(load):.1f}..{max(load):.1f} on {os.cpu_count()} cores")  # fmt: skip
    print("median (min..max) over rounds; first artifact in ms from the send; 'agent late' is "
          "how late the agent itself wrote it")  # fmt: skip
    header = f"{'':12} {'fa p50':>22} {'fa p99':>22} {'agent late p50':>22} {'agent late p99':>22} {'µs CPU/event':>22}"  # noqa: E501
    print(header)
    for tool, got in runs.items():
        cells = [spread([g[k] for g in got]) for k in
                 ("first_artifact_p50", "first_artifact_p99", "agent_late_p50", "agent_late_p99",
                  "cpu_us_per_event")]  # fmt: skip
        print(f"{tool:12} " + " ".join(f"{c:>22}" for c in cells))
    split = [t for t in ("latcli", "open") if t in runs]
    if split:
        print("\nwhere the first artifact's time over the schedule goes, stream by stream "
              "(ms, p50 / p99, median over rounds)")  # fmt: skip
        print(
            f"{'':12} {'send -> agent read':>22} {'agent late':>22} {'write -> latcli stamp':>22}"
        )
        for tool in split:
            got = runs[tool]

            def med(key: str, got: list[dict[str, Any]] = got) -> str:
                known = [g[key] for g in got if g[key] is not None]
                return f"{statistics.median(known):.2f}" if known else "-"

            cells = [f"{med(a + '_p50')} / {med(a + '_p99')}"
                     for a in ("agent_read", "agent_late", "stamp")]  # fmt: skip
            matched = min(g["matched"] / max(1, g["streams"]) for g in got)
            print(
                f"{tool:12} " + " ".join(f"{c:>22}" for c in cells) + f"  ({matched:.0%} matched)"
            )
    if "open" in runs:
        got = runs["open"]
        print(f"\nopen model at {args.rate:g} req/s: achieved "
              f"{spread([g['achieved_rate'] for g in got])} req/s, schedule lag p99 "
              f"{spread([g['schedule_lag_p99'] for g in got])} ms, concurrent streams "
              f"{spread([g['in_flight_mean'] for g in got])}, "
              f"valid {[g['valid'] for g in got]}")  # fmt: skip
    print()

    def over(tool: str, key: str) -> float | None:
        """The tool's median first-artifact overhead over the schedule."""
        vals = [g[key] - FIRST_MS for g in runs.get(tool, []) if g[key] is not None]
        return statistics.median(vals) if vals else None

    for key in ("first_artifact_p50", "first_artifact_p99"):
        mine = over("latcli", key)
        line = f"{key} over the schedule: latcli {mine:+.2f} ms" if mine is not None else key
        for peer in ("floor", "aiohttp", "locust"):
            theirs = over(peer, key)
            if theirs is not None and mine is not None:
                line += f" · {peer} {theirs:+.2f} ms (latcli - {peer} = {mine - theirs:+.2f} ms)"
        print(line)
    cpu = {t: statistics.median([g["cpu_us_per_event"] for g in got]) for t, got in runs.items()}
    if "latcli" in cpu:
        ratios = " · ".join(
            f"{t} {v / cpu['latcli']:.2f}x" for t, v in cpu.items() if t != "latcli"
        )
        print(
            f"CPU per SSE event: latcli {cpu['latcli']:.1f} µs; peers relative to latcli: {ratios}"
        )
    if "latcli" in runs and "floor" in runs:  # the same round: the same machine's mood
        pairs = [mine["cpu_us_per_event"] / floor["cpu_us_per_event"]
                 for mine, floor in zip(runs["latcli"], runs["floor"], strict=True)]  # fmt: skip
        print(
            f"latcli's CPU per event over the floor's, round by round: "
            f"{statistics.median(pairs):.2f}x ({min(pairs):.2f}..{max(pairs):.2f}); latcli's own "
            f"share over the floor: {cpu['latcli'] - cpu['floor']:.1f} µs an event"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
