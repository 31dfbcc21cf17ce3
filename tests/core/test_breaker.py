"""Breaker: every edge of the state machine, table-driven, plus invariants."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latcli.config.inventory import BreakerConfig
from latcli.core.breaker import (
    TRANSITIONS,
    Breaker,
    BreakerEvent,
    BreakerState,
    IllegalTransition,
    Permit,
    Trigger,
)

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

# trips on 3 in a row or ≥ 50 % of ≥ 4 calls in 10 s; open 1 s, 2 s, 4 s, 8 s (cap)
CFG = BreakerConfig(
    failures=3, failure_rate=0.5, window=10, min_calls=4, open_for=1, open_max=8, half_open_probes=2
)
RATE_ONLY = replace(CFG, failures=0)


class FixedJitter(random.Random):
    """``uniform(a, b)`` always returns ``a + frac × (b - a)``."""

    def __init__(self, frac: float = 0.0) -> None:
        super().__init__(0)
        self.frac = frac

    def uniform(self, a: float, b: float) -> float:
        return a + self.frac * (b - a)


@dataclass
class Run:
    breaker: Breaker
    events: list[BreakerEvent] = field(default_factory=list)
    held: list[Permit] = field(default_factory=list)
    now: float = 0.0


def run(cfg: BreakerConfig, script: str, jitter: float = 0.0) -> Run:
    """Drive a breaker by a script of ``TIME ACTION [ARG]`` steps separated by ``;``.

    Actions: ``S`` / ``F`` an admitted call that succeeds / fails; ``x`` a refused
    allow; ``trial`` / ``call`` an admitted trial / ordinary call, held;
    ``ok I`` / ``fail I`` / ``rel I`` record or release held permit I.
    """
    events: list[BreakerEvent] = []
    r = Run(Breaker(cfg, FixedJitter(jitter), events.append), events)
    for step in filter(None, (s.strip() for s in script.split(";"))):
        t, action, *arg = step.split()
        r.now = float(t)
        _step(r, action, int(arg[0]) if arg else -1)
    return r


def _step(r: Run, action: str, i: int) -> None:
    b, now = r.breaker, r.now
    if action in ("S", "F"):
        permit = b.allow(now)
        assert permit is not None and not permit.trial, f"refused at {now}"
        b.record(now, permit, action == "S")
    elif action == "x":
        assert b.allow(now) is None, f"admitted at {now}"
    elif action in ("trial", "call"):
        permit = b.allow(now)
        assert permit is not None and permit.trial == (action == "trial"), f"{action} at {now}"
        r.held.append(permit)
    elif action == "rel":
        b.release(r.held[i])
    else:
        b.record(now, r.held[i], {"ok": True, "fail": False}[action])


def moves(r: Run) -> list[tuple[str, str, str]]:
    return [(e.from_state.value, e.to_state.value, e.reason.value) for e in r.events]


TRIP = "0 F; 0.1 F; 0.2 F"  # opens at 0.2 until 1.2 (zero jitter)
TRIPPED = [("closed", "open", "consecutive_failures")]
PROBE = [("open", "half_open", "open_elapsed")]

# (name, config, script, state at the end, transitions, k)
EDGES = [
    ("consecutive failures trip", CFG, TRIP, OPEN, TRIPPED, 0),
    ("a success resets the run", replace(CFG, min_calls=99),
     "0 F; 0 F; 0 S; 0 F; 0 F", CLOSED, [], 0),
    ("failures=0 disables the count trip", replace(CFG, failures=0, min_calls=99),
     "0 F; 0 F; 0 F; 0 F; 0 F", CLOSED, [], 0),
    ("rate trips at min_calls", RATE_ONLY, "0 S; 0 F; 0 S; 0 F", OPEN,
     [("closed", "open", "failure_rate")], 0),
    ("rate is evaluated after a success too", RATE_ONLY, "0 F; 0 F; 0 S; 0 S", OPEN,
     [("closed", "open", "failure_rate")], 0),
    ("rate below min_calls does not trip", RATE_ONLY, "0 F; 0 F; 0 F", CLOSED, [], 0),
    ("rate below threshold does not trip", RATE_ONLY, "0 S; 0 S; 0 S; 0 F; 0 S", CLOSED, [], 0),
    ("min_calls=0 trips on the first failure", replace(RATE_ONLY, min_calls=0), "0 S; 0 F", OPEN,
     [("closed", "open", "failure_rate")], 0),
    ("calls leave the window", RATE_ONLY, "0 S; 0 S; 0 S; 0 F; 20 F; 20 F; 20 F", CLOSED, [], 0),
    ("open refuses before its time", CFG, f"{TRIP}; 0.5 x; 1.19 x", OPEN, TRIPPED, 0),
    ("open -> half_open lazily on allow", CFG, f"{TRIP}; 1.2 trial", HALF, TRIPPED + PROBE, 0),
    ("half_open admits exactly N then refuses", CFG, f"{TRIP}; 5 trial; 5 trial; 5 x; 6 x", HALF,
     TRIPPED + PROBE, 0),
    ("release frees a trial slot without verdict", CFG,
     f"{TRIP}; 5 trial; 5 trial; 5 rel 0; 5 trial; 5 x", HALF, TRIPPED + PROBE, 0),
    ("a trial success closes", CFG, f"{TRIP}; 5 trial; 5 trial; 6 ok 1; 6 S", CLOSED,
     [*TRIPPED, *PROBE, ("half_open", "closed", "trial_success")], 0),
    ("a trial failure reopens with k+1", CFG, f"{TRIP}; 5 trial; 6 fail 0; 6.5 x", OPEN,
     [*TRIPPED, *PROBE, ("half_open", "open", "trial_failure")], 1),
    ("trials of a finished half-open are ignored", CFG,
     f"{TRIP}; 5 trial; 5 trial; 6 ok 0; 6 fail 1; 6 S", CLOSED,
     [*TRIPPED, *PROBE, ("half_open", "closed", "trial_success")], 0),
    ("a late verdict from before the trip is ignored", CFG,
     "0 call; 0.1 F; 0.1 F; 0.1 F; 5 trial; 5 ok 0; 5 fail 0; 5 trial; 5 x", HALF,
     TRIPPED + PROBE, 0),
    ("flapping keeps doubling", CFG, f"{TRIP}; 2 trial; 2 ok 0; 3 F; 3 F; 3 F", OPEN,
     [*TRIPPED, *PROBE, ("half_open", "closed", "trial_success"), *TRIPPED], 1),
    ("k resets after open_max of closed operation", CFG,
     f"{TRIP}; 2 trial; 2 fail 0; 9 trial; 9 ok 1; 17 F; 17 F; 17 F", OPEN,
     [*TRIPPED, *PROBE, ("half_open", "open", "trial_failure"), *PROBE,
      ("half_open", "closed", "trial_success"), *TRIPPED], 0),
]  # fmt: skip


@pytest.mark.parametrize(
    ("cfg", "script", "state", "transitions", "k"),
    [case[1:] for case in EDGES],
    ids=[case[0] for case in EDGES],
)
def test_edges(
    cfg: BreakerConfig,
    script: str,
    state: BreakerState,
    transitions: list[tuple[str, str, str]],
    k: int,
) -> None:
    r = run(cfg, script)
    assert r.breaker.state(r.now) is state
    assert moves(r) == transitions
    assert r.breaker.k == k


def test_open_to_half_open_is_lazy() -> None:
    r = run(CFG, TRIP)
    assert r.breaker.state(5.0) is HALF  # what allow would see ...
    assert moves(r) == TRIPPED  # ... but nothing moved yet
    assert r.breaker.retry_in(1.0) == pytest.approx(0.2)
    assert r.breaker.retry_in(5.0) == 0.0


@pytest.mark.parametrize(
    ("failures", "expected_periods"),
    [(1, [2.0]), (2, [2.0, 4.0]), (4, [2.0, 4.0, 8.0, 8.0]), (5, [2.0, 4.0, 8.0, 8.0, 8.0])],
)
def test_reopen_doubles_and_caps(failures: int, expected_periods: list[float]) -> None:
    r = run(CFG, TRIP)
    periods = []
    for _ in range(failures):
        t = r.breaker.open_until
        assert t is not None
        r.now = t
        _step(r, "trial", -1)
        _step(r, "fail", -1)
        until = r.breaker.open_until
        assert until is not None
        periods.append(until - t)
    assert periods == pytest.approx(expected_periods)
    assert r.breaker.k == failures


def test_events_carry_time_and_open_until() -> None:
    r = run(CFG, TRIP, jitter=1.0)
    (event,) = r.events
    assert (event.at, event.from_state, event.to_state) == (0.2, CLOSED, OPEN)
    assert event.reason is Trigger.CONSECUTIVE_FAILURES
    assert event.open_until == r.breaker.open_until == pytest.approx(1.7)  # 1 s × 1.5


def test_closed_and_half_open_report_no_open_until() -> None:
    r = run(CFG, f"{TRIP}; 5 trial")
    assert r.breaker.open_until is None and r.breaker.retry_in(5) is None
    assert run(CFG, "").breaker.retry_in(0) is None


def _in_state(state: BreakerState, events: list[BreakerEvent] | None = None) -> Breaker:
    b = Breaker(CFG, FixedJitter(), None if events is None else events.append)
    b.from_state(
        {"state": state.value, "k": 0, "open_until": 1.0, "closed_at": None, "consecutive": 0,
         "window": {"slots": []}},
        now_then=0.0,
        now=0.0,
    )  # fmt: skip
    return b


ILLEGAL = [(s, t) for s in BreakerState for t in Trigger if (s, t) not in TRANSITIONS]


@pytest.mark.parametrize(("state", "trigger"), ILLEGAL, ids=[f"{s}-{t}" for s, t in ILLEGAL])
def test_every_illegal_transition_raises(state: BreakerState, trigger: Trigger) -> None:
    b = _in_state(state)
    with pytest.raises(IllegalTransition):
        b.fire(0.0, trigger)
    assert b.state(0.0) is state


@pytest.mark.parametrize(("edge", "to"), list(TRANSITIONS.items()), ids=str)
def test_every_legal_transition_emits_one_event(
    edge: tuple[BreakerState, Trigger], to: BreakerState
) -> None:
    events: list[BreakerEvent] = []
    b = _in_state(edge[0], events)
    assert b.fire(0.5, edge[1]) is to
    assert events == [BreakerEvent(0.5, edge[0], to, edge[1], b.open_until)]


def test_the_table_is_complete_and_reachable() -> None:
    assert {s for s, _ in TRANSITIONS} | set(TRANSITIONS.values()) == set(BreakerState)
    assert len(ILLEGAL) == len(BreakerState) * len(Trigger) - len(TRANSITIONS)


def test_persistence_round_trip_shifts_deadlines() -> None:
    r = run(CFG, "0 S; 0.1 F; 0.2 F; 0.2 F")  # open from 0.2 until 1.2
    saved = r.breaker.to_state()
    b = Breaker(CFG, FixedJitter())
    b.from_state(saved, now_then=0.7, now=100.7)  # 0.5 s left of the open period
    assert b.state(100.7) is OPEN
    assert b.retry_in(100.7) == pytest.approx(r.breaker.retry_in(0.7))
    assert b.to_state()["consecutive"] == saved["consecutive"]
    assert b.allow(101.1) is None and b.allow(101.3) is not None


@pytest.mark.parametrize(
    "bad",
    [{}, {"state": "ajar"}, {"state": "open", "k": 0, "consecutive": 0, "window": {"slots": []}},
     {"state": "closed", "k": "0", "consecutive": 0, "window": {"slots": []}}],
)  # fmt: skip
def test_bad_state_raises_value_error(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Breaker(CFG, FixedJitter()).from_state(bad, 0.0, 0.0)


# -- properties ---------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["allow", "ok", "fail", "release"]),
        st.floats(0.0, 3.0),
        st.integers(0, 50),
    ),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(ops=OPS, probes=st.integers(1, 3), seed=st.integers(0, 2**32))
def test_half_open_never_admits_more_than_n(
    ops: list[tuple[str, float, int]], probes: int, seed: int
) -> None:
    outstanding: set[Permit] = set()

    def on_event(e: BreakerEvent) -> None:
        if e.to_state is HALF:
            outstanding.clear()  # earlier trials are stale from here on

    cfg = replace(CFG, half_open_probes=probes, failures=2, min_calls=2)
    b, now, held = Breaker(cfg, random.Random(seed), on_event), 0.0, []
    for op, dt, i in ops:
        now += dt
        if op == "allow":
            permit = b.allow(now)
            if permit is not None:
                held.append(permit)
                if permit.trial:
                    outstanding.add(permit)
        elif held:
            permit = held.pop(i % len(held))
            outstanding.discard(permit)
            if op == "release":
                b.release(permit)
            else:
                b.record(now, permit, op == "ok")
        assert len(outstanding) <= probes


@settings(max_examples=200, deadline=None)
@given(ops=OPS, seed=st.integers(0, 2**32))
def test_no_admission_while_open(ops: list[tuple[str, float, int]], seed: int) -> None:
    b, now, held = Breaker(replace(CFG, failures=1), random.Random(seed)), 0.0, []
    for op, dt, i in ops:
        now += dt
        until = b.open_until
        if op == "allow":
            permit = b.allow(now)
            if until is not None and now < until:
                assert permit is None
            if permit is not None:
                held.append(permit)
        elif held:
            b.record(now, held.pop(i % len(held)), op == "ok")


@given(k=st.integers(0, 200), seed=st.integers(0, 2**32), open_for=st.floats(0.001, 100))
def test_jitter_stays_within_half_of_base(k: int, seed: int, open_for: float) -> None:
    cfg = replace(CFG, failures=1, open_for=open_for, open_max=max(open_for, 60.0))
    b = Breaker(cfg, random.Random(seed))
    b.from_state(
        {"state": "half_open", "k": k, "open_until": None, "closed_at": None, "consecutive": 0,
         "window": {"slots": []}}, 0.0, 0.0,
    )  # fmt: skip
    b.fire(10.0, Trigger.TRIAL_FAILURE)
    base = min(open_for * 2.0 ** min(k + 1, 64), cfg.open_max)
    until = b.open_until
    assert until is not None
    assert base <= until - 10.0 <= 1.5 * base + 1e-9


@settings(max_examples=200, deadline=None)
@given(ops=OPS, probes=st.integers(1, 3), seed=st.integers(0, 2**32))
def test_admits_foretells_allow_and_changes_nothing(
    ops: list[tuple[str, float, int]], probes: int, seed: int
) -> None:
    cfg = replace(CFG, half_open_probes=probes, failures=2, min_calls=2)
    b, now, held = Breaker(cfg, random.Random(seed)), 0.0, []
    for op, dt, i in ops:
        now += dt
        if op == "allow":
            before = b.to_state()
            foretold = b.admits(now)
            assert b.to_state() == before and b.admits(now) == foretold  # a pure peek
            permit = b.allow(now)
            assert (permit is not None) == foretold, (op, now, before)
            if permit is not None:
                held.append(permit)
        elif held:
            permit = held.pop(i % len(held))
            if op == "release":
                b.release(permit)
            else:
                b.record(now, permit, op == "ok")
