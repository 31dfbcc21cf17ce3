"""Strategies: each rule, invariants, and fake-clock simulations with ReplicaStats."""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from latcli.core.stats import ReplicaStats
from latcli.core.strategies import (
    P2C,
    STRATEGIES,
    Candidate,
    Fastest,
    LeastLoaded,
    RoundRobin,
    Strategy,
    Weighted,
    make_strategy,
)


def cand(
    id: str,
    load: float = 10.0,
    cost: float = 10.0,
    in_flight: int = 0,
    weight: float = 1.0,
    success_rate: float | None = None,
    has_history: bool = True,
) -> Candidate:
    return Candidate(id, load, cost, in_flight, weight, success_rate, has_history)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_refuses_an_empty_list_and_returns_a_member(name: str) -> None:
    s = make_strategy(name)
    assert s.name == name
    with pytest.raises(ValueError):
        s.pick([], random.Random(0))
    pool = [cand("a"), cand("b", cost=5.0, load=5.0)]
    assert s.pick(pool, random.Random(0)) in pool


def test_make_strategy_names_the_choices_and_builds_fresh_ones() -> None:
    with pytest.raises(ValueError, match="p2c, fastest, round_robin, least_loaded, weighted"):
        make_strategy("random")
    assert make_strategy("round_robin") is not make_strategy("round_robin")


FASTEST = [
    ("lowest cost wins", [cand("a", cost=30), cand("b", cost=20), cand("c", cost=25)], "b"),
    ("an idle untried replica goes first", [cand("a", cost=1), cand("n", has_history=False)], "n"),
    ("a busy untried replica goes last",
     [cand("a", cost=900), cand("n", in_flight=1, has_history=False)], "a"),
    ("ties by in-flight, then id",
     [cand("b", in_flight=1), cand("c"), cand("a", in_flight=1)], "c"),
]  # fmt: skip


@pytest.mark.parametrize(("pool", "want"), [c[1:] for c in FASTEST], ids=[c[0] for c in FASTEST])
def test_fastest(pool: list[Candidate], want: str) -> None:
    assert Fastest().pick(pool, random.Random(0)).id == want


LEAST = [
    ("fewest in flight", [cand("a", in_flight=2, cost=1), cand("b", in_flight=1, cost=99)], "b"),
    ("ties by cost", [cand("a", in_flight=1, cost=9), cand("b", in_flight=1, cost=3)], "b"),
]


@pytest.mark.parametrize(("pool", "want"), [c[1:] for c in LEAST], ids=[c[0] for c in LEAST])
def test_least_loaded(pool: list[Candidate], want: str) -> None:
    assert LeastLoaded().pick(pool, random.Random(0)).id == want


def test_round_robin_cycles_by_id_whatever_the_order() -> None:
    rr, rng = RoundRobin(), random.Random(0)
    pool = [cand("c"), cand("a"), cand("b")]
    assert [rr.pick(pool, rng).id for _ in range(5)] == ["a", "b", "c", "a", "b"]


def test_round_robin_is_stable_when_the_set_changes() -> None:
    rr, rng = RoundRobin(), random.Random(0)
    full = [cand("a"), cand("b"), cand("c"), cand("d")]
    assert [rr.pick(full, rng).id for _ in range(2)] == ["a", "b"]
    without_c = [c for c in full if c.id != "c"]
    assert rr.pick(without_c, rng).id == "d"  # c's turn is skipped, nobody else's
    assert rr.pick(full, rng).id == "a"
    assert rr.pick([cand("b2"), *full], rng).id == "b"
    assert rr.pick([cand("b2"), *full], rng).id == "b2"


def test_weighted_follows_weight_times_health() -> None:
    pool = [cand("a", weight=3), cand("b", weight=1), cand("c", weight=4, success_rate=0.0)]
    w, rng = Weighted(), random.Random(7)
    counts = Counter(w.pick(pool, rng).id for _ in range(8000))
    assert counts["c"] == 0
    assert 0.72 < counts["a"] / 8000 < 0.78


def test_weighted_all_zero_falls_back_to_uniform() -> None:
    pool = [cand("a", weight=0), cand("b", weight=0, success_rate=0.5), cand("c", weight=0)]
    w, rng = Weighted(), random.Random(3)
    counts = Counter(w.pick(pool, rng).id for _ in range(3000))
    assert set(counts) == {"a", "b", "c"} and min(counts.values()) > 900


def test_weighted_survives_weights_whose_sum_overflows() -> None:
    pool = [cand("a", weight=1e308), cand("b", weight=1e308), cand("c", weight=1.0)]
    w, rng = Weighted(), random.Random(5)
    counts = Counter(w.pick(pool, rng).id for _ in range(2000))
    assert counts["c"] == 0 and min(counts["a"], counts["b"]) > 900


WEIGHTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e308, 5e-324, math.inf, math.nan, -1.0]),
)


@given(
    weights=st.lists(WEIGHTS, min_size=1, max_size=8),
    rates=st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=8, max_size=8),
    seed=st.integers(0, 2**32),
)
def test_weighted_never_divides_by_zero(
    weights: list[float], rates: list[float | None], seed: int
) -> None:
    pairs = enumerate(zip(weights, rates[: len(weights)], strict=True))
    pool = [cand(str(i), weight=w, success_rate=r) for i, (w, r) in pairs]
    chosen = Weighted().pick(pool, random.Random(seed))
    assert chosen in pool
    health = 1.0 if chosen.success_rate is None else chosen.success_rate
    share = chosen.weight * health
    if any(0 < c.weight * (1.0 if c.success_rate is None else c.success_rate) < math.inf
           for c in pool):  # fmt: skip
        assert 0 < share < math.inf  # a zero / broken share only wins the uniform fallback


@given(
    loads=st.lists(st.floats(0, 1e6) | st.just(math.inf), min_size=2, max_size=50),
    seed=st.integers(0, 2**32),
)
def test_p2c_never_returns_the_higher_load_of_its_two(loads: list[float], seed: int) -> None:
    pool = [cand(str(i), load=x) for i, x in enumerate(loads)]
    rng = random.Random(seed)
    a, b = P2C.sample_two(len(pool), random.Random(seed))
    chosen = P2C().pick(pool, rng)
    assert a != b and chosen in (pool[a], pool[b])
    assert chosen.load == min(pool[a].load, pool[b].load)


def test_p2c_with_one_candidate_returns_it_without_randomness() -> None:
    only = cand("x", load=math.inf)
    rng = random.Random(1)
    state = rng.getstate()
    assert P2C().pick([only], rng) is only and rng.getstate() == state


def test_p2c_samples_pairs_uniformly() -> None:
    rng = random.Random(11)
    pairs = Counter(frozenset(P2C.sample_two(4, rng)) for _ in range(12000))
    assert len(pairs) == 6 and min(pairs.values()) > 1800  # 2000 expected each


def test_p2c_pick_index_reads_two_loads_only() -> None:
    seen: list[int] = []

    def load_of(i: int) -> float:
        seen.append(i)
        return float(i)

    i = P2C.pick_index(1000, load_of, random.Random(5))
    assert len(seen) == 2 and i == min(seen)
    with pytest.raises(ValueError):
        P2C.pick_index(0, load_of, random.Random(5))


# -- fake-clock simulations -----------------------------------------------------


def simulate(
    strategy: Strategy, latencies: dict[str, float], picks: int, gap_s: float, seed: int = 1
) -> Counter[str]:
    """Requests every ``gap_s`` seconds; replica ``id`` answers after ``latencies[id]`` ms ±10 %."""
    rng = random.Random(seed)
    stats = {id: ReplicaStats(tau=10.0, success_window_s=30.0) for id in latencies}
    pending: list[tuple[float, str, float]] = []  # (done at, replica, latency ms)
    counts: Counter[str] = Counter()
    for n in range(picks):
        now = n * gap_s
        while pending and pending[0][0] <= now:
            done, id, ms = heapq.heappop(pending)
            stats[id].finish(done, ms, ok=True)
        chosen = strategy.pick([s.candidate(id, 1.0, now) for id, s in stats.items()], rng)
        ms = latencies[chosen.id] * rng.uniform(0.9, 1.1)
        stats[chosen.id].start()
        heapq.heappush(pending, (now + ms / 1000, chosen.id, ms))
        counts[chosen.id] += 1
    return counts


@pytest.mark.parametrize("gap_s", [0.002, 0.02, 0.2])
def test_p2c_starves_the_slow_replica(gap_s: float) -> None:
    counts = simulate(P2C(), {"fast-1": 10, "fast-2": 10, "slow": 100}, 3000, gap_s)
    assert counts["slow"] / 3000 < 0.10
    assert min(counts["fast-1"], counts["fast-2"]) > 900  # and shares the fast ones


def test_round_robin_does_not_starve_it() -> None:
    counts = simulate(RoundRobin(), {"fast-1": 10, "fast-2": 10, "slow": 100}, 3000, 0.02)
    assert counts["slow"] == 1000  # the contrast that makes the P2C test meaningful


def test_an_untried_replica_takes_one_request_until_it_answers() -> None:
    rng = random.Random(2)
    old, new = ReplicaStats(10.0, 30.0), ReplicaStats(10.0, 30.0)
    old.start()
    old.finish(0.0, 5000.0, ok=True)  # even a very slow known replica ...
    p2c = P2C()
    for _ in range(200):
        pool = [old.candidate("old", 1.0, 0.0), new.candidate("new", 1.0, 0.0)]
        (old if p2c.pick(pool, rng).id == "old" else new).start()
    assert new.in_flight == 1  # ... wins every pick while the newcomer's first call is out
    new.finish(0.1, 50.0, ok=True)
    pool = [old.candidate("old", 1.0, 0.1), new.candidate("new", 1.0, 0.1)]
    assert p2c.pick(pool, rng).id == "new"
