"""The closed model (``concurrency``): C loops, each send -> await -> send; latency from the
send. A worker runs its lane's share of the loops (and of ``-n``'s measured requests)."""

from __future__ import annotations

import asyncio
import math
import time

from latcli.core.schedule import split_evenly
from latcli.engines.bench.answer import Sender
from latcli.engines.bench.recorder import WorkerRecorder
from latcli.reports.bench_model import BenchPlan


async def run_closed(run: WorkerRecorder, plan: BenchPlan, sender: Sender, worker: int) -> None:
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
    run: WorkerRecorder, sender: Sender, tickets: list[int] | None, stop_at: float
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
