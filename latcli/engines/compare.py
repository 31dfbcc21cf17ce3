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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from latcli.core.errors import ExitCode, LatcliError
from latcli.core.stats_compare import (
    bootstrap_ratio_ci,
    can_reject,
    decide,
    mann_whitney_u,
    median,
    min_samples_per_side,
)
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


def _percentile(doc: Mapping[str, Any], index: int, point: Mapping[str, Any], p: float) -> float:
    """The point's percentile: its own field for p50/p99, else from its histogram."""
    key = f"p{p:g}_ms"
    if point.get(key) is not None:
        return float(point[key])
    hists = (doc.get("histograms") or {}).get("timeline") or []
    if index >= len(hists) or not hists[index]:
        raise CompareError(f"no per-interval histograms for p{p:g} (only p50 and p99)")
    from latcli.reports.histogram import LatencyHistogram

    h = hists[index]
    hist = LatencyHistogram.decode(str(h["encoded"]), h.get("sum_us"))
    value = hist.percentile_ms(p) or 0.0
    # decoding widens min and max to their buckets' edges; the exact ones travel beside them
    return min(max(value, float(h["min_us"]) / 1000.0), float(h["max_us"]) / 1000.0)


def _mean(doc: Mapping[str, Any], index: int) -> float:
    hists = (doc.get("histograms") or {}).get("timeline") or []
    if index >= len(hists) or not hists[index]:
        raise CompareError("no per-interval histograms for the mean")
    h = hists[index]
    return float(h["sum_us"]) / float(h["count"]) / 1000.0


def _phase(point: Mapping[str, Any], metric: Metric) -> float | None:
    phases = point.get("phases_ms")
    if not isinstance(phases, Mapping):
        raise CompareError(
            f"no per-interval stream phases for {metric.name} "
            "(timeline points carry phases_ms with `bench --endpoint stream`)"
        )
    value = (phases.get(metric.phase) or {}).get(f"p{metric.percentile:g}")
    return None if value is None else float(value)


def _value(doc: Mapping[str, Any], i: int, point: Mapping[str, Any], m: Metric) -> float | None:
    """The metric in one interval; None when the interval has nothing to measure."""
    requests, errors = int(point["requests"]), int(point.get("errors", 0))
    if m.name == "rps":
        return float(point["rps"])
    if requests == 0:
        return None
    if m.name == "error_rate":
        return errors / requests
    if requests == errors:  # failures only: how fast they failed is no answer time
        return None
    if m.phase is not None:
        return _phase(point, m)
    if m.name == "mean":
        return _mean(doc, i)
    assert m.percentile is not None
    return _percentile(doc, i, point, m.percentile)


def run_samples(doc: Mapping[str, Any], metric: Metric, source: str) -> tuple[list[float], float]:
    """Per-interval values of ``metric`` in one bench report, and its usual interval length.

    Drops a last interval cut short by the end of the run (under half the usual length).
    """
    points = doc.get("timeline")
    if not isinstance(points, list):
        raise CompareError(f"{source}: no timeline (a report from `latcli bench -o`?)")
    lengths = sorted(float(p["length_s"]) for p in points) or [1.0]
    usual = lengths[len(lengths) // 2]
    values = []
    try:
        for i, point in enumerate(points):
            if float(point["length_s"]) < _PARTIAL_SHARE * usual:
                continue
            value = _value(doc, i, point, metric)
            if value is not None:
                values.append(value)
    except CompareError as exc:
        raise CompareError(f"{source}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise CompareError(f"{source}: unreadable timeline point ({exc})") from None
    return values, usual


def side_of(files: Sequence[str | Path], metric: Metric) -> Side:
    """Read every file of one side (ReportError, exit 2, for a file that is not a report)."""
    from latcli.reports.bench_load import load_report

    samples: list[float] = []
    intervals: list[float] = []
    endpoints: set[str] = set()
    warnings: list[str] = []
    for f in files:
        doc = load_report(f)
        values, usual = run_samples(doc, metric, str(f))
        samples += values
        intervals.append(usual)
        if doc.get("endpoint"):  # an .hlog has none
            endpoints.add(str(doc["endpoint"]))
        warnings += _doubts(doc, str(f))
    return Side(
        tuple(str(f) for f in files),
        tuple(samples),
        max(intervals, default=1.0),
        frozenset(endpoints),
        tuple(warnings),
    )


def _doubts(doc: Mapping[str, Any], source: str) -> list[str]:
    out = []
    if not (doc.get("generator") or {}).get("valid", True):
        out.append(f"{source}: the run did not hold its rate (invalid run)")
    if doc.get("interrupted"):
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
    if why is not None:
        return CompareReport(
            metric,
            baseline,
            candidate,
            confidence,
            threshold,
            seed,
            None,
            None,
            None,
            None,
            why,
            _notes(baseline, candidate),
        )
    test = mann_whitney_u(baseline.samples, candidate.samples)
    mid = median(baseline.samples)
    ratio = median(candidate.samples) / mid if mid != 0.0 else None
    ci = bootstrap_ratio_ci(baseline.samples, candidate.samples, confidence, random.Random(seed))
    verdict = decide(test, baseline.n, candidate.n, ratio, alpha, threshold, metric.higher_is_worse)
    notes = _notes(baseline, candidate)
    return CompareReport(
        metric,
        baseline,
        candidate,
        confidence,
        threshold,
        seed,
        test,
        ratio,
        ci,
        verdict,
        None,
        notes,
    )


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
