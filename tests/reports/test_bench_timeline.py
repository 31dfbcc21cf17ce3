"""A bench report's timeline: runs laid on one clock, points of one bucket merged exactly."""

from __future__ import annotations

from latcli.reports.bench_timeline import (
    TIMELINE_MAX_POINTS,
    TimelinePoint,
    coarsened,
    merged_timeline,
    point,
)
from latcli.reports.bounded_histogram import BoundedHistogram
from latcli.reports.histogram import LatencyHistogram


def _point(t_s: float, requests: int, ms: float) -> TimelinePoint:
    h = LatencyHistogram()
    for _ in range(requests):
        h.record_us(int(ms * 1000))
    return point(t_s, 1.0, requests, 0, BoundedHistogram.of(h))


def test_concurrent_runs_add_their_requests_and_rates_per_second() -> None:
    a = [_point(0.0, 10, 5.0), _point(1.0, 10, 5.0)]
    b = [_point(0.0, 30, 50.0), _point(1.0, 30, 50.0)]
    merged = merged_timeline([(100.0, a), (100.0, b)], 100.0)
    assert [p.requests for p in merged] == [40, 40]
    assert [p.rps for p in merged] == [40.0, 40.0]
    assert merged[0].percentile_ms(50.0) == 50.0  # 30 of the 40 values are 50 ms
    assert merged[0].latency is not None and merged[0].latency.hist.count == 40


def test_a_run_that_started_later_follows_on_the_shared_clock() -> None:
    first = [_point(0.0, 5, 1.0)]
    later = [_point(0.0, 7, 1.0)]
    merged = merged_timeline([(100.0, first), (103.0, later)], 100.0)
    assert [(p.t_s, p.requests) for p in merged] == [(0.0, 5), (3.0, 7)]


def test_a_long_timeline_is_halved_until_it_fits_and_keeps_every_request() -> None:
    points = [_point(float(i), 2, 1.0) for i in range(TIMELINE_MAX_POINTS * 2)]
    fewer = coarsened(points)
    assert len(fewer) == TIMELINE_MAX_POINTS  # one halving: pairs of 1 s points
    assert sum(p.requests for p in fewer) == 2 * len(points)
    assert fewer[0].length_s == 2.0 and fewer[0].rps == 2.0
