"""LatencyHistogram over hdrh, and the .hlog writer read back by hdrh's own reader."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
from hypothesis import given, settings
from hypothesis import strategies as st

from latcli.reports.histogram import (
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_DIGITS,
    SUMMARY_KEYS,
    HlogWriter,
    LatencyHistogram,
    format_log_ms,
    read_hlog,
)


def _hist(values_us: list[int]) -> LatencyHistogram:
    h = LatencyHistogram()
    for v in values_us:
        h.record_us(v)
    return h


def _exact_percentile_ms(values_us: list[int], p: float) -> float:
    """Nearest rank, the definition HDR approximates."""
    ordered = sorted(values_us)
    rank = max(1, math.ceil(len(ordered) * p / 100))
    return ordered[rank - 1] / 1000.0


UNIFORM = list(range(1, 100_001))  # 1 µs ... 100 ms, each once


@pytest.fixture(scope="module")
def uniform() -> LatencyHistogram:
    return _hist(UNIFORM)


@pytest.mark.parametrize("p", [1.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99])
def test_percentiles_within_three_significant_digits(uniform: LatencyHistogram, p: float) -> None:
    h = uniform
    exact = _exact_percentile_ms(UNIFORM, p)
    got = h.percentile_ms(p)
    assert got is not None
    assert abs(got - exact) <= exact * 1e-3


def test_summary_keys_and_exact_extremes(uniform: LatencyHistogram) -> None:
    h = uniform
    s = h.summary()
    assert tuple(s) == SUMMARY_KEYS
    assert (s["min"], s["max"], s["mean"]) == (0.001, 100.0, 50.0005)
    assert s["p50"] == h.percentile_ms(50)
    assert s["p99.99"] <= s["max"]  # clamped, HDR alone would answer 100.031


def test_percentiles_clamped_to_observed_range() -> None:
    h = _hist([123_456])
    assert h.percentile_ms(0) == h.percentile_ms(100) == 123.456


def test_empty_histogram() -> None:
    h = LatencyHistogram()
    assert (h.count, h.min_ms, h.max_ms, h.mean_ms, h.percentile_ms(99)) == (
        0,
        None,
        None,
        None,
        None,
    )
    assert h.summary() == dict.fromkeys(SUMMARY_KEYS, 0.0)


def test_mean_from_running_sum_is_exact() -> None:
    values = [1, 2, 3, 1_000, 2_047, 2_049, 65_537, 3_000_000]
    h = _hist(values)
    # HDR's bucket-midpoint mean differs here (wide buckets near 3 s); ours must not.
    assert h.mean_ms == sum(values) / len(values) / 1000.0
    assert h.sum_us == sum(values)


def test_record_ms_rounds_to_microseconds() -> None:
    h = LatencyHistogram()
    h.record_ms(1.2345)
    h.record_ms(0.0004)
    assert (h.count, h.max_ms, h.min_ms) == (2, 1.234, 0.0)


def test_out_of_range_values() -> None:
    h = LatencyHistogram()
    h.record_us(HIGHEST_US * 2)
    assert (h.count, h.max_ms) == (1, HIGHEST_US / 1000.0)
    with pytest.raises(ValueError, match="negative"):
        h.record_us(-1)


@pytest.mark.parametrize("empty_first", [True, False])
def test_merge_with_empty_keeps_min(empty_first: bool) -> None:
    full, empty = _hist([5_000, 7_000]), LatencyHistogram()
    target, source = (empty, full) if empty_first else (full, empty)
    target.merge(source)
    assert (target.count, target.min_ms, target.max_ms, target.mean_ms) == (2, 5.0, 7.0, 6.0)
    assert target.percentile_ms(0) == 5.0


def test_hdrh_add_with_empty_resets_min() -> None:
    # The hdrh behaviour merge() guards against; if hdrh fixes it, this says so.
    h = HdrHistogram(1, HIGHEST_US, 3)
    h.record_value(5_000)
    h.add(HdrHistogram(1, HIGHEST_US, 3))
    assert h.get_min_value() == 0


def test_merge_keeps_running_sums() -> None:
    a, b = _hist([1, 2, 3]), _hist([1_000_000])
    a.merge(b)
    assert (a.count, a.sum_us, a.mean_ms, a.max_ms) == (4, 1_000_006, 250.0015, 1000.0)
    assert b.count == 1  # merge reads other, never changes it


def test_reset_and_copy_are_independent() -> None:
    h = _hist([10, 20])
    twin = h.copy()
    h.reset()
    h.record_us(99)
    assert (h.count, h.min_ms, h.sum_us) == (1, 0.099, 99)
    assert (twin.count, twin.min_ms, twin.max_ms, twin.sum_us) == (2, 0.01, 0.02, 30)


def test_encode_decode_round_trip() -> None:
    values = [*range(100, 10_000, 7), 2_500_000]
    h = _hist(values)
    data = h.encode()
    assert data.startswith(b"HISTF")
    back = LatencyHistogram.decode(data)
    assert back.count == h.count
    for p in (50.0, 90.0, 99.0, 99.9, 100.0):
        assert back.percentile_ms(p) == h.percentile_ms(p) or _same_bucket(back, h, p)
    # Without the sum the mean comes from bucket midpoints: close, not exact.
    assert back.mean_ms == pytest.approx(h.mean_ms, rel=1e-3)
    exact = LatencyHistogram.decode(data.decode("ascii"), sum_us=h.sum_us)
    assert exact.mean_ms == h.mean_ms
    assert back.max_ms is not None and back.max_ms >= 2_500.0  # an upper bound, never lower


def _same_bucket(a: LatencyHistogram, b: LatencyHistogram, p: float) -> bool:
    x, y = a.percentile_ms(p), b.percentile_ms(p)
    return x is not None and y is not None and abs(x - y) <= max(x, y) * 1e-3


def test_decode_keeps_one_hour() -> None:
    back = LatencyHistogram.decode(_hist([0, HIGHEST_US]).encode())
    assert (back.count, back.min_ms) == (2, 0.0)
    assert back.max_ms is not None and back.max_ms >= HIGHEST_US / 1000.0


def test_mean_estimated_once_after_merging_decoded() -> None:
    a, b = _hist([1_000, 3_000]), _hist([5_000])
    total = LatencyHistogram.decode(a.encode())
    total.merge(LatencyHistogram.decode(b.encode()))
    total.record_us(7_000)
    assert total.mean_ms == pytest.approx(4.0, rel=1e-3)
    total.record_us(4_000)  # exact from here on: estimate + 4000
    assert total.sum_us == pytest.approx(20_000, rel=1e-3)
    assert total.count == 5


def test_decode_empty_and_garbage() -> None:
    assert LatencyHistogram.decode(LatencyHistogram().encode()).count == 0
    with pytest.raises(ValueError, match="not an encoded HdrHistogram"):
        LatencyHistogram.decode(b"not a histogram")


def test_decode_refuses_foreign_units() -> None:
    nanos = HdrHistogram(1, 10**13, 3)
    nanos.record_value(5 * 10**12)  # 5000 s in ns
    with pytest.raises(ValueError, match="above 1 h"):
        LatencyHistogram.decode(nanos.encode())


@pytest.mark.parametrize(
    ("us", "text"), [(0, "0.000"), (1, "0.001"), (12_345, "12.345"), (12_999, "12.999")]
)
def test_format_log_ms_is_exact(us: int, text: str) -> None:
    assert format_log_ms(us) == text


def _write_log(path: Path, intervals: list[list[int]]) -> list[LatencyHistogram]:
    hists = [_hist(values) for values in intervals]
    out = io.StringIO()
    writer = HlogWriter(out, start_time_s=1_700_000_000.0)
    for i, h in enumerate(hists):
        writer.write_interval(float(i), 1.0, h)
    path.write_text(out.getvalue(), encoding="utf-8")
    return hists


def test_hlog_header(tmp_path: Path) -> None:
    log = tmp_path / "run.hlog"
    _write_log(log, [])
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#[Histogram log format version 1.2]"
    assert lines[1].startswith("#[StartTime: 1700000000.000 (seconds since epoch), 2023-11-14")
    assert lines[2] == "#[BaseTime: 1700000000.000 (seconds since epoch)]"
    assert lines[3] == (
        '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
    )
    assert read_hlog(log) == []


def test_hlog_round_trip_through_hdrh_reader(tmp_path: Path) -> None:
    log = tmp_path / "run.hlog"
    written = _write_log(log, [[1_500, 12_345], [], [700, 800, 2_000_999]])
    intervals = read_hlog(log)
    assert [(i.start_s, i.length_s) for i in intervals] == [(0.0, 1.0), (1.0, 1.0), (2.0, 1.0)]
    # Maxima as logged: exact to the µs, where hdrh's writer would log 12.0 and 2000.0.
    assert [i.max_ms for i in intervals] == [12.345, 0.0, 2000.999]
    for got, want in zip(intervals, written, strict=True):
        assert got.histogram.count == want.count
        assert got.histogram.encode() == want.encode()


def test_hlog_readable_by_hdrh_directly(tmp_path: Path) -> None:
    log = tmp_path / "run.hlog"
    _write_log(log, [[1_000] * 3, [2_000] * 4])
    reader = HistogramLogReader(str(log), HdrHistogram(1, HIGHEST_US, 3))
    total = HdrHistogram(1, HIGHEST_US, 3)
    while reader.add_next_interval_histogram(total) is not None:
        pass
    reader.close()
    assert total.get_total_count() == 7
    assert reader.get_start_time_sec() == 1_700_000_000.0


values_us = st.lists(st.integers(min_value=0, max_value=HIGHEST_US), max_size=60)


@settings(max_examples=40, deadline=None)
@given(values_us, values_us)
def test_merge_equals_recording_everything(left: list[int], right: list[int]) -> None:
    merged = _hist(left)
    merged.merge(_hist(right))
    single = _hist(left + right)
    assert merged.count == single.count
    assert (merged.min_ms, merged.max_ms, merged.mean_ms) == (
        single.min_ms,
        single.max_ms,
        single.mean_ms,
    )
    assert merged.summary() == single.summary()
    for p in (0.0, 25.0, 50.0, 99.0, 100.0):
        assert merged.percentile_ms(p) == single.percentile_ms(p)


def test_reset_leaves_a_histogram_equal_to_a_fresh_one() -> None:
    # reset zeroes hdrh's counters with one memset: every bucket and every total must be gone.
    values = [1, 999, 12_345, 3_600_000_000]
    h = _hist(values)
    h.reset()
    assert (h.count, h.min_ms, h.max_us, h.percentile_ms(99.0)) == (0, None, 0, None)
    assert h.encode() == LatencyHistogram().encode()
    for v in values:
        h.record_us(v)
    fresh = _hist(values)
    assert h.encode() == fresh.encode()
    assert [h.percentile_ms(p) for p in (0.0, 50.0, 100.0)] == [
        fresh.percentile_ms(p) for p in (0.0, 50.0, 100.0)
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=HIGHEST_US + 10), max_size=80))
def test_record_us_fills_the_counters_hdrh_fills(values: list[int]) -> None:
    """record_us finds each value's counter itself: it must be hdrh's record_value's."""
    ours, theirs = LatencyHistogram(), HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for v in values:
        ours.record_us(v)
        theirs.record_value(min(v, HIGHEST_US))
    hdr = ours._hdr
    assert list(hdr.counts) == list(theirs.counts)
    assert (hdr.total_count, hdr.min_value, hdr.max_value) == (
        theirs.total_count,
        theirs.min_value,
        theirs.max_value,
    )


def test_a_histogram_of_other_settings_is_decoded_into_ours_and_records_alike() -> None:
    foreign = HdrHistogram(1, 60_000_000, 2)  # another tool's: 2 significant digits, 1 min
    for v in (150, 2_500, 40_000):
        foreign.record_value(v)
    hist = LatencyHistogram.decode(foreign.encode())
    hist.record_us(1_000)
    assert hist.count == 4 and hist.max_us == pytest.approx(40_000, rel=0.01)
    assert hist.percentile_ms(50.0) == pytest.approx(1.0, rel=0.01)  # the value recorded here
