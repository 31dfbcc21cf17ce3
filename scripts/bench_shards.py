"""Sharded bench, the issue's check at full length: 4 shards of ``--rate 400`` for 5 s, run as 4
processes at once against a loopback server answering after 2 ms (scripts/delay_server.py),
started together by ``--start-at``, merged by ``latcli report``; beside them, in the same run,
one process sending the same 400 req/s for 5 s (the baseline).

Printed: requests, achieved rate and schedule lag of both; whether every percentile of the
merged report equals hdrh's own merge of the shards' encoded histograms (latency and service
time: never averaged); and the merged run's p50/p99 against the one process's (ratios).

    uv run python scripts/bench_shards.py [--rate 400] [--seconds 5] [--shards 4]

Exit 1 if the merge is not exact or the request count is not rate x seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from compare_check import delay_server
from hdrh.histogram import HdrHistogram

from latcli.reports.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9), ("p99.99", 99.99))


def bench(url: str, out: Path, *flags: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "latcli", "bench", url, *flags, "-q", "-o", str(out)],
        stdout=subprocess.DEVNULL,
    )


def hdr_expected(shards: list[dict[str, Any]], name: str) -> dict[str, float]:
    """hdrh's merge of the shards' histograms, clamped to their exact min/max, in ms."""
    hists = [s["histograms"][name] for s in shards]
    total = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for h in hists:
        total.add(HdrHistogram.decode(h["encoded"]))
    low, high = min(h["min_us"] for h in hists), max(h["max_us"] for h in hists)
    return {
        key: round(min(max(total.get_value_at_percentile(p), low), high) / 1000, 3)
        for key, p in PERCENTILES
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=400.0)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with delay_server(2.0, work) as url:
            run = ["--rate", f"{args.rate:g}", "-d", f"{args.seconds}s"]
            start = datetime.now(timezone.utc) + timedelta(seconds=4)
            at = start.isoformat().replace("+00:00", "Z")
            procs = [
                bench(
                    url,
                    work / f"shard-{i}.json",
                    *run,
                    "--shard",
                    f"{i}/{args.shards}",
                    "--start-at",
                    at,
                )
                for i in range(args.shards)
            ]
            codes = [p.wait() for p in procs]
            one = bench(url, work / "one.json", *run).wait()
        if any(codes) or one:
            print(f"a bench failed: shards {codes}, one process {one}", file=sys.stderr)
            return 1
        files = [str(work / f"shard-{i}.json") for i in range(args.shards)]
        merged_path = work / "merged.json"
        subprocess.run(
            [sys.executable, "-m", "latcli", "report", *files, "-o", str(merged_path), "--json"],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        merged = json.loads(merged_path.read_text())
        single = json.loads((work / "one.json").read_text())
        shards = [json.loads(Path(f).read_text()) for f in files]
    exact = all(
        {k: merged[field][k] for k, _ in PERCENTILES} == hdr_expected(shards, name)
        for name, field in (("latency", "latency_ms"), ("service_time", "service_time_ms"))
    )
    want = int(args.rate * args.seconds)
    print(
        f"{args.shards} shards x {args.rate / args.shards:g} req/s, {args.seconds} s, 2 ms server"
    )
    for label, doc in (("merged shards", merged), ("one process", single)):
        gen, lat = doc["generator"], doc["latency_ms"]
        print(
            f"  {label:14s} requests {doc['requests']:,}  achieved {gen['achieved_rate']:.1f}"
            f" req/s  lag p99 {gen['schedule_lag_ms_p99']:.3f} ms  p50 {lat['p50']:.3f} ms"
            f"  p99 {lat['p99']:.3f} ms  valid {gen['valid']}"
        )
    ratio = {k: merged["latency_ms"][k] / single["latency_ms"][k] for k in ("p50", "p99")}
    print(f"  merged / one process: p50 {ratio['p50']:.2f}x  p99 {ratio['p99']:.2f}x")
    print(f"  percentiles equal hdrh's merge of the shards' histograms: {exact}")
    print(f"  shards: {merged['shards']}")
    return 0 if exact and merged["requests"] == want else 1


if __name__ == "__main__":
    sys.exit(main())
