"""Router: a strategy, a breaker per replica and failover, over a Transport (DESIGN §4).

The decisions (EWMA, breakers, strategies, retry budget) live in the sans-I/O core; this module
owns the clock, the randomness and the awaiting. ``from latcli import Router``. Beside it:
:mod:`~latcli.routing.call` (one attempt, recorded on exit), :mod:`~latcli.routing.recorder`
(what answers teach), :mod:`~latcli.routing.sending` (one send's attempts and result),
:mod:`~latcli.routing.saving` (the learned state, saved off the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import NoReturn

from latcli.config.loading import load_inventory
from latcli.config.model import Agent, Inventory, RoutingConfig
from latcli.core.balance import Choice, Pool, choose
from latcli.core.breaker import Breaker, BreakerEvent, BreakerState, Permit
from latcli.core.budget import RetryBudget
from latcli.core.errors import ErrorKind, LatcliError
from latcli.core.ratelimit import COOLING_MAX_S
from latcli.core.stats import ReplicaStats
from latcli.core.strategies import Strategy, make_strategy
from latcli.routing.call import Call
from latcli.routing.hedged_stream import LegRun, hedged_stream
from latcli.routing.recorder import Recorder
from latcli.routing.relay import Relay, RelayEvent, SinkFailed
from latcli.routing.replica import Replica, ReplicaView
from latcli.routing.results import FanOut, RouteResult
from latcli.routing.saving import Saver
from latcli.routing.sending import Sending
from latcli.routing.state import NullStore, Store
from latcli.routing.state_sqlite import open_store
from latcli.transport.base import AsyncClosing, Transport
from latcli.transport.protocols import ProtocolClient
from latcli.transport.replies import Reply
from latcli.transport.requests import new_message_id
from latcli.transport.stream_reply import OnChunk, OnEvent

# Rate-limited answers and waits one send takes, per replica of the type, before it gives up
# (the timeout usually ends it first); bounds a send without a timeout.
RATE_LIMITED_TRIES = 2

EventSink = Callable[[str, BreakerEvent], None]
AdmitSink = Callable[[Choice[Replica], Permit | None], None]


class Router(AsyncClosing):
    """Routes messages to the best admissible replica of a type, with failover and hedging.

    ``clock`` (monotonic seconds), ``wall`` (epoch seconds) and ``rng`` are injectable so a
    simulation can drive the router exactly. Use as ``async with Router(...) as router``; leaving
    the block saves the learned state (unless ``state=None``) and closes the transport.
    ``on_admit`` sees every attempt as ``send`` admits it (its choice and permit).
    """

    def __init__(
        self,
        agents: Inventory | Sequence[Agent],
        *,
        strategy: str | None = None,
        retries: int | None = None,
        retry_budget: float | None = None,
        hedge: bool = False,
        transport: Transport | None = None,
        state: Store | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_event: EventSink | None = None,
        on_admit: AdmitSink | None = None,
    ) -> None:
        routing = agents.routing if isinstance(agents, Inventory) else RoutingConfig()
        members = agents.agents if isinstance(agents, Inventory) else tuple(agents)
        self.strategy_name = strategy or routing.strategy
        try:
            self._strategy: Strategy = make_strategy(self.strategy_name)
        except ValueError as exc:
            raise LatcliError(str(exc)) from None
        self.retries = routing.retries if retries is None else retries
        if self.retries < 0:
            raise LatcliError("retries must be 0 or more")
        ratio = routing.retry_budget if retry_budget is None else retry_budget
        self._budget = RetryBudget(ratio)
        self.hedge = hedge
        self._clock, self._wall = clock, wall
        self._rng = rng or random.Random()
        self._peek_rng = random.Random(0)  # pick()'s copy of _rng (seeding one costs ~10 µs)
        self._on_event, self._on_admit = on_event, on_admit
        self._own_transport = transport is None
        self._transport = transport or _default_transport()
        self.client = ProtocolClient(self._transport)
        self._open: dict[str, set[str]] = {}  # type -> ids whose breaker is not closed
        self._replicas = {a.id: self._new_replica(a) for a in members}
        self._by_type: dict[str, list[Replica]] = {}
        for replica in self._replicas.values():
            self._by_type.setdefault(replica.agent.type, []).append(replica)
        self._pools = {t: Pool(rs) for t, rs in self._by_type.items()}
        store = state if state is not None else NullStore()
        self._saver = Saver(store, list(self._replicas.values()), clock, wall)
        self._recorder = Recorder(self._replicas, self._saver.note_cooled, clock, wall)
        self._a2a_types = {
            t: any(r.agent.protocol == "a2a" for r in rs) for t, rs in self._by_type.items()
        }
        self._load_state()

    @classmethod
    def from_inventory(
        cls, path: str | None = None, *, state_path: str | None = None, **kwargs: object
    ) -> Router:
        """A router over ``agents.yaml`` (DESIGN §1 lookup) with state at the default place."""
        import os

        inv = load_inventory(path)
        store = open_store(None if state_path is None else Path(state_path), env=os.environ)
        return cls(inv, state=store, **kwargs)  # type: ignore[arg-type]

    # ---- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Save what was learned and close the transport if the router made it."""
        await self._saver.close()
        if self._own_transport:
            await self._transport.aclose()

    def save_state(self) -> None:
        """Merge this process's new observations into the state store (never raises).

        Synchronous: the caller waits for the SQLite transaction. On the loop, prefer
        :meth:`start_save`, which runs it in a worker thread.
        """
        self._saver.save()

    def start_save(self, limit: int | None = None) -> asyncio.Task[float] | None:
        """Save in a worker thread; the task's result is the seconds the flush took.

        None while the previous save runs, when there is nothing to save, or without a store.
        ``limit`` caps the replicas saved at once (see :meth:`latcli.routing.saving.Saver.start`).
        """
        return self._saver.start(limit)

    async def wait_saved(self) -> None:
        """Wait for the save :meth:`start_save` started, if one runs."""
        await self._saver.wait()

    def _load_state(self) -> None:
        now, wall = self._clock(), self._wall()
        store = self._saver.store
        for r in self._replicas.values():
            store.load_into(r.key, r.stats, r.breaker, now, wall)
            if r.breaker.state(now) is not BreakerState.CLOSED:  # loaded open: no event fired
                self._open.setdefault(r.agent.type, set()).add(r.agent.id)
        turns = self._saver.turns
        turns.update(store.load_turns(list(self._by_type)))
        cooled = store.load_cooling([r.key for r in self._replicas.values()], wall)
        for r in self._replicas.values():
            if r.key in cooled:  # another run was told to wait: this one waits the rest
                self._recorder.cool_until(r, now + min(cooled[r.key] - wall, COOLING_MAX_S))
        for type_, replicas in self._by_type.items():
            if type_ not in turns:  # a random start: runs without a stored turn rotate too
                ids = sorted(r.agent.id for r in replicas)
                turns[type_] = ids[self._rng.randrange(len(ids))]

    def _new_replica(self, agent: Agent) -> Replica:
        stats = ReplicaStats(agent.ewma.decay, agent.breaker.window)
        made: list[Replica] = []

        def emit(event: BreakerEvent) -> None:
            self._breaker_moved(made[0], event)

        replica = Replica(agent, stats, Breaker(agent.breaker, self._rng, emit))
        made.append(replica)
        return replica

    def _call(
        self, replica: Replica, permit: Permit | None, *, message: bool = True, sample: bool = True
    ) -> Call:
        """One attempt on ``replica``, recorded when its block exits (see :class:`Call`)."""
        return Call(self._recorder, replica, permit, message=message, sample=sample)

    def _breaker_moved(self, replica: Replica, event: BreakerEvent) -> None:
        """Track which replicas are open (for trials); forgive penalties on recovery."""
        opened = self._open.setdefault(replica.agent.type, set())
        if event.to_state is BreakerState.CLOSED:
            opened.discard(replica.agent.id)
            latest = replica.stats.latencies.values()
            if latest:  # the trial that just succeeded
                replica.stats.ewma.restart(event.at, latest[-1])
        else:
            opened.add(replica.agent.id)
        if self._on_event is not None:
            self._on_event(replica.agent.id, event)

    # ---- queries ---------------------------------------------------------------------------

    @property
    def types(self) -> list[str]:
        return list(self._by_type)

    @property
    def agents(self) -> list[Agent]:
        return [r.agent for r in self._replicas.values()]

    def replicas(self, type_: str) -> list[Replica]:
        """The replicas of ``type_``; an unknown type is a usage error naming the known ones."""
        found = self._by_type.get(type_)
        return self._unknown(type_) if found is None else found

    def _unknown(self, type_: str) -> NoReturn:
        known = ", ".join(self._by_type) or "none"
        raise LatcliError(f"unknown type {type_!r} (types: {known})")

    def replica(self, agent_id: str) -> Replica:
        return self._replicas[agent_id]

    def pick(self, type_: str) -> Agent | None:
        """The replica ``send`` would try first now; None when it would panic (all refuse).
        When every replica is cooling (rate-limited), the one ``send`` would wait for.

        A peek: the same :meth:`choice` ``send`` makes, with a copy of the rng, so nothing
        changes and the next ``send`` (at the same clock) tries exactly this replica.
        """
        self._peek_rng.setstate(self._rng.getstate())
        chosen = self.choice(type_, rng=self._peek_rng)
        return None if chosen is None or chosen.panic else chosen.member.agent

    def choice(
        self,
        type_: str,
        tried: Collection[str] = (),
        *,
        again: bool = True,
        now: float | None = None,
        rng: random.Random | None = None,
    ) -> Choice[Replica] | None:
        """The pure choice (:func:`latcli.core.balance.choose`) over ``type_``'s replicas.

        No permit is taken and nothing changes but ``rng`` (default: the router's own).
        """
        pool = self._pools.get(type_)
        now = self._clock() if now is None else now
        return choose(
            self._unknown(type_) if pool is None else pool,
            self._strategy,
            now,
            self._rng if rng is None else rng,
            turn=self._saver.turns.get(type_),
            tried=tried,
            unsettled=self._open.get(type_, ()),
            again=again,
            cooling=self._recorder.still_cooling(type_, now),
        )

    def cooling_s(self, agent_id: str, now: float | None = None) -> float | None:
        """Seconds left of ``agent_id``'s rate-limit cooldown; None when it is not cooling."""
        left = self._replicas[agent_id].cool_until - (self._clock() if now is None else now)
        return left if left > 0 else None

    def rotate_to(self, type_: str, agent_id: str) -> None:
        """Make ``agent_id`` the next turn of ``type_``'s rotation (round_robin's start).

        Without it a router continues the stored rotation, or starts at a random replica.
        """
        ids = sorted(r.agent.id for r in self.replicas(type_))
        if agent_id not in ids:
            raise LatcliError(f"{agent_id!r} is not a replica of type {type_!r}")
        self._saver.move_turn(type_, ids[ids.index(agent_id) - 1])  # the id picked last

    def view(self) -> list[ReplicaView]:
        now = self._clock()
        return [
            ReplicaView(
                r.agent,
                r.stats.snapshot(now),
                r.breaker.state(now),
                r.breaker.retry_in(now),
                self.cooling_s(r.agent.id, now),
            )
            for r in self._replicas.values()
        ]

    # ---- active health checks (watch, serve) ----------------------------------------------

    async def check(self, agent_id: str) -> Reply:
        """One health check of ``agent_id``, recorded like a call: EWMA, windows, breaker.

        A due open breaker takes the check as its half-open trial, so a watch re-closes a
        recovered replica without risking a user's message; an open breaker that is not due
        gets no verdict (the check still feeds the measurements).
        """
        replica = self._replicas[agent_id]
        permit = replica.breaker.allow(self._clock())
        with self._call(replica, permit, message=False) as call:
            return await call.answer(self.client.health(replica.agent))

    async def canary(
        self, agent: Agent, text: str, judge: Callable[[Reply], Reply] | None = None
    ) -> Reply:
        """One canary message to ``agent`` (streamed when it can), judged by ``judge`` and
        recorded like a health check for the breaker and success window, but never as an
        EWMA sample: a model's seconds of answer are not the replica's load (the health
        checks and real messages measure that). Only a closed breaker counts it: a half-open
        trial is the health check's, which a slow answer must not hold for seconds.
        ``agent`` may carry the canary's timeout."""
        replica = self._replicas[agent.id]
        now = self._clock()
        closed = replica.breaker.state(now) is BreakerState.CLOSED
        permit = replica.breaker.allow(now) if closed else None
        with self._call(replica, permit, message=False, sample=False) as call:
            reply = await call.answer(self.client.stream_message(agent, text), judge)
        if reply.error is ErrorKind.TIMEOUT and reply.task_id is not None:
            await self._cancel_quietly(agent, reply.task_id)
        return call.reply

    async def _cancel_quietly(self, agent: Agent, task_id: str) -> None:
        """Cancel a task given up on (a timed-out canary must not leave a model generating);
        best effort, within the health timeout: its outcome changes no verdict."""
        with contextlib.suppress(Exception):
            await self.client.cancel_task(agent, task_id, agent.health.timeout)

    async def stream(self, type_: str, text: str) -> tuple[str, Reply] | None:
        """One streamed message to the replica of ``type_`` the strategy chooses (its turn
        taken, its permit held), recorded like a call: EWMA, windows, breaker. No failover: a
        stream half read cannot be replayed. None when no replica may be tried (all refuse)."""
        now = self._clock()
        chosen = self.choice(type_, now=now)
        if chosen is None:
            return None
        permit = self._admit(type_, chosen, now)
        replica = chosen.member
        with self._call(replica, permit) as call:
            reply = await call.answer(self.client.stream_message(replica.agent, text))
        return replica.agent.id, reply

    # ---- sending ---------------------------------------------------------------------------

    async def send(
        self,
        type_: str,
        text: str,
        *,
        timeout: float | None = None,
        stream: bool = False,
        on_chunk: OnChunk | None = None,
        on_event: RelayEvent | None = None,
    ) -> RouteResult:
        """Route ``text`` to one replica of ``type_``, failing over up to ``retries`` times.

        ``timeout`` bounds the whole call, failovers included; the attempt under way when it
        expires is cancelled without a breaker verdict. ``stream``: streamed where the agent
        can (an A2A card with ``capabilities.streaming``), unary elsewhere; ``on_chunk`` gets
        the answer's text as it arrives, ``on_event`` the answering replica's id and the
        stream's reader after each A2A event (``reader.kind``, ``payload``, ``text``). Once a
        chunk or an event went out the answer is committed: a failure after it is not retried
        (its text would be mixed with another's). With hedging, only the winner's chunks are
        relayed, no events (two streams would interleave).
        """
        self.replicas(type_)  # an unknown type is the usage error naming the known ones
        started = self._clock()
        # A2A: a retry reuses the messageId (DESIGN §2); plain http agents take none.
        message_id = new_message_id() if self._a2a_types.get(type_, True) else ""
        relayed = on_chunk is not None or on_event is not None
        relay = Relay(on_chunk, on_event) if relayed and stream else None
        sending = Sending(type_, text, message_id, stream, relay, started, self.strategy_name)
        try:
            if timeout is None:
                return await self._send(sending, timeout)
            return await asyncio.wait_for(self._send(sending, timeout), timeout)
        except asyncio.TimeoutError:
            return sending.lost(self._clock(), f"no answer within {timeout:g}s")
        except SinkFailed as failed:
            assert failed.__cause__ is not None
            raise failed.__cause__ from None

    async def fan_out(
        self,
        types: Iterable[str],
        text: str,
        *,
        timeout: float | None = None,
        stream: bool = False,
        on_chunk: OnChunk | None = None,
    ) -> FanOut:
        """Ask several types at once (the seed's coordination); all answers are gathered.

        ``stream`` streams where an agent can (for its phases). ``on_chunk`` is given the
        answer's chunks only when one type is asked: several types' chunks would interleave,
        so their replies come back whole.
        """
        wanted = list(dict.fromkeys(types))
        for t in wanted:
            self.replicas(t)
        relay = on_chunk if len(wanted) == 1 else None
        started = self._clock()
        results = await asyncio.gather(
            *(self.send(t, text, timeout=timeout, stream=stream, on_chunk=relay) for t in wanted)
        )
        elapsed = (self._clock() - started) * 1000.0
        return FanOut(tuple(results), elapsed, self.strategy_name)

    async def _send(self, sending: Sending, timeout: float | None) -> RouteResult:
        type_ = sending.type
        self._budget.record_request(self._clock())
        tried: set[str] = set()
        failed = limited = 0  # failed attempts (<= retries); rate-limited answers and waits
        limit = RATE_LIMITED_TRIES * len(self._by_type[type_])
        while failed <= self.retries and limited <= limit:
            now = self._clock()
            chosen = self.choice(type_, tried, now=now)
            if chosen is None:
                break
            if chosen.wait:  # every replica cooling: wait for the first free, within the timeout
                if timeout is not None and now + chosen.wait > sending.started + timeout:
                    return sending.lost(self._clock(), _cooling_past(chosen, timeout))
                limited += 1
                # +1 ms: asyncio may wake a clock tick early, which would find it still cooling
                await asyncio.sleep(chosen.wait + 0.001)
                continue
            if sending.attempts and not self._budget.try_retry(now):
                return sending.lost(self._clock(), "retry budget exhausted")
            permit = self._admit(type_, chosen, now)
            tried.add(chosen.member.agent.id)
            hedging = self.hedge and not sending.attempts
            reply, winner = await self._first_answer(chosen, permit, sending, tried, hedging)
            if reply.ok:
                return sending.won(self._clock(), winner.agent.id, reply)
            if sending.committed:
                return sending.lost(self._clock(), "failed after its first chunk")
            if reply.error is ErrorKind.RATE_LIMITED:  # it cools; another replica, or a wait
                limited += 1
            elif not reply.is_failure:  # a 4xx other than 429: the request, not the agent
                break
            else:
                failed += 1
        limited_only = all(a.outcome == ErrorKind.RATE_LIMITED.value for a in sending.attempts)
        if sending.attempts and limited_only:
            return sending.lost(self._clock(), "rate limited: every attempt")
        reason = "every attempt failed" if sending.attempts else "no replica to try"
        return sending.lost(self._clock(), reason)

    def _admit(self, type_: str, chosen: Choice[Replica], now: float) -> Permit | None:
        """Take the permit ``chosen`` was made for (none in panic); a plain pick is the turn."""
        permit = None if chosen.panic else chosen.member.breaker.allow(now)
        # choose() asked breaker.admits(now), which promises this permit at the same instant
        assert chosen.panic or permit is not None, "a breaker refused what it admitted"
        if not (chosen.trial or chosen.again or chosen.panic):
            self._saver.move_turn(type_, chosen.member.agent.id)
        if self._on_admit is not None:
            self._on_admit(chosen, permit)
        return permit

    async def _first_answer(
        self,
        chosen: Choice[Replica],
        permit: Permit | None,
        sending: Sending,
        tried: set[str],
        hedging: bool,
    ) -> tuple[Reply, Replica]:
        """One attempt; with hedging, a second replica joins after the type's p95."""
        first, type_ = chosen.member, sending.type
        delay = self._recorder.hedge_delay(type_, sending.stream) if hedging else None
        if sending.stream and delay is not None:
            return await self._hedged_stream(chosen, permit, sending, tried, delay)
        if delay is None:
            # Awaited in place, not as a task: in_flight rises before any other send can
            # pick, so an untried replica really takes one request until its first answer.
            reply = await self._attempt(chosen, permit, sending, hedge=False)
            return reply, first
        primary = asyncio.ensure_future(self._attempt(chosen, permit, sending, hedge=False))
        try:
            done, _ = await asyncio.wait({primary}, timeout=delay)
        except asyncio.CancelledError:
            primary.cancel()
            raise
        if done:
            return primary.result(), first
        now = self._clock()
        second = self.choice(type_, tried, again=False, now=now)
        if second is None or second.panic or second.wait:  # nor onto one in panic or cooling
            return await primary, first
        other_permit = self._admit(type_, second, now)
        tried.add(second.member.agent.id)
        backup = asyncio.ensure_future(self._attempt(second, other_permit, sending, hedge=True))
        return await _race({primary: first, backup: second.member})

    async def _hedged_stream(
        self,
        chosen: Choice[Replica],
        permit: Permit | None,
        sending: Sending,
        tried: set[str],
        delay: float,
    ) -> tuple[Reply, Replica]:
        """A streamed send hedged before its first token only (issue 12): a second replica
        joins after the type's p95 time to first token, within the retry budget; the first to
        give answer text wins, the other stream is closed and its A2A task cancelled."""
        members = [chosen.member]

        def leg(picked: Choice[Replica], held: Permit | None, hedge: bool) -> LegRun:
            async def run(on_event: OnEvent, on_chunk: OnChunk) -> Reply:
                return await self._attempt(picked, held, sending, hedge, on_event, on_chunk)

            return run

        def hedge() -> LegRun | None:
            now = self._clock()
            second = self.choice(sending.type, tried, again=False, now=now)
            if second is None or second.panic or second.wait or not self._budget.try_retry(now):
                return None  # nor onto one in panic or cooling, nor past the retry budget
            held = self._admit(sending.type, second, now)
            tried.add(second.member.agent.id)
            members.append(second.member)
            return leg(second, held, True)

        async def cancel(index: int, task_id: str) -> Reply:
            return await self.client.cancel_task(members[index].agent, task_id)

        relay = sending.relay.write if sending.relay is not None else None
        hedged = await hedged_stream(
            leg(chosen, permit, False), hedge, time.monotonic() + delay, cancel, on_chunk=relay
        )
        return hedged.reply, members[hedged.leg]

    async def _attempt(
        self,
        chosen: Choice[Replica],
        permit: Permit | None,
        sending: Sending,
        hedge: bool,
        on_event: OnEvent | None = None,
        on_chunk: OnChunk | None = None,
    ) -> Reply:
        """Send once and record the verdict; cancellation releases the permit, no verdict.
        ``on_event``/``on_chunk``: a hedged stream's (the race relays the winner's text)."""
        replica = chosen.member
        with self._call(replica, permit) as call:
            ask = sending.ask(self.client, replica.agent, on_event, on_chunk)
            reply = await call.answer(ask)
        sending.note(replica.agent.id, reply, hedge=hedge, panic=chosen.panic)
        return reply


async def _race(tasks: dict[asyncio.Future[Reply], Replica]) -> tuple[Reply, Replica]:
    """The first successful reply; the loser is cancelled (no verdict). All fail: the last."""
    pending = set(tasks)
    last: tuple[Reply, Replica] | None = None
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                last = (task.result(), tasks[task])
                if last[0].ok:
                    return last
    finally:
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert last is not None
    return last


def _cooling_past(chosen: Choice[Replica], timeout: float) -> str:
    return (
        f"rate limited: every replica cooling, {chosen.member.agent.id} free in"
        f" {chosen.wait:.1f}s, past the {timeout:g}s timeout"
    )


def _default_transport() -> Transport:
    from latcli.transport.factory import make_transport

    return make_transport("auto", use="send")


__all__ = ["Router"]
