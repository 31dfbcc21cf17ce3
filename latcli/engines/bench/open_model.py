"""The open model (``rate``, wrk2): request ``j`` is due at ``t0 + due_s(j)`` (``schedule.Share``).

The scheduler sleeps until the due time (``asyncio.sleep`` -> ``loop.call_at``) and sends every
request already due. Latency counts from the *due* time, so a stall of the target or of the
generator shows in the percentiles (no coordinated omission); ``service_time`` keeps the time
from the actual send, ``schedule_lag`` the send minus the due time. At ``max_in_flight``
outstanding requests the scheduler waits for a slot, and the late requests still count from
their due time. After the run the generator is judged: did it hold the asked rate?
"""

from __future__ import annotations

import asyncio
import time

from latcli.core.schedule import Share, achieved_rate, open_share, validity
from latcli.engines.bench.answer import Sender
from latcli.engines.bench.recorder import WorkerRecorder
from latcli.reports.bench_model import BenchPlan, BenchResult

DEFAULT_MAX_IN_FLIGHT = 1000  # open model: outstanding requests before the schedule waits
# The event loop's timers wake in whole milliseconds (epoll's timeout is rounded up to 1 ms), so
# a request due between two wake-ups would leave up to 1 ms late: the open model wakes a
# millisecond early and sends what is due within it. An early request is timed from its send.
EARLY_S = 0.001


def worker_cap(plan: BenchPlan) -> int:
    """This process's part of the open model's in-flight cap (the cap is global)."""
    return max(1, (plan.max_in_flight or DEFAULT_MAX_IN_FLIGHT) // plan.lanes)


async def run_open(
    run: WorkerRecorder, plan: BenchPlan, share: Share, sender: Sender, t0: float
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


def lane_share(plan: BenchPlan, worker: int) -> Share:
    """Worker ``worker``'s lane of the schedule: its due times, warm-up and measured count."""
    return open_share(
        plan.rate or 1.0,
        plan.lane(worker),
        plan.lanes,
        plan.warmup_s,
        plan.duration_s,
        plan.requests,
    )


def judge_share(run: WorkerRecorder, plan: BenchPlan, worker: int) -> None:
    """The generator's verdict on this worker's lane, from what its recorder counted."""
    share = lane_share(plan, worker)
    # From this lane's first measured due time: lane w of L starts up to L/R after the others,
    # and a lane that began late by design has not fallen behind.
    first = share.count - share.measured_count
    offset = share.due_s(first) - share.warmup / share.rate if share.measured_count else 0.0
    judge_open(
        run.result,
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
