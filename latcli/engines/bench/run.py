"""The load engine behind ``latcli bench``: targets, the closed and open models, progress.

* Closed model (``concurrency``): C loops, each send -> await -> send. Latency from the send.
* Open model (``rate``, wrk2): request ``j`` is due at ``t0 + due_s(j)`` (``schedule.Share``); the
  scheduler sleeps until the due time (``asyncio.sleep`` -> ``loop.call_at``) and sends every
  request already due. Latency counts from the *due* time, so a stall of the target or of the
  generator shows in the percentiles (no coordinated omission); ``service_time`` keeps the time
  from the actual send, ``schedule_lag`` the send minus the due time. At ``max_in_flight``
  outstanding requests the scheduler waits for a slot, and the late requests still count from
  their due time.
* End of a run: :data:`~latcli.reports.bench_model.IN_FLIGHT_POLICY`.
* Engine: raw by default (one process holds ~10k req/s where httpx holds a few hundred,
  docs/benchmarks.md); httpx stays selectable (HTTP/2). Both are the same Transport with the
  same error kinds. For URL and agent targets the request is built once and sent straight on
  the transport; a type target goes through the Router (strategy and breakers) per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from latcli.config.inventory import Agent, Inventory, adhoc_agent
from latcli.config.shaping import RequestShape
from latcli.core.errors import ErrorKind, LatcliError
from latcli.core.schedule import Share, achieved_rate, open_share, split_evenly, validity
from latcli.engines import gctune
from latcli.engines.bench.targets import TargetLine
from latcli.reports.bench_model import (
    AgentTally,
    BenchPlan,
    BenchResult,
    IntervalSample,
    PhaseTally,
    PhaseValues,
    Progress,
    ProgressSink,
    TargetKind,
)
from latcli.reports.histogram import LatencyHistogram
from latcli.transport.base import Outcome, RequestSpec, Transport, can_stream
from latcli.transport.guard import guarded, unexpected_reply
from latcli.transport.protocols import ProtocolClient
from latcli.transport.replies import Reply, read_a2a_reply, read_card, read_health, read_http_reply
from latcli.transport.requests import (
    a2a_message_request,
    card_request,
    health_request,
    http_message_request,
    new_message_id,
)
from latcli.transport.stream_reply import read_stream

DEFAULT_MAX_IN_FLIGHT = 1000  # open model: outstanding requests before the schedule waits
PROGRESS_EVERY_S = 1.0
# The event loop's timers wake in whole milliseconds (epoll's timeout is rounded up to 1 ms), so
# a request due between two wake-ups would leave up to 1 ms late: the open model wakes a
# millisecond early and sends what is due within it. An early request is timed from its send.
EARLY_S = 0.001
# --start-at: a schedule that began later than this is late (a process or pod started after
# the asked time, not one event-loop wake-up): it starts now, and the command warns.
LATE_START_S = 0.05
MAX_INTERVALS = 3600  # an hour of 1 s intervals, encoded (~100 B each); then neighbours merge
NO_AGENT = "-"  # the agent of a request no replica was tried for (all breakers open)

# (agent id, error kind or None, HTTP status or None, stream phases or None) of one request.
Answer = tuple[str, ErrorKind | None, int | None, PhaseValues | None]
Sender = Callable[[], Awaitable[Answer]]


@dataclass(frozen=True)
class Target:
    """What TARGET named: one agent (an id or a URL) or every replica of a type."""

    kind: TargetKind
    name: str
    agents: tuple[Agent, ...]
    inventory: Inventory
    mix: tuple[TargetLine, ...] = ()  # kind "mix": the --targets file's requests, in turn


def mix_target(
    inv: Inventory, source: str, lines: tuple[TargetLine, ...], shape: RequestShape
) -> Target:
    """A --targets file as a target: each line's URL an ad-hoc agent (timeouts and headers from
    the inventory's defaults, then the command line's shape, then the line's own headers)."""
    agents = tuple(shape.apply(adhoc_agent(line.url, inv.defaults)) for line in lines)
    return Target("mix", source, agents, inv, lines)


def resolve_target(inv: Inventory, text: str) -> Target:
    """An inventory id, a type, or an http(s) URL (ad-hoc agent). Unknown names: LatcliError.

    A URL with a path or a query (``http://host/health``) is requested exactly as given for
    ``health``; a bare ``http://host:port`` gets the inventory's health path
    (:func:`~latcli.config.inventory.adhoc_agent`, the rule of every command).
    """
    if "://" in text:
        return Target("url", text, (adhoc_agent(text, inv.defaults),), inv)
    by_id = [a for a in inv.agents if a.id == text]
    if by_id:
        return Target("agent", text, (by_id[0],), inv)
    by_type = tuple(a for a in inv.agents if a.type == text)
    if by_type:
        return Target("type", text, by_type, inv)
    ids = ", ".join(a.id for a in inv.agents)
    types = ", ".join(dict.fromkeys(a.type for a in inv.agents))
    raise LatcliError(f"unknown target {text!r} (agents: {ids}; types: {types}; or a URL)")


def shaped_target(
    inv: Inventory, text: str, shape: RequestShape, strategy: str | None = None
) -> Target:
    """:func:`resolve_target` with the command line's request shape on every agent it may
    send to, and a type's replicas picked by ``strategy`` (checked) when one is given."""
    if strategy is not None:
        inv = replace(inv, routing=replace(inv.routing, strategy=strategy))
    target = resolve_target(inv, text)
    return replace(
        target,
        agents=tuple(shape.apply_all(target.agents)),
        inventory=shape.apply_inventory(target.inventory),
    )


# ---- one worker's run ------------------------------------------------------------------------


@dataclass
class _Tally:
    """The current interval: a histogram per ~1 s, merged into the total at each cut."""

    hist: LatencyHistogram = field(default_factory=LatencyHistogram)  # answered requests only
    errors: int = 0
    requests: int = 0
    phases: PhaseTally | None = None  # --endpoint stream


class _WorkerRecorder:
    """The measurements of one worker and the hot-path record; single event loop, no locks."""

    def __init__(self, plan: BenchPlan, per_agent: bool) -> None:
        self.plan = plan
        self.per_agent = per_agent
        self.result = BenchResult()
        if plan.model == "open":
            self.result.service_time = LatencyHistogram()
            self.result.schedule_lag = LatencyHistogram()
        self.streams = plan.endpoint == "stream"
        if self.streams:
            self.result.phases = PhaseTally()
        self.cur = self._tally()
        # The interval tallies are recycled, not re-made: a 1 µs-1 h HDR histogram is ~186 KiB
        # inside a reference cycle, and with the GC tuned for the run (gctune) one new per
        # second piled up until a rare full collection (RSS +190 KiB/s at 2,000 req/s).
        self.spare: _Tally | None = self._tally()
        self.interval_s = PROGRESS_EVERY_S
        self.stopping = False
        self.in_flight = 0
        self.sent = 0  # measured sends (open model: achieved rate)
        self.last_send = 0.0
        self.last_done = 0.0
        self.measure_start = 0.0
        self.last_cut = 0.0
        self.tasks: set[asyncio.Task[None]] = set()
        self.progress_requests = 0

    def _tally(self) -> _Tally:
        return _Tally(phases=PhaseTally()) if self.streams else _Tally()

    def record(
        self,
        begin: float,
        end: float,
        agent: str,
        error: ErrorKind | None,
        status: int | None,
        phases: PhaseValues | None = None,
    ) -> None:
        """One measured request: latency from ``begin`` (the due time in the open model).

        Only answered requests enter the histograms: a refused connection's 50 µs is not a
        latency of the service (hey and oha report errors beside, not inside, the percentiles).
        """
        us = int((end - begin) * 1e6)
        self.cur.requests += 1
        result = self.result
        if status is not None:
            result.status_codes[status] = result.status_codes.get(status, 0) + 1
        if error is None:
            self.cur.hist.record_us(us if us > 0 else 0)
            result.ok += 1
            if phases is not None and self.cur.phases is not None:
                self.cur.phases.record(phases)
        else:
            result.errors[error.value] = result.errors.get(error.value, 0) + 1
            self.cur.errors += 1
        if self.per_agent:
            tally = result.agents.get(agent)
            if tally is None:
                tally = result.agents[agent] = AgentTally()
            tally.requests += 1
            if error is None:
                tally.latency.record_us(us if us > 0 else 0)
                if phases is not None:
                    if tally.phases is None:
                        tally.phases = PhaseTally()
                    tally.phases.record(phases)
        if end > self.last_done:
            self.last_done = end

    def cut(self, now: float, final: bool = False) -> _Tally:
        """Close the current ~1 s interval into the total and the interval list.

        The ``final`` cut folds a tail shorter than half an interval into the last interval:
        a 40 ms tail would stand in the timeline as a point of a few requests and a wild rate.
        """
        tally, self.cur = self.cur, self.spare or self._tally()
        self.spare = None  # until the ticker hands the read tally back (recycle)
        result = self.result
        result.latency.merge(tally.hist)
        if result.phases is not None and tally.phases is not None:
            result.phases.merge(tally.phases)
        begin = max(self.last_cut, self.measure_start)
        start, length = begin - self.measure_start, now - begin
        self.last_cut = now
        if length <= 0:
            return tally
        last = result.intervals[-1] if result.intervals else None
        short_tail = final and length < self.interval_s / 2
        if last is not None and (short_tail or last.length_s < self.interval_s - 1e-6):
            last.absorb(tally.hist, tally.errors, tally.phases)
            last.length_s = round(start + length - last.start_s, 6)
        else:
            result.intervals.append(
                IntervalSample(
                    round(start, 6), round(length, 6), tally.hist, tally.errors, tally.phases
                )
            )
        if len(result.intervals) > MAX_INTERVALS:
            result.intervals = _halve(result.intervals)
            self.interval_s *= 2
        return tally

    def recycle(self, tally: _Tally) -> None:
        """``tally`` was read (progress, worker tick): zero it for the next interval."""
        tally.hist.reset()
        if tally.phases is not None:
            tally.phases.reset()
        tally.errors = tally.requests = 0
        self.spare = tally

    def halted(self) -> bool:
        """Stop scheduling (a method: the flag changes while the scheduler awaits)."""
        return self.stopping

    def interrupt(self) -> None:
        """Ctrl-C: stop scheduling and cancel every outstanding request (not counted)."""
        if self.result.interrupted:
            return
        self.result.interrupted = True
        self.stopping = True
        self.result.dropped_in_flight += self.in_flight
        for task in list(self.tasks):
            task.cancel()


def _halve(intervals: list[IntervalSample]) -> list[IntervalSample]:
    """Neighbours merged pairwise: half as many intervals, each twice as long (bounded memory)."""
    out = []
    for i in range(0, len(intervals), 2):
        first = intervals[i]
        if i + 1 < len(intervals):
            second = intervals[i + 1]
            first.absorb(second.histogram, second.errors, second.phase_tally())
            first.length_s = round(second.start_s + second.length_s - first.start_s, 6)
        out.append(first)
    return out


async def run_share(
    plan: BenchPlan,
    target: Target,
    *,
    worker: int = 0,
    start_at: float | None = None,
    on_progress: ProgressSink | None = None,
    on_tick: Callable[[_Tally, BenchResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    handle_sigint: bool = True,
) -> BenchResult:
    """Run worker ``worker``'s share of ``plan`` in this event loop and return what it measured.

    ``start_at`` (``time.monotonic``) lines up the workers' schedules; ``should_stop`` is polled
    each tick (the parent's Ctrl-C in worker processes); with ``handle_sigint`` a SIGINT
    interrupts the run instead of raising KeyboardInterrupt.
    """
    run = _WorkerRecorder(plan, per_agent=target.kind in ("type", "mix"))
    transport = _make_transport(plan)
    router = None
    try:
        if target.kind == "type":
            from latcli.routing.router import Router

            router = Router(target.inventory, transport=transport, state=None)
        sender = await make_sender(plan, target, transport, router)
        await _drive(
            run, plan, sender, worker, start_at, on_progress, on_tick, should_stop, handle_sigint
        )
    finally:
        if router is not None:
            await router.aclose()
        await transport.aclose()
    _finish(run, plan, target, worker)
    return run.result


def worker_cap(plan: BenchPlan) -> int:
    """This process's part of the open model's in-flight cap (the cap is global)."""
    return max(1, (plan.max_in_flight or DEFAULT_MAX_IN_FLIGHT) // plan.lanes)


def _make_transport(plan: BenchPlan) -> Transport:
    """One connection per closed-loop worker, or per allowed in-flight request (open model)."""
    if plan.model == "closed":
        per_key = max(1, split_evenly(plan.concurrency or 1, plan.lanes)[0])
    else:
        per_key = worker_cap(plan)
    from latcli.transport.factory import ENGINES, Engine, make_transport

    engine: Engine = next((e for e in ENGINES if e == plan.engine), "auto")  # the CLI checked it
    return make_transport(engine, use="bench", max_connections_per_key=per_key, verify=plan.verify)


async def _drive(
    run: _WorkerRecorder,
    plan: BenchPlan,
    sender: Sender,
    worker: int,
    start_at: float | None,
    on_progress: ProgressSink | None,
    on_tick: Callable[[_Tally, BenchResult], None] | None,
    should_stop: Callable[[], bool] | None,
    handle_sigint: bool,
) -> None:
    loop = asyncio.get_running_loop()
    sigint = handle_sigint and threading.current_thread() is threading.main_thread()
    if sigint:
        loop.add_signal_handler(signal.SIGINT, run.interrupt)
    gc_before = gctune.settle()  # no full collections stalling the schedule mid-run
    try:
        # settled first: its full collection (tens of ms) would otherwise delay t0 past start_at
        if start_at is not None and start_at > time.monotonic():
            await _sleep_until(start_at, run, should_stop)
        t0 = time.monotonic()
        if plan.start_at is not None:
            run.result.start_late_s = max(0.0, time.time() - plan.start_at)
        if start_at is not None and 0.0 <= t0 - start_at < LATE_START_S:
            t0 = start_at  # the asked instant, not the timer's wake-up (~1 ms after it)
        run.measure_start = t0 + plan.warmup_s
        run.result.started_at = time.time() + plan.warmup_s
        ticker = loop.create_task(_ticker(run, on_progress, on_tick, should_stop))
        try:
            if plan.model == "open":
                share = open_share(
                    plan.rate or 1.0,
                    plan.lane(worker),
                    plan.lanes,
                    plan.warmup_s,
                    plan.duration_s,
                    plan.requests,
                )
                run.measure_start = t0 + share.warmup / share.rate
                run.result.started_at = time.time() + share.warmup / share.rate
                await _open_model(run, plan, share, sender, t0)
            else:
                await _closed_model(run, plan, sender, worker)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            gctune.restore(gc_before)
        end = run.last_done if not run.result.interrupted else time.monotonic()
        run.cut(max(end, run.measure_start), final=True)
        run.result.elapsed_s = max(0.0, end - run.measure_start)
    finally:
        if sigint:
            loop.remove_signal_handler(signal.SIGINT)


async def _sleep_until(
    at: float, run: _WorkerRecorder, should_stop: Callable[[], bool] | None
) -> None:
    """Sleep until ``at`` (monotonic) in slices, so that Ctrl-C during a --start-at wait is
    seen soon (this process's SIGINT, or the parent's stop request in a worker)."""
    while not run.halted() and (left := at - time.monotonic()) > 0:
        await asyncio.sleep(min(left, 0.1))
        if should_stop is not None and should_stop():
            run.interrupt()


async def _ticker(
    run: _WorkerRecorder,
    on_progress: ProgressSink | None,
    on_tick: Callable[[_Tally, BenchResult], None] | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    """Every second: cut the interval, report progress; poll for a stop 10 times a second."""
    poll = 0.1 if should_stop is not None else PROGRESS_EVERY_S
    last = time.monotonic()
    while True:
        await asyncio.sleep(poll)
        if should_stop is not None and should_stop():
            run.interrupt()
        now = time.monotonic()
        if now - last < PROGRESS_EVERY_S - 1e-3:
            continue
        warmup = now < run.measure_start
        tally = run.cut(now) if not warmup else _Tally()
        if on_tick is not None:
            on_tick(tally, run.result)
        if on_progress is not None:
            total = run.result.latency
            on_progress(
                Progress(
                    now - run.measure_start,
                    run.result.requests,
                    tally.requests / (now - last),
                    total.percentile_ms(99.0),
                    sum(run.result.errors.values()),
                    run.in_flight,
                    warmup,
                    total.percentile_ms(50.0),
                    dict(run.result.status_codes),
                    dict(run.result.errors),
                )
            )
        run.recycle(tally)
        last = now


async def _closed_model(run: _WorkerRecorder, plan: BenchPlan, sender: Sender, worker: int) -> None:
    """This worker's share of C loops; with ``requests``, that many measured tickets in all."""
    lane = plan.lane(worker)
    loops = split_evenly(plan.concurrency or 1, plan.lanes)[lane]
    tickets = [split_evenly(plan.requests, plan.lanes)[lane]] if plan.requests else None
    stop_at = run.measure_start + (plan.duration_s if plan.duration_s is not None else math.inf)
    if tickets is not None:
        stop_at = math.inf
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(_closed_loop(run, sender, tickets, stop_at)) for _ in range(loops)]
    run.tasks.update(tasks)
    await asyncio.gather(*tasks, return_exceptions=True)


async def _closed_loop(
    run: _WorkerRecorder, sender: Sender, tickets: list[int] | None, stop_at: float
) -> None:
    clock = time.monotonic
    while not run.stopping:
        begin = clock()
        if begin >= stop_at:
            return
        measured = begin >= run.measure_start
        if measured and tickets is not None:
            if tickets[0] <= 0:
                return
            tickets[0] -= 1
        run.in_flight += 1
        try:
            agent, error, status, phases = await sender()
        finally:
            run.in_flight -= 1
        if measured:
            run.record(begin, clock(), agent, error, status, phases)
        else:
            run.result.warmup_requests += 1


async def _open_model(
    run: _WorkerRecorder, plan: BenchPlan, share: Share, sender: Sender, t0: float
) -> None:
    """Send request ``j`` at ``t0 + share.due_s(j)``; wait for a slot at ``max_in_flight``."""
    loop = asyncio.get_running_loop()
    clock = time.monotonic
    slots = asyncio.Semaphore(worker_cap(plan))
    service = run.result.service_time
    lag = run.result.schedule_lag
    assert service is not None and lag is not None
    tasks = run.tasks

    async def one(due: float, measured: bool) -> None:
        sent = clock()
        if measured:
            lag.record_us(max(0, int((sent - due) * 1e6)))
            run.sent += 1
            run.last_send = sent
        try:
            agent, error, status, phases = await sender()
        finally:
            run.in_flight -= 1
            slots.release()
        done = clock()
        if measured:
            service.record_us(max(0, int((done - sent) * 1e6)))
            # From the due time (wrk2), or from the send when it went out early (EARLY_S):
            # never shorter than the service time.
            run.record(due if due < sent else sent, done, agent, error, status, phases)
        else:
            run.result.warmup_requests += 1

    # Past the schedule's end nothing more is sent (IN_FLIGHT_POLICY): a generator that fell
    # behind shows as a lower achieved rate, not as a run that overstays its duration.
    end = t0 + share.total / share.rate
    for j in range(share.count):
        due = t0 + share.due_s(j)
        if clock() > end:
            break
        delay = due - clock() - EARLY_S
        while delay > 0 and not run.halted():  # in slices, so that Ctrl-C is seen soon
            await asyncio.sleep(delay if delay < 0.25 else 0.25)
            delay = due - clock() - EARLY_S
        if run.halted():
            break
        await slots.acquire()  # returns at once while a slot is free
        if run.halted():
            slots.release()
            break
        run.in_flight += 1
        task = loop.create_task(one(due, share.measured(j)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)


def _finish(run: _WorkerRecorder, plan: BenchPlan, target: Target, worker: int) -> None:
    """Per-agent tallies of single-agent targets, and the generator's verdict."""
    result = run.result
    if target.kind in ("url", "agent") and result.requests:
        phases = result.phases.copy() if result.phases is not None else None
        result.agents = {
            target.agents[0].id: AgentTally(result.requests, result.latency.copy(), phases)
        }
    if plan.model != "open" or plan.rate is None:
        return
    share = open_share(
        plan.rate, plan.lane(worker), plan.lanes, plan.warmup_s, plan.duration_s, plan.requests
    )
    # From this lane's first measured due time: lane w of L starts up to L/R after the others,
    # and a lane that began late by design has not fallen behind.
    first = share.count - share.measured_count
    offset = share.due_s(first) - share.warmup / share.rate if share.measured_count else 0.0
    judge_open(
        result,
        plan,
        share.worker_rate,
        run.sent,
        run.last_send - run.measure_start - offset,
        share.measured_count,
    )


def judge_open(
    result: BenchResult,
    plan: BenchPlan,
    rate: float,
    sent: int,
    last_send_s: float,
    planned: int | None = None,
) -> None:
    """Set achieved_rate and validity for ``rate`` (this process's part of the schedule);
    ``planned``: the measured requests this part was to send (``-n`` runs; lanes of a split
    that is not even send one fewer, and are judged on their own count, not the average)."""
    if plan.requests:
        count = planned if planned is not None else plan.requests / plan.lanes
        window = count / rate
    else:
        window = plan.duration_s or 0.0
    if result.interrupted:  # over the part that ran, as the header's throughput is
        window = result.elapsed_s
    result.achieved_rate = achieved_rate(sent, window, last_send_s if sent else None, rate)
    lag = result.schedule_lag.percentile_ms(99.0) if result.schedule_lag else None
    result.valid, result.invalid_reason = validity(rate, result.achieved_rate, lag)
    if result.interrupted:  # cut short: the rate over the part that ran
        result.valid, result.invalid_reason = True, None


# ---- what one request is --------------------------------------------------------------------


async def make_sender(
    plan: BenchPlan, target: Target, transport: Transport, router: object | None
) -> Sender:
    """The coroutine function sending one request of ``plan.endpoint`` to ``target``."""
    if target.kind == "type":
        from latcli.routing.router import Router

        assert isinstance(router, Router)
        return _routed_sender(plan, target.name, router)
    if target.kind == "mix":
        return _mix_sender(target, transport)
    agent = target.agents[0]
    if plan.endpoint == "stream":
        return await _stream_sender(agent, plan.message, transport)
    if plan.endpoint == "message":
        return await _message_sender(agent, plan.message, transport)
    if plan.endpoint == "health" and agent.protocol == "http":
        return _fixed_sender(agent.id, health_request(agent), read_health, transport)
    # discovery, and health of an A2A agent: the card GET, read as a card
    read = partial(read_card, base_url=agent.url + "/")
    return _fixed_sender(agent.id, card_request(agent), read, transport)


def _mix_sender(target: Target, transport: Transport) -> Sender:
    """The --targets lines in turn (vegeta's round robin); each request is reported under its
    line (``METHOD URL``, made unique by its line number) and pooled by origin."""
    names = [line.name for line in target.mix]
    turns = []
    for line, agent in zip(target.mix, target.agents, strict=True):
        name = line.name if names.count(line.name) == 1 else f"{line.name} (line {line.line})"
        headers = {**agent.headers, **line.headers}
        spec = RequestSpec(line.method, line.url, headers, line.body, agent.timeout,
                           min(agent.connect_timeout, agent.timeout))  # fmt: skip
        parts = urlsplit(line.url)
        turns.append((name, f"{parts.scheme}://{parts.netloc}", spec))
    cycle = itertools.cycle(turns)
    send = transport.send

    async def one() -> Answer:
        name, key, spec = next(cycle)
        reply = read_health(await send(key, spec))
        return name, reply.error, reply.status, None

    return one


def _fixed_sender(
    key: str, spec: RequestSpec, read: Callable[[Outcome], Reply], transport: Transport
) -> Sender:
    send = transport.send

    async def one() -> Answer:
        try:
            reply = read(await send(key, spec))
        except Exception as exc:  # see _unexpected
            return key, _unexpected(exc, key), None, None
        return key, reply.error, reply.status, None

    return one


def _unexpected(exc: Exception, agent_id: str) -> ErrorKind:
    """A request that raised (a hostile answer: 100k-deep JSON) is that request's
    ``bad_response``, logged once; raised, it would end its loop's task, and the gathered
    exception would leave a silently short run."""
    return unexpected_reply(exc, agent_id, 0.0).error or ErrorKind.BAD_RESPONSE


async def _message_sender(agent: Agent, text: str, transport: Transport) -> Sender:
    if agent.protocol == "http":
        return _fixed_sender(
            agent.id, http_message_request(agent, text), read_http_reply, transport
        )
    client = ProtocolClient(transport)
    found = await guarded(client.discover(agent), agent.id)
    card = found.card
    if card is None:  # no card now: every message rediscovers, and fails as discovery does

        async def rediscover() -> Answer:
            reply = await guarded(client.send_message(agent, text), agent.id)
            return agent.id, reply.error, reply.status, None

        return rediscover

    async def one() -> Answer:
        spec = a2a_message_request(agent, card, text, new_message_id())
        try:
            reply = read_a2a_reply(await transport.send(agent.id, spec), card.binding)
        except Exception as exc:  # see _unexpected
            return agent.id, _unexpected(exc, agent.id), None, None
        return agent.id, reply.error, reply.status, None

    return one


async def _stream_sender(agent: Agent, text: str, transport: Transport) -> Sender:
    """A streamed message per request (the card read once, as for ``message``): the phases
    of each answered stream travel with its answer."""
    client = ProtocolClient(transport)
    found = await guarded(client.discover(agent), agent.id)
    card = found.card
    if card is None:  # no card now: every message rediscovers, and fails as discovery does

        async def rediscover() -> Answer:
            return _streamed(agent.id, await guarded(client.stream_message(agent, text), agent.id))

        return rediscover
    if not can_stream(transport):  # every engine streams today; a new one must say so
        raise LatcliError(f"the {type(transport).__name__} engine cannot stream")
    stream = transport.stream

    async def one() -> Answer:
        spec = a2a_message_request(agent, card, text, new_message_id(), stream=True)
        try:
            async with stream(agent.id, spec) as outcome:
                reply = await read_stream(outcome, card)
        except Exception as exc:  # see _unexpected
            return agent.id, _unexpected(exc, agent.id), None, None
        return _streamed(agent.id, reply)

    return one


def _streamed(agent_id: str, reply: Reply) -> Answer:
    """An answered stream's phases in :data:`~latcli.reports.bench_model.PHASES` order."""
    s = reply.stream
    if reply.error is not None or s is None:
        return agent_id, reply.error, reply.status, None
    return (
        agent_id,
        None,
        reply.status,
        (s.first_event_ms, s.first_artifact_ms, s.gap_ms_max, s.total_ms),
    )


def _routed_sender(plan: BenchPlan, type_: str, router: object) -> Sender:
    """Type targets go through the Router (DESIGN §3).

    ``message``: ``router.send`` (strategy, breakers, failover); the request is the whole routed
    call and belongs to the agent that answered (or was tried last). ``health``: the replica
    the strategy picks now, checked with ``router.check`` (feeds EWMA and breaker);
    ``discovery``: the picked replica's card GET; ``stream``: ``router.stream`` (the strategy's
    choice, breakers, EWMA; no failover). When every breaker is open a health or
    discovery request is not sent and counts as ``breaker_open``.
    """
    from latcli.routing.router import Router

    assert isinstance(router, Router)
    text = plan.message

    async def message() -> Answer:
        routed = await router.send(type_, text)
        last = routed.attempts[-1] if routed.attempts else None
        status = last.status if last is not None else None
        if routed.ok:
            return routed.agent or NO_AGENT, None, status, None
        if last is None:
            return NO_AGENT, ErrorKind.BREAKER_OPEN, None, None
        return last.agent, ErrorKind(last.outcome), status, None

    async def health() -> Answer:
        agent = router.pick(type_)
        if agent is None:
            return NO_AGENT, ErrorKind.BREAKER_OPEN, None, None
        if plan.endpoint == "discovery":
            reply = await guarded(router.client.discover(agent), agent.id)
        else:
            reply = await router.check(agent.id)
        return agent.id, reply.error, reply.status, None

    async def stream() -> Answer:
        sent = await router.stream(type_, text)
        if sent is None:
            return NO_AGENT, ErrorKind.BREAKER_OPEN, None, None
        return _streamed(*sent)

    if plan.endpoint == "stream":
        return stream
    return message if plan.endpoint == "message" else health


# ---- --endpoint stream: who can be benched ---------------------------------------------------


def streaming_target(target: Target) -> Target:
    """A URL benched with ``--endpoint stream`` is an A2A agent (its card at the URL's root)."""
    if target.kind != "url":
        return target
    return replace(target, agents=tuple(replace(a, protocol="a2a") for a in target.agents))


def stream_refusal(target: Target, verify: bool | str = True) -> str | None:
    """Why ``target`` cannot take ``--endpoint stream`` (a usage error), or None.

    A plain-HTTP agent, a ``--targets`` mix, or a card that does not say
    ``capabilities.streaming`` is refused before any load; an agent whose card cannot be read
    now is not: its run fails as discovery does, and the report says so.
    """
    if target.kind == "mix":
        return "--endpoint stream sends A2A messages; a --targets file has its own requests"
    plain = [a.id for a in target.agents if a.protocol != "a2a"]
    if plain:
        return f"--endpoint stream needs A2A agents; {', '.join(plain)} speaks plain HTTP"
    return asyncio.run(_non_streaming(target.agents, verify))


async def _non_streaming(agents: tuple[Agent, ...], verify: bool | str) -> str | None:
    from latcli.transport.factory import make_transport

    transport = make_transport("auto", use="bench", max_connections_per_key=1, verify=verify)
    try:
        client = ProtocolClient(transport)
        found = await asyncio.gather(*(guarded(client.discover(a), a.id) for a in agents))
    finally:
        await transport.aclose()
    refused = [a.id for a, r in zip(agents, found, strict=True) if r.card and not r.card.streaming]
    if len(agents) == 1 and agents[0].adhoc and found[0].card is None:  # a URL: nothing else
        return f"{agents[0].url}: no A2A agent card ({found[0].message or found[0].error})"
    if refused:
        return (
            f"{', '.join(refused)}: the agent card does not say capabilities.streaming "
            "(bench it with --endpoint message)"
        )
    return None


# ---- the whole run in one process -----------------------------------------------------------


def run_loop(plan: BenchPlan, main: Coroutine[Any, Any, BenchResult]) -> BenchResult:
    """Run a bench process's event loop. The closed model runs on uvloop where there is one (as
    serve does): against nginx it cost 18 µs of CPU a request where asyncio's loop cost 28
    (docs/benchmarks.md). The open model stays on asyncio's: its timer wake-ups (EARLY_S) were
    measured there, and in A/B runs at 2,000 and 8,000 req/s uvloop's schedule lag was no better."""
    if plan.model == "closed":
        try:
            import uvloop
        except ImportError:  # Windows: no uvloop
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
