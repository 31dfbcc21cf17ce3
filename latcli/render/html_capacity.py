"""The capacity report page: a :class:`CapacityReport` (``latcli.capacity/v1``, DESIGN §6) as one
self-contained HTML page built from :mod:`latcli.render.html_page`. Pure: the same report gives the
same page.
"""

from __future__ import annotations

from collections.abc import Sequence

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
from latcli.reports.capacity import CapacityReport, StepReport


def _rate_axis(rates: Sequence[float]) -> Axis:
    """Asked rates on a log axis when they span a decade or more (doubling steps), else linear."""
    lo, hi = min(rates), max(rates)
    if lo > 0 and hi / lo >= 10:
        return log_axis(lo, hi, "asked rate (req/s)", kit.tick_rate)
    return linear_axis(0.0, hi, "asked rate (req/s)", kit.tick_rate)


def _knee_marks(report: CapacityReport) -> list[Mark]:
    knee = report.knee
    if knee is None:
        return []
    return [Mark("x", knee.rate, f"knee {knee.rate:g} req/s", "knee")]


def _by_rate(report: CapacityReport) -> list[StepReport]:
    """The steps in rate order: a search that bisects runs them out of order."""
    return sorted(report.steps, key=lambda s: s.rate)


def _capacity_latency_chart(report: CapacityReport, x: Axis) -> str:
    steps = _by_rate(report)
    few = len(steps) < 40
    series = [
        Series(name, tuple((s.rate, float(getattr(s.latency, key))) for s in steps), css, dots=few)
        for name, key, css in (("p50", "p50", "s1"), ("p99", "p99", "s2"))
    ]
    failed = tuple((s.rate, s.latency.p99) for s in steps if not s.passed)
    if failed:
        series.append(Series("failed step", failed, "bad", line=False))
    top = max(pt[1] for s in series for pt in s.points if pt)
    y = linear_axis(0.0, top, "latency", kit.tick_ms)
    # The label at the right end: a load curve is flat, and crowded, on the left.
    marks = _knee_marks(report) + kit.latency_marks(list(report.sla), y.hi, True)
    return line_chart("Latency against load", series, x, y, marks=marks)


def _capacity_throughput_chart(report: CapacityReport, x: Axis) -> str:
    steps = _by_rate(report)
    rates = [s.rate for s in steps]
    series = [
        Series("asked", tuple((r, r) for r in rates), "ideal", dashed=True),
        Series("achieved", tuple((s.rate, s.achieved_rps) for s in steps), "s1", dots=True),
        Series("throughput", tuple((s.rate, s.throughput_rps) for s in steps), "s3", dots=True),
    ]
    # No line for target_rps: it is the fleet's, and it would flatten one replica's curve.
    top = max(pt[1] for s in series for pt in s.points if pt)
    y = linear_axis(0.0, top, "requests per second", kit.tick_rate)
    return line_chart("Throughput against load", series, x, y, marks=_knee_marks(report))


def _capacity_errors_chart(report: CapacityReport, x: Axis) -> str:
    points = tuple((s.rate, 100.0 * s.error_rate) for s in _by_rate(report))
    if not any(p[1] for p in points):
        return ""
    y = linear_axis(0.0, max(p[1] for p in points), "errors (%)", lambda v: f"{v:g}%")
    chart = line_chart("Error rate against load", [Series("error rate", points, "bad", dots=True)],
                       x, y, marks=_knee_marks(report))  # fmt: skip
    return "<h3>Error rate</h3>" + chart


def _steps_table(report: CapacityReport) -> str:
    knee = None if report.knee is None else report.knee.index
    head = ["rate", "achieved", "throughput", "p50", "p90", "p99", "max", "errors", "in flight",
            "verdict", "reason"]  # fmt: skip
    rows = []
    for i, s in enumerate(report.steps):
        lat = s.latency
        cells = [
            f"{s.rate:,.1f}",
            f"{s.achieved_rps:,.1f}",
            f"{s.throughput_rps:,.1f}",
            *(format_ms(v) for v in (lat.p50, lat.p90, lat.p99, lat.max)),
            _percent(s.error_rate),
            f"{s.in_flight:,.1f}",
        ]
        verdict = '<span class="pass">pass</span>' if s.passed else '<span class="fail">fail</span>'
        reason = esc(s.reason or "") + (" <b>← knee</b>" if i == knee else "")
        rows.append([*(esc(c) for c in cells), verdict, reason])
    return kit.table(head, rows, set(range(9)), marked=knee)


def _capacity_header(report: CapacityReport) -> str:
    step_s = report.plan.step_duration_s
    facts = [
        f"endpoint {report.endpoint}" if report.endpoint else None,
        f"{report.replicas} replica(s)" if report.replicas else None,
        f"steps of {format_duration(step_s)}" if step_s else None,
        f"{len(report.steps)} steps",
    ]
    badge = kit.badge("PASS", "ok") if report.passed else kit.badge("FAIL", "bad")
    return (
        f"<header><h1>latcli capacity <code>{esc(report.target)}</code>{badge}</h1>"
        f'<p class="meta">{esc(" · ".join(f for f in facts if f))}</p></header>'
    )


def _headroom(h: float) -> str:
    return _percent(h) if h < 1 else f"×{h:g}"


def _capacity_figures(report: CapacityReport) -> str:
    knee = report.knee
    needed = report.replicas_needed
    return kit.figures(
        [
            ("sustainable", kit.rate(report.sustainable_rps)),
            ("per replica", kit.rate(report.per_replica_rps)),
            ("target", kit.rate(report.plan.target_rps)),
            ("headroom", _headroom(report.plan.headroom)),
            ("replicas needed", "-" if needed is None else f"{needed}"),
            ("knee", kit.rate(knee.rate) if knee else "none found"),
        ]
    )


def capacity_html(report: CapacityReport) -> str:
    """The capacity report as one HTML page: the latency-against-load curve (p50, p99, failed
    steps, the knee and SLA limits marked), achieved throughput against the asked rate, the
    error rate when there were errors, the steps table, the reasoning and the SLA."""
    body = [_capacity_header(report), _capacity_figures(report)]
    if report.steps:
        x = _rate_axis([s.rate for s in report.steps])
        curves = [
            "<h3>Latency</h3>",
            _capacity_latency_chart(report, x),
            "<h3>Throughput</h3>",
            _capacity_throughput_chart(report, x),
            _capacity_errors_chart(report, x),
        ]
        body += [
            kit.section("Latency against load", *curves),
            kit.section("Steps", _steps_table(report)),
        ]
    else:
        body.append(kit.section("Latency against load", kit.empty("No step was run.")))
    reasons = "".join(f"<li>{esc(r)}</li>" for r in report.reasoning)
    body.append(kit.section("Reasoning", f'<ul class="reasons">{reasons}</ul>' if reasons else
                         kit.empty("No reasoning recorded.")))  # fmt: skip
    items = "".join(f"<li><code>{esc(s)}</code></li>" for s in report.sla)
    verdict = (
        '<span class="pass">PASS</span>' if report.passed else '<span class="fail">FAIL</span>'
    )
    body.append(kit.section("SLA", f"<p>{verdict}</p><ul>{items}</ul>" if report.sla else
                         kit.empty("No SLA thresholds were given.")))  # fmt: skip
    return kit.page(f"latcli capacity {report.target}", body)
