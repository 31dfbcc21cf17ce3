"""Router: a strategy, a breaker per replica and failover, over a Transport (DESIGN §4).

The decisions (EWMA, breakers, strategies, retry budget) live in the sans-I/O core; this module
owns the clock, the randomness and the awaiting. ``from latcli import Router``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from latcli.breaker import Breaker, BreakerEvent, BreakerState, Permit
from latcli.budget import RetryBudget
from latcli.errors import ErrorKind, LatcliError
from latcli.guard import unexpected_reply
from latcli.inventory import Agent, Inventory, RoutingConfig, load_inventory
from latcli.protocols import ProtocolClient, Reply, new_message_id
from latcli.redact import redact_url
from latcli.state import FlushEntry, NullStore, Observation, StateStore, default_state_path
from latcli.stats import LatencyWindow, ReplicaStats, StatsSnapshot
from latcli.strategies import P2C, Strategy, make_strategy
from latcli.transport.base import AsyncClosing, Transport

HEDGE_MIN_SAMPLES = 20  # no hedging until the type's p95 rests on this many answers


@dataclass(frozen=True)
class Attempt:
    """One try on one replica. ``outcome`` is ``"ok"`` or an error kind's value."""

    agent: str
    outcome: str
    status: int | None
    latency_ms: float
    hedge: bool = False
    panic: bool = False


@dataclass(frozen=True)
class RouteResult:
    """The answer for one type: the winning agent and reply, or every failed attempt."""

    type: str
    ok: bool
    agent: str | None
    reply: str | None
    latency_ms: float
    attempts: tuple[Attempt, ...]
    strategy: str
    error: str | None = None

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


@dataclass
class Replica:
    """The router's live record of one agent: measurements, breaker, unsaved observations."""

    agent: Agent
    stats: ReplicaStats
    breaker: Breaker
    journal: list[Observation] = field(default_factory=list)

    @property
    def key(self) -> str:
        """State key: the id and the URL (password masked: the file must not hold it), so a
        re-pointed id starts afresh."""
        return f"{self.agent.id}@{redact_url(self.agent.url)}"


EventSink = Callable[[str, BreakerEvent], None]


class Router(AsyncClosing):
    """Routes messages to the best admissible replica of a type, with failover and hedging.

    ``clock`` (monotonic seconds), ``wall`` (epoch seconds) and ``rng`` are injectable so a
    simulation can drive the router exactly. Use as ``async with Router(...) as router``; leaving
    the block saves the learned state (unless ``state=None``) and closes the transport.
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
        state: StateStore | NullStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_event: EventSink | None = None,
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
        self._on_event = on_event
        self._own_transport = transport is None
        self._transport = transport or _default_transport()
        self.client = ProtocolClient(self._transport)
        self._store = state if state is not None else NullStore()
        self._flush_lock = threading.Lock()  # one flush (or close) of the store at a time
        self._saving: asyncio.Task[float] | None = None
        self._open: dict[str, set[str]] = {}  # type -> ids whose breaker is not closed
        self._replicas = {a.id: self._new_replica(a) for a in members}
        self._order = list(self._replicas.values())
        self._save_from = 0  # where the next partial save (start_save's limit) starts
        self._by_type: dict[str, list[Replica]] = {}
        for replica in self._replicas.values():
            self._by_type.setdefault(replica.agent.type, []).append(replica)
        self._type_latency = {t: LatencyWindow(256) for t in self._by_type}
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
        store = StateStore(default_state_path(os.environ) if state_path is None else state_path)
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
        taken = self._take_journals()
        if taken and not self._flush(taken, self._clock(), self._wall()):
            _give_back(taken)

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
        taken = self._take_journals(limit)
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

    async def _save_off_loop(self, taken: list[tuple[Replica, list[Observation]]]) -> float:
        now, wall = self._clock(), self._wall()

        def timed() -> tuple[bool, float]:  # the flush's own time, not the loop's delays
            started = time.perf_counter()
            ok = self._flush(taken, now, wall)
            return ok, time.perf_counter() - started

        flushing = asyncio.get_running_loop().run_in_executor(None, timed)

        def settle(done: asyncio.Future[tuple[bool, float]]) -> None:
            if done.cancelled() or done.exception() is not None or not done.result()[0]:
                _give_back(taken)

        try:
            ok, took = await asyncio.shield(flushing)
        except asyncio.CancelledError:
            flushing.add_done_callback(settle)  # the thread goes on; settle when it ends
            raise
        if not ok:
            _give_back(taken)
        return took

    def _take_journals(self, limit: int | None = None) -> list[tuple[Replica, list[Observation]]]:
        """Non-empty journals, each replaced by a fresh list (O(replicas), no I/O).

        All of them, or at most ``limit``, going round from where the previous call stopped.
        """
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

    def _flush(
        self, taken: list[tuple[Replica, list[Observation]]], now: float, wall: float
    ) -> bool:
        """Merge ``taken`` into the store, from any thread, one flush at a time.

        False: other runs held the lock too long; the caller gives the journals back.
        """
        entries = [
            FlushEntry(r.key, r.agent.ewma.decay, r.agent.breaker.window, r.agent.breaker, j)
            for r, j in taken
        ]
        with self._flush_lock:
            return self._store.flush(entries, now, wall)

    def _load_state(self) -> None:
        now, wall = self._clock(), self._wall()
        for r in self._replicas.values():
            self._store.load_into(r.key, r.stats, r.breaker, now, wall)
            if r.breaker.state(now) is not BreakerState.CLOSED:  # loaded open: no event fired
                self._open.setdefault(r.agent.type, set()).add(r.agent.id)

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
        if found is None:
            known = ", ".join(self._by_type) or "none"
            raise LatcliError(f"unknown type {type_!r} (types: {known})")
        return found

    def replica(self, agent_id: str) -> Replica:
        return self._replicas[agent_id]

    def pick(self, type_: str) -> Agent | None:
        """The replica ``send`` would try first now (no permit taken, nothing changed)."""
        now = self._clock()
        pool = [r for r in self.replicas(type_) if r.breaker.state(now) is not BreakerState.OPEN]
        if not pool:
            return None
        # Peeking must not move the real sequence: a copy of the rng and of the strategy.
        rng = random.Random(self._rng.random())
        real, self._strategy = self._strategy, copy.deepcopy(self._strategy)
        try:
            return self._choose_from(pool, now, rng).agent
        finally:
            self._strategy = real

    def view(self) -> list[ReplicaView]:
        now = self._clock()
        return [
            ReplicaView(
                r.agent, r.stats.snapshot(now), r.breaker.state(now), r.breaker.retry_in(now)
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
        begun = self._clock()
        permit = replica.breaker.allow(begun)
        replica.stats.start()
        try:
            reply = await self.client.health(replica.agent)
        except asyncio.CancelledError:
            replica.stats.cancel()
            if permit is not None:
                replica.breaker.release(permit)
            raise
        except Exception as exc:  # one agent's hostile answer or a bug below: its failed check
            reply = unexpected_reply(exc, agent_id, (self._clock() - begun) * 1000.0)
        self._record(replica, permit, reply, message=False)
        return reply

    # ---- sending ---------------------------------------------------------------------------

    async def send(self, type_: str, text: str, *, timeout: float | None = None) -> RouteResult:
        """Route ``text`` to one replica of ``type_``, failing over up to ``retries`` times.

        ``timeout`` bounds the whole call, failovers included; the attempt under way when it
        expires is cancelled without a breaker verdict.
        """
        replicas = self.replicas(type_)
        started = self._clock()
        attempts: list[Attempt] = []
        try:
            if timeout is None:
                return await self._send(type_, replicas, text, attempts, started)
            return await asyncio.wait_for(
                self._send(type_, replicas, text, attempts, started), timeout
            )
        except asyncio.TimeoutError:
            return self._failed(type_, attempts, started, f"no answer within {timeout:g}s")

    async def fan_out(
        self, types: Iterable[str], text: str, *, timeout: float | None = None
    ) -> FanOut:
        """Ask several types at once (the seed's coordination); all answers are gathered."""
        wanted = list(dict.fromkeys(types))
        for t in wanted:
            self.replicas(t)
        started = self._clock()
        results = await asyncio.gather(*(self.send(t, text, timeout=timeout) for t in wanted))
        elapsed = (self._clock() - started) * 1000.0
        return FanOut(tuple(results), elapsed, self.strategy_name)

    async def _send(
        self,
        type_: str,
        replicas: list[Replica],
        text: str,
        attempts: list[Attempt],
        started: float,
    ) -> RouteResult:
        self._budget.record_request(self._clock())
        # A2A: a retry reuses the messageId (DESIGN §2); plain http agents take none.
        message_id = new_message_id() if self._a2a_types.get(type_, True) else ""
        tried: set[str] = set()
        for n in range(self.retries + 1):
            if n and not self._budget.try_retry(self._clock()):
                return self._failed(type_, attempts, started, "retry budget exhausted")
            chosen = self._admit(replicas, tried)
            if chosen is None:
                break
            replica, permit, panic = chosen
            tried.add(replica.agent.id)
            hedging = self.hedge and n == 0
            reply, winner = await self._first_answer(
                replicas, replica, permit, panic, text, message_id, tried, attempts, hedging
            )
            if reply.ok:
                return self._succeeded(type_, winner, reply, attempts, started)
            if not reply.is_failure:  # a 4xx other than 429: the request, not the agent
                break
        reason = "every attempt failed" if attempts else "no replica to try"
        return self._failed(type_, attempts, started, reason)

    def _admit(
        self, replicas: list[Replica], tried: set[str]
    ) -> tuple[Replica, Permit | None, bool] | None:
        """A replica and its permit; in panic (all open) the one whose open period ends first.

        O(1) in the number of replicas on the common path (nothing tried, the pick admitted):
        the pool is copied only when a breaker refuses or on a failover.
        """
        now = self._clock()
        trial = self._due_trial(replicas[0].agent.type, tried, now) if replicas else None
        if trial is not None:
            return trial
        pool = replicas if not tried else [r for r in replicas if r.agent.id not in tried]
        while pool:
            replica = self._choose_from(pool, now, self._rng)
            permit = replica.breaker.allow(now)
            if permit is not None:
                return replica, permit, False
            pool = [r for r in pool if r is not replica]
        left = [r for r in replicas if r.agent.id not in tried]
        if not left:
            return None
        # Panic (DESIGN §4): every breaker refuses, so try the one closest to its next probe
        # rather than failing without trying. No permit: the verdict cannot close it early.
        soonest = min(left, key=lambda r: r.breaker.open_until or now)
        return soonest, None, True

    def _due_trial(
        self, type_: str, tried: set[str], now: float
    ) -> tuple[Replica, Permit | None, bool] | None:
        """A replica whose open period is over takes the next call as its half-open trial.

        Without this, p2c would weigh it by the failure penalty in its EWMA and send the trial
        only once that decayed (several τ late). Only the few open replicas are looked at.
        """
        for agent_id in list(self._open.get(type_, ())):
            replica = self._replicas[agent_id]
            if agent_id in tried or replica.breaker.state(now) is not BreakerState.HALF_OPEN:
                continue
            permit = replica.breaker.allow(now)
            if permit is not None:
                return replica, permit, False
        return None

    def _choose_from(self, pool: list[Replica], now: float, rng: random.Random) -> Replica:
        if isinstance(self._strategy, P2C):
            # P2C reads two loads, not n (pick p99 <= 25 µs with 1,000 replicas); an open
            # breaker's load is infinite, so it only wins against another open one.
            def load_of(i: int) -> float:
                r = pool[i]
                if r.breaker.state(now) is BreakerState.OPEN:
                    return float("inf")
                return r.stats.load(now)

            index = P2C.pick_index(len(pool), load_of, rng)
            if pool[index].breaker.state(now) is not BreakerState.OPEN:
                return pool[index]
        admissible = [r for r in pool if r.breaker.state(now) is not BreakerState.OPEN] or pool
        candidates = [r.stats.candidate(r.agent.id, r.agent.weight, now) for r in admissible]
        picked = self._strategy.pick(candidates, rng)
        return next(r for r in admissible if r.agent.id == picked.id)

    async def _first_answer(
        self,
        replicas: list[Replica],
        first: Replica,
        permit: Permit | None,
        panic: bool,
        text: str,
        message_id: str,
        tried: set[str],
        attempts: list[Attempt],
        hedging: bool,
    ) -> tuple[Reply, Replica]:
        """One attempt; with hedging, a second replica joins after the type's p95."""
        delay = self._hedge_delay(first.agent.type) if hedging else None
        if delay is None:
            # Awaited in place, not as a task: in_flight rises before any other send can
            # pick, so an untried replica really takes one request until its first answer.
            reply = await self._attempt(first, permit, panic, text, message_id, attempts, False)
            return reply, first
        primary = asyncio.ensure_future(
            self._attempt(first, permit, panic, text, message_id, attempts, hedge=False)
        )
        try:
            done, _ = await asyncio.wait({primary}, timeout=delay)
        except asyncio.CancelledError:
            primary.cancel()
            raise
        if done:
            return primary.result(), first
        second = self._admit(replicas, tried)
        if second is None or second[2]:  # never hedge onto a replica in panic
            return await primary, first
        other, other_permit, _ = second
        tried.add(other.agent.id)
        backup = asyncio.ensure_future(
            self._attempt(other, other_permit, False, text, message_id, attempts, hedge=True)
        )
        return await _race({primary: first, backup: other})

    def _hedge_delay(self, type_: str) -> float | None:
        window = self._type_latency[type_]
        if len(window.values()) < HEDGE_MIN_SAMPLES:
            return None
        p95 = window.percentile(95)
        return None if p95 is None else p95 / 1000.0

    async def _attempt(
        self,
        replica: Replica,
        permit: Permit | None,
        panic: bool,
        text: str,
        message_id: str,
        attempts: list[Attempt],
        hedge: bool,
    ) -> Reply:
        """Send once and record the verdict; cancellation releases the permit, no verdict."""
        begun = self._clock()
        replica.stats.start()
        try:
            reply = await self.client.send_message(replica.agent, text, message_id)
        except asyncio.CancelledError:
            replica.stats.cancel()
            if permit is not None:
                replica.breaker.release(permit)
            raise
        except Exception as exc:  # one agent's hostile answer or a bug below: its failed call
            reply = unexpected_reply(exc, replica.agent.id, (self._clock() - begun) * 1000.0)
        self._record(replica, permit, reply)
        outcome = "ok" if reply.ok else (reply.error or ErrorKind.BAD_RESPONSE).value
        attempts.append(
            Attempt(replica.agent.id, outcome, reply.status, reply.latency_ms, hedge, panic)
        )
        return reply

    def _record(
        self, replica: Replica, permit: Permit | None, reply: Reply, message: bool = True
    ) -> None:
        now = self._clock()
        healthy = not reply.is_failure
        # A failed call costs the EWMA as much as a timeout: a replica that fails *fast*
        # must not look fast to p2c (the breaker alone would let it take the next calls).
        penalty = None if healthy else max(reply.latency_ms, replica.agent.timeout * 1000.0)
        replica.stats.finish(now, reply.latency_ms, healthy, cost_ms=penalty)
        if permit is not None:
            replica.breaker.record(now, permit, healthy)
        if reply.ok and message:  # hedging waits for the p95 of messages, not health checks
            self._type_latency[replica.agent.type].add(reply.latency_ms)
        replica.journal.append(Observation(self._wall(), reply.latency_ms, healthy, penalty))

    def _succeeded(
        self, type_: str, winner: Replica, reply: Reply, attempts: list[Attempt], started: float
    ) -> RouteResult:
        elapsed = (self._clock() - started) * 1000.0
        return RouteResult(
            type_, True, winner.agent.id, reply.text, elapsed, tuple(attempts), self.strategy_name
        )

    def _failed(
        self, type_: str, attempts: list[Attempt], started: float, reason: str
    ) -> RouteResult:
        elapsed = (self._clock() - started) * 1000.0
        return RouteResult(
            type_, False, None, None, elapsed, tuple(attempts), self.strategy_name, reason
        )


def _give_back(taken: list[tuple[Replica, list[Observation]]]) -> None:
    """Put unsaved observations back in front of what was recorded since they were taken."""
    for replica, journal in taken:
        replica.journal[:0] = journal


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


def _default_transport() -> Transport:
    from latcli.transport.httpx_transport import HttpxTransport

    return HttpxTransport()


__all__ = ["Attempt", "FanOut", "ReplicaView", "RouteResult", "Router"]
