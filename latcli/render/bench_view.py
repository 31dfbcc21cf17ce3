"""The human bench summary: one renderable from a ``latcli.bench/v1`` report (fits 100 columns)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from latcli.bench.report import verdicts_of
from latcli.histogram import SUMMARY_KEYS
from latcli.render.layout import fit
from latcli.units import (
    format_duration,
    format_ms,
    format_ms_value,
    format_number,
    format_percent,
    format_rate,
    plural,
)


def _rate(value: float) -> str:
    return format_rate(value)


def _header(r: Mapping[str, Any]) -> Text:
    what = [str(r["target"])]
    what += [str(r["endpoint"])] if r.get("endpoint") else []
    if r.get("model") == "open":
        what.append(f"open model {format_number(float(r['rate']))} req/s")
    elif r.get("model") == "closed":
        what.append(f"closed model ×{r['concurrency']}")
    what += [format_duration(float(r["duration_s"])), plural(int(r["requests"]), "request")]
    text = Text("bench ", style="bold")
    text.append(" · ".join(what))
    text.append(" · ")
    text.append(_rate(float(r["throughput_rps"])), style="bold")
    return text


def _remarks(r: Mapping[str, Any]) -> list[Text]:
    lines = []
    if r.get("interrupted"):
        lines.append(Text("interrupted: a partial report", style="bold yellow"))
    if r.get("dropped_in_flight"):
        lines.append(Text(f"{r['dropped_in_flight']:,} dropped in flight: {r['policy']}", "dim"))
    if int(r.get("runs", 1)) > 1:
        lines.append(Text(f"merged from {r['runs']} runs", style="dim"))
    if r.get("note"):
        lines.append(Text(f"note: {r['note']}", style="dim"))
    return lines


def _cell(ms: float) -> str:
    """Milliseconds without the unit (the column says it): three significant digits or more."""
    return format_ms_value(ms)


def _spectrum(r: Mapping[str, Any]) -> Table:
    # Unitless cells keep the ten columns inside 80 terminal columns.
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("ms", no_wrap=True)
    for key in SUMMARY_KEYS:
        table.add_column(key, justify="right", no_wrap=True)
    rows = [("latency", r["latency_ms"])]
    if r.get("service_time_ms"):
        rows.append(("service", r["service_time_ms"]))
    for label, values in rows:
        cells = [_cell(values[k]) if r["requests"] else "-" for k in SUMMARY_KEYS]
        table.add_row(label, *cells)
    return table


def _errors(r: Mapping[str, Any]) -> Text:
    text = Text("errors     ", style="bold")
    errors = sorted(r["errors"].items(), key=lambda kv: -kv[1])
    if not errors:
        return text.append("none", style="green")
    total = max(int(r["requests"]), 1)
    parts = [f"{kind} {n:,} ({format_percent(n / total)})" for kind, n in errors]
    return text.append(" · ".join(parts), style="red")


def _generator(r: Mapping[str, Any]) -> Text:
    gen = r["generator"]
    text = Text("generator  ", style="bold")
    parts = []
    if gen.get("target_rate") is not None:
        parts.append(f"target {format_number(float(gen['target_rate']))} req/s")
    parts.append(f"achieved {_rate(float(gen['achieved_rate']))}")
    if gen.get("schedule_lag_ms_p99") is not None:
        parts.append(f"schedule lag p99 {format_ms(gen['schedule_lag_ms_p99'])}")
    text.append(" · ".join(parts) + " · ")
    if gen["valid"]:
        return text.append("VALID", style="bold green")
    text.append("INVALID", style="bold red")
    return text.append(f" ({gen['reason']})" if gen.get("reason") else "", style="red")


def _agents(r: Mapping[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("agent", no_wrap=True, max_width=40)
    for name in ("share", "requests", "p50", "p99", "max"):
        table.add_column(name, justify="right", no_wrap=True)
    ranked = sorted(r["agents"].items(), key=lambda kv: -int(kv[1]["requests"]))
    for agent_id, a in ranked:
        lat = a["latency_ms"]
        has = int(a["requests"]) > 0
        cells = [format_ms(lat[k]) if has else "-" for k in ("p50", "p99", "max")]
        table.add_row(agent_id, format_percent(float(a["share"])), f"{a['requests']:,}", *cells)
    return table


def _sla(r: Mapping[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("sla", no_wrap=True)
    table.add_column("threshold", max_width=48)
    table.add_column("observed", justify="right", no_wrap=True)
    for v in verdicts_of(r):
        verdict = Text("PASS", style="bold green") if v.passed else Text("FAIL", style="bold red")
        label = v.expr if v.name == v.expr.split(" ", 1)[0] else f"{v.name}: {v.expr}"
        table.add_row(verdict, label, v.format_observed())
    return table


def bench_summary(report: Mapping[str, Any]) -> RenderableType:
    """Header, percentile spectrum (and service time in the open model), errors by kind,
    generator health, per-agent table and SLA verdicts; empty sections are left out."""
    parts: list[RenderableType] = [_header(report), *_remarks(report), fit(_spectrum(report))]
    parts += [_errors(report), _generator(report)]
    if report.get("agents"):
        parts += [Text(), fit(_agents(report))]
    if report.get("sla"):
        parts += [Text(), fit(_sla(report))]
    return Group(*parts)
