"""A bench report's ``timeline``: the run over time (the HTML report's charts).

One point per progress interval (~1 s; neighbours merged pairwise beyond
:data:`TIMELINE_MAX_POINTS`, the ``.hlog`` keeps every interval), ``{"t_s", "length_s",
"requests", "errors", "rps", "p50_ms", "p99_ms"}`` with ``t_s`` from ``started_at``; each point's
histogram travels in ``histograms.timeline`` so that merged points have exact percentiles too.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from latcli.reports.bounded_histogram import (
    BoundedHistogram,
    Phases,
    PhaseSpectra,
    merge_hists,
    merge_phases,
    phases_summary,
    spectra_json,
)

# Ten minutes of 1 s points; a chart is ~1,000 px wide, and each point carries its encoded
# histogram (~1 KiB at 2,000 req/s), so an hour's run writes ~600 KiB rather than 4 MiB.
TIMELINE_MAX_POINTS = 600


def per_s(count: int, seconds: float) -> float:
    """``count`` per second of ``seconds``; 0 over no time."""
    return count / seconds if seconds > 0 else 0.0


def round_or_none(value: float | None, digits: int = 3) -> float | None:
    """``value`` rounded for the JSON, None kept."""
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class TimelinePoint:
    """One timeline point. ``p50_ms``/``p99_ms`` and ``phases_ms`` are as a report gave them,
    else made from ``latency`` and ``phases`` once, when first asked (a percentile walks every
    bucket; a report has up to 600 points: docs/benchmarks.md); ``latency`` is None for a
    report written without the points' histograms."""

    t_s: float
    length_s: float
    requests: int
    errors: int
    rps: float
    latency: BoundedHistogram | None
    p50_ms: float | None = None
    p99_ms: float | None = None
    phases: Phases | None = None
    phases_ms: PhaseSpectra | None = None  # as a report without the phases' histograms gave them

    def percentile_ms(self, p: float) -> float | None:
        """p50 and p99 as listed; another percentile from the histogram (None without one)."""
        if p in (50.0, 99.0):
            listed = self.p50_ms if p == 50.0 else self.p99_ms
            if listed is not None or self.latency is None:
                return listed
            return self._made()[0 if p == 50.0 else 1]
        return None if self.latency is None else round_or_none(self.latency.percentile_ms(p))

    def _made(self) -> tuple[float | None, float | None]:
        """p50 and p99 from the histogram, made once when first asked (not for points a merge
        coarsens away)."""
        made: tuple[float | None, float | None] | None = self.__dict__.get("_made_ms")
        if made is None:
            assert self.latency is not None
            p50 = round_or_none(self.latency.percentile_ms(50.0))
            made = (p50, round_or_none(self.latency.percentile_ms(99.0)))
            object.__setattr__(self, "_made_ms", made)
        return made

    def as_json(self) -> dict[str, Any]:
        return {
            "t_s": round(float(self.t_s), 3),
            "length_s": round(float(self.length_s), 3),
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(self.rps, 3),
            "p50_ms": self.percentile_ms(50.0),
            "p99_ms": self.percentile_ms(99.0),
            **(
                {"phases_ms": spectra_json(self.spectra())} if self.phases or self.phases_ms else {}
            ),
        }

    def spectra(self) -> PhaseSpectra | None:
        """Each phase's summary (min, pNN ..., max, mean): `compare` reads phases_ms[P]["p95"]."""
        if self.phases_ms is not None or self.phases is None:
            return self.phases_ms
        made: PhaseSpectra | None = self.__dict__.get("_made_phases")
        if made is None:
            made = phases_summary(self.phases)
            object.__setattr__(self, "_made_phases", made)
        return made


def point(
    t_s: float,
    length_s: float,
    requests: int,
    errors: int,
    latency: BoundedHistogram,
    phases: Phases | None = None,
) -> TimelinePoint:
    """A point of the run's ``requests`` over ``length_s`` from ``t_s``, its rate from them."""
    return TimelinePoint(
        t_s, length_s, requests, errors, per_s(requests, length_s), latency, phases=phases
    )


def coarsened(points: list[TimelinePoint]) -> list[TimelinePoint]:
    """At most TIMELINE_MAX_POINTS: neighbours merged pairwise, as the engine halves intervals."""
    while len(points) > TIMELINE_MAX_POINTS:
        pairs = [points[i : i + 2] for i in range(0, len(points), 2)]
        points = [joined([(0, p) for p in pair]) for pair in pairs]
    return points


def merged_timeline(
    runs: Sequence[tuple[float, Sequence[TimelinePoint]]], t0: float
) -> list[TimelinePoint]:
    """The runs' points (each run's ``started_at`` and timeline) on one clock from ``t0``,
    merged by bucket (see :func:`~latcli.reports.bench_merge.merge_reports`)."""
    # Each run's median interval, not its longest or last: a run's last interval is often short.
    lengths = [sorted(p.length_s for p in timeline) for _, timeline in runs if timeline]
    step = max((ls[len(ls) // 2] for ls in lengths), default=1.0) or 1.0
    buckets: dict[int, list[tuple[int, TimelinePoint]]] = {}
    for i, (started_at, timeline) in enumerate(runs):
        offset = started_at - t0 if started_at > 0 else 0.0
        for p in timeline:
            moved = dataclasses.replace(p, t_s=p.t_s + offset)
            buckets.setdefault(math.floor(moved.t_s / step + 0.5), []).append((i, moved))
    return coarsened([joined(group) for _, group in sorted(buckets.items())])


def joined(group: Sequence[tuple[int, TimelinePoint]]) -> TimelinePoint:
    """Points of one time bucket as one; the int is the run each point came from: the runs'
    rates add up, a run's own points (a coarser neighbour's bucket) share its one rate."""
    points = [p for _, p in group]
    if len(points) == 1:
        return points[0]
    start = min(p.t_s for p in points)
    end = max(p.t_s + p.length_s for p in points)
    rps = 0.0
    for run in dict.fromkeys(i for i, _ in group):
        mine = [p for i, p in group if i == run]
        span = max(p.t_s + p.length_s for p in mine) - min(p.t_s for p in mine)
        rps += per_s(sum(p.requests for p in mine), span)
    hists = [p.latency for p in points]
    known = [h for h in hists if h is not None]
    merged = merge_hists(known) if len(known) == len(hists) else None
    phased = [p.phases for p in points]
    return TimelinePoint(
        start,
        end - start,
        sum(p.requests for p in points),
        sum(p.errors for p in points),
        rps,
        merged,
        phases=merge_phases(phased) if all(ph is not None for ph in phased) else None,
    )
