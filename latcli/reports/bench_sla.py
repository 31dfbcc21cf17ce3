"""A bench run judged: what its SLA thresholds measure, and its exit code."""

from __future__ import annotations

import dataclasses

from latcli.core.errors import ExitCode
from latcli.core.sla import Measurements
from latcli.reports.bench import BenchReport
from latcli.reports.bench_build import ReportContent
from latcli.reports.bench_model import BenchResult
from latcli.reports.bounded_histogram import BoundedHistogram


def observation(result: BenchResult) -> Measurements:
    """What the SLA thresholds judge: latency of answered requests, ``rps`` as goodput
    (answered requests over the measured time), error rates over every request."""
    h = result.latency
    errors, requests = sum(result.errors.values()), result.requests
    phases = None
    if result.phases is not None:
        phases = {
            p: _observe_hist(BoundedHistogram.of(x), errors, requests)
            for p, x in result.phases.hists.items()
        }
    return Measurements(
        samples=h.count,
        percentile=h.percentile_ms,
        mean_ms=h.mean_ms,
        min_ms=h.min_ms,
        max_ms=h.max_ms,
        errors=errors,
        requests=requests,
        rps=result.goodput_rps if result.elapsed_s > 0 else None,
        phases=phases,
    )


def _observe_hist(h: BoundedHistogram, errors: int, requests: int) -> Measurements:
    n = h.hist.count
    return Measurements(
        samples=n,
        percentile=h.percentile_ms,
        mean_ms=h.hist.mean_ms,
        min_ms=h.min_us / 1000.0 if n else None,
        max_ms=h.max_us / 1000.0 if n else None,
        errors=errors,
        requests=requests,
        rps=None,
    )


def observe(run: ReportContent) -> Measurements:
    """:func:`observation` of a report's content (a merge is judged again on its merged data)."""
    errors = sum(run.errors.values())
    phases = None
    if run.phases is not None:
        phases = {p: _observe_hist(h, errors, run.requests) for p, h in run.phases.items()}
    return dataclasses.replace(
        _observe_hist(run.latency, errors, run.requests),
        rps=run.goodput_rps if run.duration_s > 0 else None,
        phases=phases,
    )


def answered_none(report: BenchReport) -> bool:
    """No request was answered: nothing was measured, whatever the thresholds say."""
    return report.ok == 0


def exit_code(report: BenchReport, *, judge_sla: bool = True) -> ExitCode:
    """1 for a run with no answered request, 3 for a run that did not hold its rate, 1 for an
    SLA breach (unless not ``judge_sla``: a shard's), else 0. An interrupted run's 130 is the
    caller's: it knows, and a re-rendered report is no longer interrupted."""
    if answered_none(report):
        return ExitCode.FAILED
    if not report.generator.valid:
        return ExitCode.INVALID_RUN
    if judge_sla and any(not v.passed for v in report.sla):
        return ExitCode.FAILED
    return ExitCode.OK
