"""The capacity report page: a ``latcli.capacity/v1`` document (DESIGN §6) as one self-contained
HTML page built from :mod:`latcli.render.html_page`. Pure: the same document gives the same page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from latcli.core.sla import format_percent as _percent
from latcli.core.units import format_duration, format_ms
from latcli.render import html_page as kit
from latcli.render.svg import (
    Axis,
    Mark,
    Series,
    esc,
    line_chart,
    linear_axis,
    log_axis,
)


def _rate_axis(rates: Sequence[float]) -> Axis:
    """Asked rates on a log axis when they span a decade or more (doubling steps), else linear."""
    lo, hi = min(rates), max(rates)
    if lo > 0 and hi / lo >= 10:
        return log_axis(lo, hi, "asked rate (req/s)", kit.tick_rate)
    return linear_axis(0.0, hi, "asked rate (req/s)", kit.tick_rate)


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
    y = linear_axis(0.0, top, "latency", kit.tick_ms)
    # The label at the right end: a load curve is flat, and crowded, on the left.
    marks = _knee_marks(doc) + kit.latency_marks([str(e) for e in doc.get("sla") or []], y.hi, True)
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
    y = linear_axis(0.0, top, "requests per second", kit.tick_rate)
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
    return kit.table(head, rows, set(range(9)), marked=knee)


def _capacity_header(doc: Mapping[str, Any]) -> str:
    facts = [
        f"endpoint {doc['endpoint']}" if doc.get("endpoint") else None,
        f"{int(doc.get('replicas') or 0)} replica(s)" if doc.get("replicas") else None,
        f"steps of {format_duration(float(doc['step_duration_s']))}"
        if doc.get("step_duration_s")
        else None,
        f"{len(doc.get('steps') or [])} steps",
    ]
    badge = kit.badge("PASS", "ok") if doc.get("pass") else kit.badge("FAIL", "bad")
    return (
        f"<header><h1>latcli capacity <code>{esc(doc.get('target', ''))}</code>{badge}</h1>"
        f'<p class="meta">{esc(" · ".join(f for f in facts if f))}</p></header>'
    )


def _headroom(value: Any) -> str:
    h = kit.num(value)
    if h is None:
        return "-"
    return _percent(h) if h < 1 else f"×{h:g}"


def _capacity_figures(doc: Mapping[str, Any]) -> str:
    knee = doc.get("knee")
    needed = doc.get("replicas_needed")
    return kit.figures(
        [
            ("sustainable", kit.rate(kit.num(doc.get("sustainable_rps")))),
            ("per replica", kit.rate(kit.num(doc.get("per_replica_rps")))),
            ("target", kit.rate(kit.num(doc.get("target_rps")))),
            ("headroom", _headroom(doc.get("headroom"))),
            ("replicas needed", "-" if needed is None else f"{int(needed)}"),
            ("knee", kit.rate(float(knee["rate"])) if knee else "none found"),
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
        body += [
            kit.section("Latency against load", *curves),
            kit.section("Steps", _steps_table(doc)),
        ]
    else:
        body.append(kit.section("Latency against load", kit.empty("No step was run.")))
    reasons = "".join(f"<li>{esc(r)}</li>" for r in doc.get("reasoning") or [])
    body.append(kit.section("Reasoning", f'<ul class="reasons">{reasons}</ul>' if reasons else
                         kit.empty("No reasoning recorded.")))  # fmt: skip
    sla = doc.get("sla") or []
    items = "".join(f"<li><code>{esc(s)}</code></li>" for s in sla)
    verdict = (
        '<span class="pass">PASS</span>' if doc.get("pass") else '<span class="fail">FAIL</span>'
    )
    body.append(kit.section("SLA", f"<p>{verdict}</p><ul>{items}</ul>" if sla else
                         kit.empty("No SLA thresholds were given.")))  # fmt: skip
    return kit.page(f"latcli capacity {doc.get('target', '')}", body)
