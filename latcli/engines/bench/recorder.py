"""One bench worker's measurements: the hot-path record of each request, and the ~1 s
intervals cut from them (bounded: neighbours merge beyond :data:`MAX_INTERVALS`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from latcli.core.errors import ErrorKind
from latcli.reports.bench_model import (
    AgentTally,
    BenchPlan,
    BenchResult,
    IntervalSample,
    PhaseTally,
    PhaseValues,
)
from latcli.reports.histogram import LatencyHistogram

PROGRESS_EVERY_S = 1.0
MAX_INTERVALS = 3600  # an hour of 1 s intervals, encoded (~100 B each); then neighbours merge


@dataclass
class IntervalTally:
    """The current interval: a histogram per ~1 s, merged into the total at each cut."""

    hist: LatencyHistogram = field(default_factory=LatencyHistogram)  # answered requests only
    errors: int = 0
    requests: int = 0
    phases: PhaseTally | None = None  # --endpoint stream


class WorkerRecorder:
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
        self.spare: IntervalTally | None = self._tally()
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

    def _tally(self) -> IntervalTally:
        return IntervalTally(phases=PhaseTally()) if self.streams else IntervalTally()

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

    def cut(self, now: float, final: bool = False) -> IntervalTally:
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
            result.intervals = halve(result.intervals)
            self.interval_s *= 2
        return tally

    def recycle(self, tally: IntervalTally) -> None:
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


def halve(intervals: list[IntervalSample]) -> list[IntervalSample]:
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
