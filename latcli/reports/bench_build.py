"""Bench reports made: a run's (:func:`build_report`), and any :class:`ReportContent` (a run, an
``.hlog``, a merge) as its :class:`~latcli.reports.bench.BenchReport` (:func:`assemble`).

:class:`ReportContent` is the measured content before rounding, histograms included: merging
(:mod:`latcli.reports.bench_merge`) and judging (:mod:`latcli.reports.bench_sla`) work on it,
and :func:`content_of` gives it back from a report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from latcli.core.shards import ShardBlock, ShardRun, ShardSet, shard_block
from latcli.core.sla import Verdict
from latcli.reports.bench import AgentRow, BenchReport, Generator, RunHistograms
from latcli.reports.bench_model import IN_FLIGHT_POLICY, BenchPlan, BenchResult
from latcli.reports.bench_timeline import TimelinePoint, coarsened, per_s, point, round_or_none
from latcli.reports.bounded_histogram import (
    BoundedHistogram,
    Phases,
    Spectrum,
    phases_of,
    phases_summary,
)


@dataclass(frozen=True)
class AgentReport:
    """One agent's part of a run: every request counted, the answered ones timed."""

    requests: int
    latency: BoundedHistogram
    phases: Phases | None = None


@dataclass(frozen=True)
class ReportContent:
    """One report's content, whatever it came from (a run, a JSON file, an hlog, a merge)."""

    target: str
    target_kind: str | None
    endpoint: str | None
    model: str | None
    concurrency: int | None
    rate: float | None
    duration_s: float
    started_at: float
    ok: int
    errors: Mapping[str, int]
    latency: BoundedHistogram
    service_time: BoundedHistogram | None
    schedule_lag: BoundedHistogram | None
    agents: Mapping[str, AgentReport]
    throughput_rps: float
    target_rate: float | None
    achieved_rate: float
    schedule_lag_p99_ms: float | None
    valid: bool
    verdicts: Sequence[Verdict]
    invalid_reason: str | None = None
    interrupted: bool = False
    dropped_in_flight: int = 0
    policy: str = IN_FLIGHT_POLICY
    note: str | None = None
    runs: int = 1
    timeline: Sequence[TimelinePoint] = field(default_factory=tuple)
    status_codes: Mapping[str, int] = field(default_factory=dict)  # "200" -> count
    phases: Phases | None = None  # --endpoint stream
    workers: int | None = None  # processes that generated the load (None: not recorded)
    shard: ShardBlock | None = None  # a shard's block (latcli.core.shards)
    shards: ShardSet | None = None  # a merge of shards: which came, which are missing

    @property
    def requests(self) -> int:
        return self.ok + sum(self.errors.values())

    @property
    def goodput_rps(self) -> float:
        """Answered requests per second: what an ``rps`` threshold judges."""
        return per_s(self.ok, self.duration_s)


def assemble(run: ReportContent) -> BenchReport:
    """The report of ``run``: summaries from its histograms, values rounded for the JSON."""
    total = run.requests
    return BenchReport(
        target=run.target,
        endpoint=run.endpoint,
        model=run.model,
        concurrency=run.concurrency,
        rate=run.rate,
        duration_s=round(run.duration_s, 3),
        ok=run.ok,
        errors=dict(sorted(run.errors.items())),
        status_codes=dict(sorted(run.status_codes.items())),
        throughput_rps=round(run.throughput_rps, 3),
        goodput_rps=round(run.goodput_rps, 3),
        latency_ms=Spectrum.of(run.latency),
        phases_ms=phases_summary(run.phases),
        service_time_ms=Spectrum.of(run.service_time) if run.service_time else None,
        agents={
            agent_id: AgentRow(
                requests=a.requests,
                answered=a.latency.hist.count,
                share=round(per_s(a.requests, total), 6),
                latency_ms=Spectrum.of(a.latency),
                phases_ms=phases_summary(a.phases),
                latency=a.latency,
                phases=a.phases,
            )
            for agent_id, a in run.agents.items()
        },
        generator=Generator(
            target_rate=round_or_none(run.target_rate),
            achieved_rate=round(run.achieved_rate, 3),
            schedule_lag_ms_p99=round_or_none(run.schedule_lag_p99_ms),
            valid=run.valid,
            reason=run.invalid_reason,
        ),
        sla=tuple(run.verdicts),
        histograms=RunHistograms(run.latency, run.service_time, run.schedule_lag, run.phases),
        target_kind=run.target_kind,
        started_at=run.started_at,
        interrupted=run.interrupted,
        dropped_in_flight=run.dropped_in_flight,
        policy=run.policy,
        note=run.note,
        runs=run.runs,
        workers=run.workers,
        shard=run.shard,
        shards=run.shards,
        timeline=tuple(run.timeline),
    )


def content_of(report: BenchReport) -> ReportContent:
    """The content of a report (values as it states them), to merge or judge it again."""
    gen, hists = report.generator, report.histograms
    return ReportContent(
        target=report.target,
        target_kind=report.target_kind,
        endpoint=report.endpoint,
        model=report.model,
        concurrency=report.concurrency,
        rate=report.rate,
        duration_s=report.duration_s,
        started_at=report.started_at,
        ok=report.ok,
        errors=report.errors,
        latency=hists.latency,
        service_time=hists.service_time,
        schedule_lag=hists.schedule_lag,
        agents={k: AgentReport(a.requests, a.latency, a.phases) for k, a in report.agents.items()},
        throughput_rps=report.throughput_rps,
        target_rate=gen.target_rate,
        achieved_rate=gen.achieved_rate,
        schedule_lag_p99_ms=gen.schedule_lag_ms_p99,
        valid=gen.valid,
        verdicts=report.sla,
        invalid_reason=gen.reason,
        interrupted=report.interrupted,
        dropped_in_flight=report.dropped_in_flight,
        policy=report.policy,
        note=report.note,
        runs=report.runs,
        timeline=report.timeline,
        status_codes=report.status_codes,
        phases=hists.phases,
        workers=report.workers,
        shard=report.shard,
        shards=report.shards,
    )


def run_report(plan: BenchPlan, result: BenchResult, verdicts: Sequence[Verdict]) -> BenchReport:
    """The report ``latcli bench`` writes of a finished run: validity, rates and the schedule's
    lag as the run measured them (a closed model's achieved rate is its throughput)."""
    lag = result.schedule_lag.percentile_ms(99.0) if result.schedule_lag else None
    achieved = result.achieved_rate
    return build_report(
        plan,
        result,
        verdicts,
        valid=result.valid,
        target_rate=plan.share_rate,
        achieved_rate=achieved if achieved is not None else result.throughput_rps,
        schedule_lag_p99_ms=lag,
    )


def build_report(
    plan: BenchPlan,
    result: BenchResult,
    verdicts: Sequence[Verdict],
    *,
    valid: bool,
    target_rate: float | None,
    achieved_rate: float,
    schedule_lag_p99_ms: float | None,
    policy: str = IN_FLIGHT_POLICY,
) -> BenchReport:
    """The report of one run; ``verdicts`` as evaluated by the caller (see
    :func:`~latcli.reports.bench_sla.observation`). ``duration_s`` is the measured time,
    warm-up excluded."""
    run = ReportContent(
        target=plan.target,
        target_kind=plan.target_kind,
        endpoint=plan.endpoint,
        model=plan.model,
        concurrency=plan.share_concurrency,
        rate=plan.share_rate,
        duration_s=result.elapsed_s,
        started_at=result.started_at,
        ok=result.ok,
        errors=dict(result.errors),
        latency=BoundedHistogram.of(result.latency),
        service_time=BoundedHistogram.of(result.service_time) if result.service_time else None,
        schedule_lag=BoundedHistogram.of(result.schedule_lag) if result.schedule_lag else None,
        agents={
            k: AgentReport(t.requests, BoundedHistogram.of(t.latency), phases_of(t.phases))
            for k, t in result.agents.items()
        },
        throughput_rps=result.throughput_rps,
        target_rate=target_rate,
        achieved_rate=achieved_rate,
        schedule_lag_p99_ms=schedule_lag_p99_ms,
        valid=valid,
        verdicts=list(verdicts),
        invalid_reason=result.invalid_reason,
        interrupted=result.interrupted,
        dropped_in_flight=result.dropped_in_flight,
        policy=policy,
        timeline=coarsened(
            [
                point(
                    iv.start_s,
                    iv.length_s,
                    iv.count + iv.errors,
                    iv.errors,
                    BoundedHistogram.of(iv.histogram),
                    phases_of(iv.phase_tally()),
                )
                for iv in result.intervals
            ]
        ),
        status_codes={str(k): v for k, v in result.status_codes.items()},
        phases=phases_of(result.phases),
        workers=plan.workers,
        shard=_shard_of(plan),
    )
    return assemble(run)


def _shard_of(plan: BenchPlan) -> ShardBlock | None:
    """A shard's block (``--shard I/N`` with N > 1; 0/1 is the whole run)."""
    if plan.shards <= 1:
        return None
    whole = ShardRun(
        target=plan.target,
        endpoint=plan.endpoint,
        model=plan.model,
        rate=plan.rate,
        concurrency=plan.concurrency,
        duration_s=plan.duration_s,
        requests=plan.requests,
        warmup_s=plan.warmup_s,
    )
    return shard_block(plan.shard, plan.shards, plan.start_at, whole)
