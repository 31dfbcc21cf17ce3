"""Check `latcli compare` as a statistician would, on real bench runs against loopback servers
of known latency (scripts/delay_server.py: every answer after exactly D ms).

1. same: two runs of one 20 ms server give "same" in >= 19 of 20 comparisons. Each
   comparison pairs two runs made at different times (round r's first run against round
   r+1's second), so the 20 pairs are independent and no run is used twice.
2. slower: 20 ms against 24 ms is "slower" in every one of 20 comparisons (run side by side
   in one round, so the machine's load of the moment hits both alike).
3. found: 20 ms against 21 ms (+5 % of the server's delay; latcli's own overhead makes the
   measured change a little smaller) is "slower" with 30 s runs, at --threshold 2 %; the
   verdict at the default 5 % threshold is printed beside it.

Each round runs its bench processes at once (3 in a round of check 1+2, 2 in check 3): the
load is light (4 connections, ~200 req/s each). Usage:

    uv run python scripts/compare_check.py [--rounds 20] [--seconds 10] [--long-rounds 5]

About 4 min for checks 1+2 and 3 min for check 3 on defaults. Exit 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@contextmanager
def delay_server(ms: float, workdir: Path) -> Iterator[str]:
    """A scripts/delay_server.py subprocess answering after ``ms``; yields its health URL."""
    portfile = workdir / f"port-{ms:g}"
    portfile.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "delay_server.py"), str(portfile), "--delay-ms", f"{ms:g}"]
    )
    try:
        deadline = time.monotonic() + 10
        while not (portfile.exists() and portfile.read_text().strip()):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"delay server {ms:g} ms did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{portfile.read_text().strip()}/health"
    finally:
        proc.terminate()
        proc.wait(5)


def bench_round(jobs: Sequence[tuple[str, Path]], seconds: int) -> None:
    """Run one bench process per (url, output) at the same time; fail loudly if one fails."""
    flags = ["-c", "4", "-d", f"{seconds}s", "--warmup", "1s", "-q"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "latcli", "bench", url, *flags, "-o", str(out)],
            stdout=subprocess.DEVNULL,
        )
        for url, out in jobs
    ]
    for proc, (url, _) in zip(procs, jobs, strict=True):
        if proc.wait() != 0:
            raise RuntimeError(f"bench {url} exited {proc.returncode}")


def compare(base: Path, cand: Path, *extra: str) -> dict[str, Any]:
    """`latcli compare --json` as a CI job runs it; the document plus the exit code."""
    proc = subprocess.run(
        [sys.executable, "-m", "latcli", "compare", str(base), str(cand), "--json", *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    doc: dict[str, Any] = json.loads(proc.stdout)
    doc["exit"] = proc.returncode
    return doc


def line(label: str, doc: dict[str, Any]) -> str:
    if doc["verdict"] is None:
        return f"  {label:<10} {doc['reason']} (exit {doc['exit']})"
    lo, hi = doc["ci"] or (float("nan"), float("nan"))
    return (
        f"  {label:<10} ratio {doc['ratio']:.4f}  CI [{lo:.4f}, {hi:.4f}]  "
        f"p {doc['p_value']:.2e}  n {doc['baseline']['n']}/{doc['candidate']['n']}  "
        f"-> {doc['verdict']} (exit {doc['exit']})"
    )


def check_same_and_slower(workdir: Path, rounds: int, seconds: int) -> tuple[bool, bool]:
    with delay_server(20, workdir) as fast, delay_server(24, workdir) as slow:
        for r in range(rounds):
            t = time.monotonic()
            bench_round(
                [
                    (fast, workdir / f"a{r}.json"),
                    (fast, workdir / f"b{r}.json"),
                    (slow, workdir / f"c{r}.json"),
                ],
                seconds,
            )
            print(f"round {r + 1}/{rounds}: {time.monotonic() - t:.1f}s", file=sys.stderr)
    print(f"1. same: 20 ms vs 20 ms, {rounds} independent pairs of {seconds} s runs, p50")
    same = [compare(workdir / f"a{r}.json", workdir / f"b{(r + 1) % rounds}.json")
            for r in range(rounds)]  # fmt: skip
    for r, doc in enumerate(same):
        print(line(f"a{r}/b{(r + 1) % rounds}", doc))
    n_same = sum(d["verdict"] == "same" for d in same)
    n_sig = sum(d["p_value"] <= d["alpha"] for d in same)
    print(f"  => same in {n_same}/{rounds} (need >= {rounds - rounds // 20}); the U test alone "
          f"rejected in {n_sig}/{rounds}: the threshold absorbs run-to-run drift")  # fmt: skip
    print(f"2. slower: 20 ms vs 24 ms, {rounds} pairs run side by side, p50")
    slower = [compare(workdir / f"a{r}.json", workdir / f"c{r}.json") for r in range(rounds)]
    for r, doc in enumerate(slower):
        print(line(f"a{r}/c{r}", doc))
    n_slower = sum(d["verdict"] == "slower" and d["exit"] == 1 for d in slower)
    print(f"  => slower in {n_slower}/{rounds} (need {rounds})")
    return n_same >= rounds - rounds // 20, n_slower == rounds


def check_five_percent(workdir: Path, rounds: int, seconds: int) -> bool:
    with delay_server(20, workdir) as fast, delay_server(21, workdir) as slow:
        for r in range(rounds):
            bench_round([(fast, workdir / f"d{r}.json"), (slow, workdir / f"e{r}.json")], seconds)
            print(f"long round {r + 1}/{rounds}", file=sys.stderr)
    print(f"3. found: 20 ms vs 21 ms, {rounds} pairs of {seconds} s runs side by side, p50")
    found = 0
    for r in range(rounds):
        base, cand = workdir / f"d{r}.json", workdir / f"e{r}.json"
        at2 = compare(base, cand, "--threshold", "2%")
        at5 = compare(base, cand)
        found += at2["verdict"] == "slower"
        print(line(f"d{r}/e{r}", at2) + f"  [at 5 %: {at5['verdict']}]")
    print(f"  => slower at --threshold 2 % in {found}/{rounds} (need {rounds})")
    return found == rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--long-rounds", type=int, default=5)
    parser.add_argument("--long-seconds", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="Keep the bench reports in this folder.")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="compare-check-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        same_ok, slower_ok = check_same_and_slower(workdir, args.rounds, args.seconds)
        found_ok = check_five_percent(workdir, args.long_rounds, args.long_seconds)
    ok = same_ok and slower_ok and found_ok
    verdicts = {"same": same_ok, "slower": slower_ok, "5 % found": found_ok}
    summary = " · ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in verdicts.items())
    print(f"checks: {summary} · {time.monotonic() - started:.0f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
