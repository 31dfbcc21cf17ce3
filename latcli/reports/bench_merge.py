"""Several bench reports (runs, workers, machines, shards) as one, exactly.

Merging adds histograms, never raw samples (DESIGN §5): the merge of two reports has the same
counts, percentiles, min, max and mean as one run that recorded every value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from latcli.core.shards import ShardError, check_shards
from latcli.core.sla import Threshold, evaluate, parse_threshold
from latcli.reports.bench import BenchReport
from latcli.reports.bench_build import AgentReport, ReportContent, assemble, content_of
from latcli.reports.bench_sla import observe
from latcli.reports.bench_timeline import merged_timeline, per_s
from latcli.reports.bounded_histogram import BoundedHistogram, merge_hists, merge_phases
from latcli.reports.files import ReportError


def merge_reports(
    reports: Sequence[BenchReport],
    *,
    thresholds: Sequence[Threshold] | None = None,
    names: Sequence[str] | None = None,
) -> BenchReport:
    """Several reports (runs, workers, machines) as one.

    Histograms are decoded and added; counts summed. Runs whose measured periods overlap
    ran together: their throughputs, rates and concurrencies add up. Runs one after another:
    throughput is all requests over all measured time. Timelines are laid on one wall clock
    (from each ``started_at``) and cut into buckets of the longest run's interval: points in
    one bucket are merged (requests and errors summed, each run's rate added, percentiles from
    the merged histograms), so runs one after another follow each other with their gap.
    SLA verdicts are evaluated again on the merged data, against ``thresholds`` if given, else
    against the reports' own expressions. One report and no ``thresholds``: returned as it is
    (a re-render changes nothing).

    Shards (reports with a ``shard`` block) are parts of one run: they are merged as
    concurrent whatever their clocks say, and the result's ``shards`` says which came and
    which are missing (``names``, the files, name them in errors).
    Raises ReportError for reports of different endpoints or models, and for shards mixed with
    other reports, shards of different runs, or a shard given twice.
    """
    if not reports:
        raise ReportError("no reports to merge")
    names = list(names) if names is not None else [f"report {i + 1}" for i in range(len(reports))]
    try:
        shards = check_shards([r.shard for r in reports], names)
    except ShardError as exc:
        raise ReportError(str(exc)) from None
    if len(reports) == 1 and thresholds is None and shards is None:
        return reports[0]  # a value: a re-render changes nothing
    runs = [content_of(r) for r in reports]
    merged = _merge_runs(runs, together=True if shards is not None else None)
    if shards is not None:
        shards = dataclasses.replace(shards, overlapped=_overlapping(runs))
        merged = dataclasses.replace(merged, shards=shards)
    chosen = list(thresholds) if thresholds is not None else _thresholds_of(runs)
    return assemble(dataclasses.replace(merged, verdicts=evaluate(chosen, observe(merged))))


def _thresholds_of(runs: Iterable[ReportContent]) -> list[Threshold]:
    seen: dict[tuple[str, str], Threshold] = {}
    for run in runs:
        for v in run.verdicts:
            seen.setdefault((v.name, v.expr), parse_threshold(v.expr, v.name))
    return list(seen.values())


def _one(values: Iterable[str | None], what: str) -> str | None:
    known = list(dict.fromkeys(v for v in values if v is not None))
    if len(known) > 1:
        raise ReportError(f"cannot merge reports of different {what}s: {', '.join(known)}")
    return known[0] if known else None


def _overlapping(runs: Sequence[ReportContent]) -> bool:
    """True when every measured period overlaps the others (runs without a start time are
    taken as concurrent: the workers or machines of one run)."""
    if any(r.started_at <= 0 for r in runs):
        return True
    return max(r.started_at for r in runs) < min(r.started_at + r.duration_s for r in runs)


def _combine(values: Iterable[float | None], concurrent: bool) -> float | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return sum(known) if concurrent else max(known)


def _merged_agent(parts: Sequence[AgentReport]) -> AgentReport:
    return AgentReport(
        sum(a.requests for a in parts),
        merge_hists(a.latency for a in parts) or BoundedHistogram(),
        merge_phases(a.phases for a in parts),
    )


def _merge_runs(runs: Sequence[ReportContent], together: bool | None = None) -> ReportContent:
    if together is None:
        together = _overlapping(runs)
    total_s = sum(r.duration_s for r in runs)
    duration = max(r.duration_s for r in runs) if together else total_s
    errors: dict[str, int] = {}
    statuses: dict[str, int] = {}
    parts: dict[str, list[AgentReport]] = {}
    for r in runs:
        for kind, n in r.errors.items():
            errors[kind] = errors.get(kind, 0) + n
        for code, n in r.status_codes.items():
            statuses[code] = statuses.get(code, 0) + n
        for agent_id, a in r.agents.items():
            parts.setdefault(agent_id, []).append(a)
    agents = {agent_id: _merged_agent(mine) for agent_id, mine in parts.items()}
    requests = sum(r.requests for r in runs)
    if together:
        throughput = sum(r.throughput_rps for r in runs)
        achieved = sum(r.achieved_rate for r in runs)
    else:
        throughput = per_s(requests, total_s)
        achieved = sum(r.achieved_rate * r.duration_s for r in runs) / total_s if total_s else 0.0
    lag = merge_hists(r.schedule_lag for r in runs)
    concurrency = _combine((r.concurrency for r in runs), together)
    starts = [r.started_at for r in runs if r.started_at > 0]
    notes = dict.fromkeys(r.note for r in runs if r.note)
    return ReportContent(
        target=", ".join(dict.fromkeys(r.target for r in runs)),
        target_kind=_one((r.target_kind for r in runs), "target kind"),
        endpoint=_one((r.endpoint for r in runs), "endpoint"),
        model=_one((r.model for r in runs), "model"),
        concurrency=None if concurrency is None else int(concurrency),
        rate=_combine((r.rate for r in runs), together),
        duration_s=duration,
        started_at=min(starts, default=0.0),
        ok=sum(r.ok for r in runs),
        errors=errors,
        latency=merge_hists(r.latency for r in runs) or BoundedHistogram(),
        service_time=merge_hists(r.service_time for r in runs),
        schedule_lag=lag,
        agents=agents,
        throughput_rps=throughput,
        target_rate=_combine((r.target_rate for r in runs), together),
        achieved_rate=achieved,
        schedule_lag_p99_ms=(
            lag.percentile_ms(99.0)
            if lag is not None and all(r.schedule_lag for r in runs)
            else _combine((r.schedule_lag_p99_ms for r in runs), concurrent=False)
        ),
        valid=all(r.valid for r in runs),
        verdicts=[],
        invalid_reason="; ".join(dict.fromkeys(r.invalid_reason for r in runs if r.invalid_reason))
        or None,
        interrupted=any(r.interrupted for r in runs),
        dropped_in_flight=sum(r.dropped_in_flight for r in runs),
        policy=runs[0].policy,
        note=" · ".join(notes) or None,
        runs=sum(r.runs for r in runs),
        timeline=merged_timeline(
            [(r.started_at, r.timeline) for r in runs], min(starts, default=0.0)
        ),
        status_codes=statuses,
        phases=merge_phases(r.phases for r in runs),
        workers=None if any(r.workers is None for r in runs) else sum(r.workers or 0 for r in runs),
    )
