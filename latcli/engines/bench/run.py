"""One bench worker's run of its share of the plan, in this event loop: the start (lined up
with the other workers, ``--start-at``), the closed or open model, progress every second, Ctrl-C.

* Closed model: :mod:`latcli.engines.bench.closed_model`; open model (wrk2):
  :mod:`latcli.engines.bench.open_model`; what one request is: :mod:`latcli.engines.bench.senders`.
* End of a run: :data:`~latcli.reports.bench_model.IN_FLIGHT_POLICY`.
* Engine: raw by default (docs/benchmarks.md); httpx stays selectable (HTTP/2). Both are the
  same Transport with the same error kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from latcli.core.schedule import split_evenly
from latcli.engines import gctune
from latcli.engines.bench.answer import Sender
from latcli.engines.bench.closed_model import run_closed
from latcli.engines.bench.open_model import judge_share, lane_share, run_open, worker_cap
from latcli.engines.bench.recorder import PROGRESS_EVERY_S, IntervalTally, WorkerRecorder
from latcli.engines.bench.senders import make_sender
from latcli.engines.bench.targets import Target
from latcli.reports.bench_model import AgentTally, BenchPlan, BenchResult, Progress, ProgressSink
from latcli.transport.base import Transport

# --start-at: a schedule that began later than this is late (a process or pod started after
# the asked time, not one event-loop wake-up): it starts now, and the command warns.
LATE_START_S = 0.05


async def run_share(
    plan: BenchPlan,
    target: Target,
    *,
    worker: int = 0,
    start_at: float | None = None,
    on_progress: ProgressSink | None = None,
    on_tick: Callable[[IntervalTally, BenchResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    handle_sigint: bool = True,
) -> BenchResult:
    """Run worker ``worker``'s share of ``plan`` in this event loop and return what it measured.

    ``start_at`` (``time.monotonic``) lines up the workers' schedules; ``should_stop`` is polled
    each tick (the parent's Ctrl-C in worker processes); with ``handle_sigint`` a SIGINT
    interrupts the run instead of raising KeyboardInterrupt.
    """
    run = WorkerRecorder(plan, per_agent=target.kind in ("type", "mix"))
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
    run: WorkerRecorder,
    plan: BenchPlan,
    sender: Sender,
    worker: int,
    start_at: float | None,
    on_progress: ProgressSink | None,
    on_tick: Callable[[IntervalTally, BenchResult], None] | None,
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
                share = lane_share(plan, worker)
                run.measure_start = t0 + share.warmup / share.rate
                run.result.started_at = time.time() + share.warmup / share.rate
                await run_open(run, plan, share, sender, t0)
            else:
                await run_closed(run, plan, sender, worker)
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
    at: float, run: WorkerRecorder, should_stop: Callable[[], bool] | None
) -> None:
    """Sleep until ``at`` (monotonic) in slices, so that Ctrl-C during a --start-at wait is
    seen soon (this process's SIGINT, or the parent's stop request in a worker)."""
    while not run.halted() and (left := at - time.monotonic()) > 0:
        await asyncio.sleep(min(left, 0.1))
        if should_stop is not None and should_stop():
            run.interrupt()


async def _ticker(
    run: WorkerRecorder,
    on_progress: ProgressSink | None,
    on_tick: Callable[[IntervalTally, BenchResult], None] | None,
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
        tally = run.cut(now) if not warmup else IntervalTally()
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


def _finish(run: WorkerRecorder, plan: BenchPlan, target: Target, worker: int) -> None:
    """Per-agent tallies of single-agent targets, and the generator's verdict."""
    result = run.result
    if target.kind in ("url", "agent") and result.requests:
        phases = result.phases.copy() if result.phases is not None else None
        result.agents = {
            target.agents[0].id: AgentTally(result.requests, result.latency.copy(), phases)
        }
    if plan.model == "open":
        judge_share(run, plan, worker)


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
