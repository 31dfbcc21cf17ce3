"""Start-up cost of `latcli --help` and `latcli --version` over a bare `python -c pass`.

All three commands are run interleaved in the same loop so machine drift hits each alike; prints
medians and the difference (target: at most 150 ms more than the bare interpreter).

Usage: uv run python scripts/bench_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "latcli --help": [sys.executable, "-m", "latcli", "--help"],
    "latcli --version": [sys.executable, "-m", "latcli", "--version"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for cmd in COMMANDS.values():
        subprocess.run(cmd, capture_output=True, check=True)  # warm-up
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["python -c pass"])
    for name, values in times.items():
        med = statistics.median(values)
        extra = (med - base) * 1000
        print(f"{name:18} median {med * 1000:6.1f} ms  (+{extra:5.1f} ms over bare python)")


if __name__ == "__main__":
    main()
