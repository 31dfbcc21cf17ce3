"""The bench report page: a ``latcli.bench/v1`` document (DESIGN §6) as one self-contained HTML
page built from :mod:`latcli.render.html_page`. Pure: the same document gives the same page.

The percentile spectrum is HdrHistogram's: the x axis is 1/(1-p) on a log scale, so 90 %,
99 %, 99.9 % ... are equally spaced and the tail gets the room it deserves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from latcli.core.sla import format_percent as _percent
from latcli.core.units import format_duration, format_ms
from latcli.render import html_page as kit
from latcli.render.svg import Axis, Bar, Mark, Series, bar_chart, esc, line_chart, linear_axis
from latcli.reports.bench import BenchReport
from latcli.reports.bench_timeline import TimelinePoint
from latcli.reports.bounded_histogram import BoundedHistogram, Spectrum
from latcli.reports.histogram import SUMMARY_KEYS

_STEP = 0.05  # spectrum points per decade of 1/(1-p): 20, smooth at 1,000 px
# Where the summary's percentiles sit on the spectrum's axis (a report without histograms).
_SUMMARY_X = {"min": 0.0, "p50": math.log10(2), "p90": 1.0, "p95": math.log10(20), "p99": 2.0,
              "p99.9": 3.0, "p99.99": 4.0}  # fmt: skip


def _started(doc: BenchReport) -> str | None:
    at = float(doc.started_at or 0.0)
    if at <= 0:
        return None
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pct_label(decade: int) -> str:
    """The spectrum's tick at 1/(1-p) = 10^decade: 0 %, 90 %, 99 %, 99.9 % ..."""
    if decade == 0:
        return "0%"
    return f"{100 - 100 / 10**decade:.{max(decade - 2, 0)}f}%"


def _spectrum_points(
    summary: Spectrum | None, h: BoundedHistogram | None, answered: int
) -> list[tuple[float, float]]:
    """(log10 1/(1-p), ms) from the histogram, else from the summary's percentiles; the max
    closes the line at 1/(1-p) = count (the last value's rank)."""
    count = h.hist.count if h is not None else answered
    if not count or summary is None:
        return []
    top = math.log10(count)
    if h is not None:
        xs = [i * _STEP for i in range(int(top / _STEP) + 1) if i * _STEP < top]
        points = [(x, float(h.percentile_ms(100.0 * (1.0 - 10**-x)) or 0.0)) for x in xs]
    else:
        points = [(x, summary[k]) for k, x in _SUMMARY_X.items() if x < top]
    return [*points, (top, summary["max"])]


def _sla_exprs(doc: BenchReport) -> list[str]:
    return [v.expr for v in doc.sla]


def _spectrum_chart(doc: BenchReport) -> str:
    latency = _spectrum_points(doc.latency_ms, doc.histograms.latency, doc.ok)
    if not latency:
        return kit.empty("No request was answered: no percentile spectrum.")
    series = [Series("latency", tuple(latency), "s1", dots=len(latency) < 3)]
    service = []
    if doc.service_time_ms:
        service = _spectrum_points(doc.service_time_ms, doc.histograms.service_time, doc.ok)
    if service:  # drawn first, dashed, so that latency (from the due time) stays on top
        series.insert(
            0, Series("service time", tuple(service), "s3", dots=len(service) < 3, dashed=True)
        )
    decades = max(math.ceil(max(x for x, _ in latency) - 1e-9), 1)
    x = Axis(0.0, float(decades), tuple((float(d), _pct_label(d)) for d in range(decades + 1)),
             "percentile (log scale of 1/(1-p))")  # fmt: skip
    top = max(y for s in series for p in s.points if p for y in [p[1]])
    y = linear_axis(0.0, top, "latency", kit.tick_ms)
    marks = kit.latency_marks(_sla_exprs(doc), y.hi)
    return line_chart("Latency by percentile", series, x, y, marks=marks)


_PHASE_NAMES = {
    "first_event": "first event",
    "first_artifact": "first artifact",
    "gap": "gap (longest per message)",
    "total": "total",
}


def _phase_chart(doc: BenchReport, phase: str) -> str:
    """The spectrum of one stream phase, with the SLA limits set on that phase."""
    summary = (doc.phases_ms or {}).get(phase)
    points = _spectrum_points(summary, (doc.histograms.phases or {}).get(phase), doc.ok)
    name = _PHASE_NAMES[phase]
    if not points:
        return kit.empty(f"No answered stream: no {name} spectrum.")
    series = [Series(name, tuple(points), "s1", dots=len(points) < 3)]
    decades = max(math.ceil(max(x for x, _ in points) - 1e-9), 1)
    x = Axis(0.0, float(decades), tuple((float(d), _pct_label(d)) for d in range(decades + 1)),
             "percentile (log scale of 1/(1-p))")  # fmt: skip
    y = linear_axis(0.0, max(y for _, y in points), name, kit.tick_ms)
    own = [e for e in _sla_exprs(doc) if e.startswith(phase + ".")]
    marks = kit.latency_marks([e.split(".", 1)[1] for e in own], y.hi)
    return line_chart(f"{name.capitalize()} by percentile", series, x, y, marks=marks)


def _phases_section(doc: BenchReport) -> str:
    """--endpoint stream: a spectrum per phase and the phases' summary table ('' otherwise)."""
    phases = doc.phases_ms
    if not phases:
        return ""
    none = not doc.ok
    body = [
        [
            esc(_PHASE_NAMES[p]),
            *("-" if none else esc(format_ms(v[k])) for k in SUMMARY_KEYS),
        ]
        for p, v in phases.items()
        if p in _PHASE_NAMES
    ]
    table = kit.table(["", *SUMMARY_KEYS], body, set(range(1, len(SUMMARY_KEYS) + 1)))
    charts = [_phase_chart(doc, p) for p in _PHASE_NAMES]
    return kit.section("Stream phases (answered streams)", table, *charts)


def _summary_table(doc: BenchReport) -> str:
    rows = [("latency", doc.latency_ms)]
    if doc.service_time_ms:
        rows.append(("service time", doc.service_time_ms))
    none = not doc.ok
    body = [
        [esc(label), *("-" if none else esc(format_ms(values[k])) for k in SUMMARY_KEYS)]
        for label, values in rows
    ]
    return kit.table(["", *SUMMARY_KEYS], body, set(range(1, len(SUMMARY_KEYS) + 1)))


def _timeline_series(
    points: Sequence[TimelinePoint], value: Callable[[TimelinePoint], float | None]
) -> tuple[tuple[float, float] | None, ...]:
    """A step line: each interval's value held over its length (a short last interval stays
    short); a gap in time or a missing value breaks the line."""
    out: list[tuple[float, float] | None] = []
    end = None
    for p in points:
        t, length = float(p.t_s), float(p.length_s)
        if end is not None and t - end > max(0.5, 0.5 * length):
            out.append(None)
        v = value(p)
        out += [None] if v is None else [(t, float(v)), (t + length, float(v))]
        end = t + length
    return tuple(out)


def _timeline_charts(doc: BenchReport) -> str:
    points = doc.timeline
    if not points:
        return kit.empty("No timeline in this report (no measured interval).")
    end = max(float(p.t_s) + float(p.length_s) for p in points)
    x = linear_axis(0.0, end, "time since the start of the measured run", kit.tick_s, 8)
    p50 = _timeline_series(points, lambda p: p.percentile_ms(50.0))
    p99 = _timeline_series(points, lambda p: p.percentile_ms(99.0))
    lat = [Series("p50", p50, "s1"), Series("p99", p99, "s2")]
    top = max((pt[1] for s in lat for pt in s.points if pt), default=0.0)
    parts = ["<h3>Latency over time</h3>"]
    if top > 0:
        y = linear_axis(0.0, top, "latency", kit.tick_ms)
        marks = kit.latency_marks(_sla_exprs(doc), y.hi)
        parts.append(line_chart("p50 and p99 latency over time", lat, x, y, marks=marks))
    else:
        parts.append(kit.empty("No request completed in any interval."))
    rps = _timeline_series(points, lambda p: p.rps)
    thr = [Series("throughput", rps, "s3")]
    if any(p.errors for p in points):
        errs = _timeline_series(points, lambda p: p.errors / float(p.length_s or 1))
        thr.append(Series("errors/s", errs, "bad"))
    target = kit.num(doc.generator.target_rate)
    top = max([pt[1] for s in thr for pt in s.points if pt] + [target or 0.0])
    y = linear_axis(0.0, top, "requests per second", kit.tick_rate)
    marks = [Mark("y", target, f"target {target:g} req/s")] if target else []
    parts += ["<h3>Throughput over time</h3>", line_chart("Throughput", thr, x, y, marks=marks)]
    return "".join(parts)


def _agents_section(doc: BenchReport) -> str:
    agents = doc.agents
    if not agents:
        why = "a URL target" if doc.target_kind == "url" else "no agent data"
        return kit.section("Agents", kit.empty(f"No per-agent breakdown ({why})."))
    ranked = sorted(agents.items(), key=lambda kv: -kv[1].requests)
    bars, rows = [], []
    for agent_id, a in ranked:
        lat, n = a.latency_ms, a.requests
        p50, p99 = (format_ms(lat[k]) if n else "-" for k in ("p50", "p99"))
        share = _percent(float(a.share))
        bars.append(Bar(agent_id, float(a.share), f"{share} · p50 {p50} · p99 {p99}"))
        cells = [share, f"{n:,}", p50, p99, format_ms(lat["max"]) if n else "-"]
        rows.append([f"<code>{esc(agent_id)}</code>", *(esc(c) for c in cells)])
    chart = bar_chart("Share of requests per agent", bars, top=1.0)
    table = kit.table(["agent", "share", "requests", "p50", "p99", "max"], rows, {1, 2, 3, 4, 5})
    return kit.section("Agents", chart, table)


def _errors_section(doc: BenchReport) -> str:
    errors = sorted(doc.errors.items(), key=lambda kv: -kv[1])
    if not errors:
        return kit.section("Errors by kind", kit.empty("No errors."))
    total = max(doc.requests, 1)
    bars = [Bar(k, float(n), f"{int(n):,} ({_percent(int(n) / total)})", "bad") for k, n in errors]
    return kit.section("Errors by kind", bar_chart("Errors by kind", bars))


def _sla_section(doc: BenchReport) -> str:
    verdicts = doc.sla
    if not verdicts:
        return kit.section("SLA", kit.empty("No SLA thresholds were given (--sla)."))
    rows = [
        [
            '<span class="pass">PASS</span>' if v.passed else '<span class="fail">FAIL</span>',
            esc(v.name),
            f"<code>{esc(v.expr)}</code>",
            esc(v.format_observed()),
        ]
        for v in verdicts
    ]
    return kit.section("SLA", kit.table(["verdict", "name", "threshold", "observed"], rows, {3}))


def _generator_section(doc: BenchReport) -> str:
    gen = doc.generator
    target, achieved = kit.num(gen.target_rate), float(gen.achieved_rate or 0.0)
    lag = kit.num(gen.schedule_lag_ms_p99)
    valid = gen.valid
    verdict = '<span class="pass">valid</span>' if valid else '<span class="fail">INVALID</span>'
    if not valid and gen.reason:
        verdict += f" ({esc(gen.reason)})"
    rows = [
        ["target rate", esc(kit.rate(target) if target is not None else "- (closed model)")],
        ["achieved rate", esc(kit.rate(achieved))],
        ["schedule lag p99", esc(format_ms(lag))],
        ["run", verdict],
        ["dropped in flight", esc(f"{doc.dropped_in_flight:,}")],
    ]
    parts = [kit.table(["generator", ""], [[esc(k), v] for k, v in rows], set())]
    if target:
        css = "s3" if valid else "bad"
        bars = [
            Bar("target", target, kit.rate(target), "s4"),
            Bar("achieved", achieved, kit.rate(achieved), css),
        ]
        parts.insert(0, bar_chart("Target and achieved rate", bars))
    if doc.policy:
        parts.append(f'<p class="note">In flight at the end: {esc(doc.policy)}.</p>')
    return kit.section("Generator", *parts)


def _bench_badge(doc: BenchReport) -> str:
    if doc.interrupted:
        return kit.badge("INTERRUPTED", "warn")
    if not doc.generator.valid:
        return kit.badge("INVALID RUN", "bad")
    if doc.sla:
        return kit.badge("PASS", "ok") if doc.passed else kit.badge("FAIL", "bad")
    return kit.badge("NO SLA", "")


def _model_text(doc: BenchReport) -> str | None:
    if doc.model == "open":
        return f"open model, {float(doc.rate or 0.0):g} req/s"
    if doc.model == "closed":
        return f"closed model, concurrency {doc.concurrency}"
    return None


def _bench_header(doc: BenchReport) -> str:
    facts = [
        f"endpoint {doc.endpoint}" if doc.endpoint else None,
        _model_text(doc),
        f"{format_duration(round(float(doc.duration_s or 0.0), 3))} measured",
        _started(doc),
    ]
    remarks = []
    if doc.interrupted:
        remarks.append("Interrupted: a partial report.")
    if doc.runs > 1:
        remarks.append(f"Merged from {doc.runs} runs.")
    if doc.note:
        remarks.append(f"Note: {doc.note}")
    return (
        f"<header><h1>latcli bench <code>{esc(doc.target)}</code>"
        f"{_bench_badge(doc)}</h1>"
        f'<p class="meta">{esc(" · ".join(f for f in facts if f))}</p>'
        + "".join(f'<p class="note">{esc(r)}</p>' for r in remarks)
        + "</header>"
    )


def _bench_figures(doc: BenchReport) -> str:
    requests = doc.requests
    lat = doc.latency_ms
    errors = sum(doc.errors.values())

    answered = doc.ok
    statuses = " ".join(f"[{c}] {n:,}" for c, n in sorted(doc.status_codes.items()))

    def ms(key: str) -> str:
        return format_ms(lat[key]) if answered else "-"

    return kit.figures(
        [
            ("requests", f"{requests:,}"),
            ("HTTP status", statuses or "-"),
            ("throughput", kit.rate(float(doc.throughput_rps or 0.0))),
            ("p50", ms("p50")),
            ("p99", ms("p99")),
            ("p99.9", ms("p99.9")),
            ("max", ms("max")),
            ("errors", _percent(errors / requests) if requests else "-"),
        ]
    )


def bench_html(doc: BenchReport) -> str:
    """The bench report as one HTML page: header, key figures, percentile spectrum (latency
    and, in the open model, service time), p50/p99 and throughput over time, per-agent share,
    errors by kind, SLA verdicts and generator health. Sections without data say so."""
    title = f"latcli bench {doc.target}"
    body = [
        _bench_header(doc),
        _bench_figures(doc),
        kit.section("Latency percentile spectrum", _spectrum_chart(doc), _summary_table(doc)),
        _phases_section(doc),
        kit.section("Over time", _timeline_charts(doc)),
        _agents_section(doc),
        _errors_section(doc),
        _sla_section(doc),
        _generator_section(doc),
    ]
    return kit.page(title, body)
