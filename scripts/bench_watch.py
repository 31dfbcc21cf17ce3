"""Speed of `latcli watch` (issue 4): tick lag p99 and CPU share of one core.

Targets: 1,000 agents at a 1 s interval -> tick lag p99 < 100 ms and < 50 % of one core;
10 agents at 1 s -> < 3 % of one core. Starts scripts/many_ports_server.py with N ports (in its
own process, so its CPU is not counted), writes an inventory naming them, runs
`latcli watch -i INV --interval 1s --json` as a subprocess with a fresh state file, reads one
JSON object per tick and samples the watch process's CPU time (user + system, psutil) at each
tick. The first --warmup ticks (imports, connection setup, first checks) are left out.

Usage: uv run python scripts/bench_watch.py [--agents 1000 10] [--ticks 30] [--warmup 5]
       [--transport auto|httpx|raw] [--no-state] [--canary EVERY] [--baseline REF]

--canary EVERY gives every agent a canary message (health.canary) that often. --baseline REF
runs the same watch from git revision REF's latcli beside this one (alternately, in the same
run) and prints the ratios: is a change's tick cost flat?
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

TARGETS = {1000: (100.0, 50.0), 10: (100.0, 3.0)}  # agents -> (lag p99 ms, % of one core)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def start_server(n: int, tmp: Path) -> tuple[subprocess.Popen[bytes], list[str]]:
    portfile = tmp / f"ports-{n}"
    script = Path(__file__).with_name("many_ports_server.py")
    server = subprocess.Popen([sys.executable, str(script), str(n), str(portfile)])
    deadline = time.monotonic() + 30
    while not portfile.exists() or not portfile.read_text().endswith("\n"):
        if time.monotonic() > deadline:
            raise SystemExit("server did not start")
        time.sleep(0.05)
    return server, portfile.read_text().split()


def baseline_tree(ref: str, tmp: Path) -> Path:
    """REF's latcli package, extracted under ``tmp``: ``python -m latcli`` run from there
    imports it (the working directory comes first on sys.path)."""
    root = tmp / "baseline"
    root.mkdir()
    archive = subprocess.run(["git", "archive", ref, "latcli"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    return root


def bench(
    n: int,
    ticks: int,
    warmup: int,
    transport: str,
    tmp: Path,
    state: bool = True,
    canary: str | None = None,
    cwd: Path | None = None,
) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(dir=tmp))  # each run its own port file, inventory, state
    server, ports = start_server(n, tmp)
    try:
        inv = tmp / f"agents-{n}.yaml"
        health = "interval: 1s, timeout: 1s"
        if canary:
            health += f", canary: {{message: ping, every: {canary}}}"
        lines = ["version: 1", f"defaults: {{health: {{{health}}}}}"]
        lines += ["sla: {health: p99 < 100ms, availability: '>= 99.9%'}", "agents:"]
        lines += [
            f"  - {{id: a{i}, type: t{i % 10}, url: 'http://127.0.0.1:{p}'}}"
            for i, p in enumerate(ports)
        ]
        inv.write_text("\n".join(lines) + "\n")
        env = {**os.environ, "LATCLI_STATE": str(tmp / f"state-{n}.db"), "NO_COLOR": "1"}
        if transport != "auto":
            env["LATCLI_TRANSPORT"] = transport
        cmd = [sys.executable, "-m", "latcli", "watch", "-i", str(inv), "--interval", "1s"]
        proc = subprocess.Popen(
            [*cmd, "--json", "--count", str(ticks + warmup), *([] if state else ["--no-state"])],
            stdout=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        ps = psutil.Process(proc.pid)
        lags: list[float] = []
        healthy = 0
        cpu0 = wall0 = 0.0
        assert proc.stdout is not None
        for i, line in enumerate(proc.stdout, 1):
            cpu = sum(ps.cpu_times()[:2])
            now = time.monotonic()
            doc = json.loads(line)
            if i == warmup:
                cpu0, wall0 = cpu, now
            elif i > warmup:
                lags.append(doc["lag_ms"])
                healthy = sum(a["state"] != "down" for a in doc["agents"])
                cpu1, wall1 = cpu, now
        proc.wait(30)
        share = 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
        return {
            "agents": n,
            "healthy": healthy,
            "lag_p50_ms": percentile(lags, 50),
            "lag_p99_ms": percentile(lags, 99),
            "lag_max_ms": max(lags),
            "cpu_pct": share,
        }
    finally:
        server.terminate()
        server.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, nargs="+", default=[1000, 10])
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--transport", choices=["auto", "httpx", "raw"], default="auto")
    parser.add_argument("--no-state", action="store_true", help="run watch with --no-state")
    parser.add_argument("--canary", help="give every agent a canary this often, e.g. 5s")
    parser.add_argument("--baseline", help="git revision to run beside this tree, e.g. main")
    parser.add_argument("--rounds", type=int, default=1, help="baseline/this pairs per size")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    if args.baseline:
        base = baseline_tree(args.baseline, tmp)
        for n in args.agents:
            pairs = []
            for _ in range(args.rounds):
                run = (n, args.ticks, args.warmup, args.transport, tmp, not args.no_state)
                pairs.append((bench(*run, cwd=base), bench(*run, canary=args.canary)))
            show_pairs(n, args.baseline, args.canary, pairs)
        return
    for n in args.agents:
        r = bench(n, args.ticks, args.warmup, args.transport, tmp, not args.no_state, args.canary)
        lag_max, cpu_max = TARGETS.get(n, (100.0, math.inf))
        ok = r["lag_p99_ms"] < lag_max and r["cpu_pct"] < cpu_max
        print(
            f"agents={n} transport={args.transport} state={not args.no_state} "
            f"ticks={args.ticks}: "
            f"tick lag p50 {r['lag_p50_ms']:.1f} ms, p99 {r['lag_p99_ms']:.1f} ms "
            f"(max {r['lag_max_ms']:.1f}); CPU {r['cpu_pct']:.1f} % of one core; "
            f"{r['healthy']:.0f}/{n} up; target lag p99 < {lag_max:.0f} ms, "
            f"CPU < {cpu_max:g} % -> {'PASS' if ok else 'FAIL'} "
            f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)",
            flush=True,
        )


def show_pairs(
    n: int, ref: str, canary: str | None, pairs: list[tuple[dict[str, float], dict[str, float]]]
) -> None:
    """One line per round and the ratio of the sums: this tree / the baseline."""
    this = f"this tree{f' (canary every {canary})' if canary else ''}"
    for base, mine in pairs:
        print(
            f"agents={n}: {ref}: lag p99 {base['lag_p99_ms']:.1f} ms, CPU {base['cpu_pct']:.1f} %"
            f" | {this}: lag p99 {mine['lag_p99_ms']:.1f} ms, CPU {mine['cpu_pct']:.1f} %,"
            f" {mine['healthy']:.0f}/{n} up",
            flush=True,
        )
    cpu = sum(m["cpu_pct"] for _, m in pairs) / sum(b["cpu_pct"] for b, _ in pairs)
    lag = sum(m["lag_p99_ms"] for _, m in pairs) / sum(b["lag_p99_ms"] for b, _ in pairs)
    load = os.getloadavg()[0]
    print(f"agents={n}: ratio this/{ref}: CPU x{cpu:.2f}, lag p99 x{lag:.2f} (load {load:.2f})")


if __name__ == "__main__":
    main()
