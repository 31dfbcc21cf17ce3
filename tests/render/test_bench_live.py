"""bench looks alive (issue 15, item 6): the live view drawn from a progress snapshot and a
clock, and the latency histogram under the percentile table; rendered to strings."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import pytest
from rich.console import Console, RenderableType

from latcli.render.bench_live import REDRAWS_PER_S, LiveBench, progress_view
from latcli.render.bench_view import bench_summary, latency_histogram
from latcli.reports.bench import BenchReport
from latcli.reports.bench_build import build_report
from latcli.reports.bench_model import BenchPlan, BenchResult, Progress


def _text(renderable: RenderableType, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def _progress(**change: Any) -> Progress:
    values: dict[str, Any] = {
        "elapsed_s": 3.0, "requests": 6_000, "rps": 2_013.4, "p99_ms": 12.5, "errors": 7,
        "in_flight": 50, "warmup": False, "p50_ms": 1.234,
        "status_codes": {200: 5_993, 503: 7}, "errors_by_kind": {"http_5xx": 7},
    }  # fmt: skip
    values.update(change)
    return Progress(**values)


def test_the_view_shows_progress_rate_percentiles_errors_and_statuses() -> None:
    text = _text(progress_view(_progress(), 3.0, title="t", duration_s=10.0, requests=None))
    assert "3.0 s / 10 s" in text and "■" in text
    assert "2,013 req/s" in text and "6,000 requests" in text and "in flight 50" in text
    assert "p50 1.23 ms" in text and "p99 12.5 ms" in text
    assert "http_5xx 7" in text and "[200] 5,993" in text and "[503] 7" in text


def test_a_run_by_requests_counts_them_against_n() -> None:
    text = _text(progress_view(_progress(), 3.0, title="t", duration_s=None, requests=10_000))
    assert "6,000 / 10,000 requests" in text


def test_warm_up_and_start_have_their_own_frames() -> None:
    assert "warm-up 1.5 s left" in _text(
        progress_view(None, -1.5, title="t", duration_s=10.0, requests=None)
    )
    assert "starting" in _text(progress_view(None, 0.2, title="t", duration_s=10.0, requests=None))


def test_the_elapsed_time_moves_between_snapshots() -> None:
    now = [100.0]
    live = LiveBench(
        title="t", duration_s=10.0, requests=None, clock=lambda: now[0],
        console=Console(file=io.StringIO(), width=100),
    )  # fmt: skip
    live.show(_progress(elapsed_s=3.0))
    now[0] += 0.5  # a redraw half a second after the last snapshot
    assert "3.5 s / 10 s" in _text(live.frame())
    assert REDRAWS_PER_S <= 4


def _report(values_us: list[int], errors: int = 0) -> BenchReport:
    r = BenchResult(elapsed_s=1.0, started_at=1.0)
    for v in values_us:
        r.latency.record_us(v)
    r.ok = len(values_us)
    if errors:
        r.errors["connect"] = errors
    plan = BenchPlan("http://h/x", "url", concurrency=2, duration_s=1.0)
    return build_report(plan, r, [], valid=True, target_rate=None, achieved_rate=r.ok,
                        schedule_lag_p99_ms=None)  # fmt: skip


def test_the_histogram_has_ten_linear_buckets_from_min_to_max() -> None:
    values = [1_000] * 50 + [5_000] * 30 + [10_000] * 20
    chart = latency_histogram(_report(values))
    assert chart is not None
    lines = [line for line in _text(chart).splitlines() if line.strip()]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 10
    assert [r[0] for r in rows][::3] == ["1.90", "4.60", "7.30", "10.0"]
    counts = [int(r[1].replace(",", "")) for r in rows]
    assert sum(counts) == 100 and (counts[0], counts[4], counts[9]) == (50, 30, 20)
    bars = {r[1]: r[2] if len(r) > 2 else "" for r in rows}
    assert len(bars["50"]) == 40 and len(bars["20"]) == 16  # proportional to the largest


def test_the_summary_shows_the_histogram_and_no_chart_without_answers() -> None:
    assert "answered" in _text(bench_summary(_report([2_000, 3_000])))
    empty = _report([], errors=3)
    assert latency_histogram(empty) is None
    assert "■" not in _text(bench_summary(empty))


@pytest.mark.parametrize("width", [60, 80])
def test_the_histogram_fits_a_narrow_terminal(width: int) -> None:
    chart = latency_histogram(_report([1_000, 2_000, 90_000]))
    assert chart is not None
    assert all(len(line) <= width for line in _text(chart, width).splitlines())


def test_the_status_line_is_left_out_where_statuses_were_not_kept() -> None:
    known = replace(_report([2_000]), status_codes={"200": 1})
    assert "[200] 1" in _text(bench_summary(known))
    unknown = _report([2_000])  # answered, statuses not kept (an .hlog, an older report)
    assert "status " not in _text(bench_summary(unknown))
    assert "no HTTP response" in _text(bench_summary(_report([], errors=2)))
