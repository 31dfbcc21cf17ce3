"""The one choice function (latcli.core.balance): its order of preference, its view, its purity."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latcli.config.inventory import BreakerConfig
from latcli.core.balance import Choice, MemberView, Pool, choose
from latcli.core.breaker import Breaker, BreakerState
from latcli.core.stats import ReplicaStats
from latcli.core.strategies import STRATEGIES, make_strategy

CFG = BreakerConfig(failures=1, open_for=10.0, open_max=60.0, half_open_probes=1)


@dataclass
class Member:
    id: str
    stats: ReplicaStats
    breaker: Breaker
    weight: float = 1.0
    cool_until: float = 0.0


def members(n: int, seed: int = 0) -> list[Member]:
    """``n`` members with a little history each (ids m0, m1, ...)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        stats = ReplicaStats(10.0, 30.0)
        for _ in range(rng.randrange(4)):
            stats.start()
            stats.finish(rng.uniform(0, 1), rng.uniform(1, 100), ok=rng.random() > 0.2)
        for _ in range(rng.randrange(3)):
            stats.start()
        out.append(Member(f"m{i}", stats, Breaker(CFG, random.Random(i)), rng.uniform(0.5, 2)))
    return out


def trip(m: Member, now: float) -> None:
    permit = m.breaker.allow(now)
    assert permit is not None
    m.breaker.record(now, permit, ok=False)
    assert m.breaker.state(now) is BreakerState.OPEN


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 30), data=st.data())
def test_the_view_is_the_members_without_the_skipped(n: int, data: st.DataObject) -> None:
    pool = members(n)
    skip = sorted(data.draw(st.sets(st.integers(0, n - 1), max_size=n)))
    view = MemberView(pool, skip, 1.0)
    want = [m.id for i, m in enumerate(pool) if i not in skip]
    assert len(view) == len(want)
    assert [s.id for s in view] == want
    assert [s.id for s in view[::-1]] == want[::-1]
    if want:
        assert view[-1].id == want[-1]
    with pytest.raises(IndexError):
        view[len(want)]


@pytest.mark.parametrize("name", list(STRATEGIES))
@pytest.mark.parametrize("seed", range(20))
def test_a_strategy_chooses_alike_from_the_lazy_view_and_from_candidates(
    name: str, seed: int
) -> None:
    pool, now = members(12, seed), 1.5
    view = MemberView(pool, [], now)
    built = [m.stats.candidate(m.id, m.weight, now) for m in pool]
    strategy = make_strategy(name)
    for turn in (None, "m3", "m9"):
        lazy = strategy.choose(view, random.Random(seed), turn)
        plain = strategy.choose(built, random.Random(seed), turn)
        assert lazy.id == plain.id
        assert (lazy.load, lazy.cost, lazy.success_rate) == (
            plain.load,
            plain.cost,
            plain.success_rate,
        )


def test_a_due_trial_comes_before_the_strategy() -> None:
    pool = members(5)
    trip(pool[3], 0.0)
    unsettled = {"m3"}
    early = choose(Pool(pool), make_strategy("p2c"), 1.0, random.Random(1), unsettled=unsettled)
    assert early is not None and early.member.id != "m3" and not early.trial  # still open
    due = pool[3].breaker.open_until
    assert due is not None
    for seed in range(20):
        got = choose(
            Pool(pool), make_strategy("p2c"), due, random.Random(seed), unsettled=unsettled
        )
        assert got == Choice(pool[3], trial=True)


def test_a_refusing_or_tried_replica_is_never_chosen_by_the_strategy() -> None:
    pool = members(6)
    for i in (0, 2):
        trip(pool[i], 0.0)
    for name in STRATEGIES:
        for seed in range(30):
            got = choose(
                Pool(pool),
                make_strategy(name),
                1.0,
                random.Random(seed),
                tried={"m1", "m5"},
                unsettled={"m0", "m2"},
            )
            assert got is not None and got.member.id in {"m3", "m4"} and got == Choice(got.member)


def test_again_only_when_nothing_else_admits_and_never_into_an_open_breaker() -> None:
    pool = members(2)
    trip(pool[1], 0.0)
    strategy, p = make_strategy("p2c"), Pool(pool)
    tried, unsettled = {"m0"}, {"m1"}
    got = choose(p, strategy, 1.0, random.Random(1), tried=tried, unsettled=unsettled)
    assert got == Choice(pool[0], again=True)  # m1 is open: m0 once more, not a panic
    assert choose(
        p, strategy, 1.0, random.Random(1), tried=tried, unsettled=unsettled, again=False
    ) == Choice(pool[1], panic=True)
    trip(pool[0], 0.5)  # now both open: the untried one in panic, the tried one never
    got = choose(p, strategy, 1.0, random.Random(1), tried=tried, unsettled={"m0", "m1"})
    assert got == Choice(pool[1], panic=True)
    assert (
        choose(p, strategy, 1.0, random.Random(1), tried={"m0", "m1"}, unsettled={"m0", "m1"})
        is None
    )


def test_panic_takes_the_open_period_that_ends_first() -> None:
    pool = members(3)
    for i, at in ((0, 0.3), (1, 0.1), (2, 0.2)):
        trip(pool[i], at)
    ends = {m.id: m.breaker.open_until for m in pool}
    soonest = min(ends, key=lambda k: ends[k] or 0.0)
    got = choose(Pool(pool), make_strategy("p2c"), 1.0, random.Random(1), unsettled=set(ends))
    assert got is not None and got.panic and got.member.id == soonest


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_choose_changes_nothing_but_the_rng(name: str) -> None:
    pool = members(8, seed=3)
    trip(pool[2], 0.0)
    due = pool[2].breaker.open_until
    assert due is not None
    before = [(m.stats.to_state(), m.breaker.to_state(), m.stats.in_flight) for m in pool]
    rng = random.Random(5)
    first = choose(Pool(pool), make_strategy(name), due + 0.5, rng, unsettled={"m2"}, turn="m4")
    assert [(m.stats.to_state(), m.breaker.to_state(), m.stats.in_flight) for m in pool] == before
    again = choose(
        Pool(pool), make_strategy(name), due + 0.5, random.Random(5), unsettled={"m2"}, turn="m4"
    )
    assert first == again


def test_round_robin_goes_on_after_the_turn() -> None:
    pool = Pool(members(4))
    rr = make_strategy("round_robin")
    order = []
    turn = None
    for _ in range(6):
        got = choose(pool, rr, 1.0, random.Random(0), turn=turn)
        assert got is not None
        order.append(got.member.id)
        turn = got.member.id
    assert order == ["m0", "m1", "m2", "m3", "m0", "m1"]
    skipped = choose(pool, rr, 1.0, random.Random(0), turn="m1", tried={"m2"})
    assert skipped is not None and skipped.member.id == "m3"


def test_a_half_open_replica_with_its_trial_out_refuses() -> None:
    pool = members(2)
    trip(pool[0], 0.0)
    due = pool[0].breaker.open_until
    assert due is not None
    assert pool[0].breaker.allow(due) is not None  # the trial is out, not yet answered
    for seed in range(20):
        got = choose(Pool(pool), make_strategy("p2c"), due, random.Random(seed), unsettled={"m0"})
        assert got == Choice(pool[1])
