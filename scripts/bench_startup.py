"""Start-up cost of `latcli --help` and `latcli --version` over a bare `python -c pass`.

All three commands are run interleaved in the same loop so machine drift hits each alike; prints
medians and the difference (target: at most 150 ms more than the bare interpreter).

Usage: uv run python scripts/bench_startup.py [--runs 20] [--baseline DIR]

``--baseline DIR``: also time ``--help`` of another copy of the package (e.g. ``git archive main
latcli | tar -x -C DIR``) in the same loop, and print the ratio: a change's cost measured side
by side, as the shared machine's noise moves both alike.
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--baseline", help="directory holding another copy of the latcli package")
    args = parser.parse_args()
    commands = dict(COMMANDS)
    envs: dict[str, dict[str, str] | None] = {name: None for name in commands}
    cwds: dict[str, str | None] = {name: None for name in commands}
    if args.baseline:
        commands["baseline --help"] = [sys.executable, "-m", "latcli", "--help"]
        # From inside DIR: the current directory comes first on sys.path, before the install.
        envs["baseline --help"] = {**os.environ, "PYTHONPATH": args.baseline}
        cwds["baseline --help"] = args.baseline
    times: dict[str, list[float]] = {name: [] for name in commands}
    for name, cmd in commands.items():
        subprocess.run(cmd, capture_output=True, check=True, env=envs[name], cwd=cwds[name])
    for _ in range(args.runs):
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, env=envs[name], cwd=cwds[name])
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["python -c pass"])
    for name, values in times.items():
        med = statistics.median(values)
        extra = (med - base) * 1000
        print(f"{name:18} median {med * 1000:6.1f} ms  (+{extra:5.1f} ms over bare python)")
    if args.baseline:
        ours = statistics.median(times["latcli --help"]) - base
        theirs = statistics.median(times["baseline --help"]) - base
        print(f"--help over bare python: this tree / baseline = {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
