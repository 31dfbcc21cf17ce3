"""The attempt context (routing/call.py) and what it records (routing/recorder.py), sans I/O.

One ``Call`` per attempt: every ``stats.start()`` on entry is matched by exactly one verdict
or one no-verdict settle on exit, and a half-open trial slot is never leaked.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

import pytest

from latcli.config.model import Agent
from latcli.core.breaker import Breaker, BreakerConfig, BreakerState, Trigger
from latcli.core.errors import ErrorKind
from latcli.core.stats import ReplicaStats
from latcli.routing.call import Call
from latcli.routing.recorder import HEDGE_MIN_SAMPLES, Recorder
from latcli.routing.relay import SinkFailed
from latcli.routing.replica import Replica
from latcli.transport.base import Timings
from latcli.transport.replies import Reply

OK = Reply(200, Timings(total=40.0), text="hi")
DOWN = Reply(None, Timings(total=3.0), ErrorKind.CONNECT, "refused")
LIMITED = Reply(429, Timings(total=2.0), ErrorKind.RATE_LIMITED, retry_after="7")


class Rig:
    """One replica whose breaker is half-open with one trial slot, a clock and a recorder."""

    def __init__(self) -> None:
        self.now = 100.0
        agent = Agent(id="a", type="t", url="http://127.0.0.1:9/", breaker=BreakerConfig())
        breaker = Breaker(agent.breaker, random.Random(0))
        self.replica = Replica(agent, ReplicaStats(10.0, 30.0), breaker)
        self.cooled: dict[str, float] = {}
        self.recorder = Recorder(
            {"a": self.replica}, self.cooled.__setitem__, lambda: self.now, lambda: 1000.0
        )

    def trial(self) -> Call:
        """A call holding the half-open breaker's only trial permit."""
        breaker = self.replica.breaker
        breaker.fire(self.now, Trigger.CONSECUTIVE_FAILURES)
        self.now += 3600.0  # past any open period: the next allow is the trial
        permit = breaker.allow(self.now)
        assert permit is not None and permit.trial
        return Call(self.recorder, self.replica, permit)

    def trial_slot_free(self) -> bool:
        return self.replica.breaker.admits(self.now)


async def _reply(reply: Reply) -> Reply:
    return reply


async def _raise(exc: Exception) -> Reply:
    raise exc


def test_an_answer_is_recorded_on_exit_as_the_verdict() -> None:
    rig = Rig()
    call = rig.trial()
    with call:
        assert rig.replica.stats.in_flight == 1
        assert asyncio.run(call.answer(_reply(OK))) is OK
        assert rig.replica.journal == []  # recorded on exit, not before
    assert rig.replica.stats.in_flight == 0
    assert rig.replica.breaker.state(rig.now) is BreakerState.CLOSED  # the trial's success
    assert [r.ok for r in rig.replica.journal] == [True]
    assert rig.recorder.latency["t"].values() == [40.0]


def test_what_the_agent_raises_is_its_failed_call() -> None:
    rig = Rig()
    with rig.trial() as call:
        reply = asyncio.run(call.answer(_raise(ValueError("hostile"))))
    assert reply.is_failure and call.reply is reply
    assert rig.replica.breaker.state(rig.now) is BreakerState.OPEN  # the trial failed
    assert [r.ok for r in rig.replica.journal] == [False]


def _sink_fails(call: Call) -> None:
    asyncio.run(call.answer(_raise(SinkFailed())))


def _cancelled(call: Call) -> None:
    raise asyncio.CancelledError


def _no_answer(call: Call) -> None:
    return None


@pytest.mark.parametrize("leave", [_sink_fails, _cancelled, _no_answer])
def test_without_an_answer_the_exit_frees_the_trial_with_no_verdict(
    leave: Callable[[Call], None],
) -> None:
    rig = Rig()
    call = rig.trial()
    assert not rig.trial_slot_free()
    with contextlib.suppress(SinkFailed, asyncio.CancelledError), call:
        leave(call)
    assert rig.replica.stats.in_flight == 0 and rig.replica.journal == []
    assert rig.replica.breaker.state(rig.now) is BreakerState.HALF_OPEN
    assert rig.trial_slot_free()  # released: the next trial may go


def test_a_rate_limited_answer_cools_the_replica_with_no_verdict() -> None:
    rig = Rig()
    with rig.trial() as call:
        asyncio.run(call.answer(_reply(LIMITED)))
    assert rig.trial_slot_free() and rig.replica.journal == []
    assert rig.replica.stats.in_flight == 0 and not rig.replica.stats.has_history
    assert rig.replica.cool_until == rig.now + 7.0
    assert rig.cooled == {rig.replica.key: 1007.0}  # epoch end, to save
    assert list(rig.recorder.still_cooling("t", rig.now)) == ["a"]
    assert list(rig.recorder.still_cooling("t", rig.now + 7.0)) == []  # over: forgotten


def test_a_canary_gives_a_verdict_without_an_ewma_sample() -> None:
    rig = Rig()
    permit = rig.replica.breaker.allow(rig.now)
    with Call(rig.recorder, rig.replica, permit, message=False, sample=False) as call:
        asyncio.run(call.answer(_reply(DOWN)))
    assert not rig.replica.stats.has_history and rig.replica.journal == []
    assert rig.replica.stats.success.failures(rig.now) == 1


def test_hedging_waits_for_enough_answers_then_takes_their_p95() -> None:
    rig = Rig()
    for i in range(HEDGE_MIN_SAMPLES - 1):
        rig.recorder.latency["t"].add(float(i + 1) * 10.0)
    assert rig.recorder.hedge_delay("t") is None
    rig.recorder.latency["t"].add(200.0)
    delay = rig.recorder.hedge_delay("t")
    assert delay is not None and 0.18 <= delay <= 0.2
    assert rig.recorder.hedge_delay("t", first_token=True) is None  # streams: their own window
