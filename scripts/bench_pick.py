"""Micro-benchmark: how long one P2C pick takes over 1,000 replicas.

Run: ``uv run python scripts/bench_pick.py [--replicas N] [--picks N]``.
Target (task brief): p99 <= 25 µs per pick on the path the router uses.

Three ways a router can pick:
  prebuilt   P2C.pick over a list of Candidates built once (lower bound, stale loads)
  snapshot   build N Candidates from ReplicaStats, then P2C.pick (fresh, O(N) per pick)
  indices    P2C.pick_index(n, load_of, rng): only the two sampled loads computed (O(1))
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from latcli.stats import ReplicaStats
from latcli.strategies import P2C


def fleet(n: int, rng: random.Random) -> list[ReplicaStats]:
    """``n`` replicas with a little history each and a few requests in flight."""
    replicas = []
    for _ in range(n):
        r = ReplicaStats(tau=10.0, success_window_s=30.0)
        for t in range(5):
            r.start()
            r.finish(float(t), rng.uniform(5.0, 200.0), ok=rng.random() > 0.05)
        for _ in range(rng.randrange(3)):
            r.start()
        replicas.append(r)
    return replicas


def timed(pick: Callable[[float], object], picks: int) -> list[float]:
    """Microseconds per call of ``pick(now)``, one sample per call."""
    samples = []
    clock = time.perf_counter_ns
    for i in range(picks):
        now = 10.0 + i * 1e-4
        t0 = clock()
        pick(now)
        samples.append((clock() - t0) / 1000)
    return samples


def report(name: str, us: list[float]) -> None:
    q = statistics.quantiles(us, n=100, method="inclusive")
    print(f"{name:<9} p50 {q[49]:9.2f} µs   p99 {q[98]:9.2f} µs   max {max(us):9.2f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--picks", type=int, default=20000)
    args = parser.parse_args()
    rng = random.Random(42)
    replicas = fleet(args.replicas, rng)
    ids = [f"agent-{i}" for i in range(len(replicas))]
    p2c = P2C()
    prebuilt = [r.candidate(i, 1.0, 10.0) for i, r in zip(ids, replicas, strict=True)]

    def snapshot(now: float) -> object:
        pool = [r.candidate(i, 1.0, now) for i, r in zip(ids, replicas, strict=True)]
        return p2c.pick(pool, rng)

    def indices(now: float) -> object:
        return P2C.pick_index(len(replicas), lambda k: replicas[k].load(now), rng)

    print(f"P2C over {len(replicas)} replicas, {args.picks} picks each")
    report("prebuilt", timed(lambda now: p2c.pick(prebuilt, rng), args.picks))
    report("snapshot", timed(snapshot, max(200, args.picks // 50)))
    report("indices", timed(indices, args.picks))


if __name__ == "__main__":
    main()
