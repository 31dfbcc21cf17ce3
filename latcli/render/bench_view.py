"""The human bench summary: one renderable from a ``latcli.bench/v1`` report (fits 100 columns)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from latcli.core.units import (
    format_duration,
    format_ms,
    format_ms_value,
    format_number,
    format_percent,
    format_rate,
    plural,
)
from latcli.render.layout import fit
from latcli.reports.bench import verdicts_of
from latcli.reports.bench_sla import answered_none
from latcli.reports.histogram import SUMMARY_KEYS, LatencyHistogram


def _rate(value: float) -> str:
    return format_rate(value)


def _header(r: Mapping[str, Any]) -> Text:
    what = [str(r["target"])]
    what += [str(r["endpoint"])] if r.get("endpoint") else []
    if r.get("model") == "open":
        what.append(f"open model {format_number(float(r['rate']))} req/s")
    elif r.get("model") == "closed":
        what.append(f"closed model ×{r['concurrency']}")
    if int(r.get("workers") or 1) > 1:
        what.append(f"{r['workers']} workers")
    what += [format_duration(float(r["duration_s"])), plural(int(r["requests"]), "request")]
    text = Text("bench ", style="bold")
    text.append(" · ".join(what))
    text.append(" · ")
    text.append(_rate(float(r["throughput_rps"])), style="bold")
    goodput = r.get("goodput_rps")
    if goodput is not None and int(r.get("ok", 0)) < int(r["requests"]):
        text.append(f" ({_rate(float(goodput))} answered)")
    if r.get("interrupted"):
        text.append(" · interrupted", style="bold yellow")
    return text


def _remarks(r: Mapping[str, Any]) -> list[Text]:
    lines = []
    if r.get("interrupted"):
        lines.append(Text("interrupted: a partial report", style="bold yellow"))
    if r.get("dropped_in_flight"):
        lines.append(Text(f"{r['dropped_in_flight']:,} dropped in flight: {r['policy']}", "dim"))
    shard, shards = r.get("shard"), r.get("shards")
    if shard:
        lines.append(
            Text(
                f"shard {shard['index']}/{shard['count']}: this shard's part of the run; "
                "merge every shard's report with latcli report",
                style="dim",
            )
        )
    if shards:
        missing = f", {len(shards['missing'])} missing" if shards["missing"] else ""
        got = len(shards["merged"])
        lines.append(Text(f"merged from {got} of {shards['count']} shards{missing}", style="dim"))
    elif int(r.get("runs", 1)) > 1:
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
        cells = [_cell(values[k]) if int(r.get("ok", 0)) else "-" for k in SUMMARY_KEYS]
        table.add_row(label, *cells)
    return table


PHASE_LABELS = {
    "first_event": "first event",
    "first_artifact": "first artifact",
    "gap": "gap (max/msg)",
    "total": "total",
}


def _phases(r: Mapping[str, Any]) -> Table | None:
    """--endpoint stream: the phases' spectrum over answered streams (None otherwise)."""
    phases = r.get("phases_ms")
    if not phases:
        return None
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("stream ms", no_wrap=True)
    for key in SUMMARY_KEYS:
        table.add_column(key, justify="right", no_wrap=True)
    for phase, label in PHASE_LABELS.items():
        values = phases.get(phase) or {}
        seen = int(r.get("ok", 0)) and any(values.get(k) for k in SUMMARY_KEYS)
        table.add_row(label, *[_cell(values[k]) if seen else "-" for k in SUMMARY_KEYS])
    return table


def _errors(r: Mapping[str, Any]) -> Text:
    text = Text("errors     ", style="bold")
    errors = sorted(r["errors"].items(), key=lambda kv: -kv[1])
    if not errors:
        return text.append("none", style="green")
    total = max(int(r["requests"]), 1)
    parts = [f"{kind} {n:,} ({format_percent(n / total)})" for kind, n in errors]
    return text.append(" · ".join(parts), style="red")


def _statuses(r: Mapping[str, Any]) -> Text | None:
    """HTTP statuses as hey prints them: ``[200] 127 · [503] 23``; None when unknown (a report
    from an .hlog or from before status counts, whose answers had statuses not kept)."""
    text = Text("status     ", style="bold")
    codes = sorted((r.get("status_codes") or {}).items())
    if not codes and int(r.get("ok", 0)):
        return None
    if not codes:
        return text.append("no HTTP response", style="dim")
    for i, (code, n) in enumerate(codes):
        text.append(" · " if i else "")
        text.append(f"[{code}] {n:,}", style="green" if str(code).startswith("2") else "red")
    return text


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
    if r.get("interrupted"):
        return text.append("INTERRUPTED (a partial run)", style="bold yellow")
    if answered_none(r):
        return text.append("FAILED (no request was answered)", style="bold red")
    if gen["valid"]:
        return text.append("VALID", style="bold green")
    text.append("INVALID", style="bold red")
    return text.append(f" ({gen['reason']})" if gen.get("reason") else "", style="red")


def _agents(r: Mapping[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("agent", no_wrap=True, max_width=40)
    streams = bool(r.get("phases_ms"))
    names = ["share", "requests", "p50", "p99", "max"]
    names += ["first artifact p50", "first artifact p99"] if streams else []
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    ranked = sorted(r["agents"].items(), key=lambda kv: -int(kv[1]["requests"]))
    for agent_id, a in ranked:
        lat = a["latency_ms"]
        has = int(a.get("answered", a["requests"])) > 0
        cells = [format_ms(lat[k]) if has else "-" for k in ("p50", "p99", "max")]
        if streams:
            first = (a.get("phases_ms") or {}).get("first_artifact") or {}
            cells += [format_ms(first[k]) if has and first else "-" for k in ("p50", "p99")]
        table.add_row(
            Text(agent_id), format_percent(float(a["share"])), f"{a['requests']:,}", *cells
        )
    return table


def _sla(r: Mapping[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("sla", no_wrap=True)
    table.add_column("threshold", max_width=48)
    table.add_column("observed", justify="right", no_wrap=True)
    for v in verdicts_of(r):
        verdict = Text("PASS", style="bold green") if v.passed else Text("FAIL", style="bold red")
        label = v.expr if v.name == v.expr.split(" ", 1)[0] else f"{v.name}: {v.expr}"
        table.add_row(verdict, Text(label), v.format_observed())
    return table


HISTOGRAM_BUCKETS = 10  # hey's and oha's count: linear from the fastest to the slowest answer
BAR_WIDTH = 40


def _distribution(r: Mapping[str, Any]) -> list[tuple[float, int]]:
    """``(upper bound ms, answered requests)`` per linear bucket from min to max."""
    entry = (r.get("histograms") or {}).get("latency") or {}
    if not entry.get("encoded") or not int(r.get("ok", 0)):
        return []
    values = LatencyHistogram.decode(str(entry["encoded"])).recorded()
    # The exact bounds travel beside the encoding, which keeps bucket edges only.
    low = int(entry.get("min_us", values[0][0]))
    high = max(int(entry.get("max_us", values[-1][0])), low)
    step = (high - low) / HISTOGRAM_BUCKETS
    counts = [0] * HISTOGRAM_BUCKETS
    for us, n in values:
        i = int((min(max(us, low), high) - low) / step) if step > 0 else 0
        counts[min(i, HISTOGRAM_BUCKETS - 1)] += n
    return [((low + step * (i + 1)) / 1000.0, n) for i, n in enumerate(counts)]


def latency_histogram(r: Mapping[str, Any]) -> Table | None:
    """The answered requests' latencies as a bar chart (hey's "Response time histogram")."""
    buckets = _distribution(r)
    if not buckets:
        return None
    top = max(n for _, n in buckets) or 1
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("≤ ms", justify="right", no_wrap=True)
    table.add_column("answered", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for upper, n in buckets:
        bar = "■" * round(BAR_WIDTH * n / top) if n else ""
        table.add_row(_cell(upper), f"{n:,}", Text(bar, style="cyan"))
    return table


def bench_summary(report: Mapping[str, Any]) -> RenderableType:
    """Header, percentile spectrum (and service time in the open model), errors by kind and
    HTTP status, generator health, the latency histogram, per-agent table and SLA verdicts;
    empty sections are left out."""
    parts: list[RenderableType] = [_header(report), *_remarks(report), fit(_spectrum(report))]
    phases = _phases(report)
    parts += [fit(phases)] if phases is not None else []
    statuses = _statuses(report)
    parts += [_errors(report), *([statuses] if statuses else []), _generator(report)]
    chart = latency_histogram(report)
    if chart is not None:
        parts += [Text(), chart]
    if report.get("agents"):
        parts += [Text(), fit(_agents(report))]
    if report.get("sla"):
        parts += [Text(), fit(_sla(report))]
    return Group(*parts)
