"""Speed of `latcli probe` over 1,000 agents (issue: within health timeout + 1 s, wall).

Starts scripts/many_ports_server.py with 1,000 ports, writes an inventory naming them, then runs
`latcli probe -i INV --json` several times and prints the wall time of each run beside the bound,
with `python -c pass` timed in the same run as the floor.

Usage: uv run python scripts/bench_probe.py [--agents 1000] [--runs 5]
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
from pathlib import Path

HEALTH_TIMEOUT_S = 1.0


def wall(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=False)
    return time.perf_counter() - t0, done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    portfile = tmp / "ports"
    server = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("many_ports_server.py")),
            str(args.agents),
            str(portfile),
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while not portfile.exists() or not portfile.read_text().endswith("\n"):
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.05)
        ports = portfile.read_text().split()
        inv = tmp / "agents.yaml"
        lines = ["version: 1", "defaults: {health: {timeout: 1s}}", "agents:"]
        lines += [
            f"  - {{id: a{i}, type: t, url: 'http://127.0.0.1:{p}'}}" for i, p in enumerate(ports)
        ]
        inv.write_text("\n".join(lines) + "\n")
        probe = [sys.executable, "-m", "latcli", "probe", "-i", str(inv), "--json"]
        floor = [sys.executable, "-c", "pass"]
        wall(probe)  # warm-up: .pyc files, page cache
        probes, floors = [], []
        for _ in range(args.runs):
            t, done = wall(probe)
            doc = json.loads(done.stdout)
            healthy = sum(a["healthy"] for a in doc["agents"])
            probes.append(t)
            floors.append(wall(floor)[0])
            total = len(doc["agents"])
            print(f"run: {t:.3f} s wall, {healthy}/{total} healthy, exit {done.returncode}")
        med = statistics.median(probes)
        bound = HEALTH_TIMEOUT_S + 1.0
        print(
            f"agents={len(ports)} probe median {med:.3f} s (min {min(probes):.3f}, "
            f"max {max(probes):.3f}); python -c pass median {statistics.median(floors):.3f} s"
        )
        verdict = "every run within" if max(probes) <= bound else "some run OVER"
        print(
            f"bound = health timeout + 1 s = {bound:.1f} s; median/bound = {med / bound:.2f}; "
            f"{verdict} the bound"
        )
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    main()
