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
import bisect
import contextlib
import json
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from latcli.config.model import Agent, CanaryConfig, HealthConfig, Inventory, RoutingConfig
from latcli.core.breaker import BreakerEvent, BreakerState
from latcli.core.errors import LatcliError
from latcli.core.escape import json_safe
from latcli.core.redact import redact_text, redact_url, redact_webhook
from latcli.core.sla import (
    Measurements,
    Threshold,
    Verdict,
    canary_thresholds,
    evaluate,
    thresholds_from_inventory,
)
from latcli.core.stats import ReplicaStats
from latcli.core.units import format_ms
from latcli.engines import gctune
from latcli.engines.watch.canary import CanaryWindow, canary_agent, judge
from latcli.reports.files import open_private
from latcli.reports.watch import (
    AgentRow,
    AgentState,
    CanaryStatus,
    EventKind,
    SlaStatus,
    WatchEvent,
    WatchSnapshot,
)
from latcli.routing.router import Router
from latcli.routing.state import Store, open_store
from latcli.transport.base import RequestSpec, Transport
from latcli.transport.factory import make_transport
from latcli.transport.guard import unexpected_reply
from latcli.transport.protocols import Reply

# HAProxy's defaults (`rise 2 fall 3`), as the inventory's `health.rise` / `health.fall` default.
RISE = HealthConfig.rise
FALL = HealthConfig.fall
JITTER = 0.1  # each sleep is interval × U[0.9, 1.1]: checks drift apart, never in bursts
WINDOW_MIN_CHECKS = 5  # the SLA window spans the breaker window, but at least 5 intervals
SPARK_POINTS = 24  # latencies kept for the sparkline
RECENT_EVENTS = 8  # events the view lists under the table
SAVE_SHARE = 0.05  # state saves may take up to 5 % of the wall time, no more
# Agents saved per save, in turn. A save runs in a thread but holds the GIL while it merges
# (~0.2-0.4 ms per agent): 1,000 at once slowed the loop for up to 1 s and ticks lagged
# 300 ms; 100 at once, started right after a tick, are done long before the next one.
SAVE_BATCH = 100
Sink = Callable[[WatchSnapshot], None]
CheckHook = Callable[[Agent, Reply], None]
CanaryHook = Callable[[Agent, CanaryStatus], None]


# ---- per-agent bookkeeping (no I/O) --------------------------------------------------------


class RiseFall:
    """HAProxy-style hysteresis: ``up`` flips after ``rise`` good or ``fall`` bad checks in a row.

    The first check decides at once: before it there is no state to protect from flapping.
    """

    def __init__(self, rise: int = RISE, fall: int = FALL) -> None:
        self.rise, self.fall = rise, fall
        self.up: bool | None = None
        self._run = 0  # consecutive checks that disagree with ``up``

    def record(self, ok: bool) -> bool:
        if self.up is None or ok == self.up:
            self.up, self._run = ok, 0
            return ok
        self._run += 1
        if self._run >= (self.rise if ok else self.fall):
            self.up, self._run = ok, 0
        return self.up


@dataclass(frozen=True)
class WindowSummary:
    """The checks of one sliding window: successful latencies sorted, counts of all."""

    ok_ms: list[float]
    requests: int
    errors: int

    def percentile(self, p: float) -> float | None:
        """Nearest rank, as :class:`latcli.core.stats.LatencyWindow`; None without samples."""
        if not self.ok_ms:
            return None
        return self.ok_ms[max(1, math.ceil(p / 100 * len(self.ok_ms))) - 1]

    @property
    def success_rate(self) -> float | None:
        return None if self.requests == 0 else (self.requests - self.errors) / self.requests

    def observation(self) -> Measurements:
        """What the SLA sees: latency from successful checks, rates from all of them."""
        ok = self.ok_ms
        return Measurements(
            samples=len(ok),
            percentile=self.percentile,
            mean_ms=sum(ok) / len(ok) if ok else None,
            min_ms=ok[0] if ok else None,
            max_ms=ok[-1] if ok else None,
            errors=self.errors,
            requests=self.requests,
            rps=None,
        )


class CheckWindow:
    """The checks of the last ``span`` seconds: what p50/p99, success rate and the SLA judge.

    A failed check's latency (a refused connect in 0.2 ms) says nothing about speed, so only
    successful checks count toward percentiles; every check counts toward the rates.
    """

    def __init__(self, span: float) -> None:
        self.span = span
        self._checks: deque[tuple[float, float | None, bool]] = deque()
        self._ok_sorted: list[float] = []  # the successful latencies in the window, sorted
        self._failed = 0  # failed checks in the window
        self.recent: deque[float] = deque(maxlen=SPARK_POINTS)

    def add(self, now: float, latency_ms: float | None, ok: bool) -> None:
        """One check; ``latency_ms`` None counts it toward the rates only (a canary)."""
        self._checks.append((now, latency_ms, ok))
        if not ok:
            self._failed += 1
        elif latency_ms is not None:
            bisect.insort(self._ok_sorted, latency_ms)
        if latency_ms is not None:
            self.recent.append(latency_ms)

    def summary(self, now: float) -> WindowSummary:
        # kept sorted as checks come and go: a tick copies it instead of sorting every window
        checks, ok_sorted = self._checks, self._ok_sorted
        while checks and checks[0][0] <= now - self.span:
            _, ms, ok = checks.popleft()
            if not ok:
                self._failed -= 1
            elif ms is not None:
                del ok_sorted[bisect.bisect_left(ok_sorted, ms)]
        return WindowSummary(ok_sorted[:], len(checks), self._failed)


@dataclass
class Tracked:
    """Watch's own record of one agent, next to the router's replica."""

    agent: Agent
    period: float  # seconds between this agent's checks
    window: CheckWindow
    health: RiseFall = field(default_factory=RiseFall)
    last_error: str | None = None
    last_message: str | None = None
    checks: int = 0
    state: AgentState | None = None  # at the previous tick; None before the first verdict
    sla_passed: dict[str, bool] = field(default_factory=dict)  # by threshold, previous tick
    cooling: bool = False  # rate-limited (set aside) at the previous tick
    canary: Canary | None = None  # health.canary, when the agent has one


@dataclass
class Canary:
    """One agent's canary: what is sent, to whom (with the canary's timeout), what it saw."""

    config: CanaryConfig
    agent: Agent
    window: CanaryWindow
    last: CanaryStatus | None = None  # the latest answer's verdict
    shown: CanaryStatus | None = None  # the verdict the previous tick reported


def agent_state(
    up: bool | None,
    breaker: BreakerState,
    sla_ok: bool,
    success: float | None,
    canary_ok: bool = True,
) -> AgentState:
    """down: not up by rise/fall; degraded: up but the breaker, the SLA, a check or the latest
    canary objects (a model that stopped answering stays flagged until a canary passes)."""
    if not up:
        return "down"
    if breaker is not BreakerState.CLOSED or not sla_ok or (success is not None and success < 1):
        return "degraded"
    return "healthy" if canary_ok else "degraded"


def _penalised(stats: ReplicaStats, now: float) -> bool:
    """True when failure penalties hold the EWMA up: only they can lift it above every latency
    the replica really took (a peak EWMA of real samples never exceeds their maximum)."""
    seen = stats.latencies.values()
    return stats.has_history and bool(seen) and stats.cost(now) > max(seen) * 1.01


def _sla_status(v: Verdict) -> SlaStatus:
    return SlaStatus(v.name, v.expr, v.observed, v.passed, v.format_observed())


GC_FLEET = 100  # from this many agents the GC is tuned after the first tick (gctune)


# ---- the engine ------------------------------------------------------------------------------


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
        self._canaries = canaries  # False: health checks only (serve)
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
        self._tracked = [self._track(a, fixed_interval) for a in agents]
        self._types = list(dict.fromkeys(a.type for a in agents))

    def _track(self, agent: Agent, fixed: bool) -> Tracked:
        period = self.interval if fixed else agent.health.interval
        span = max(agent.breaker.window, WINDOW_MIN_CHECKS * period)
        rise_fall = RiseFall(agent.health.rise, agent.health.fall)
        config = agent.health.canary if self._canaries else None
        canary = None
        if config is not None:
            canary_span = max(agent.breaker.window, WINDOW_MIN_CHECKS * config.every)
            canary = Canary(config, canary_agent(agent, config), CanaryWindow(canary_span))
        return Tracked(agent, period, CheckWindow(span), rise_fall, canary=canary)

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
            events.extend(self._diff(t, row, wall))
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
        replica = self.router.replica(t.agent.id)
        breaker = replica.breaker.state(now)
        summary = t.window.summary(now)
        verdicts = evaluate(self.thresholds, summary.observation()) if t.checks else []
        canary = t.canary
        last = None if canary is None else canary.last
        if canary is not None and last is not None and self.canary_sla:
            verdicts += evaluate(self.canary_sla, canary.window.observation(now))
        sla = tuple(_sla_status(v) for v in verdicts)
        success = summary.success_rate
        canary_ok = last is None or last.ok or last.error == "rate_limited"
        state = agent_state(t.health.up, breaker, all(s.passed for s in sla), success, canary_ok)
        stats = replica.stats
        return AgentRow(
            id=t.agent.id,
            type=t.agent.type,
            url=redact_url(t.agent.url),
            protocol=t.agent.protocol,
            state=state,
            ewma_ms=stats.cost(now) if stats.has_history else None,
            p50_ms=summary.percentile(50),
            p99_ms=summary.percentile(99),
            success_rate=success,
            breaker=breaker.value,
            retry_in_s=replica.breaker.retry_in(now) if breaker is BreakerState.OPEN else None,
            in_flight=stats.in_flight,
            last_error=t.last_error,
            last_message=t.last_message,
            checks=t.checks,
            recent_ms=tuple(t.window.recent),
            sla=sla,
            ewma_penalty=_penalised(stats, now),
            cooling_s=self.router.cooling_s(t.agent.id, now),
            has_canary=canary is not None,
            canary=last,
        )

    def _diff(self, t: Tracked, row: AgentRow, wall: float) -> Iterable[WatchEvent]:
        """State and SLA changes of one agent; at its first verdict only the bad news."""
        if t.checks == 0:
            return
        before = t.state
        if row.state != before and (before is not None or row.state != "healthy"):
            c = row.canary
            kind = row.last_error or (f"canary {c.error}" if c is not None and not c.ok else None)
            why = f" ({kind})" if kind and row.state != "healthy" else ""
            text = f"{row.id} {before or 'new'} → {row.state}{why}"
            yield WatchEvent(wall, "state", row.id, text, before, row.state)
        t.state = row.state
        if t.canary is not None:
            yield from _canary_events(t.canary, row, wall)
        cooling = row.cooling_s is not None
        if cooling != t.cooling:
            t.cooling = cooling
            if cooling:
                assert row.cooling_s is not None
                text = f"{row.id} rate limited: set aside for {math.ceil(row.cooling_s):,} s"
                yield WatchEvent(wall, "rate_limit", row.id, text, "ready", "cooling")
            else:
                yield WatchEvent(
                    wall, "rate_limit", row.id, f"{row.id} cooled down", "cooling", "ready"
                )
        for s in row.sla:
            was = t.sla_passed.get(s.name)
            t.sla_passed[s.name] = s.passed
            if was is s.passed or (was is None and s.passed):
                continue
            if s.passed:
                text = f"{row.id} SLA {s.name} recovered: {s.expr} (observed {s.shown})"
                yield WatchEvent(wall, "sla_recovery", row.id, text, "breach", "pass")
            else:
                text = f"{row.id} SLA {s.name} breached: {s.expr} (observed {s.shown})"
                yield WatchEvent(
                    wall, "sla_breach", row.id, text, "pass" if was else None, "breach"
                )

    async def aclose(self) -> None:
        """Save the routing state and close the store (the transport is the caller's)."""
        await self.router.aclose()


def _canary_events(canary: Canary, row: AgentRow, wall: float) -> Iterator[WatchEvent]:
    """A canary that fails (or fails differently), or passes again; a first pass is no news."""
    was, now = canary.shown, row.canary
    if now is None or now is was:
        return
    canary.shown = now
    same = was.ok == now.ok and was.error == now.error if was is not None else now.ok
    if same:  # no news: still passing (or a first pass), still failing the same way
        return
    if now.ok:
        ttft = "" if now.first_artifact_ms is None else f", ttft {format_ms(now.first_artifact_ms)}"
        text = f"{row.id} canary ok again ({format_ms(now.total_ms)}{ttft})"
        yield WatchEvent(wall, "canary", row.id, text, "failed", "ok")
        return
    why = f"{now.message} ({now.error})" if now.message else now.error
    text = f"{row.id} canary failed: {why}"
    yield WatchEvent(wall, "canary", row.id, text, None if was is None else "ok", "failed")


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


# ---- sinks: events file, webhook ------------------------------------------------------------


def event_dict(e: WatchEvent) -> dict[str, object]:
    """One event as JSON (the --events line, the webhook item, the tick's ``events``)."""
    return {
        "t": round(e.at, 3),
        "kind": e.kind,
        "agent": e.agent,
        "message": e.message,
        "before": e.before,
        "after": e.after,
    }


class EventsFile:
    """Appends each event as one JSON line and flushes, so ``tail -f`` sees it at once."""

    def __init__(self, path: Path) -> None:
        try:
            self._file: IO[str] = open_private(path, "a")
        except OSError as exc:
            raise LatcliError(f"--events {path}: {exc.strerror or exc}") from None

    def write(self, events: Iterable[WatchEvent]) -> None:
        lines = [json_safe(json.dumps(event_dict(e), ensure_ascii=False)) + "\n" for e in events]
        if lines:
            self._file.write("".join(lines))
            self._file.flush()

    def close(self) -> None:
        self._file.close()


WEBHOOK_QUEUE = 100  # ticks with events waiting to be posted; beyond that new ones are dropped
WEBHOOK_ATTEMPTS = 3  # posts per payload before the webhook is declared unreachable
WEBHOOK_BACKOFF = 0.5  # seconds before the first retry, doubled each time (+0-50 % jitter)
WEBHOOK_TIMEOUT = 5.0


class Webhook:
    """Posts each tick's events as one JSON object, from a bounded queue, off the tick loop.

    A payload is tried ``attempts`` times with backoff. When one fails them all, the webhook is
    reported unreachable once (an event and a note through ``report``) and later payloads are
    tried once each and dropped quietly, until one goes through (reported once as well).
    """

    def __init__(
        self,
        url: str,
        transport: Transport,
        report: Watch,
        *,
        attempts: int | None = None,
        backoff: float | None = None,
        timeout: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.shown_url = redact_webhook(url)  # the URL is the secret: never in events or notes
        self._transport, self._watch = transport, report
        self._attempts = WEBHOOK_ATTEMPTS if attempts is None else attempts
        self._backoff = WEBHOOK_BACKOFF if backoff is None else backoff
        self._timeout = WEBHOOK_TIMEOUT if timeout is None else timeout
        self._rng = rng or random.Random()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(WEBHOOK_QUEUE)
        self._worker: asyncio.Task[None] | None = None
        self.unreachable = False
        self.posted = 0
        self.dropped = 0

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run())

    def push(self, snapshot: WatchSnapshot) -> None:
        """Queue the tick's events (never blocks; a full queue drops the newest)."""
        events = [e for e in snapshot.events if e.kind != "webhook"]
        if not events:
            return
        body = {
            "schema": "latcli.watch.alert/v1",
            "t": round(snapshot.at, 3),
            "tick": snapshot.tick,
            "text": "\n".join(e.message for e in events),  # Slack-style receivers show this
            "events": [event_dict(e) for e in events],
        }
        try:
            self._queue.put_nowait(json.dumps(body, ensure_ascii=False).encode())
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        while True:
            body = await self._queue.get()
            try:
                ok, why = await self._deliver(body, 1 if self.unreachable else self._attempts)
            finally:
                self._queue.task_done()
            if ok:
                self.posted += 1
            if ok and self.unreachable:
                self.unreachable = False
                self._watch.notes.pop("webhook", None)
                self._watch.post("webhook", None, f"webhook {self.shown_url} reachable again")
            elif not ok and not self.unreachable:
                self.unreachable = True
                shown = self.shown_url
                text = f"webhook {shown} unreachable ({why}); dropping alerts until it answers"
                self._watch.notes["webhook"] = text
                self._watch.post("webhook", None, text)
            if not ok:
                self.dropped += 1

    async def _deliver(self, body: bytes, attempts: int) -> tuple[bool, str]:
        spec = RequestSpec(
            "POST",
            self.url,
            {"content-type": "application/json"},
            body,
            timeout=self._timeout,
            connect_timeout=min(1.0, self._timeout),
        )
        why = ""
        for attempt in range(attempts):
            if attempt:
                pause = self._backoff * 2 ** (attempt - 1) * self._rng.uniform(1.0, 1.5)
                await asyncio.sleep(pause)
            outcome = await self._transport.send("latcli-webhook", spec)
            if outcome.error is None and outcome.status is not None and outcome.status < 300:
                return True, ""
            why = outcome.error.value if outcome.error else f"HTTP {outcome.status}"
        return False, why

    async def aclose(self, grace: float = 2.0) -> None:
        """Give queued alerts ``grace`` seconds to go out, then stop the worker."""
        if self._worker is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker


# ---- one watch run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchOptions:
    """What ``latcli watch`` was asked; None leaves the inventory's choice."""

    interval: float | None = None
    count: int | None = None
    strategy: str | None = None
    events: Path | None = None
    webhook: str | None = None
    metrics_port: int | None = None
    state: Path | None = None
    no_state: bool = False
    verify: bool | str = True  # TLS: the default trust store, a CA file's path, or off


def tick_interval(agents: Sequence[Agent], asked: float | None) -> float:
    """``--interval``, else the shortest ``health.interval`` among the watched agents."""
    return asked if asked is not None else min(a.health.interval for a in agents)


async def run_watch(
    inv: Inventory,
    agents: Sequence[Agent],
    opts: WatchOptions,
    render: Sink,
    warn: Callable[[str], None],
    *,
    transport: Transport | None = None,
    attach: Callable[[Watch], Sequence[asyncio.Task[None]]] | None = None,
) -> WatchSnapshot | None:
    """Watch until ``opts.count`` ticks (or forever); everything is flushed and closed after,
    Ctrl-C included. Returns the last snapshot.

    ``attach`` starts tasks that work beside the watch (the demo's chaos: it posts events and
    routes through the watch's router); they are cancelled when the watch ends.
    """
    import os

    thresholds = thresholds_from_inventory(inv.sla, "health") if inv.sla else []
    store = open_store(opts.state, enabled=not opts.no_state, env=os.environ, warn=warn)
    own_transport = transport is None
    transport = transport or make_transport(
        "auto", len(agents), use="watch", phases=False, verify=opts.verify
    )
    events = EventsFile(opts.events) if opts.events else None
    metrics = None
    if opts.metrics_port is not None:
        from latcli.engines.watch.metrics import WatchMetrics

        metrics = WatchMetrics()
    watch = Watch(
        agents,
        interval=tick_interval(agents, opts.interval),
        thresholds=thresholds,
        strategy=opts.strategy or inv.routing.strategy,
        routing=inv.routing,
        inventory=str(inv.path) if inv.path else "(ad-hoc agents)",
        transport=transport,
        store=store,
        on_check=metrics.observe_check if metrics else None,
        fixed_interval=opts.interval is not None,
        canary_sla=canary_thresholds(inv.sla),
        on_canary=metrics.observe_canary if metrics else None,
    )
    webhook = Webhook(opts.webhook, transport, watch) if opts.webhook else None
    beside: Sequence[asyncio.Task[None]] = []
    try:
        if attach is not None:
            beside = attach(watch)
        if metrics is not None and opts.metrics_port is not None:
            port = metrics.serve(opts.metrics_port)
            warn(f"metrics on http://127.0.0.1:{port}/metrics")
        if webhook is not None:
            webhook.start()

        def sink(snapshot: WatchSnapshot) -> None:
            if events is not None:
                events.write(snapshot.events)
            if webhook is not None:
                webhook.push(snapshot)
            if metrics is not None:
                metrics.update(snapshot)
            render(snapshot)

        return await watch.run(sink, opts.count)
    finally:
        for task in beside:
            task.cancel()
        await asyncio.gather(*beside, return_exceptions=True)
        if webhook is not None:
            await webhook.aclose()
        await watch.aclose()
        if own_transport:
            await transport.aclose()
        if events is not None:
            events.close()
        if metrics is not None:
            metrics.stop()


def unhealthy(snapshot: WatchSnapshot | None) -> bool:
    """True when the last tick showed an agent down or an SLA breached (exit 1 with --count)."""
    if snapshot is None:
        return False
    return any(a.state == "down" or a.sla_breached for a in snapshot.agents)


__all__ = [
    "CheckWindow",
    "EventsFile",
    "RiseFall",
    "Watch",
    "WatchOptions",
    "Webhook",
    "agent_state",
    "event_dict",
    "run_watch",
    "tick_interval",
    "unhealthy",
]
