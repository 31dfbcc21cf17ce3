"""The human capacity summary: one renderable from a :class:`CapacityReport` (fits 80 columns:
why a step failed is a line under the table, not a column)."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from latcli.core.units import (
    format_duration,
    format_ms_value,
    format_number,
    format_percent,
    format_sig,
    plural,
)
from latcli.render.layout import fit
from latcli.reports.capacity import CapacityReport, StepReport


def _rate(value: float) -> str:
    return format_number(value)


def _ms(value: float) -> str:
    return format_ms_value(value)


def _header(report: CapacityReport) -> Text:
    text = Text("capacity ", style="bold")
    parts = [report.target, report.endpoint]
    steps = plural(len(report.steps), "step")
    parts.append(f"{steps} of {format_duration(report.plan.step_duration_s)}")
    parts.append("sla " + (", ".join(report.sla) if report.sla else "none"))
    text.append(" · ".join(parts))
    return text


def _verdict(step: StepReport, is_knee: bool) -> Text:
    if is_knee:
        return Text("pass ← knee", style="bold green")
    if step.passed:
        return Text("pass", style="green")
    if step.interrupted:
        return Text("interrupted", style="yellow")
    return Text("FAIL", style="bold red")


def _steps(report: CapacityReport) -> Table:
    """Steps in the order they ran; the knee row is marked and bold."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, collapse_padding=True)
    streams = report.endpoint == "stream"
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("phase", no_wrap=True)
    names = ["req/s", "sent/s", "p50 ms"]  # streams: time to first token instead of the p99
    names += ["ttft p95", "errors", "streams"] if streams else ["p99 ms", "errors", "in flight"]
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    knee = None if report.knee is None else report.knee.index
    for i, step in enumerate(report.steps):
        lat = step.latency
        has = step.requests > 0
        cells = [
            str(i + 1),
            step.phase,
            _rate(step.rate),
            format_sig(step.achieved_rps),
            _ms(lat.p50) if has else "-",
        ]
        if streams:
            cells += [_first_token_p95(step), format_percent(step.error_rate)]
            cells.append(_one_decimal(step.concurrent_streams))
        else:
            cells += [_ms(lat.p99) if has else "-"]
            cells += [format_percent(step.error_rate), _one_decimal(step.in_flight)]
        table.add_row(*cells, _verdict(step, i == knee), style="bold" if i == knee else None)
    return table


def _first_token_p95(step: StepReport) -> str:
    """The step's time to first token p95 (answered streams), or ``-`` without any."""
    first = None if step.phases is None else step.phases.get("first_artifact")
    return _ms(first.p95) if first is not None and first.p95 > 0 else "-"


def _one_decimal(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _reasons(report: CapacityReport) -> list[Text]:
    lines = []
    for i, step in enumerate(report.steps):
        if step.reason:
            text = Text(f"#{i + 1} {_rate(step.rate)} req/s: ", style="bold")
            lines.append(text.append(step.reason, style="not bold"))
    return lines


def _outcome(report: CapacityReport) -> Text:
    if report.sustainable_rps is None:
        return Text("no sustainable rate found", style="bold red")
    text = Text("sustainable ", style="bold")
    text.append(f"{_rate(report.sustainable_rps)} req/s", style="bold green")
    if report.replicas > 1 and report.per_replica_rps is not None:
        text.append(f" in total · {_rate(report.per_replica_rps)} req/s per replica")
        text.append(f" ({report.replicas} replicas)")
    if report.streams is not None:
        text.append(f" · ~{report.streams.concurrent_at_knee:.1f} concurrent streams")
    target = report.plan.target_rps
    if report.replicas_needed is not None and target is not None:
        needed = plural(report.replicas_needed, "replica")
        text.append(f" · {needed} for {_rate(target)}")
        text.append(f" req/s at {format_percent(report.plan.headroom)} headroom")
    return text


def capacity_summary(report: CapacityReport) -> RenderableType:
    """Header, the step table (the knee marked), why each failing step failed, the outcome
    and the reasoning in words."""
    parts: list[RenderableType] = [_header(report)]
    if report.interrupted:
        parts.append(Text("interrupted: the steps measured so far", style="bold yellow"))
    parts += [fit(_steps(report)), *_reasons(report), Text(), _outcome(report)]
    parts += [Text(f"· {line}") for line in report.reasoning]
    return Group(*parts)
