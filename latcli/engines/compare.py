"""``latcli compare``: is a candidate bench run slower than a baseline, or is it noise?

The samples are the runs' per-interval values (``timeline``: one point per second) of one
metric, pooled over every file of a side; the statistics are :mod:`latcli.core.stats_compare`.
The report is the ``latcli.compare/v1`` document (DESIGN §6): ``metric``, ``baseline`` and
``candidate`` (files, ``n`` intervals, median), ``ratio`` of medians (candidate / baseline),
``ci`` (bootstrap), ``p_value`` (two-sided Mann–Whitney U), ``verdict``; ``verdict`` is null
and ``reason`` says why when a side has too few intervals to decide.

Per interval: p50/p99 as the point gives them, other percentiles and the mean from the point's
histogram (``histograms.timeline``), ``rps`` and ``errors / requests`` from its counts, a stream
phase from ``phases_ms[PHASE]["pNN"]`` on the point (a report without it is a clear error). An
interval cut short by the end of the run, or with failures only (for latencies), is left out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

from latcli.core.errors import ExitCode, LatcliError
from latcli.core.stats_compare import (
    bootstrap_ratio_ci,
    can_reject,
    decide,
    mann_whitney_u,
    median,
    min_samples_per_side,
)
from latcli.reports.bench import BenchReport
from latcli.reports.bench_timeline import TimelinePoint
from latcli.reports.compare import CompareReport, Metric, Side

PHASES = ("first_event", "working", "first_artifact", "gap", "total")
METRICS_HELP = (
    "p50, p90, p99 (any pNN), mean, rps, error_rate, or a stream phase: first_artifact.p95"
)
_NAMED = {"mean": "ms", "rps": "req/s", "error_rate": "fraction"}
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")
# A last interval shorter than this share of the run's usual one is cut short by the end of the
# run (requests awaited, none sent): its rate is not a sample of the steady state.
_PARTIAL_SHARE = 0.5


class CompareError(LatcliError):
    """Input compare cannot use (a file, a metric, an option); one line, exit 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


def parse_metric(text: str) -> Metric:
    """``--metric`` text as a Metric; CompareError naming the choices otherwise."""
    raw = text.strip().lower()
    if raw in _NAMED:
        return Metric(raw, _NAMED[raw])
    head, _, tail = raw.partition(".")
    phase, pct = (head, tail) if head in PHASES else (None, raw)
    m = _PERCENTILE.match(pct)
    if m and 0.0 < float(m.group(1)) <= 100.0:
        p = float(m.group(1))
        return Metric(f"{phase}.p{p:g}" if phase else f"p{p:g}", "ms", p, phase)
    raise CompareError(f"unknown metric {text!r} (expected {METRICS_HELP})")


def _percentile(point: TimelinePoint, p: float) -> float:
    """The point's percentile: as the report gives p50/p99, else from its histogram."""
    if p in (50.0, 99.0):
        listed = point.percentile_ms(p)
        if listed is not None:
            return listed
    if point.latency is None:
        raise CompareError(f"no per-interval histograms for p{p:g} (only p50 and p99)")
    # clamped to the interval's exact min and max, which travel beside the encoding
    return point.latency.percentile_ms(p) or 0.0


def _mean(point: TimelinePoint) -> float:
    if point.latency is None:
        raise CompareError("no per-interval histograms for the mean")
    hist = point.latency.hist
    return float(hist.sum_us) / float(hist.count) / 1000.0


def _phase(point: TimelinePoint, metric: Metric) -> float | None:
    phases = point.spectra()
    if phases is None:
        raise CompareError(
            f"no per-interval stream phases for {metric.name} "
            "(timeline points carry phases_ms with `bench --endpoint stream`)"
        )
    spectrum = phases.get(metric.phase or "")
    return None if spectrum is None else spectrum.get(f"p{metric.percentile:g}")


def _value(point: TimelinePoint, m: Metric) -> float | None:
    """The metric in one interval; None when the interval has nothing to measure."""
    if m.name == "rps":
        return float(point.rps)
    if point.requests == 0:
        return None
    if m.name == "error_rate":
        return point.errors / point.requests
    if point.requests == point.errors:  # failures only: how fast they failed is no answer time
        return None
    if m.phase is not None:
        return _phase(point, m)
    if m.name == "mean":
        return _mean(point)
    assert m.percentile is not None
    return _percentile(point, m.percentile)


def run_samples(report: BenchReport, metric: Metric, source: str) -> tuple[list[float], float]:
    """Per-interval values of ``metric`` in one bench report, and its usual interval length.

    Drops a last interval cut short by the end of the run (under half the usual length).
    """
    points = report.timeline
    lengths = sorted(float(p.length_s) for p in points) or [1.0]
    usual = lengths[len(lengths) // 2]
    values = []
    try:
        for point in points:
            if float(point.length_s) < _PARTIAL_SHARE * usual:
                continue
            value = _value(point, metric)
            if value is not None:
                values.append(value)
    except CompareError as exc:
        raise CompareError(f"{source}: {exc}") from None
    return values, usual


def side_of(files: Sequence[str | Path], metric: Metric) -> Side:
    """Read every file of one side (ReportError, exit 2, for a file that is not a report)."""
    from latcli.reports.bench_load import load_report

    samples: list[float] = []
    intervals: list[float] = []
    endpoints: set[str] = set()
    warnings: list[str] = []
    for f in files:
        report = load_report(f)
        values, usual = run_samples(report, metric, str(f))
        samples += values
        intervals.append(usual)
        if report.endpoint:  # an .hlog has none
            endpoints.add(report.endpoint)
        warnings += _doubts(report, str(f))
    return Side(
        tuple(str(f) for f in files),
        tuple(samples),
        max(intervals, default=1.0),
        frozenset(endpoints),
        tuple(warnings),
    )


def _doubts(report: BenchReport, source: str) -> list[str]:
    out = []
    if not report.generator.valid:
        out.append(f"{source}: the run did not hold its rate (invalid run)")
    if report.interrupted:
        out.append(f"{source}: the run was interrupted")
    return out


# --- the decision --------------------------------------------------------------------------


def _too_few(base: Side, cand: Side, alpha: float) -> str | None:
    if can_reject(base.n, cand.n, alpha):
        return None
    empty = [name for name, side in (("baseline", base), ("candidate", cand)) if not side.n]
    if empty:
        return f"no interval with a value in the {' and '.join(empty)} (did every request fail?)"
    need = min_samples_per_side(alpha)
    seconds = need * max(base.interval_s, cand.interval_s)
    return (
        f"too few intervals to decide: baseline {base.n}, candidate {cand.n}; the U test "
        f"needs at least {need} per side to reach p <= {alpha:g}: run each side for at least "
        f"{seconds:.0f}s (latcli bench -d {seconds:.0f}s), longer to see small differences"
    )


def _notes(base: Side, cand: Side) -> tuple[str, ...]:
    notes = [*base.warnings, *cand.warnings]
    if base.endpoints and cand.endpoints and base.endpoints != cand.endpoints:
        sides = (", ".join(sorted(s.endpoints)) for s in (base, cand))
        notes.append("the sides measure different endpoints: {} vs {}".format(*sides))
    if base.n and len(set(base.samples)) == 1 and cand.n and len(set(cand.samples)) == 1:
        notes.append("every interval has the same value on each side: no spread to judge by")
    return tuple(notes)


def compare(
    baseline: Side,
    candidate: Side,
    metric: Metric,
    *,
    confidence: float = 0.95,
    threshold: float = 0.05,
    seed: int = 1,
) -> CompareReport:
    """Decide (see :func:`latcli.core.stats_compare.decide`); the bootstrap is seeded by
    ``seed``."""
    if not 0.5 <= confidence < 1.0:
        raise CompareError(f"confidence {confidence:.2%} out of range (expected 50% ... 99.9%)")
    if not 0.0 <= threshold < 1.0:
        raise CompareError(f"threshold {threshold:.2%} out of range (expected 0% ... 99%)")
    alpha = round(1.0 - confidence, 12)
    why = _too_few(baseline, candidate, alpha)
    test = ratio = ci = verdict = None
    if why is None:
        test = mann_whitney_u(baseline.samples, candidate.samples)
        mid = median(baseline.samples)
        ratio = median(candidate.samples) / mid if mid != 0.0 else None
        ci = bootstrap_ratio_ci(
            baseline.samples, candidate.samples, confidence, random.Random(seed)
        )
        verdict = decide(
            test, baseline.n, candidate.n, ratio, alpha, threshold, metric.higher_is_worse
        )
    return CompareReport(
        metric, baseline, candidate, confidence, threshold, seed,
        test, ratio, ci, verdict, why, _notes(baseline, candidate),
    )  # fmt: skip


def split_sides(files: Sequence[str]) -> tuple[list[str], list[str]]:
    """``A B`` or ``A1 A2 ... vs B1 B2 ...``: the files of each side (CompareError else)."""
    if "vs" in files:
        at = files.index("vs")
        base, cand = list(files[:at]), list(files[at + 1 :])
        if "vs" in cand:
            raise CompareError("one 'vs' only: BASELINE... vs CANDIDATE...")
        if not base or not cand:
            raise CompareError("each side of 'vs' needs at least one bench report")
        return base, cand
    if len(files) != 2:
        raise CompareError(
            f"{'one file' if len(files) == 1 else f'{len(files)} files'}: give BASELINE "
            "CANDIDATE, or several runs a side as BASELINE... vs CANDIDATE..."
        )
    return [files[0]], [files[1]]
