"""Bench reports: the ``latcli.bench/v1`` document (DESIGN §6), its files, and merging.

A report is a plain dict, the JSON contract itself, so that what ``latcli bench -o`` writes
and what ``latcli report`` reads back are one value. Beside the contract's fields it carries
what a merge needs (``histograms``: each HDR histogram encoded, with its exact sum, min and
max, because an encoding keeps bucket counts only), and ``started_at``, ``interrupted``,
``dropped_in_flight``, ``policy``, ``note``, ``runs`` and ``target_kind``.

``timeline`` is the run over time (the HTML report's charts): one point per progress interval
(~1 s; neighbours merged pairwise beyond :data:`TIMELINE_MAX_POINTS`, the ``.hlog`` keeps every
interval), ``{"t_s", "length_s", "requests", "errors", "rps", "p50_ms", "p99_ms"}`` with ``t_s``
from ``started_at``; each point's histogram travels in ``histograms.timeline`` so that merged
points have exact percentiles too.

``--endpoint stream`` adds ``phases_ms`` (first_event, first_artifact, gap, total: each the
summary ``latency_ms`` has) overall, per agent and on every timeline point (``compare`` reads
``timeline[i].phases_ms[PHASE]["pNN"]``), their histograms in ``histograms.phases``,
``histograms.agent_phases`` and ``histograms.timeline_phases``; the ``.hlog`` has one tagged line
per phase and interval (``Tag=first_artifact,...``). Other endpoints have ``phases_ms: null``.

Merging adds histograms, never raw samples (DESIGN §5): the merge of two reports has the same
counts, percentiles, min, max and mean as one run that recorded every value.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latcli.core.errors import ExitCode, LatcliError
from latcli.core.redact import redact_url
from latcli.core.sla import (
    Measurements,
    MetricKind,
    SlaSyntaxError,
    Threshold,
    Verdict,
    evaluate,
    parse_threshold,
)
from latcli.reports.bench_model import (
    IN_FLIGHT_POLICY as IN_FLIGHT_POLICY,  # re-exported for callers
)
from latcli.reports.bench_model import PHASES, BenchPlan, BenchResult, PhaseTally
from latcli.reports.histogram import LatencyHistogram, read_hlog

SCHEMA = "latcli.bench/v1"
HLOG_NOTE = (
    "from an HdrHistogram interval log: latency only; requests are the recorded latencies, "
    "errors, per-agent, service time and generator data are not in the format"
)
_HLOG_START = re.compile(r"^#\[StartTime: *([0-9.]+)", re.MULTILINE)
_HLOG_LINE = re.compile(r"^(Tag=[^,]*,)?[0-9.]+,[0-9.]+,[0-9.]+,HIST", re.MULTILINE)
# A log's own header lines: a Markdown file also starts with "#", and is not a log.
_HLOG_MARK = re.compile(r"^#\[(?:StartTime|BaseTime|Histogram log format)", re.MULTILINE)
# Ten minutes of 1 s points; a chart is ~1,000 px wide, and each point carries its encoded
# histogram (~1 KiB at 2,000 req/s), so an hour's run writes ~600 KiB rather than 4 MiB.
TIMELINE_MAX_POINTS = 600


class ReportError(LatcliError):
    """A report file that cannot be read, written or merged; one line naming it (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


@dataclass
class _Hist:
    """A histogram and its exact bounds in µs: decoding restores min and max only to the
    extreme buckets' edges (within 0.1 %), so the producer's exact values travel beside it."""

    hist: LatencyHistogram = field(default_factory=LatencyHistogram)
    min_us: int = 0
    max_us: int = 0

    @classmethod
    def of(cls, h: LatencyHistogram) -> _Hist:
        return cls(h, round((h.min_ms or 0.0) * 1000), h.max_us)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> _Hist:
        sum_us = d.get("sum_us")
        h = LatencyHistogram.decode(str(d["encoded"]), None if sum_us is None else int(sum_us))
        own = cls.of(h)
        return cls(h, int(d.get("min_us", own.min_us)), int(d.get("max_us", own.max_us)))

    def merge(self, other: _Hist) -> None:
        if not other.hist.count:
            return
        first = not self.hist.count
        self.hist.merge(other.hist)
        self.min_us = other.min_us if first else min(self.min_us, other.min_us)
        self.max_us = other.max_us if first else max(self.max_us, other.max_us)

    def _clamp(self, ms: float) -> float:
        return min(max(ms, self.min_us / 1000.0), self.max_us / 1000.0)

    def percentile_ms(self, p: float) -> float | None:
        value = self.hist.percentile_ms(p)
        return None if value is None else self._clamp(value)

    def summary(self) -> dict[str, float]:
        """min, p50 ... p99.99, max, mean in ms, within the exact bounds; zeros when empty."""
        s = self.hist.summary()
        if not self.hist.count:
            return s
        return {k: round(v if k == "mean" else self._clamp(v), 3) for k, v in s.items()}

    def as_json(self) -> dict[str, Any]:
        return {
            "encoded": self.hist.encode().decode("ascii"),
            "count": self.hist.count,
            "sum_us": self.hist.sum_us,
            "min_us": self.min_us,
            "max_us": self.max_us,
        }


Phases = dict[str, _Hist]  # --endpoint stream: PHASES -> histogram


def _phases_of(tally: PhaseTally | None) -> Phases | None:
    return None if tally is None else {p: _Hist.of(h) for p, h in tally.hists.items()}


def _phases_summary(phases: Phases | None) -> dict[str, dict[str, float]] | None:
    return None if phases is None else {p: phases[p].summary() for p in PHASES}


def _phases_json(phases: Phases | None) -> dict[str, Any] | None:
    return None if phases is None else {p: phases[p].as_json() for p in PHASES}


def _phases_from_json(d: Mapping[str, Any] | None) -> Phases | None:
    return None if not d else {p: _Hist.from_json(d[p]) for p in PHASES}


def _merge_phases(parts: Iterable[Phases | None]) -> Phases | None:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    out = {p: _Hist() for p in PHASES}
    for phases in present:
        for p in PHASES:
            out[p].merge(phases[p])
    return out


@dataclass
class _Agent:
    requests: int
    latency: _Hist
    phases: Phases | None = None


@dataclass
class _Point:
    """One timeline point; ``latency`` is None for a report written without the points'
    histograms (then ``p50_ms``/``p99_ms`` are as that report gave them)."""

    t_s: float
    length_s: float
    requests: int
    errors: int
    rps: float
    latency: _Hist | None
    p50_ms: float | None = None
    p99_ms: float | None = None
    phases: Phases | None = None
    phases_ms: Any = None  # as a report without the phases' histograms gave them

    def percentile_ms(self, p: float) -> float | None:
        if self.latency is None:
            return self.p50_ms if p == 50.0 else self.p99_ms
        return _r(self.latency.percentile_ms(p))

    def as_json(self) -> dict[str, Any]:
        return {
            "t_s": round(float(self.t_s), 3),
            "length_s": round(float(self.length_s), 3),
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(self.rps, 3),
            "p50_ms": self.percentile_ms(50.0),
            "p99_ms": self.percentile_ms(99.0),
            **({"phases_ms": self._phases_ms()} if self.phases or self.phases_ms else {}),
        }

    def _phases_ms(self) -> Any:
        """Each phase's summary (min, pNN ..., max, mean): `compare` reads phases_ms[P]["p95"]."""
        return _phases_summary(self.phases) if self.phases is not None else self.phases_ms


@dataclass
class _ReportContent:
    """One report's content, whatever it came from (a run, a JSON file, an hlog, a merge)."""

    target: str
    target_kind: str | None
    endpoint: str | None
    model: str | None
    concurrency: int | None
    rate: float | None
    duration_s: float
    started_at: float
    ok: int
    errors: dict[str, int]
    latency: _Hist
    service_time: _Hist | None
    schedule_lag: _Hist | None
    agents: dict[str, _Agent]
    throughput_rps: float
    target_rate: float | None
    achieved_rate: float
    schedule_lag_p99_ms: float | None
    valid: bool
    verdicts: list[Verdict]
    invalid_reason: str | None = None
    interrupted: bool = False
    dropped_in_flight: int = 0
    policy: str = IN_FLIGHT_POLICY
    note: str | None = None
    runs: int = 1
    timeline: list[_Point] = field(default_factory=list)
    status_codes: dict[str, int] = field(default_factory=dict)  # "200" -> count
    phases: Phases | None = None  # --endpoint stream

    @property
    def requests(self) -> int:
        return self.ok + sum(self.errors.values())

    @property
    def goodput_rps(self) -> float:
        """Answered requests per second: what an ``rps`` threshold judges."""
        return _per_s(self.ok, self.duration_s)


def _per_s(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _document(run: _ReportContent) -> dict[str, Any]:
    total = run.requests
    return {
        "schema": SCHEMA,
        "target": run.target,
        "endpoint": run.endpoint,
        "model": run.model,
        "concurrency": run.concurrency,
        "rate": run.rate,
        "duration_s": round(run.duration_s, 3),
        "requests": total,
        "ok": run.ok,
        "errors": dict(sorted(run.errors.items())),
        "status_codes": dict(sorted(run.status_codes.items())),
        "throughput_rps": round(run.throughput_rps, 3),
        "goodput_rps": round(run.goodput_rps, 3),
        "latency_ms": run.latency.summary(),
        "phases_ms": _phases_summary(run.phases),
        "service_time_ms": run.service_time.summary() if run.service_time else None,
        "agents": {
            agent_id: {
                "requests": a.requests,
                "answered": a.latency.hist.count,
                "share": round(_per_s(a.requests, total), 6),
                "latency_ms": a.latency.summary(),
                "phases_ms": _phases_summary(a.phases),
            }
            for agent_id, a in run.agents.items()
        },
        "generator": {
            "target_rate": _r(run.target_rate),
            "achieved_rate": round(run.achieved_rate, 3),
            "schedule_lag_ms_p99": _r(run.schedule_lag_p99_ms),
            "valid": run.valid,
            "reason": run.invalid_reason,
        },
        "sla": [{**v.as_json(), "kind": v.kind.value} for v in run.verdicts],
        "pass": run.valid and run.ok > 0 and all(v.passed for v in run.verdicts),
        "target_kind": run.target_kind,
        "started_at": run.started_at,
        "interrupted": run.interrupted,
        "dropped_in_flight": run.dropped_in_flight,
        "policy": run.policy,
        "note": run.note,
        "runs": run.runs,
        "timeline": [p.as_json() for p in run.timeline],
        "histograms": {
            "latency": run.latency.as_json(),
            "service_time": run.service_time.as_json() if run.service_time else None,
            "schedule_lag": run.schedule_lag.as_json() if run.schedule_lag else None,
            "agents": {agent_id: a.latency.as_json() for agent_id, a in run.agents.items()},
            "timeline": [p.latency.as_json() if p.latency else None for p in run.timeline],
            "phases": _phases_json(run.phases),
            "agent_phases": {
                agent_id: _phases_json(a.phases) for agent_id, a in run.agents.items() if a.phases
            },
            "timeline_phases": [_phases_json(p.phases) for p in run.timeline]
            if run.phases is not None
            else None,
        },
    }


def build_report(
    plan: BenchPlan,
    result: BenchResult,
    verdicts: Sequence[Verdict],
    *,
    valid: bool,
    target_rate: float | None,
    achieved_rate: float,
    schedule_lag_p99_ms: float | None,
    policy: str = IN_FLIGHT_POLICY,
) -> dict[str, Any]:
    """The ``latcli.bench/v1`` document of one run; ``verdicts`` as evaluated by the caller
    (see :func:`observation`). ``duration_s`` is the measured time, warm-up excluded."""
    run = _ReportContent(
        target=plan.target,
        target_kind=plan.target_kind,
        endpoint=plan.endpoint,
        model=plan.model,
        concurrency=plan.concurrency,
        rate=plan.rate,
        duration_s=result.elapsed_s,
        started_at=result.started_at,
        ok=result.ok,
        errors=dict(result.errors),
        latency=_Hist.of(result.latency),
        service_time=_Hist.of(result.service_time) if result.service_time else None,
        schedule_lag=_Hist.of(result.schedule_lag) if result.schedule_lag else None,
        agents={
            k: _Agent(t.requests, _Hist.of(t.latency), _phases_of(t.phases))
            for k, t in result.agents.items()
        },
        throughput_rps=result.throughput_rps,
        target_rate=target_rate,
        achieved_rate=achieved_rate,
        schedule_lag_p99_ms=schedule_lag_p99_ms,
        valid=valid,
        verdicts=list(verdicts),
        invalid_reason=result.invalid_reason,
        interrupted=result.interrupted,
        dropped_in_flight=result.dropped_in_flight,
        policy=policy,
        timeline=_coarsened(
            [
                _point(
                    iv.start_s,
                    iv.length_s,
                    iv.count + iv.errors,
                    iv.errors,
                    _Hist.of(iv.histogram),
                    _phases_of(iv.phase_tally()),
                )
                for iv in result.intervals
            ]
        ),
        status_codes={str(k): v for k, v in result.status_codes.items()},
        phases=_phases_of(result.phases),
    )
    return _document(run)


def _point(
    t_s: float,
    length_s: float,
    requests: int,
    errors: int,
    latency: _Hist,
    phases: Phases | None = None,
) -> _Point:
    return _Point(
        t_s, length_s, requests, errors, _per_s(requests, length_s), latency, phases=phases
    )


def _coarsened(points: list[_Point]) -> list[_Point]:
    """At most TIMELINE_MAX_POINTS: neighbours merged pairwise, as the engine halves intervals."""
    while len(points) > TIMELINE_MAX_POINTS:
        pairs = [points[i : i + 2] for i in range(0, len(points), 2)]
        points = [_joined([(0, p) for p in pair]) for pair in pairs]
    return points


def observation(result: BenchResult) -> Measurements:
    """What the SLA thresholds judge: latency of answered requests, ``rps`` as goodput
    (answered requests over the measured time), error rates over every request."""
    h = result.latency
    errors, requests = sum(result.errors.values()), result.requests
    phases = None
    if result.phases is not None:
        phases = {
            p: _observe_hist(_Hist.of(x), errors, requests) for p, x in result.phases.hists.items()
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


def _observe_hist(h: _Hist, errors: int, requests: int) -> Measurements:
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


def _observe(run: _ReportContent) -> Measurements:
    h = run.latency
    n = h.hist.count
    return Measurements(
        samples=n,
        percentile=h.percentile_ms,
        mean_ms=h.hist.mean_ms,
        min_ms=h.min_us / 1000.0 if n else None,
        max_ms=h.max_us / 1000.0 if n else None,
        errors=sum(run.errors.values()),
        requests=run.requests,
        rps=run.goodput_rps if run.duration_s > 0 else None,
        phases=None
        if run.phases is None
        else {
            p: _observe_hist(h, sum(run.errors.values()), run.requests)
            for p, h in run.phases.items()
        },
    )


def verdicts_of(report: Mapping[str, Any]) -> list[Verdict]:
    """The report's ``sla`` items as verdicts (to render them with their units)."""
    return [_verdict(item) for item in report.get("sla", [])]


def _verdict(item: Mapping[str, Any]) -> Verdict:
    name, expr = str(item["name"]), str(item["expr"])
    observed = item.get("observed")
    # A report from elsewhere may lack the kind: its expression says what it measures.
    kind = MetricKind(item["kind"]) if "kind" in item else parse_threshold(expr, name).kind
    value = None if observed is None else float(observed)
    return Verdict(name, expr, value, bool(item["pass"]), kind)


def answered_none(report: Mapping[str, Any]) -> bool:
    """No request was answered: nothing was measured, whatever the thresholds say."""
    return int(report.get("ok") or 0) == 0


def exit_code(report: Mapping[str, Any]) -> ExitCode:
    """1 for a run with no answered request, 3 for a run that did not hold its rate, 1 for an
    SLA breach, else 0. An interrupted run's 130 is the caller's: it knows, and a re-rendered
    report is no longer interrupted."""
    if answered_none(report):
        return ExitCode.FAILED
    if not report["generator"]["valid"]:
        return ExitCode.INVALID_RUN
    if any(not item["pass"] for item in report.get("sla", [])):
        return ExitCode.FAILED
    return ExitCode.OK


# --- files -------------------------------------------------------------------------------


def to_json(report: Mapping[str, Any]) -> str:
    """The document as JSON text (stdout and ``-o`` write the same)."""
    return json.dumps(report, indent=2)


def write_text(path: str | Path, text: str) -> None:
    """Write a report file; ReportError (exit 2) naming it if it cannot be written."""
    from latcli.reports.files import open_private

    try:
        with open_private(path) as out:
            out.write(text)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write: {exc.strerror or exc}") from None


def check_writable(path: str | Path) -> None:
    """ReportError (exit 2) now if ``path`` could not be written after the run: a missing or
    read-only directory, or a directory in the file's place. Nothing is created."""
    p = Path(path)
    if p.is_dir():
        raise ReportError(f"{path}: cannot write: is a directory")
    parent = p.parent
    if not parent.is_dir():
        raise ReportError(f"{path}: cannot write: no directory {str(parent)!r}")
    target = p if p.exists() else parent
    if not os.access(target, os.W_OK):
        raise ReportError(f"{path}: cannot write: permission denied")


def write_all(writes: Iterable[tuple[Path | None, Callable[[Path], None]]]) -> list[str]:
    """Write every asked file (``None`` paths skipped), each whatever the others did; the
    failures are printed on stderr, one line each, and returned."""
    import sys

    failed = []
    for path, write in writes:
        if path is None:
            continue
        try:
            write(path)
        except ReportError as exc:
            failed.append(str(exc))
            print(f"latcli: {exc}", file=sys.stderr)
    return failed


def write_json(path: str | Path, report: Mapping[str, Any]) -> None:
    """Write the ``latcli.bench/v1`` document; ReportError (exit 2) if the file cannot be."""
    write_text(path, to_json(report) + "\n")


def write_junit(path: str | Path, report: Mapping[str, Any]) -> None:
    """Write JUnit XML: one test case per SLA threshold (see :func:`latcli.render.junit`)."""
    from latcli.render.junit import junit_xml

    write_text(path, junit_xml(report))


def write_html(path: str | Path, report: Mapping[str, Any]) -> None:
    """The report as one self-contained HTML page (see :func:`latcli.render.html_report`)."""
    from latcli.render.html_bench import bench_html

    write_text(path, bench_html(report))


def write_hlog(path: str | Path, result: BenchResult) -> None:
    """The standard HdrHistogram interval log of ``result.intervals``, times relative to
    ``result.started_at``. A run without intervals logs its whole histogram as one."""
    from latcli.reports.files import open_private
    from latcli.reports.histogram import HlogWriter

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


def report_from_hlog(path: str | Path) -> dict[str, Any]:
    """A report from an ``.hlog`` (hdrh's reader): latency from all intervals merged, requests
    = recorded values, no error, agent or generator data (the ``note`` field says so)."""
    logged = read_hlog(path)
    intervals = [iv for iv in logged if iv.tag is None]
    tagged = [iv for iv in logged if iv.tag in PHASES]  # --endpoint stream's phases
    phases = None
    if tagged:
        phases = {p: _Hist() for p in PHASES}
        for iv in tagged:
            phases[str(iv.tag)].merge(_logged_bounds(iv.histogram, iv.max_ms))
    bounded = [_logged_bounds(iv.histogram, iv.max_ms) for iv in intervals]
    latency = _Hist()
    for hist in bounded:
        latency.merge(hist)
    start = min((iv.start_s for iv in intervals), default=0.0)
    end = max((iv.start_s + iv.length_s for iv in intervals), default=0.0)
    duration = end - start
    m = _HLOG_START.search(Path(path).read_text(encoding="utf-8"))
    count = latency.hist.count
    run = _ReportContent(
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
        throughput_rps=_per_s(count, duration),
        target_rate=None,
        achieved_rate=_per_s(count, duration),
        schedule_lag_p99_ms=None,
        valid=True,
        verdicts=[],
        note=HLOG_NOTE,
        phases=phases,
        timeline=_coarsened(
            [
                _point(iv.start_s - start, iv.length_s, h.hist.count, 0, h)
                for iv, h in zip(intervals, bounded, strict=True)
            ]
        ),
    )
    return _document(run)


def _logged_bounds(h: LatencyHistogram, logged_max_ms: float) -> _Hist:
    # latcli's writer logs the exact max; another tool's may be in another unit, so the logged
    # value is trusted only inside the decoded top bucket (3 significant digits: < 1/1024 wide).
    own = _Hist.of(h)
    logged = round(logged_max_ms * 1000)
    if own.max_us - own.max_us // 512 - 1 <= logged <= own.max_us:
        own.max_us = max(logged, own.min_us)
    return own


def load_report(path: str | Path) -> dict[str, Any]:
    """A report from a ``latcli.bench/v1`` JSON file or an ``.hlog``, recognised by content.

    Raises ReportError (one line naming the file, exit 2) on anything else.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReportError(f"{path}: cannot read: {why}") from None
    head = text.lstrip()
    if head.startswith("{"):
        return _load_json(path, text)
    if _HLOG_MARK.search(text) or _HLOG_LINE.search(text):
        try:
            return report_from_hlog(path)
        except Exception as exc:  # hdrh's reader raises zlib, base64 and its own errors
            raise ReportError(f"{path}: not a readable HdrHistogram log: {exc}") from None
    raise ReportError(f"{path}: neither a {SCHEMA} JSON report nor an HdrHistogram log")


def _load_json(path: str | Path, text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise ReportError(f"{path}: not a {SCHEMA} report (schema {found!r})")
    _run_from_doc(doc, str(path))  # fails here, naming the file, rather than in the merge
    if isinstance(doc.get("target"), str):  # written by a latcli that kept URL passwords
        doc["target"] = redact_url(doc["target"])
    return doc


# --- merging -----------------------------------------------------------------------------


def _run_from_doc(doc: Mapping[str, Any], source: str = "report") -> _ReportContent:
    try:
        hists = doc["histograms"]
        service, lag = hists.get("service_time"), hists.get("schedule_lag")
        gen = doc["generator"]
        agent_phases = hists.get("agent_phases") or {}
        agents = {
            str(k): _Agent(
                int(v["requests"]),
                _Hist.from_json(hists["agents"][k]),
                _phases_from_json(agent_phases.get(k)),
            )
            for k, v in doc["agents"].items()
        }
        return _ReportContent(
            target=str(doc["target"]),
            target_kind=doc.get("target_kind"),
            endpoint=doc["endpoint"],
            model=doc["model"],
            concurrency=doc["concurrency"],
            rate=doc["rate"],
            duration_s=float(doc["duration_s"]),
            started_at=float(doc.get("started_at") or 0.0),
            ok=int(doc["ok"]),
            errors={str(k): int(v) for k, v in doc["errors"].items()},
            latency=_Hist.from_json(hists["latency"]),
            service_time=_Hist.from_json(service) if service else None,
            schedule_lag=_Hist.from_json(lag) if lag else None,
            agents=agents,
            throughput_rps=float(doc["throughput_rps"]),
            target_rate=gen["target_rate"],
            achieved_rate=float(gen["achieved_rate"]),
            schedule_lag_p99_ms=gen["schedule_lag_ms_p99"],
            valid=bool(gen["valid"]),
            verdicts=verdicts_of(doc),
            invalid_reason=gen.get("reason"),
            interrupted=bool(doc.get("interrupted", False)),
            dropped_in_flight=int(doc.get("dropped_in_flight", 0)),
            policy=str(doc.get("policy", IN_FLIGHT_POLICY)),
            note=doc.get("note"),
            runs=int(doc.get("runs", 1)),
            timeline=_timeline_of(doc),
            status_codes={str(k): int(v) for k, v in (doc.get("status_codes") or {}).items()},
            phases=_phases_from_json(hists.get("phases")),
        )
    except (KeyError, TypeError, ValueError, AttributeError, SlaSyntaxError) as exc:
        why = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ReportError(f"{source}: not a mergeable {SCHEMA} report ({why})") from None


def _timeline_of(doc: Mapping[str, Any]) -> list[_Point]:
    points = doc.get("timeline") or []
    hists = doc["histograms"].get("timeline") or [None] * len(points)
    phases = doc["histograms"].get("timeline_phases") or [None] * len(points)
    return [
        _Point(
            float(p["t_s"]),
            float(p["length_s"]),
            int(p["requests"]),
            int(p["errors"]),
            float(p["rps"]),
            _Hist.from_json(h) if h else None,
            p.get("p50_ms"),
            p.get("p99_ms"),
            _phases_from_json(ph),
            p.get("phases_ms"),
        )
        for p, h, ph in zip(points, hists, phases, strict=True)
    ]


def merge_reports(
    docs: Sequence[Mapping[str, Any]], *, thresholds: Sequence[Threshold] | None = None
) -> dict[str, Any]:
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
    Raises ReportError for reports of different endpoints or models.
    """
    if not docs:
        raise ReportError("no reports to merge")
    if len(docs) == 1 and thresholds is None:
        return copy.deepcopy(dict(docs[0]))
    runs = [_run_from_doc(d, f"report {i + 1}") for i, d in enumerate(docs)]
    merged = _merge_runs(runs)
    chosen = list(thresholds) if thresholds is not None else _thresholds_of(runs)
    merged.verdicts = evaluate(chosen, _observe(merged))
    return _document(merged)


def _thresholds_of(runs: Iterable[_ReportContent]) -> list[Threshold]:
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


def _overlapping(runs: Sequence[_ReportContent]) -> bool:
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


def _merge_hists(hists: Iterable[_Hist | None]) -> _Hist | None:
    present = [h for h in hists if h is not None]
    if not present:
        return None
    out = _Hist()
    for h in present:
        out.merge(h)
    return out


def _merge_runs(runs: Sequence[_ReportContent]) -> _ReportContent:
    together = _overlapping(runs)
    total_s = sum(r.duration_s for r in runs)
    duration = max(r.duration_s for r in runs) if together else total_s
    errors: dict[str, int] = {}
    statuses: dict[str, int] = {}
    agents: dict[str, _Agent] = {}
    for r in runs:
        for kind, n in r.errors.items():
            errors[kind] = errors.get(kind, 0) + n
        for code, n in r.status_codes.items():
            statuses[code] = statuses.get(code, 0) + n
        for agent_id, a in r.agents.items():
            mine = agents.setdefault(agent_id, _Agent(0, _Hist()))
            mine.requests += a.requests
            mine.latency.merge(a.latency)
            mine.phases = _merge_phases((mine.phases, a.phases))
    requests = sum(r.requests for r in runs)
    if together:
        throughput = sum(r.throughput_rps for r in runs)
        achieved = sum(r.achieved_rate for r in runs)
    else:
        throughput = _per_s(requests, total_s)
        achieved = sum(r.achieved_rate * r.duration_s for r in runs) / total_s if total_s else 0.0
    lag = _merge_hists(r.schedule_lag for r in runs)
    concurrency = _combine((r.concurrency for r in runs), together)
    starts = [r.started_at for r in runs if r.started_at > 0]
    notes = dict.fromkeys(r.note for r in runs if r.note)
    return _ReportContent(
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
        latency=_merge_hists(r.latency for r in runs) or _Hist(),
        service_time=_merge_hists(r.service_time for r in runs),
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
        timeline=_merged_timeline(runs, min(starts, default=0.0)),
        status_codes=statuses,
        phases=_merge_phases(r.phases for r in runs),
    )


def _merged_timeline(runs: Sequence[_ReportContent], t0: float) -> list[_Point]:
    """The runs' points on one clock from ``t0``, merged by bucket (see merge_reports)."""
    # Each run's median interval, not its longest or last: a run's last interval is often short.
    lengths = [sorted(p.length_s for p in r.timeline) for r in runs if r.timeline]
    step = max((ls[len(ls) // 2] for ls in lengths), default=1.0) or 1.0
    buckets: dict[int, list[tuple[int, _Point]]] = {}
    for i, r in enumerate(runs):
        offset = r.started_at - t0 if r.started_at > 0 else 0.0
        for p in r.timeline:
            moved = copy.copy(p)
            moved.t_s = p.t_s + offset
            buckets.setdefault(math.floor(moved.t_s / step + 0.5), []).append((i, moved))
    return _coarsened([_joined(group) for _, group in sorted(buckets.items())])


def _joined(group: Sequence[tuple[int, _Point]]) -> _Point:
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
        rps += _per_s(sum(p.requests for p in mine), span)
    hists = [p.latency for p in points]
    known = [h for h in hists if h is not None]
    merged = _merge_hists(known) if len(known) == len(hists) else None
    phased = [p.phases for p in points]
    return _Point(
        start,
        end - start,
        sum(p.requests for p in points),
        sum(p.errors for p in points),
        rps,
        merged,
        phases=_merge_phases(phased) if all(ph is not None for ph in phased) else None,
    )
