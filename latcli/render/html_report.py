"""Self-contained HTML reports: one file, inline CSS and SVG, no network, no external font.

:func:`bench_html` renders a ``latcli.bench/v1`` document (DESIGN §6), :func:`capacity_html` a
``latcli.capacity/v1`` one. Both are pure: the same document gives the same page. The charts
are SVG drawn here (:mod:`latcli.render.svg`); the only script is a self-check that marks
``<body data-charts="N" data-charts-rendered="M">`` once each chart's data has a non-empty
bounding box, for tests and for anyone wondering whether a chart silently failed (and
``data-height``, the page's height, for a screenshot of the whole page). Every
user-supplied string (targets, agent ids, messages, thresholds) is escaped.

The percentile spectrum is HdrHistogram's: the x axis is 1/(1-p) on a log scale, so 90 %,
99 %, 99.9 % ... are equally spaced and the tail gets the room it deserves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from latcli import __version__
from latcli.core.sla import SlaSyntaxError, parse_threshold
from latcli.core.sla import format_percent as _percent
from latcli.core.units import format_duration, format_ms
from latcli.render.svg import (
    Axis,
    Bar,
    Mark,
    Series,
    bar_chart,
    esc,
    line_chart,
    linear_axis,
    log_axis,
)
from latcli.reports.histogram import SUMMARY_KEYS

_STEP = 0.05  # spectrum points per decade of 1/(1-p): 20, smooth at 1,000 px
# Where the summary's percentiles sit on the spectrum's axis (a report without histograms).
_SUMMARY_X = {"min": 0.0, "p50": math.log10(2), "p90": 1.0, "p95": math.log10(20), "p99": 2.0,
              "p99.9": 3.0, "p99.99": 4.0}  # fmt: skip

_CSS = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;
--panel:#f6f8fa;--s1:#0969da;--s2:#bc4c00;--s3:#1a7f37;--s4:#8250df;--ok:#1a7f37;--bad:#cf222e;
--warn:#9a6700}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--line:#3d444d;--panel:#151b23;--s1:#4493f8;--s2:#f0883e;--s3:#3fb950;--s4:#ab7df8;--ok:#3fb950;
--bad:#f85149;--warn:#d29922}}
@media print{:root{--bg:#fff;--fg:#000;--muted:#444;--line:#bbb;--panel:#fff;--s1:#0550ae;
--s2:#953800;--s3:#116329;--s4:#6639ba;--ok:#116329;--bad:#a40e26;--warn:#7d4e00}
body{max-width:none;margin:0}section{break-inside:avoid}h2{break-after:avoid}}
*{box-sizing:border-box}
body{background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,sans-serif;max-width:1080px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h1 code{font-size:20px}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:14px;margin:14px 0 4px;
color:var(--muted);font-weight:600}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
.meta,.empty,footer,.note{color:var(--muted)}.empty{padding:8px 0;font-style:italic}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-weight:700;font-size:13px;
color:#fff;background:var(--muted);vertical-align:middle;margin-left:8px}
.badge.ok{background:var(--ok)}.badge.bad{background:var(--bad)}.badge.warn{background:var(--warn)}
.figures{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.figure{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:8px 14px;
min-width:120px}.figure b{display:block;font-size:19px}.figure span{color:var(--muted);
font-size:12px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{padding:3px 10px;border-bottom:1px solid var(--line);text-align:left}
th{color:var(--muted);font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.knee td{background:var(--panel);font-weight:600}
.pass{color:var(--ok);font-weight:700}.fail{color:var(--bad);font-weight:700}
svg.chart{display:block;width:100%;height:auto;margin:4px 0 10px}
svg.chart text{fill:var(--muted);font:12px system-ui,sans-serif}
svg.chart .title{fill:var(--fg)}
svg.chart .grid line{stroke:var(--line);stroke-width:1;opacity:.6}
svg.chart .axis line{stroke:var(--muted);stroke-width:1}
svg.chart .line{fill:none;stroke-width:2;stroke-linejoin:round}
svg.chart .s1{stroke:var(--s1);fill:var(--s1)}svg.chart .s2{stroke:var(--s2);fill:var(--s2)}
svg.chart .s3{stroke:var(--s3);fill:var(--s3)}svg.chart .s4{stroke:var(--s4);fill:var(--s4)}
svg.chart .ok{stroke:var(--ok);fill:var(--ok)}svg.chart .bad{stroke:var(--bad);fill:var(--bad)}
svg.chart polyline.line{fill:none}svg.chart circle.ring{fill:none;stroke-width:2}
svg.chart .mark line,svg.chart .sla line{stroke:var(--muted);stroke-dasharray:5 4}
svg.chart .knee line{stroke:var(--bad);stroke-width:1.5;stroke-dasharray:5 4}
svg.chart .knee text{fill:var(--bad);font-weight:600}
svg.chart .ideal{stroke:var(--muted);fill:var(--muted)}
ul.reasons{margin:4px 0;padding-left:20px}
"""

# No "<" nor "&" in it: the page stays parseable as XML.
_SELF_CHECK = """(function () {
  var charts = document.querySelectorAll("svg.chart"), drawn = 0;
  charts.forEach(function (svg) {
    var plot = svg.querySelector(".plot"), box = plot ? plot.getBBox() : null;
    if (box ? box.width + box.height > 0 : false) { drawn += 1; }
  });
  document.body.setAttribute("data-charts", String(charts.length));
  document.body.setAttribute("data-charts-rendered", String(drawn));
  document.body.setAttribute("data-height", String(document.documentElement.scrollHeight));
})();"""


# --- shared pieces ---------------------------------------------------------------------------


def _page(title: str, body: Sequence[str]) -> str:
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>',
            '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
            *body,
            f"<footer><p>latcli {esc(__version__)} · one self-contained file: no script but a "
            f"render self-check, no network</p></footer><script>{_SELF_CHECK}</script>",
            "</body></html>\n",
        ]
    )


def _section(title: str, *parts: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{''.join(parts)}</section>"


def _empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


def _badge(text: str, css: str) -> str:
    return f'<span class="badge {css}">{esc(text)}</span>'


def _figures(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(
        f'<div class="figure"><b>{esc(value)}</b><span>{esc(label)}</span></div>'
        for label, value in items
    )
    return f'<div class="figures">{cells}</div>'


def _table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: set[int],
    marked: int | None = None,
) -> str:
    """Cells are HTML already (escape before); ``numeric``: right-aligned column indexes;
    ``marked``: the index of a row to highlight (the knee)."""

    def cls(i: int) -> str:
        return ' class="n"' if i in numeric else ""

    ths = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(head))
    trs = "".join(
        ('<tr class="knee">' if r == marked else "<tr>")
        + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for r, row in enumerate(rows)
    )
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table>"


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} req/s"


def _tick_ms(v: float) -> str:
    return f"{v / 1000:g} s" if v >= 1000 else f"{v:g} ms"


def _tick_rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 else f"{v:g}"


def _tick_s(v: float) -> str:
    return format_duration(v) if v > 0 else "0"


def _started(doc: Mapping[str, Any]) -> str | None:
    at = float(doc.get("started_at") or 0.0)
    if at <= 0:
        return None
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _latency_marks(exprs: Sequence[str], top: float, at_end: bool = False) -> list[Mark]:
    """SLA latency limits as reference lines, those inside the chart's range only."""
    marks = []
    for expr in exprs:
        try:
            t = parse_threshold(expr)
        except SlaSyntaxError:
            continue
        if t.percentile is not None and 0 < t.limit <= top:
            marks.append(Mark("y", t.limit, f"SLA {t.expr}", "sla", at_end))
    return marks


# --- bench -----------------------------------------------------------------------------------


def _pct_label(decade: int) -> str:
    """The spectrum's tick at 1/(1-p) = 10^decade: 0 %, 90 %, 99 %, 99.9 % ..."""
    if decade == 0:
        return "0%"
    return f"{100 - 100 / 10**decade:.{max(decade - 2, 0)}f}%"


def _histogram(doc: Mapping[str, Any], key: str) -> Any:
    from latcli.reports.histogram import LatencyHistogram

    encoded = (doc.get("histograms") or {}).get(key)
    if not encoded:
        return None
    sum_us = encoded.get("sum_us")
    extremes = (int(encoded["min_us"]), int(encoded["max_us"])) if "max_us" in encoded else None
    return LatencyHistogram.decode(str(encoded["encoded"]), sum_us, extremes)


def _spectrum_points(doc: Mapping[str, Any], key: str) -> list[tuple[float, float]]:
    """(log10 1/(1-p), ms) from the encoded histogram, else from the summary's percentiles;
    the max closes the line at 1/(1-p) = count (the last value's rank)."""
    summary = doc.get(f"{key}_ms") or {}
    answered = int(doc.get("ok") or 0)
    h = _histogram(doc, key)
    count = h.count if h is not None else answered
    if not count or not summary:
        return []
    top = math.log10(count)
    if h is not None:
        xs = [i * _STEP for i in range(int(top / _STEP) + 1) if i * _STEP < top]
        points = [(x, float(h.percentile_ms(100.0 * (1.0 - 10**-x)) or 0.0)) for x in xs]
    else:
        points = [(x, float(summary[k])) for k, x in _SUMMARY_X.items() if x < top]
    return [*points, (top, float(summary["max"]))]


def _spectrum_chart(doc: Mapping[str, Any]) -> str:
    latency = _spectrum_points(doc, "latency")
    if not latency:
        return _empty("No request was answered: no percentile spectrum.")
    series = [Series("latency", tuple(latency), "s1", dots=len(latency) < 3)]
    service = _spectrum_points(doc, "service_time") if doc.get("service_time_ms") else []
    if service:  # drawn first, dashed, so that latency (from the due time) stays on top
        series.insert(
            0, Series("service time", tuple(service), "s3", dots=len(service) < 3, dashed=True)
        )
    decades = max(math.ceil(max(x for x, _ in latency) - 1e-9), 1)
    x = Axis(0.0, float(decades), tuple((float(d), _pct_label(d)) for d in range(decades + 1)),
             "percentile (log scale of 1/(1-p))")  # fmt: skip
    top = max(y for s in series for p in s.points if p for y in [p[1]])
    y = linear_axis(0.0, top, "latency", _tick_ms)
    marks = _latency_marks([str(item["expr"]) for item in doc.get("sla") or []], y.hi)
    return line_chart("Latency by percentile", series, x, y, marks=marks)


_PHASE_NAMES = {
    "first_event": "first event",
    "first_artifact": "first artifact",
    "gap": "gap (longest per message)",
    "total": "total",
}


def _phase_doc(doc: Mapping[str, Any], phase: str) -> dict[str, Any]:
    """One phase as a report of its own (its histogram in the ``latency`` slot)."""
    hists = (doc.get("histograms") or {}).get("phases") or {}
    return {
        "ok": doc.get("ok"),
        "latency_ms": (doc.get("phases_ms") or {}).get(phase),
        "histograms": {"latency": hists.get(phase)},
    }


def _phase_chart(doc: Mapping[str, Any], phase: str) -> str:
    """The spectrum of one stream phase, with the SLA limits set on that phase."""
    points = _spectrum_points(_phase_doc(doc, phase), "latency")
    name = _PHASE_NAMES[phase]
    if not points:
        return _empty(f"No answered stream: no {name} spectrum.")
    series = [Series(name, tuple(points), "s1", dots=len(points) < 3)]
    decades = max(math.ceil(max(x for x, _ in points) - 1e-9), 1)
    x = Axis(0.0, float(decades), tuple((float(d), _pct_label(d)) for d in range(decades + 1)),
             "percentile (log scale of 1/(1-p))")  # fmt: skip
    y = linear_axis(0.0, max(y for _, y in points), name, _tick_ms)
    own = [str(i["expr"]) for i in doc.get("sla") or [] if str(i["expr"]).startswith(phase + ".")]
    marks = _latency_marks([e.split(".", 1)[1] for e in own], y.hi)
    return line_chart(f"{name.capitalize()} by percentile", series, x, y, marks=marks)


def _phases_section(doc: Mapping[str, Any]) -> str:
    """--endpoint stream: a spectrum per phase and the phases' summary table ('' otherwise)."""
    phases = doc.get("phases_ms")
    if not phases:
        return ""
    none = not int(doc.get("ok") or 0)
    body = [
        [
            esc(_PHASE_NAMES[p]),
            *("-" if none else esc(format_ms(float(v[k]))) for k in SUMMARY_KEYS),
        ]
        for p, v in phases.items()
        if p in _PHASE_NAMES
    ]
    table = _table(["", *SUMMARY_KEYS], body, set(range(1, len(SUMMARY_KEYS) + 1)))
    charts = [_phase_chart(doc, p) for p in _PHASE_NAMES]
    return _section("Stream phases (answered streams)", table, *charts)


def _summary_table(doc: Mapping[str, Any]) -> str:
    rows = [("latency", doc.get("latency_ms"))]
    if doc.get("service_time_ms"):
        rows.append(("service time", doc["service_time_ms"]))
    none = not int(doc.get("ok") or 0)
    body = [
        [esc(label), *("-" if none else esc(format_ms(float(values[k]))) for k in SUMMARY_KEYS)]
        for label, values in rows
        if values
    ]
    return _table(["", *SUMMARY_KEYS], body, set(range(1, len(SUMMARY_KEYS) + 1)))


def _timeline_series(
    points: Sequence[Mapping[str, Any]], value: Any
) -> tuple[tuple[float, float] | None, ...]:
    """A step line: each interval's value held over its length (a short last interval stays
    short); a gap in time or a missing value breaks the line."""
    out: list[tuple[float, float] | None] = []
    end = None
    for p in points:
        t, length = float(p["t_s"]), float(p["length_s"])
        if end is not None and t - end > max(0.5, 0.5 * length):
            out.append(None)
        v = value(p)
        out += [None] if v is None else [(t, float(v)), (t + length, float(v))]
        end = t + length
    return tuple(out)


def _timeline_charts(doc: Mapping[str, Any]) -> str:
    points = doc.get("timeline") or []
    if not points:
        return _empty("No timeline in this report (no measured interval).")
    end = max(float(p["t_s"]) + float(p["length_s"]) for p in points)
    x = linear_axis(0.0, end, "time since the start of the measured run", _tick_s, 8)
    p50 = _timeline_series(points, lambda p: p.get("p50_ms"))
    p99 = _timeline_series(points, lambda p: p.get("p99_ms"))
    lat = [Series("p50", p50, "s1"), Series("p99", p99, "s2")]
    top = max((pt[1] for s in lat for pt in s.points if pt), default=0.0)
    parts = ["<h3>Latency over time</h3>"]
    if top > 0:
        y = linear_axis(0.0, top, "latency", _tick_ms)
        marks = _latency_marks([str(item["expr"]) for item in doc.get("sla") or []], y.hi)
        parts.append(line_chart("p50 and p99 latency over time", lat, x, y, marks=marks))
    else:
        parts.append(_empty("No request completed in any interval."))
    rps = _timeline_series(points, lambda p: p["rps"])
    thr = [Series("throughput", rps, "s3")]
    if any(int(p["errors"]) for p in points):
        errs = _timeline_series(points, lambda p: int(p["errors"]) / float(p["length_s"] or 1))
        thr.append(Series("errors/s", errs, "bad"))
    target = _num((doc.get("generator") or {}).get("target_rate"))
    top = max([pt[1] for s in thr for pt in s.points if pt] + [target or 0.0])
    y = linear_axis(0.0, top, "requests per second", _tick_rate)
    marks = [Mark("y", target, f"target {target:g} req/s")] if target else []
    parts += ["<h3>Throughput over time</h3>", line_chart("Throughput", thr, x, y, marks=marks)]
    return "".join(parts)


def _agents_section(doc: Mapping[str, Any]) -> str:
    agents = doc.get("agents") or {}
    if not agents:
        why = "a URL target" if doc.get("target_kind") == "url" else "no agent data"
        return _section("Agents", _empty(f"No per-agent breakdown ({why})."))
    ranked = sorted(agents.items(), key=lambda kv: -int(kv[1]["requests"]))
    bars, rows = [], []
    for agent_id, a in ranked:
        lat, n = a["latency_ms"], int(a["requests"])
        p50, p99 = (format_ms(float(lat[k])) if n else "-" for k in ("p50", "p99"))
        share = _percent(float(a["share"]))
        bars.append(Bar(agent_id, float(a["share"]), f"{share} · p50 {p50} · p99 {p99}"))
        cells = [share, f"{n:,}", p50, p99, format_ms(float(lat["max"])) if n else "-"]
        rows.append([f"<code>{esc(agent_id)}</code>", *(esc(c) for c in cells)])
    chart = bar_chart("Share of requests per agent", bars, top=1.0)
    table = _table(["agent", "share", "requests", "p50", "p99", "max"], rows, {1, 2, 3, 4, 5})
    return _section("Agents", chart, table)


def _errors_section(doc: Mapping[str, Any]) -> str:
    errors = sorted((doc.get("errors") or {}).items(), key=lambda kv: -int(kv[1]))
    if not errors:
        return _section("Errors by kind", _empty("No errors."))
    total = max(int(doc.get("requests") or 0), 1)
    bars = [Bar(k, float(n), f"{int(n):,} ({_percent(int(n) / total)})", "bad") for k, n in errors]
    return _section("Errors by kind", bar_chart("Errors by kind", bars))


def _sla_section(doc: Mapping[str, Any]) -> str:
    from latcli.reports.bench import verdicts_of

    verdicts = verdicts_of(doc)
    if not verdicts:
        return _section("SLA", _empty("No SLA thresholds were given (--sla)."))
    rows = [
        [
            '<span class="pass">PASS</span>' if v.passed else '<span class="fail">FAIL</span>',
            esc(v.name),
            f"<code>{esc(v.expr)}</code>",
            esc(v.format_observed()),
        ]
        for v in verdicts
    ]
    return _section("SLA", _table(["verdict", "name", "threshold", "observed"], rows, {3}))


def _generator_section(doc: Mapping[str, Any]) -> str:
    gen = doc.get("generator") or {}
    target, achieved = _num(gen.get("target_rate")), float(gen.get("achieved_rate") or 0.0)
    lag = _num(gen.get("schedule_lag_ms_p99"))
    valid = bool(gen.get("valid", True))
    verdict = '<span class="pass">valid</span>' if valid else '<span class="fail">INVALID</span>'
    if not valid and gen.get("reason"):
        verdict += f" ({esc(gen['reason'])})"
    rows = [
        ["target rate", esc(_rate(target) if target is not None else "- (closed model)")],
        ["achieved rate", esc(_rate(achieved))],
        ["schedule lag p99", esc(format_ms(lag))],
        ["run", verdict],
        ["dropped in flight", esc(f"{int(doc.get('dropped_in_flight') or 0):,}")],
    ]
    parts = [_table(["generator", ""], [[esc(k), v] for k, v in rows], set())]
    if target:
        css = "s3" if valid else "bad"
        bars = [
            Bar("target", target, _rate(target), "s4"),
            Bar("achieved", achieved, _rate(achieved), css),
        ]
        parts.insert(0, bar_chart("Target and achieved rate", bars))
    if doc.get("policy"):
        parts.append(f'<p class="note">In flight at the end: {esc(doc["policy"])}.</p>')
    return _section("Generator", *parts)


def _bench_badge(doc: Mapping[str, Any]) -> str:
    if doc.get("interrupted"):
        return _badge("INTERRUPTED", "warn")
    if not (doc.get("generator") or {}).get("valid", True):
        return _badge("INVALID RUN", "bad")
    if doc.get("sla"):
        return _badge("PASS", "ok") if doc.get("pass") else _badge("FAIL", "bad")
    return _badge("NO SLA", "")


def _model_text(doc: Mapping[str, Any]) -> str | None:
    if doc.get("model") == "open":
        return f"open model, {float(doc['rate']):g} req/s"
    if doc.get("model") == "closed":
        return f"closed model, concurrency {doc['concurrency']}"
    return None


def _bench_header(doc: Mapping[str, Any]) -> str:
    facts = [
        f"endpoint {doc['endpoint']}" if doc.get("endpoint") else None,
        _model_text(doc),
        f"{format_duration(round(float(doc.get('duration_s') or 0.0), 3))} measured",
        _started(doc),
    ]
    remarks = []
    if doc.get("interrupted"):
        remarks.append("Interrupted: a partial report.")
    if int(doc.get("runs") or 1) > 1:
        remarks.append(f"Merged from {int(doc['runs'])} runs.")
    if doc.get("note"):
        remarks.append(f"Note: {doc['note']}")
    return (
        f"<header><h1>latcli bench <code>{esc(doc.get('target', ''))}</code>"
        f"{_bench_badge(doc)}</h1>"
        f'<p class="meta">{esc(" · ".join(f for f in facts if f))}</p>'
        + "".join(f'<p class="note">{esc(r)}</p>' for r in remarks)
        + "</header>"
    )


def _bench_figures(doc: Mapping[str, Any]) -> str:
    requests = int(doc.get("requests") or 0)
    lat = doc.get("latency_ms") or {}
    errors = sum(int(n) for n in (doc.get("errors") or {}).values())

    answered = int(doc.get("ok") or 0)
    statuses = " ".join(f"[{c}] {n:,}" for c, n in sorted((doc.get("status_codes") or {}).items()))

    def ms(key: str) -> str:
        return format_ms(float(lat[key])) if answered and key in lat else "-"

    return _figures(
        [
            ("requests", f"{requests:,}"),
            ("HTTP status", statuses or "-"),
            ("throughput", _rate(float(doc.get("throughput_rps") or 0.0))),
            ("p50", ms("p50")),
            ("p99", ms("p99")),
            ("p99.9", ms("p99.9")),
            ("max", ms("max")),
            ("errors", _percent(errors / requests) if requests else "-"),
        ]
    )


def bench_html(doc: Mapping[str, Any]) -> str:
    """The bench report as one HTML page: header, key figures, percentile spectrum (latency
    and, in the open model, service time), p50/p99 and throughput over time, per-agent share,
    errors by kind, SLA verdicts and generator health. Sections without data say so."""
    title = f"latcli bench {doc.get('target', '')}"
    body = [
        _bench_header(doc),
        _bench_figures(doc),
        _section("Latency percentile spectrum", _spectrum_chart(doc), _summary_table(doc)),
        _phases_section(doc),
        _section("Over time", _timeline_charts(doc)),
        _agents_section(doc),
        _errors_section(doc),
        _sla_section(doc),
        _generator_section(doc),
    ]
    return _page(title, body)


# --- capacity --------------------------------------------------------------------------------


def _rate_axis(rates: Sequence[float]) -> Axis:
    """Asked rates on a log axis when they span a decade or more (doubling steps), else linear."""
    lo, hi = min(rates), max(rates)
    if lo > 0 and hi / lo >= 10:
        return log_axis(lo, hi, "asked rate (req/s)", _tick_rate)
    return linear_axis(0.0, hi, "asked rate (req/s)", _tick_rate)


def _knee_marks(doc: Mapping[str, Any]) -> list[Mark]:
    knee = doc.get("knee")
    if not knee:
        return []
    return [Mark("x", float(knee["rate"]), f"knee {float(knee['rate']):g} req/s", "knee")]


def _by_rate(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The steps in rate order: a search that bisects runs them out of order."""
    return sorted(doc["steps"], key=lambda s: float(s["rate"]))


def _capacity_latency_chart(doc: Mapping[str, Any], x: Axis) -> str:
    steps = _by_rate(doc)
    few = len(steps) < 40
    series = [
        Series(
            name,
            tuple((float(s["rate"]), float(s["latency_ms"][key])) for s in steps),
            css,
            dots=few,
        )
        for name, key, css in (("p50", "p50", "s1"), ("p99", "p99", "s2"))
    ]
    failed = tuple(
        (float(s["rate"]), float(s["latency_ms"]["p99"])) for s in steps if not s.get("pass")
    )
    if failed:
        series.append(Series("failed step", failed, "bad", line=False))
    top = max(pt[1] for s in series for pt in s.points if pt)
    y = linear_axis(0.0, top, "latency", _tick_ms)
    # The label at the right end: a load curve is flat, and crowded, on the left.
    marks = _knee_marks(doc) + _latency_marks([str(e) for e in doc.get("sla") or []], y.hi, True)
    return line_chart("Latency against load", series, x, y, marks=marks)


def _capacity_throughput_chart(doc: Mapping[str, Any], x: Axis) -> str:
    steps = _by_rate(doc)
    rates = [float(s["rate"]) for s in steps]
    series = [
        Series("asked", tuple((r, r) for r in rates), "ideal", dashed=True),
        Series("achieved", tuple((float(s["rate"]), float(s["achieved_rps"])) for s in steps),
               "s1", dots=True),
        Series("throughput", tuple((float(s["rate"]), float(s["throughput_rps"])) for s in steps),
               "s3", dots=True),
    ]  # fmt: skip
    # No line for target_rps: it is the fleet's, and it would flatten one replica's curve.
    top = max(pt[1] for s in series for pt in s.points if pt)
    y = linear_axis(0.0, top, "requests per second", _tick_rate)
    return line_chart("Throughput against load", series, x, y, marks=_knee_marks(doc))


def _capacity_errors_chart(doc: Mapping[str, Any], x: Axis) -> str:
    steps = _by_rate(doc)
    points = tuple((float(s["rate"]), 100.0 * float(s["error_rate"])) for s in steps)
    if not any(p[1] for p in points):
        return ""
    y = linear_axis(0.0, max(p[1] for p in points), "errors (%)", lambda v: f"{v:g}%")
    chart = line_chart("Error rate against load", [Series("error rate", points, "bad", dots=True)],
                       x, y, marks=_knee_marks(doc))  # fmt: skip
    return "<h3>Error rate</h3>" + chart


def _steps_table(doc: Mapping[str, Any]) -> str:
    knee = (doc.get("knee") or {}).get("index")
    head = ["rate", "achieved", "throughput", "p50", "p90", "p99", "max", "errors", "in flight",
            "verdict", "reason"]  # fmt: skip
    rows = []
    for i, s in enumerate(doc["steps"]):
        lat = s["latency_ms"]
        cells = [
            f"{float(s['rate']):,.1f}",
            f"{float(s['achieved_rps']):,.1f}",
            f"{float(s['throughput_rps']):,.1f}",
            *(format_ms(float(lat[k])) for k in ("p50", "p90", "p99", "max")),
            _percent(float(s["error_rate"])),
            f"{float(s['in_flight']):,.1f}",
        ]
        verdict = (
            '<span class="pass">pass</span>' if s.get("pass") else '<span class="fail">fail</span>'
        )
        reason = esc(s.get("reason") or "") + (" <b>← knee</b>" if i == knee else "")
        rows.append([*(esc(c) for c in cells), verdict, reason])
    return _table(head, rows, set(range(9)), marked=knee)


def _capacity_header(doc: Mapping[str, Any]) -> str:
    facts = [
        f"endpoint {doc['endpoint']}" if doc.get("endpoint") else None,
        f"{int(doc.get('replicas') or 0)} replica(s)" if doc.get("replicas") else None,
        f"steps of {format_duration(float(doc['step_duration_s']))}"
        if doc.get("step_duration_s")
        else None,
        f"{len(doc.get('steps') or [])} steps",
    ]
    badge = _badge("PASS", "ok") if doc.get("pass") else _badge("FAIL", "bad")
    return (
        f"<header><h1>latcli capacity <code>{esc(doc.get('target', ''))}</code>{badge}</h1>"
        f'<p class="meta">{esc(" · ".join(f for f in facts if f))}</p></header>'
    )


def _headroom(value: Any) -> str:
    h = _num(value)
    if h is None:
        return "-"
    return _percent(h) if h < 1 else f"×{h:g}"


def _capacity_figures(doc: Mapping[str, Any]) -> str:
    knee = doc.get("knee")
    needed = doc.get("replicas_needed")
    return _figures(
        [
            ("sustainable", _rate(_num(doc.get("sustainable_rps")))),
            ("per replica", _rate(_num(doc.get("per_replica_rps")))),
            ("target", _rate(_num(doc.get("target_rps")))),
            ("headroom", _headroom(doc.get("headroom"))),
            ("replicas needed", "-" if needed is None else f"{int(needed)}"),
            ("knee", _rate(float(knee["rate"])) if knee else "none found"),
        ]
    )


def capacity_html(doc: Mapping[str, Any]) -> str:
    """The capacity report as one HTML page: the latency-against-load curve (p50, p99, failed
    steps, the knee and SLA limits marked), achieved throughput against the asked rate, the
    error rate when there were errors, the steps table, the reasoning and the SLA."""
    steps = doc.get("steps") or []
    body = [_capacity_header(doc), _capacity_figures(doc)]
    if steps:
        x = _rate_axis([float(s["rate"]) for s in steps])
        curves = [
            "<h3>Latency</h3>",
            _capacity_latency_chart(doc, x),
            "<h3>Throughput</h3>",
            _capacity_throughput_chart(doc, x),
            _capacity_errors_chart(doc, x),
        ]
        body += [_section("Latency against load", *curves), _section("Steps", _steps_table(doc))]
    else:
        body.append(_section("Latency against load", _empty("No step was run.")))
    reasons = "".join(f"<li>{esc(r)}</li>" for r in doc.get("reasoning") or [])
    body.append(_section("Reasoning", f'<ul class="reasons">{reasons}</ul>' if reasons else
                         _empty("No reasoning recorded.")))  # fmt: skip
    sla = doc.get("sla") or []
    items = "".join(f"<li><code>{esc(s)}</code></li>" for s in sla)
    verdict = (
        '<span class="pass">PASS</span>' if doc.get("pass") else '<span class="fail">FAIL</span>'
    )
    body.append(_section("SLA", f"<p>{verdict}</p><ul>{items}</ul>" if sla else
                         _empty("No SLA thresholds were given.")))  # fmt: skip
    return _page(f"latcli capacity {doc.get('target', '')}", body)
