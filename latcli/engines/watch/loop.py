"""The engine behind ``latcli watch``: active health checks, SLA verdicts and events per tick.

Every agent gets its own check loop with jittered sleeps (1,000 agents never fire at once)
that calls :meth:`Router.check`, so the checks feed the very EWMA, windows and breakers that
``send`` routes on. A tick loop turns the router's state and each agent's sliding window of
checks into a :class:`~latcli.reports.watch.WatchSnapshot`, diffs it with the previous tick to
make events, saves the routing state (a ``send`` in another terminal then starts from it) and
hands the snapshot to the sinks: the view or JSON lines, ``--events``, the webhook, metrics.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence

from latcli.config.model import Agent, RoutingConfig
from latcli.core.breaker import BreakerEvent
from latcli.core.errors import LatcliError
from latcli.core.redact import redact_text
from latcli.core.sla import Threshold
from latcli.engines import gctune
from latcli.engines.watch.canary import judge
from latcli.engines.watch.events import agent_events
from latcli.engines.watch.rows import agent_row
from latcli.engines.watch.tracked import Canary, Tracked, track
from latcli.reports.watch import AgentRow, CanaryStatus, EventKind, WatchEvent, WatchSnapshot
from latcli.routing.router import Router
from latcli.routing.state import Store
from latcli.transport.base import Transport
from latcli.transport.guard import unexpected_reply
from latcli.transport.replies import Reply

JITTER = 0.1  # each sleep is interval × U[0.9, 1.1]: checks drift apart, never in bursts
RECENT_EVENTS = 8  # events the view lists under the table
SAVE_SHARE = 0.05  # state saves may take up to 5 % of the wall time, no more
# Agents saved per save, in turn: a merge holds the GIL (docs/benchmarks.md "watch: tick lag").
SAVE_BATCH = 100
GC_FLEET = 100  # from this many agents the GC is tuned after the first tick (gctune)
Sink = Callable[[WatchSnapshot], None]
CheckHook = Callable[[Agent, Reply], None]
CanaryHook = Callable[[Agent, CanaryStatus], None]


class Watch:
    """Checks ``agents`` through a Router and builds one snapshot per tick.

    ``clock`` (monotonic), ``wall`` (epoch) and ``rng`` are injectable; the router shares them.
    ``on_check`` sees every check's reply (metrics). Use :meth:`run`, then :meth:`aclose`.
    """

    def __init__(
        self,
        agents: Sequence[Agent],
        *,
        interval: float,
        thresholds: Sequence[Threshold] = (),
        strategy: str = "p2c",
        routing: RoutingConfig | None = None,
        inventory: str = "",
        transport: Transport | None = None,
        store: Store | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_check: CheckHook | None = None,
        fixed_interval: bool = True,
        canary_sla: Sequence[Threshold] = (),
        on_canary: CanaryHook | None = None,
        canaries: bool = True,
    ) -> None:
        if not interval > 0:
            raise LatcliError("--interval must be more than zero")
        if not agents:
            raise LatcliError("no agents to watch")
        self.interval = interval
        self.thresholds = tuple(thresholds)
        self.inventory = inventory
        self._clock, self._wall = clock, wall
        self._rng = rng or random.Random()
        self._on_check, self._on_canary = on_check, on_canary
        self.canary_sla = tuple(canary_sla)  # judged over each agent's canaries
        self._pending: list[WatchEvent] = []  # breaker and webhook events since the last tick
        self._recent: deque[WatchEvent] = deque(maxlen=RECENT_EVENTS)
        self.notes: dict[str, str] = {}
        self.lags_ms: list[float] = []
        self.tick_count = 0
        self._crash: BaseException | None = None
        self._saved_at, self._save_cost = -math.inf, 0.0
        self._gc_before: tuple[int, int, int] | None = None  # set while the GC is tuned
        self.router = Router(
            agents,
            strategy=strategy,
            retries=routing.retries if routing else None,  # serve routes through this router
            retry_budget=routing.retry_budget if routing else None,
            transport=transport,
            state=store,
            clock=clock,
            wall=wall,
            rng=self._rng,
            on_event=self._breaker_event,
        )
        # canaries False: health checks only (serve)
        self._tracked = [
            track(a, self.interval if fixed_interval else a.health.interval, canaries)
            for a in agents
        ]
        self._types = list(dict.fromkeys(a.type for a in agents))

    # ---- inputs from elsewhere: breaker transitions, webhook status ------------------------

    def _breaker_event(self, agent_id: str, event: BreakerEvent) -> None:
        why = str(event.reason).replace("_", " ")
        before, after = event.from_state.value, event.to_state.value
        message = f"{agent_id} breaker {before} → {after} ({why})"
        self.post("breaker", agent_id, message, before, after)

    def post(
        self,
        kind: EventKind,
        agent: str | None,
        message: str,
        before: str | None = None,
        after: str | None = None,
    ) -> None:
        """Queue an event for the next tick (breakers, the webhook worker)."""
        self._pending.append(WatchEvent(self._wall(), kind, agent, message, before, after))

    # ---- checks ----------------------------------------------------------------------------

    async def _check_loop(self, t: Tracked) -> None:
        # the first checks spread over the first tenth of a period, then drift with the jitter
        delay = self._rng.uniform(0.0, JITTER * t.period)
        while True:
            await asyncio.sleep(delay)
            started = self._clock()
            try:
                reply = await self.router.check(t.agent.id)
            except Exception as exc:  # the router guards the call; this guards the router
                reply = unexpected_reply(exc, t.agent.id, (self._clock() - started) * 1000.0)
            self.record(t, reply)
            sleep = t.period * self._rng.uniform(1.0 - JITTER, 1.0 + JITTER)
            delay = max(0.0, sleep - (self._clock() - started))

    async def _canary_loop(self, t: Tracked, canary: Canary) -> None:
        # Its own schedule beside the checks; awaiting each answer keeps one in flight at most.
        every = canary.config.every
        # the first after the agent's first check, which fetched the card: one discovery, and
        # a cold agent is not asked for a card and an answer at the same instant
        delay = t.period * self._rng.uniform(0.5, 1.0)
        while True:
            await asyncio.sleep(delay)
            started = self._clock()
            try:
                reply = await self.router.canary(
                    canary.agent, canary.config.message, lambda r: judge(r, canary.config)
                )
            except Exception as exc:  # the router guards the call; this guards the router
                reply = unexpected_reply(exc, t.agent.id, (self._clock() - started) * 1000.0)
            self.record_canary(t, reply)
            sleep = every * self._rng.uniform(1.0 - JITTER, 1.0 + JITTER)
            delay = max(0.0, sleep - (self._clock() - started))

    def record_canary(self, t: Tracked, reply: Reply) -> None:
        """One judged canary: it counts toward the agent's rates and rise/fall like a check
        (its latency does not: the window's percentiles are health checks), and is shown."""
        canary = t.canary
        assert canary is not None, f"{t.agent.id} has no canary"
        ok = not reply.is_failure  # rate limited: cooling, shown apart, not a failed check
        now = self._clock()
        t.window.add(now, None, ok)
        t.health.record(ok)
        canary.window.add(now, reply, reply.ok)
        first = reply.stream.first_artifact_ms if reply.stream is not None else None
        error = None if reply.ok else (reply.error.value if reply.error else "bad_response")
        message = None if reply.ok or reply.message is None else redact_text(reply.message)
        status = CanaryStatus(reply.ok, first, reply.latency_ms, self._wall(), error, message)
        canary.last = status
        if self._on_canary is not None:
            self._on_canary(t.agent, status)

    def record(self, t: Tracked, reply: Reply) -> None:
        """One check's verdict into watch's own window and rise/fall counts."""
        ok = not reply.is_failure
        t.window.add(self._clock(), reply.latency_ms, ok)
        t.health.record(ok)
        t.checks += 1
        t.last_error = None if reply.ok else (reply.error.value if reply.error else "bad_response")
        t.last_message = None if reply.ok or reply.message is None else redact_text(reply.message)
        if self._on_check is not None:
            self._on_check(t.agent, reply)

    # ---- ticks -----------------------------------------------------------------------------

    async def run(self, sink: Sink, count: int | None = None) -> WatchSnapshot | None:
        """Check and tick until ``count`` ticks were made (forever if None); the last snapshot."""
        self._crash = None  # a run after a crashed one (serve restarts it) starts clean
        tasks = [asyncio.create_task(self._check_loop(t)) for t in self._tracked]
        tasks += [
            asyncio.create_task(self._canary_loop(t, t.canary))
            for t in self._tracked
            if t.canary is not None
        ]
        for task in tasks:
            task.add_done_callback(self._watch_task)
        try:
            return await self._tick_loop(sink, count)
        finally:
            if self._gc_before is not None:
                gctune.restore(self._gc_before)
                self._gc_before = None
            await _cancel_all(tasks)

    def _watch_task(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and self._crash is None:
            self._crash = task.exception()

    async def _tick_loop(self, sink: Sink, count: int | None) -> WatchSnapshot | None:
        snapshot = None
        due = self._clock()
        while count is None or self.tick_count < count:
            due += self.interval
            now = self._clock()
            if now - due > self.interval:  # fell a whole tick behind: start a fresh schedule
                due = now
            if due > now:
                await asyncio.sleep(due - now)
            if self._crash is not None:
                raise self._crash
            lag_ms = max(0.0, (self._clock() - due) * 1000.0)
            self.lags_ms.append(lag_ms)
            snapshot = self.tick(lag_ms)
            self._maybe_save()
            sink(snapshot)
            if self.tick_count == 1 and len(self._tracked) >= GC_FLEET and self._gc_before is None:
                self._gc_before = gctune.settle()
        return snapshot

    def _maybe_save(self) -> None:
        """Write the routing state for other runs, at most SAVE_SHARE of the time.

        A save is a SQLite transaction that re-reads and merges every row it writes (about
        0.2-0.4 ms per agent): it runs in a worker thread (:meth:`Router.start_save`), one at
        a time, SAVE_BATCH agents at most, so the loop only hands over the journals. With 10
        agents all are saved every tick; with 1,000 a batch every tick or two, each agent
        every 10-20 s. What is left is saved on exit.
        """
        now = self._clock()
        if now - self._saved_at < self._save_cost / SAVE_SHARE:
            return
        saving = self.router.start_save(SAVE_BATCH)
        if saving is not None:
            saving.add_done_callback(self._saved)

    def _saved(self, saving: asyncio.Task[float]) -> None:
        if not saving.cancelled() and saving.exception() is None:
            self._saved_at, self._save_cost = self._clock(), saving.result()

    def tick(self, lag_ms: float = 0.0) -> WatchSnapshot:
        """The snapshot now, with the events since the previous tick."""
        self.tick_count += 1
        now, wall = self._clock(), self._wall()
        rows = [self._row(t, now) for t in self._tracked]
        events, self._pending = self._pending, []
        for t, row in zip(self._tracked, rows, strict=True):
            events.extend(agent_events(t, row, wall))
        self._recent.extend(events)
        return self._snapshot(wall, rows, events, lag_ms)

    def peek(self) -> WatchSnapshot:
        """The snapshot now without taking a tick: no events consumed, no state moved (serve's
        ``GET /agents`` before the first tick)."""
        now = self._clock()
        return self._snapshot(self._wall(), [self._row(t, now) for t in self._tracked], [], 0.0)

    def _snapshot(
        self, wall: float, rows: list[AgentRow], events: list[WatchEvent], lag_ms: float
    ) -> WatchSnapshot:
        picks: dict[str, str | None] = {}
        for type_ in self._types:
            chosen = self.router.pick(type_)
            picks[type_] = None if chosen is None else chosen.id
        return WatchSnapshot(
            at=wall,
            tick=self.tick_count,
            inventory=self.inventory,
            interval_s=self.interval,
            strategy=self.router.strategy_name,
            agents=tuple(rows),
            picks=picks,
            events=tuple(events),
            recent_events=tuple(self._recent),
            notes=tuple(self.notes.values()),
            lag_ms=lag_ms,
        )

    def _row(self, t: Tracked, now: float) -> AgentRow:
        return agent_row(
            t,
            self.router.replica(t.agent.id),
            now,
            thresholds=self.thresholds,
            canary_sla=self.canary_sla,
            cooling_s=self.router.cooling_s(t.agent.id, now),
        )

    async def aclose(self) -> None:
        """Save the routing state and close the store (the transport is the caller's)."""
        await self.router.aclose()


async def _cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again any that swallowed its cancel.

    Python < 3.12's ``asyncio.wait_for`` turns a cancel into the inner result when both land
    together (cpython#86296): a check against a refusing port then loops on, and a plain
    gather after one cancel waited forever (``latcli serve`` hung on SIGINT 1 run in 10).
    """
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)


__all__ = ["Watch"]
