"""Router: a strategy, a breaker per replica and failover, over a Transport (DESIGN §4).

The decisions (EWMA, breakers, strategies, retry budget) live in the sans-I/O core; this module
owns the clock, the randomness and the awaiting. ``from latcli import Router``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from latcli.config.loading import load_inventory
from latcli.config.model import Agent, Inventory, RoutingConfig
from latcli.core.balance import Choice, Pool, choose
from latcli.core.breaker import Breaker, BreakerEvent, BreakerState, Permit
from latcli.core.budget import RetryBudget
from latcli.core.errors import ErrorKind, LatcliError
from latcli.core.ratelimit import COOLING_DEFAULT_S, COOLING_MAX_S, cooldown
from latcli.core.redact import redact_url
from latcli.core.stats import LatencyWindow, ReplicaStats, StatsSnapshot
from latcli.core.strategies import Strategy, make_strategy
from latcli.routing.hedged_stream import LegRun, hedged_stream
from latcli.routing.state import CallRecord, FlushEntry, NullStore, Store, open_store
from latcli.transport.a2a.stream import StreamPhases, StreamReader
from latcli.transport.base import AsyncClosing, Transport
from latcli.transport.guard import unexpected_reply
from latcli.transport.protocols import OnChunk, OnEvent, ProtocolClient, Reply, new_message_id

HEDGE_MIN_SAMPLES = 20  # no hedging until the type's p95 rests on this many answers
# Rate-limited answers and waits one send takes, per replica of the type, before it gives up
# (the timeout usually ends it first); bounds a send without a timeout.
RATE_LIMITED_TRIES = 2


@dataclass(frozen=True)
class Attempt:
    """One try on one replica. ``outcome`` is ``"ok"`` or an error kind's value."""

    agent: str
    outcome: str
    status: int | None
    latency_ms: float
    hedge: bool = False
    panic: bool = False
    message: str | None = None  # the reply's error text ("model overloaded"); agent text


@dataclass(frozen=True)
class RouteResult:
    """The answer for one type: the winning agent and reply, or every failed attempt.

    ``state`` (A2A task state, 0.3 spelling) and ``stream`` (phases of a streamed answer) are
    the winning reply's, or the last attempt's when none won.
    """

    type: str
    ok: bool
    agent: str | None
    reply: str | None
    latency_ms: float
    attempts: tuple[Attempt, ...]
    strategy: str
    error: str | None = None
    state: str | None = None
    stream: StreamPhases | None = None

    @property
    def failovers(self) -> int:
        return sum(1 for a in self.attempts if not a.hedge) - 1 if self.attempts else 0


@dataclass(frozen=True)
class FanOut:
    """Several types asked at once: the coordination latency is the slowest answer's."""

    results: tuple[RouteResult, ...]
    latency_ms: float
    strategy: str

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


@dataclass(frozen=True)
class ReplicaView:
    """One replica as watch and ``GET /agents`` show it."""

    agent: Agent
    stats: StatsSnapshot
    breaker: BreakerState
    retry_in: float | None
    cooling_s: float | None = None  # seconds left of a rate limit's cooldown; None: not cooling


@dataclass
class Replica:
    """The router's live record of one agent: measurements, breaker, unsaved observations."""

    agent: Agent
    stats: ReplicaStats
    breaker: Breaker
    journal: list[CallRecord] = field(default_factory=list)
    cool_until: float = 0.0  # monotonic: rate-limited, set aside until then (latcli.core.ratelimit)

    @property
    def id(self) -> str:
        return self.agent.id

    @property
    def weight(self) -> float:
        return self.agent.weight

    @property
    def key(self) -> str:
        """State key: the id and the URL (password masked: the file must not hold it), so a
        re-pointed id starts afresh."""
        return f"{self.agent.id}@{redact_url(self.agent.url)}"


EventSink = Callable[[str, BreakerEvent], None]
# A streamed send's relay of A2A events: the answering replica's id, the stream's reader; an
# awaitable it returns (its write) is awaited before the stream's next event is read.
RelayEvent = Callable[[str, StreamReader], Awaitable[None] | None]
AdmitSink = Callable[[Choice[Replica], Permit | None], None]


@dataclass
class _Unsaved:
    """What one save takes: replicas' journals, the types whose turn moved, new cooldowns."""

    journals: list[tuple[Replica, list[CallRecord]]]
    turns: dict[str, str]
    cooled: dict[str, float] = field(default_factory=dict)  # state key -> epoch end

    def __bool__(self) -> bool:
        return bool(self.journals or self.turns or self.cooled)


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
        self._store: Store = state if state is not None else NullStore()
        self._flush_lock = threading.Lock()  # one flush (or close) of the store at a time
        self._saving: asyncio.Task[float] | None = None
        self._open: dict[str, set[str]] = {}  # type -> ids whose breaker is not closed
        self._cooling: dict[str, set[str]] = {}  # type -> ids rate-limited (maybe expired)
        self._cooled: dict[str, float] = {}  # state key -> epoch end: cooldowns to save
        self._replicas = {a.id: self._new_replica(a) for a in members}
        self._order = list(self._replicas.values())
        self._save_from = 0  # where the next partial save (start_save's limit) starts
        self._by_type: dict[str, list[Replica]] = {}
        for replica in self._replicas.values():
            self._by_type.setdefault(replica.agent.type, []).append(replica)
        self._pools = {t: Pool(rs) for t, rs in self._by_type.items()}
        self._turns: dict[str, str] = {}  # type -> id the strategy picked last (round_robin)
        self._moved: set[str] = set()  # types whose turn moved since the last save
        self._type_latency = {t: LatencyWindow(256) for t in self._by_type}
        # A streamed send hedges on the type's time to first token (after it, it is committed).
        self._type_first_token = {t: LatencyWindow(256) for t in self._by_type}
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
        await self.wait_saved()
        self.save_state()
        with self._flush_lock:
            self._store.close()
        if self._own_transport:
            await self._transport.aclose()

    def save_state(self) -> None:
        """Merge this process's new observations into the state store (never raises).

        Synchronous: the caller waits for the SQLite transaction. On the loop, prefer
        :meth:`start_save`, which runs it in a worker thread.
        """
        taken = self._take_unsaved()
        if taken and not self._flush(taken, self._clock(), self._wall()):
            self._give_back(taken)

    def start_save(self, limit: int | None = None) -> asyncio.Task[float] | None:
        """Save in a worker thread; the task's result is the seconds the flush took.

        Taking the journals is quick and happens now, on the loop (calls recorded after
        it go to the next save); the slow merge runs off the loop. One save at a time:
        None while the previous one runs, when there is nothing to save, or without a
        store (``--no-state``: the journals are just dropped, at once). ``limit`` caps the
        replicas saved at once, taken in turn: a short flush holds the GIL only briefly.
        """
        if self._saving is not None and not self._saving.done():
            return None
        if isinstance(self._store, NullStore):  # nothing to wait for: no thread
            self.save_state()
            return None
        taken = self._take_unsaved(limit)
        if not taken:
            return None
        self._saving = asyncio.create_task(self._save_off_loop(taken))
        return self._saving

    async def wait_saved(self) -> None:
        """Wait for the save :meth:`start_save` started, if one runs."""
        if self._saving is not None:
            await asyncio.wait({self._saving})  # never raises, never cancels the save
            if not self._saving.cancelled():
                self._saving.exception()  # retrieved (a flush does not raise)
            self._saving = None

    async def _save_off_loop(self, taken: _Unsaved) -> float:
        now, wall = self._clock(), self._wall()

        def timed() -> tuple[bool, float]:  # the flush's own time, not the loop's delays
            started = time.perf_counter()
            ok = self._flush(taken, now, wall)
            return ok, time.perf_counter() - started

        flushing = asyncio.get_running_loop().run_in_executor(None, timed)

        def settle(done: asyncio.Future[tuple[bool, float]]) -> None:
            if done.cancelled() or done.exception() is not None or not done.result()[0]:
                self._give_back(taken)

        try:
            ok, took = await asyncio.shield(flushing)
        except asyncio.CancelledError:
            flushing.add_done_callback(settle)  # the thread goes on; settle when it ends
            raise
        if not ok:
            self._give_back(taken)
        return took

    def _take_unsaved(self, limit: int | None = None) -> _Unsaved:
        """The moved turns, and non-empty journals each replaced by a fresh list (no I/O).

        All journals, or at most ``limit``, going round from where the previous call stopped.
        """
        turns = {t: self._turns[t] for t in self._moved}
        self._moved.clear()
        cooled, self._cooled = self._cooled, {}
        return _Unsaved(self._take_journals(limit), turns, cooled)

    def _give_back(self, taken: _Unsaved) -> None:
        """Unsaved observations go back in front of those recorded since; turns are retaken."""
        for replica, journal in taken.journals:
            replica.journal[:0] = journal
        self._moved.update(taken.turns)  # the current turn, which may have moved on, is saved
        for key, until in taken.cooled.items():
            self._cooled[key] = max(until, self._cooled.get(key, until))

    def _take_journals(self, limit: int | None) -> list[tuple[Replica, list[CallRecord]]]:
        order = self._order
        taken = []
        for step in range(len(order)):
            i = (self._save_from + step) % len(order)
            r = order[i]
            if r.journal:
                taken.append((r, r.journal))
                r.journal = []
                if limit is not None and len(taken) >= limit:
                    self._save_from = i + 1
                    break
        return taken

    def _flush(self, taken: _Unsaved, now: float, wall: float) -> bool:
        """Merge ``taken`` into the store, from any thread, one flush at a time.

        False: other runs held the lock too long; the caller gives the journals back.
        """
        entries = [
            FlushEntry(r.key, r.agent.ewma.decay, r.agent.breaker.window, r.agent.breaker, j)
            for r, j in taken.journals
        ]
        with self._flush_lock:
            return self._store.flush(entries, now, wall, taken.turns, taken.cooled)

    def _load_state(self) -> None:
        now, wall = self._clock(), self._wall()
        for r in self._replicas.values():
            self._store.load_into(r.key, r.stats, r.breaker, now, wall)
            if r.breaker.state(now) is not BreakerState.CLOSED:  # loaded open: no event fired
                self._open.setdefault(r.agent.type, set()).add(r.agent.id)
        self._turns = self._store.load_turns(list(self._by_type))
        cooled = self._store.load_cooling([r.key for r in self._replicas.values()], wall)
        for r in self._replicas.values():
            if r.key in cooled:  # another run was told to wait: this one waits the rest
                r.cool_until = now + min(cooled[r.key] - wall, COOLING_MAX_S)
                self._cooling.setdefault(r.agent.type, set()).add(r.agent.id)
        for type_, replicas in self._by_type.items():
            if type_ not in self._turns:  # a random start: runs without a stored turn rotate too
                ids = sorted(r.agent.id for r in replicas)
                self._turns[type_] = ids[self._rng.randrange(len(ids))]

    def _new_replica(self, agent: Agent) -> Replica:
        stats = ReplicaStats(agent.ewma.decay, agent.breaker.window)
        made: list[Replica] = []

        def emit(event: BreakerEvent) -> None:
            self._breaker_moved(made[0], event)

        replica = Replica(agent, stats, Breaker(agent.breaker, self._rng, emit))
        made.append(replica)
        return replica

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
            turn=self._turns.get(type_),
            tried=tried,
            unsettled=self._open.get(type_, ()),
            again=again,
            cooling=self._still_cooling(type_, now),
        )

    def _still_cooling(self, type_: str, now: float) -> Collection[str]:
        """``type_``'s rate-limited ids, forgetting those whose cooldown is over."""
        cooling = self._cooling.get(type_)
        if not cooling:
            return ()
        for agent_id in [i for i in cooling if self._replicas[i].cool_until <= now]:
            cooling.discard(agent_id)
        return cooling

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
        self._turns[type_] = ids[ids.index(agent_id) - 1]  # the turn is the id picked last
        self._moved.add(type_)

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
        with _Call(self, replica, replica.breaker.allow(self._clock()), message=False) as call:
            begun = self._clock()
            try:
                reply = await self.client.health(replica.agent)
            except Exception as exc:  # one agent's hostile answer or a bug below: its failed check
                reply = unexpected_reply(exc, agent_id, (self._clock() - begun) * 1000.0)
            call.done(reply)
        return reply

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
        with _Call(self, replica, permit, message=False, sample=False) as call:
            begun = self._clock()
            try:
                reply = await self.client.stream_message(agent, text)
            except Exception as exc:  # one agent's hostile answer or a bug below: its failed call
                reply = unexpected_reply(exc, agent.id, (self._clock() - begun) * 1000.0)
            call.done(reply if judge is None else judge(reply))
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
        with _Call(self, replica, permit) as call:
            begun = self._clock()
            try:
                reply = await self.client.stream_message(replica.agent, text)
            except Exception as exc:  # one agent's hostile answer or a bug below: its failed call
                reply = unexpected_reply(exc, replica.agent.id, (self._clock() - begun) * 1000.0)
            call.done(reply)
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
        relay = _Relay(on_chunk, on_event) if relayed and stream else None
        sending = _Sending(text, message_id, stream, relay)
        try:
            if timeout is None:
                return await self._send(type_, sending, started, timeout)
            return await asyncio.wait_for(self._send(type_, sending, started, timeout), timeout)
        except asyncio.TimeoutError:
            return self._failed(type_, sending, started, f"no answer within {timeout:g}s")
        except _SinkFailed as failed:
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

    async def _send(
        self, type_: str, sending: _Sending, started: float, timeout: float | None
    ) -> RouteResult:
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
                if timeout is not None and now + chosen.wait > started + timeout:
                    return self._failed(type_, sending, started, _cooling_past(chosen, timeout))
                limited += 1
                # +1 ms: asyncio may wake a clock tick early, which would find it still cooling
                await asyncio.sleep(chosen.wait + 0.001)
                continue
            if sending.attempts and not self._budget.try_retry(now):
                return self._failed(type_, sending, started, "retry budget exhausted")
            permit = self._admit(type_, chosen, now)
            tried.add(chosen.member.agent.id)
            hedging = self.hedge and not sending.attempts
            reply, winner = await self._first_answer(type_, chosen, permit, sending, tried, hedging)
            if reply.ok:
                return self._succeeded(type_, winner, reply, sending.attempts, started)
            if sending.relay is not None and sending.relay.wrote:
                return self._failed(type_, sending, started, "failed after its first chunk")
            if reply.error is ErrorKind.RATE_LIMITED:  # it cools; another replica, or a wait
                limited += 1
            elif not reply.is_failure:  # a 4xx other than 429: the request, not the agent
                break
            else:
                failed += 1
        limited_only = all(a.outcome == ErrorKind.RATE_LIMITED.value for a in sending.attempts)
        if sending.attempts and limited_only:
            return self._failed(type_, sending, started, "rate limited: every attempt")
        reason = "every attempt failed" if sending.attempts else "no replica to try"
        return self._failed(type_, sending, started, reason)

    def _admit(self, type_: str, chosen: Choice[Replica], now: float) -> Permit | None:
        """Take the permit ``chosen`` was made for (none in panic); a plain pick is the turn."""
        permit = None if chosen.panic else chosen.member.breaker.allow(now)
        # choose() asked breaker.admits(now), which promises this permit at the same instant
        assert chosen.panic or permit is not None, "a breaker refused what it admitted"
        if not (chosen.trial or chosen.again or chosen.panic):
            self._turns[type_] = chosen.member.agent.id
            self._moved.add(type_)
        if self._on_admit is not None:
            self._on_admit(chosen, permit)
        return permit

    async def _first_answer(
        self,
        type_: str,
        chosen: Choice[Replica],
        permit: Permit | None,
        sending: _Sending,
        tried: set[str],
        hedging: bool,
    ) -> tuple[Reply, Replica]:
        """One attempt; with hedging, a second replica joins after the type's p95."""
        first = chosen.member
        if sending.stream:
            delay = self._hedge_delay(type_, self._type_first_token) if hedging else None
            if delay is not None:
                return await self._hedged_stream(type_, chosen, permit, sending, tried, delay)
            reply = await self._attempt(chosen, permit, sending, hedge=False)
            return reply, first
        delay = self._hedge_delay(type_) if hedging else None
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
        type_: str,
        chosen: Choice[Replica],
        permit: Permit | None,
        sending: _Sending,
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
            second = self.choice(type_, tried, again=False, now=now)
            if second is None or second.panic or second.wait or not self._budget.try_retry(now):
                return None  # nor onto one in panic or cooling, nor past the retry budget
            held = self._admit(type_, second, now)
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

    def _hedge_delay(
        self, type_: str, windows: dict[str, LatencyWindow] | None = None
    ) -> float | None:
        window = (windows or self._type_latency)[type_]
        if len(window.values()) < HEDGE_MIN_SAMPLES:
            return None
        p95 = window.percentile(95)
        return None if p95 is None else p95 / 1000.0

    async def _attempt(
        self,
        chosen: Choice[Replica],
        permit: Permit | None,
        sending: _Sending,
        hedge: bool,
        on_event: OnEvent | None = None,
        on_chunk: OnChunk | None = None,
    ) -> Reply:
        """Send once and record the verdict; cancellation releases the permit, no verdict.
        ``on_event``/``on_chunk``: a hedged stream's (the race relays the winner's text)."""
        replica = chosen.member
        with _Call(self, replica, permit) as call:
            begun = self._clock()
            try:
                reply = await self._ask(replica.agent, sending, on_event, on_chunk)
            except _SinkFailed:
                raise  # the caller's failure: no verdict on the agent (the _Call settles it)
            except Exception as exc:  # one agent's hostile answer or a bug below: its failed call
                reply = unexpected_reply(exc, replica.agent.id, (self._clock() - begun) * 1000.0)
            call.done(reply)
        outcome = "ok" if reply.ok else (reply.error or ErrorKind.BAD_RESPONSE).value
        sending.attempts.append(
            Attempt(
                replica.agent.id,
                outcome,
                reply.status,
                reply.latency_ms,
                hedge,
                chosen.panic,
                None if reply.ok else reply.message,
            )
        )
        sending.last = reply
        return reply

    async def _ask(
        self,
        agent: Agent,
        sending: _Sending,
        on_event: OnEvent | None = None,
        on_chunk: OnChunk | None = None,
    ) -> Reply:
        if not sending.stream:
            return await self.client.send_message(agent, sending.text, sending.message_id)
        if on_event is None and sending.relay is not None:
            on_chunk, on_event = sending.relay.write, sending.relay.events_of(agent.id)
        return await self.client.stream_message(
            agent, sending.text, sending.message_id, on_chunk, on_event
        )

    def _record(
        self,
        replica: Replica,
        permit: Permit | None,
        reply: Reply,
        message: bool = True,
        sample: bool = True,
    ) -> None:
        now = self._clock()
        if reply.error is ErrorKind.RATE_LIMITED:  # set aside; no verdict, no EWMA sample
            self._cool(replica, reply, now)
            replica.stats.cancel()
            if permit is not None:
                replica.breaker.release(permit)
            return
        healthy = not reply.is_failure
        if not sample:  # a canary: the breaker's verdict only (not journaled: this run's)
            replica.stats.settle(now, healthy)
            if permit is not None:
                replica.breaker.record(now, permit, healthy)
            return
        # A failed call costs the EWMA as much as a timeout: a replica that fails *fast*
        # must not look fast to p2c (the breaker alone would let it take the next calls).
        penalty = None if healthy else max(reply.latency_ms, replica.agent.timeout * 1000.0)
        if healthy and message:
            penalty = ewma_sample(replica.agent, reply)
        replica.stats.finish(now, reply.latency_ms, healthy, cost_ms=penalty)
        if permit is not None:
            replica.breaker.record(now, permit, healthy)
        if reply.ok and message:  # hedging waits for the p95 of messages, not health checks
            self._type_latency[replica.agent.type].add(reply.latency_ms)
            first = reply.stream.first_artifact_ms if reply.stream is not None else None
            if first is not None:
                self._type_first_token[replica.agent.type].add(first)
        replica.journal.append(CallRecord(self._wall(), reply.latency_ms, healthy, penalty))

    def _cool(self, replica: Replica, reply: Reply, now: float) -> None:
        """Set ``replica`` aside for its answer's Retry-After (capped; 429 without: a default)."""
        wall = self._wall()
        seconds = cooldown(reply.status, reply.retry_after, wall)
        seconds = COOLING_DEFAULT_S if seconds is None else seconds
        if now + seconds > replica.cool_until:
            replica.cool_until = now + seconds
            self._cooling.setdefault(replica.agent.type, set()).add(replica.agent.id)
            self._cooled[replica.key] = wall + seconds

    def _succeeded(
        self, type_: str, winner: Replica, reply: Reply, attempts: list[Attempt], started: float
    ) -> RouteResult:
        elapsed = (self._clock() - started) * 1000.0
        return RouteResult(
            type_,
            True,
            winner.agent.id,
            reply.text,
            elapsed,
            tuple(attempts),
            self.strategy_name,
            state=reply.state,
            stream=reply.stream,
        )

    def _failed(self, type_: str, sending: _Sending, started: float, reason: str) -> RouteResult:
        elapsed = (self._clock() - started) * 1000.0
        last = sending.last
        return RouteResult(
            type_,
            False,
            None,
            None,
            elapsed,
            tuple(sending.attempts),
            self.strategy_name,
            reason,
            None if last is None else last.state,
            None if last is None else last.stream,
        )


def ewma_sample(agent: Agent, reply: Reply) -> float | None:
    """What a successful message teaches the EWMA instead of its total time, if anything.

    ``ewma.signal`` (default: ``first_artifact`` for a streamed answer, ``total`` otherwise):
    a streamed answer's time to first token is what its user waits for, as LiteLLM's latency
    routing measures streaming calls. No first token (an answer without text): the total.
    """
    phases = reply.stream
    signal = agent.ewma.signal or ("first_artifact" if phases is not None else "total")
    if signal == "first_artifact" and phases is not None:
        return phases.first_artifact_ms
    return None


@dataclass
class _Sending:
    """One ``send`` under way: what each of its attempts sends (a retry reuses ``message_id``)
    and what they gave back (``last``: the latest reply, whose state a failed result keeps)."""

    text: str
    message_id: str
    stream: bool
    relay: _Relay | None
    attempts: list[Attempt] = field(default_factory=list)
    last: Reply | None = None


class _Relay:
    """Hands a streamed answer's chunks and events on and remembers that some went out (the
    answer is then committed to its replica). What a sink raises is the caller's, not the
    agent's."""

    __slots__ = ("_on_event", "_sink", "wrote")

    def __init__(self, sink: OnChunk | None, on_event: RelayEvent | None = None) -> None:
        self._sink, self._on_event, self.wrote = sink, on_event, False

    def write(self, text: str) -> None:
        self.wrote = True
        if self._sink is None:
            return
        try:
            self._sink(text)
        except Exception as exc:
            raise _SinkFailed() from exc

    def events_of(self, agent_id: str) -> OnEvent | None:
        """The reader callback of one attempt on ``agent_id`` (None: no event sink)."""
        sink = self._on_event
        if sink is None:
            return None

        def event(reader: StreamReader) -> Awaitable[None] | None:
            self.wrote = True
            try:
                relayed = sink(agent_id, reader)
            except Exception as exc:
                raise _SinkFailed() from exc
            return None if relayed is None else _caller_s(relayed)

        return event


async def _caller_s(relayed: Awaitable[None]) -> None:
    """Await what a relay sink returned; what it raises is the caller's (``_SinkFailed``)."""
    try:
        await relayed
    except Exception as exc:
        raise _SinkFailed() from exc


class _SinkFailed(Exception):
    """The caller's ``on_chunk`` raised (its ``__cause__``): the attempt ends with no verdict
    and ``send`` raises the caller's exception. Not a ValueError: the stream reader must not
    take it for a bad event."""


class _Call:
    """One call in flight on one replica (tower's ``Handle``): counted from entry; the exit
    records the verdict given to :meth:`done`, or without one (cancelled, or anything raised)
    settles the permit with no verdict. The one place attempts start and finish."""

    __slots__ = ("_reply", "_router", "message", "permit", "replica", "sample")

    def __init__(
        self,
        router: Router,
        replica: Replica,
        permit: Permit | None,
        message: bool = True,
        sample: bool = True,
    ) -> None:
        self._router, self.replica, self.permit, self.message = router, replica, permit, message
        self.sample = sample  # False: a verdict without an EWMA sample (a canary)
        self._reply: Reply | None = None

    def __enter__(self) -> _Call:
        self.replica.stats.start()
        return self

    def done(self, reply: Reply) -> None:
        """The call's answer; recorded when the block exits without an exception."""
        self._reply = reply

    @property
    def reply(self) -> Reply:
        assert self._reply is not None, "done() was not called"
        return self._reply

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reply is not None and exc_type is None:
            self._router._record(self.replica, self.permit, self._reply, self.message, self.sample)
            return
        self.replica.stats.cancel()
        if self.permit is not None:
            self.replica.breaker.release(self.permit)


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


__all__ = [
    "Attempt",
    "FanOut",
    "RelayEvent",
    "ReplicaView",
    "RouteResult",
    "Router",
    "ewma_sample",
]
