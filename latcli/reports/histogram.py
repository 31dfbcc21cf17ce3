"""The one typed adapter over hdrh, plus the ``.hlog`` interval log (DESIGN §5).

Facts about hdrh 0.10 that shape this module:

* ``record_value`` costs about 1 µs, but ``get_mean_value``/``get_stddev`` walk
  every bucket in Python (45-130 ms): count, sum, min and max are kept here as
  running values, exact, at a few additions per record.
* ``HdrHistogram.add`` sets min to 0 when either side is empty (it takes
  ``min(get_min_value(), ...)`` and an empty histogram's min is 0): merges
  here skip empties and keep min/max from the running values.
* ``HistogramLogWriter`` writes ``max // ratio`` (floored): interval lines are
  written here from :meth:`LatencyHistogram.encode` instead.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader, re_histogram_interval

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_DIGITS = 3
SUMMARY_PERCENTILES = {
    "p50": 50.0,
    "p90": 90.0,
    "p95": 95.0,
    "p99": 99.0,
    "p99.9": 99.9,
    "p99.99": 99.99,
}
SUMMARY_KEYS = ("min", "p50", "p90", "p95", "p99", "p99.9", "p99.99", "max", "mean")


def _new_hdr() -> Any:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


# hdrh reports a max as its bucket's highest equivalent value, a little above 1 h.
_HIGHEST_EQUIVALENT_US = int(_new_hdr().get_highest_equivalent_value(HIGHEST_US))


def _geometry(hdr: Any) -> tuple[int, int, int, int, int]:
    """hdrh's bucket geometry: what :meth:`LatencyHistogram.record_us` needs to find a value's
    counter itself (hdrh spends ~6 Python calls on it; a streamed message records five)."""
    unit, half_mag = hdr.unit_magnitude, hdr.sub_bucket_half_count_magnitude
    return hdr.sub_bucket_mask, unit + half_mag + 1, half_mag, unit, hdr.counts_len


_GEOMETRY = _geometry(_new_hdr())
_MASK, _BUCKET_SHIFT, _HALF_MAG, _UNIT, _ = _GEOMETRY
_HALF = 1 << _HALF_MAG


class LatencyHistogram:
    """Latencies in integer microseconds, 1 µs ... 1 h, 3 significant digits.

    Percentiles come from HDR buckets (within 0.1 % of the true value) and are
    clamped to [min, max]; count, min, max and mean are exact for values
    recorded or merged here. Values above one hour are recorded as one hour.
    After :meth:`decode` without a sum, the sum (so the mean) is unknown until
    first asked, then estimated once from the buckets (see :meth:`decode`).
    Not thread-safe: one histogram per task or worker, merged afterwards.
    """

    __slots__ = ("_hdr", "_max_us", "_min_us", "_sum_us")

    def __init__(self) -> None:
        self._hdr: Any = _new_hdr()
        self._sum_us: int | None = 0  # None: estimate from the buckets when asked
        self._min_us = sys.maxsize
        self._max_us = 0

    def record_us(self, v: int) -> None:
        """Record one latency in microseconds; raises ValueError if negative."""
        if v < 0:
            raise ValueError(f"negative latency: {v} µs")
        v = int(v) if v < HIGHEST_US else HIGHEST_US
        hdr = self._hdr
        # hdrh's record_value inlined, the same four fields changed (64 - clz is bit_length)
        bucket = (v | _MASK).bit_length() - _BUCKET_SHIFT
        hdr.counts[((bucket + 1) << _HALF_MAG) + (v >> (bucket + _UNIT)) - _HALF] += 1
        hdr.total_count += 1
        if v < hdr.min_value:
            hdr.min_value = v
        if v > hdr.max_value:
            hdr.max_value = v
        if self._sum_us is not None:
            self._sum_us += v
        # Plain comparisons: this is the hot path, min()/max() calls cost more.
        if v < self._min_us:
            self._min_us = v
        if v > self._max_us:
            self._max_us = v

    def record_ms(self, v: float) -> None:
        """Record one latency in milliseconds, rounded to the nearest microsecond."""
        self.record_us(round(v * 1000.0))

    @property
    def count(self) -> int:
        """Number of recorded values."""
        return int(self._hdr.get_total_count())

    @property
    def sum_us(self) -> int:
        """Sum of recorded values in µs; ship it beside :meth:`encode` to keep mean exact."""
        if self._sum_us is None:
            self._sum_us = _hdr_sum_us(self._hdr)  # once: hdrh's mean walks every bucket
        return self._sum_us

    @property
    def max_us(self) -> int:
        """Largest value in µs, 0 when empty."""
        return self._max_us

    @property
    def min_us(self) -> int:
        """Smallest value in µs, 0 when empty."""
        return self._min_us if self.count else 0

    @property
    def min_ms(self) -> float | None:
        """Smallest value in ms, None when empty."""
        return self._min_us / 1000.0 if self.count else None

    @property
    def max_ms(self) -> float | None:
        """Largest value in ms, None when empty."""
        return self._max_us / 1000.0 if self.count else None

    @property
    def mean_ms(self) -> float | None:
        """Mean in ms from the running sum, None when empty."""
        n = self.count
        return self.sum_us / n / 1000.0 if n else None

    def percentile_ms(self, p: float) -> float | None:
        """Value at percentile ``p`` in [0, 100], in ms; None when empty."""
        if not self.count:
            return None
        return self._clamp(self._hdr.get_value_at_percentile(p)) / 1000.0

    def _clamp(self, us: int) -> int:
        # HDR answers a bucket's highest equivalent value, which can exceed the
        # true max by < 0.1 %; a p99.99 above max would read as a bug in a report.
        return max(self._min_us, min(int(us), self._max_us))

    def recorded(self) -> list[tuple[int, int]]:
        """``(value_us, count)`` of every non-empty bucket, ascending (a distribution chart)."""
        return [
            (self._clamp(item.value_iterated_to), int(item.count_added_in_this_iter_step))
            for item in self._hdr.get_recorded_iterator()
        ]

    def summary(self) -> dict[str, float]:
        """min, p50 ... p99.99, max, mean in ms (DESIGN §6); all 0.0 when empty."""
        if not self.count:
            return dict.fromkeys(SUMMARY_KEYS, 0.0)
        # One pass over the buckets for all percentiles, not one per percentile.
        by_p = self._hdr.get_percentile_to_value_dict(list(SUMMARY_PERCENTILES.values()))
        out = {"min": self._min_us / 1000.0}
        for key, p in SUMMARY_PERCENTILES.items():
            out[key] = self._clamp(by_p[p]) / 1000.0
        out["max"] = self._max_us / 1000.0
        out["mean"] = self.sum_us / self.count / 1000.0
        return out

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s values into this histogram; empties on either side are safe."""
        if not other.count:
            return  # nothing to add; min/max never come from hdrh's, which add zeroes
        self._hdr.add(other._hdr)
        if self._sum_us is None or other._sum_us is None:
            self._sum_us = None  # estimated later over the merged buckets, once
        else:
            self._sum_us += other._sum_us
        self._min_us = min(self._min_us, other._min_us)
        self._max_us = max(self._max_us, other._max_us)

    def reset(self) -> None:
        """Forget every value (a fresh histogram, same settings)."""
        counts = self._hdr.counts
        if isinstance(counts, ctypes.Array):
            # hdrh's reset zeroes its 23,552 counters in a Python loop (~2 ms, a stall of the
            # bench's event loop every second); one memset does the same in microseconds.
            ctypes.memset(ctypes.addressof(counts), 0, ctypes.sizeof(counts))
            hdr = self._hdr
            hdr.total_count = 0
            hdr.min_value = sys.maxsize
            hdr.max_value = 0
            hdr.start_time_stamp_msec = sys.maxsize
            hdr.end_time_stamp_msec = 0
        else:
            self._hdr.reset()
        self._sum_us = 0
        self._min_us = sys.maxsize
        self._max_us = 0

    def copy(self) -> LatencyHistogram:
        """An independent histogram with the same values and running stats."""
        twin = LatencyHistogram()
        twin.merge(self)
        return twin

    def encode(self) -> bytes:
        """hdrh's compressed base64 form (``HISTF...``), readable by any HdrHistogram port."""
        return bytes(self._hdr.encode())

    @classmethod
    def decode(
        cls,
        data: bytes | str,
        sum_us: int | None = None,
        extremes_us: tuple[int, int] | None = None,
    ) -> LatencyHistogram:
        """Rebuild from :meth:`encode`'s output.

        The encoding carries bucket counts only. min/max come back as the
        extreme buckets' lowest/highest equivalent values (within 0.1 %). The
        mean is exact if the producer's :attr:`sum_us` is passed; otherwise it
        is estimated from hdrh's bucket-midpoint mean (within 0.1 %) the first
        time it is asked for, after any merges: one walk of the buckets (tens of
        ms) per report, not one per decoded interval. ``extremes_us`` restores the
        producer's exact (min, max). Raises ValueError on data
        that is not a histogram or holds values beyond 1 h (another tool's ns).
        """
        try:
            hdr = HdrHistogram.decode(data)
        except Exception as exc:  # hdrh raises TypeError, zlib.error, its own cookie errors
            raise ValueError(f"not an encoded HdrHistogram: {exc}") from exc
        hist = cls._from_hdr(hdr, sum_us)
        if extremes_us is not None and hist.count:
            hist._min_us, hist._max_us = extremes_us  # exact, as the producer recorded them
        return hist

    @classmethod
    def _from_hdr(cls, hdr: Any, sum_us: int | None) -> LatencyHistogram:
        if hdr.get_max_value() > _HIGHEST_EQUIVALENT_US:
            # Another tool's log (nanoseconds?) would silently corrupt a merge.
            raise ValueError("histogram holds values above 1 h: not latcli's µs histogram")
        hist = cls()
        if hdr.get_total_count():
            if _geometry(hdr) != _GEOMETRY:  # another tool's settings: into ours, bucket by bucket
                ours = _new_hdr()
                ours.add(hdr)
                hdr = ours
            hist._hdr = hdr
            hist._min_us = int(hdr.get_min_value())
            hist._max_us = int(hdr.get_max_value())
            hist._sum_us = sum_us
        return hist


def _hdr_sum_us(hdr: Any) -> int:
    return round(float(hdr.get_mean_value()) * int(hdr.get_total_count()))


def format_log_ms(us: int) -> str:
    """µs as the log's millisecond text, exact: 12345 -> ``12.345`` (never floored to 12)."""
    return f"{us // 1000}.{us % 1000:03d}"


class HlogWriter:
    """Writes the standard HdrHistogram interval log (format 1.2) to a text stream.

    Values are µs; each line's max is in ms (the reader's ``max_value_unit_ratio``
    of 1000), written exactly to the µs, so never below the interval's true max.
    Timestamps are seconds relative to ``start_time_s`` (epoch seconds). The
    header is written on construction, so a log is valid even if the run stops
    before its first interval. The stream is the caller's to flush and close.
    """

    def __init__(self, out: TextIO, start_time_s: float) -> None:
        self._out = out
        self._start_s = start_time_s
        self._write_header()

    def _write_header(self) -> None:
        # Version, start/base time comments and the legend, as Java's writer does.
        when = datetime.fromtimestamp(self._start_s, tz=timezone.utc).isoformat(" ")
        self._out.write("#[Histogram log format version 1.2]\n")
        self._out.write(f"#[StartTime: {self._start_s:.3f} (seconds since epoch), {when}]\n")
        self._out.write(f"#[BaseTime: {self._start_s:.3f} (seconds since epoch)]\n")
        legend = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
        self._out.write(legend + "\n")

    def write_interval(
        self, start_s: float, length_s: float, hist: LatencyHistogram, tag: str | None = None
    ) -> None:
        """One ``[Tag=T,]start,length,max,histogram`` line; ``start_s`` relative to the start."""
        max_text = format_log_ms(hist.max_us)
        payload = hist.encode().decode("ascii")
        head = f"Tag={tag}," if tag else ""
        self._out.write(f"{head}{start_s:.3f},{length_s:.3f},{max_text},{payload}\n")


@dataclass(frozen=True)
class Interval:
    """One interval read back from an ``.hlog``; times in seconds relative to its start."""

    start_s: float
    length_s: float
    max_ms: float  # as logged on the line
    histogram: LatencyHistogram
    tag: str | None = None  # the line's Tag= (latcli: a stream phase), None for untagged


def read_hlog(path: str | Path) -> list[Interval]:
    """Read every interval of an ``.hlog`` with hdrh's own reader (proves compatibility).

    Histograms and times come from ``HistogramLogReader``; the logged max column,
    which that reader parses but drops, is read from the same lines with its regex.
    """
    reader = HistogramLogReader(str(path), _new_hdr())
    try:
        hdrs = list(iter(reader.get_next_interval_histogram, None))
        start = reader.get_start_time_sec()
    finally:
        reader.close()
    maxima = _logged_maxima(Path(path).read_text(encoding="utf-8").splitlines())
    return [_interval(hdr, start, max_ms) for hdr, max_ms in zip(hdrs, maxima, strict=True)]


def _logged_maxima(lines: Iterable[str]) -> list[float]:
    maxima = []
    for line in lines:
        if line.startswith("Tag="):
            line = line.split(",", 1)[1]
        m = re_histogram_interval.match(line)
        if m and not line.startswith("#"):
            maxima.append(float(m.group(3)))
    return maxima


def _interval(hdr: Any, start_s: float, max_ms: float) -> Interval:
    # The reader stamps histograms with absolute epoch milliseconds.
    begin = hdr.get_start_time_stamp() / 1000.0
    length = hdr.get_end_time_stamp() / 1000.0 - begin
    hist = LatencyHistogram._from_hdr(hdr, None)
    tag = hdr.get_tag()
    return Interval(round(begin - start_s, 6), round(length, 6), max_ms, hist, tag or None)
