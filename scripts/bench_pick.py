"""Micro-benchmark: how long the router's choice of a replica takes over 1,000 replicas.

Run: ``uv run python scripts/bench_pick.py [--replicas N] [--picks N] [--baseline DIR]``.
Target (issue 10/13): admission p99 <= 25 µs over 1,000 replicas with p2c.

Rows:
  admit     what ``send`` does before it sends: the choice and the breaker permit
            (``Router.choice`` + ``Breaker.allow``; before the pure choice: ``Router._admit``)
  pick      the public peek ``Router.pick`` (watch's "send would pick", serve's /agents)
  indices   ``P2C.pick_index`` over ``ReplicaStats.load`` alone: the floor, no router

``--baseline DIR`` runs this same script against another checkout's package (DIR holds its
``latcli/``, e.g. ``git archive HEAD~1 latcli | tar -x -C DIR``) in alternating rounds and
prints both with the ratio: the machine is shared, so only a same-run comparison is fair.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from latcli.config.model import Agent
from latcli.core.strategies import P2C
from latcli.routing.router import Router

TYPE = "work"


def with_history(router: Router, rng: random.Random) -> None:
    """5 answers per replica (5-200 ms, 5 % failures) and 0-2 requests in flight."""
    now = time.monotonic()
    for replica in router.replicas(TYPE):
        for k in range(5):
            replica.stats.start()
            replica.stats.finish(now - 5 + k, rng.uniform(5.0, 200.0), ok=rng.random() > 0.05)
        for _ in range(rng.randrange(3)):
            replica.stats.start()


def timed(call: Callable[[], object], n: int) -> list[float]:
    """Microseconds per call, one sample per call."""
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        call()
        out.append((clock() - t0) / 1000)
    return out


def admission(router: Router) -> Callable[[], object]:
    """The choice ``send`` makes, permit included, in whichever shape this checkout has."""
    if not hasattr(router, "choice"):  # before the pure choice function
        replicas = router.replicas(TYPE)
        return lambda: router._admit(replicas, set())  # type: ignore[call-arg,arg-type]

    def admit() -> object:
        now = time.monotonic()
        chosen = router.choice(TYPE, now=now)
        assert chosen is not None
        return chosen.member.breaker.allow(now)

    return admit


def measure(replicas: int, picks: int) -> dict[str, list[float]]:
    agents = [
        Agent(id=f"g{i:04d}", type=TYPE, url=f"http://127.0.0.1:9/{i}") for i in range(replicas)
    ]
    router = Router(agents, strategy="p2c", state=None, rng=random.Random(1))
    with_history(router, random.Random(42))
    stats = [r.stats for r in router.replicas(TYPE)]
    rng = random.Random(2)
    now = time.monotonic()
    return {
        "admit": timed(admission(router), picks),
        "pick": timed(lambda: router.pick(TYPE), picks),
        "indices": timed(
            lambda: P2C.pick_index(len(stats), lambda k: stats[k].load(now), rng), picks
        ),
    }


def quantiles(us: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(us, n=100, method="inclusive")
    return q[49], q[98]


Round = dict[str, tuple[float, float]]  # row -> (p50, p99) in µs


def own_round(args: argparse.Namespace) -> Round:
    return {k: quantiles(v) for k, v in measure(args.replicas, args.picks).items()}


def round_in(args: argparse.Namespace, package_dir: str | None) -> Round:
    """One round in a fresh process, importing ``latcli`` from ``package_dir`` if given."""
    env = dict(os.environ)
    if package_dir:
        env["PYTHONPATH"] = package_dir
    cmd = [sys.executable, __file__, "--json", "--replicas", str(args.replicas)]
    cmd += ["--picks", str(args.picks)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return {k: (v[0], v[1]) for k, v in json.loads(done.stdout).items()}


def best(rounds: list[Round]) -> Round:
    """Per row, the median over rounds of p50 and of p99."""
    return {
        k: (statistics.median(r[k][0] for r in rounds), statistics.median(r[k][1] for r in rounds))
        for k in rounds[0]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--replicas", type=int, default=1000, help="replicas of the one type")
    parser.add_argument("--picks", type=int, default=20000, help="timed calls per row")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds with --baseline")
    parser.add_argument("--baseline", help="a directory holding another checkout's latcli/")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(own_round(args)))
        return
    print(f"p2c over {args.replicas} replicas, {args.picks} picks per row")
    if not args.baseline:
        for name, (p50, p99) in own_round(args).items():
            print(f"{name:<8} p50 {p50:8.2f} µs   p99 {p99:8.2f} µs")
        return
    mine, theirs = [], []
    for _ in range(args.rounds):
        theirs.append(round_in(args, args.baseline))
        mine.append(round_in(args, None))
    after, before = best(mine), best(theirs)
    print(f"median of {args.rounds} alternating rounds; before = {args.baseline}")
    for name in after:
        (a50, a99), (b50, b99) = after[name], before[name]
        print(
            f"{name:<8} before p50 {b50:7.2f} p99 {b99:7.2f} µs   after p50 {a50:7.2f}"
            f" p99 {a99:7.2f} µs   after/before p99 x{a99 / b99:.2f}"
        )


if __name__ == "__main__":
    main()
