"""A bench run as a standard HdrHistogram interval log (``--hlog``), and a report read back
from one (hdrh's reader, :func:`~latcli.reports.histogram.read_hlog`).

``--endpoint stream`` writes one tagged line per phase and interval (``Tag=first_artifact,...``).
"""

from __future__ import annotations

import re
from pathlib import Path

from latcli.reports.bench import BenchReport
from latcli.reports.bench_build import ReportContent, assemble
from latcli.reports.bench_model import PHASES, BenchResult
from latcli.reports.bench_timeline import coarsened, per_s, point
from latcli.reports.bounded_histogram import BoundedHistogram
from latcli.reports.files import ReportError, open_private
from latcli.reports.histogram import HlogWriter, LatencyHistogram, read_hlog

HLOG_NOTE = (
    "from an HdrHistogram interval log: latency only; requests are the recorded latencies, "
    "errors, per-agent, service time and generator data are not in the format"
)
_HLOG_START = re.compile(r"^#\[StartTime: *([0-9.]+)", re.MULTILINE)
_HLOG_LINE = re.compile(r"^(Tag=[^,]*,)?[0-9.]+,[0-9.]+,[0-9.]+,HIST", re.MULTILINE)
# A log's own header lines: a Markdown file also starts with "#", and is not a log.
_HLOG_MARK = re.compile(r"^#\[(?:StartTime|BaseTime|Histogram log format)", re.MULTILINE)


def looks_like_hlog(text: str) -> bool:
    """``text`` has an HdrHistogram log's header or interval lines."""
    return bool(_HLOG_MARK.search(text) or _HLOG_LINE.search(text))


def write_hlog(path: str | Path, result: BenchResult) -> None:
    """The standard HdrHistogram interval log of ``result.intervals``, times relative to
    ``result.started_at``. A run without intervals logs its whole histogram as one."""
    intervals = [
        (iv.start_s, iv.length_s, iv.histogram, iv.phase_tally()) for iv in result.intervals
    ]
    if not intervals and result.latency.count:
        intervals = [(0.0, result.elapsed_s, result.latency, result.phases)]
    try:
        with open_private(path) as out:
            writer = HlogWriter(out, result.started_at)
            for start_s, length_s, hist, phases in intervals:
                writer.write_interval(start_s, length_s, hist)
                # --endpoint stream: one tagged line per phase (Tag=first_artifact,...)
                for phase, phase_hist in phases.hists.items() if phases else ():
                    writer.write_interval(start_s, length_s, phase_hist, tag=phase)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write: {exc.strerror or exc}") from None


def report_from_hlog(path: str | Path) -> BenchReport:
    """A report from an ``.hlog`` (hdrh's reader): latency from all intervals merged, requests
    = recorded values, no error, agent or generator data (the ``note`` field says so)."""
    logged = read_hlog(path)
    intervals = [iv for iv in logged if iv.tag is None]
    tagged = [iv for iv in logged if iv.tag in PHASES]  # --endpoint stream's phases
    phases = None
    if tagged:
        phases = {p: BoundedHistogram() for p in PHASES}
        for iv in tagged:
            phases[str(iv.tag)].merge(_logged_bounds(iv.histogram, iv.max_ms))
    bounded = [_logged_bounds(iv.histogram, iv.max_ms) for iv in intervals]
    latency = BoundedHistogram()
    for hist in bounded:
        latency.merge(hist)
    start = min((iv.start_s for iv in intervals), default=0.0)
    end = max((iv.start_s + iv.length_s for iv in intervals), default=0.0)
    duration = end - start
    m = _HLOG_START.search(Path(path).read_text(encoding="utf-8"))
    count = latency.hist.count
    run = ReportContent(
        target=Path(path).name,
        target_kind=None,
        endpoint=None,
        model=None,
        concurrency=None,
        rate=None,
        duration_s=duration,
        started_at=(float(m.group(1)) if m else 0.0) + start,
        ok=count,
        errors={},
        latency=latency,
        service_time=None,
        schedule_lag=None,
        agents={},
        throughput_rps=per_s(count, duration),
        target_rate=None,
        achieved_rate=per_s(count, duration),
        schedule_lag_p99_ms=None,
        valid=True,
        verdicts=[],
        note=HLOG_NOTE,
        phases=phases,
        timeline=coarsened(
            [
                point(iv.start_s - start, iv.length_s, h.hist.count, 0, h)
                for iv, h in zip(intervals, bounded, strict=True)
            ]
        ),
    )
    return assemble(run)


def _logged_bounds(h: LatencyHistogram, logged_max_ms: float) -> BoundedHistogram:
    # latcli's writer logs the exact max; another tool's may be in another unit, so the logged
    # value is trusted only inside the decoded top bucket (3 significant digits: < 1/1024 wide).
    own = BoundedHistogram.of(h)
    logged = round(logged_max_ms * 1000)
    if own.max_us - own.max_us // 512 - 1 <= logged <= own.max_us:
        own.max_us = max(logged, own.min_us)
    return own
