"""The human bench summary: one renderable from a ``latcli.bench/v1`` report (fits 100 columns)."""

from __future__ import annotations

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
from latcli.reports.bench import BenchReport
from latcli.reports.bench_sla import answered_none
from latcli.reports.bounded_histogram import Spectrum
from latcli.reports.histogram import SUMMARY_KEYS


def _rate(value: float) -> str:
    return format_rate(value)


def _header(r: BenchReport) -> Text:
    what = [r.target]
    what += [r.endpoint] if r.endpoint else []
    if r.model == "open" and r.rate is not None:
        what.append(f"open model {format_number(float(r.rate))} req/s")
    elif r.model == "closed":
        what.append(f"closed model ×{r.concurrency}")
    if (r.workers or 1) > 1:
        what.append(f"{r.workers} workers")
    what += [format_duration(float(r.duration_s)), plural(r.requests, "request")]
    text = Text("bench ", style="bold")
    text.append(" · ".join(what))
    text.append(" · ")
    text.append(_rate(float(r.throughput_rps)), style="bold")
    if r.ok < r.requests:
        text.append(f" ({_rate(float(r.goodput_rps))} answered)")
    if r.interrupted:
        text.append(" · interrupted", style="bold yellow")
    return text


def _remarks(r: BenchReport) -> list[Text]:
    lines = []
    if r.interrupted:
        lines.append(Text("interrupted: a partial report", style="bold yellow"))
    if r.dropped_in_flight:
        lines.append(Text(f"{r.dropped_in_flight:,} dropped in flight: {r.policy}", "dim"))
    if r.shard:
        lines.append(
            Text(
                f"shard {r.shard.index}/{r.shard.count}: this shard's part of the run; "
                "merge every shard's report with latcli report",
                style="dim",
            )
        )
    if r.shards:
        missing = f", {len(r.shards.missing)} missing" if r.shards.missing else ""
        got = len(r.shards.merged)
        lines.append(Text(f"merged from {got} of {r.shards.count} shards{missing}", style="dim"))
    elif r.runs > 1:
        lines.append(Text(f"merged from {r.runs} runs", style="dim"))
    if r.note:
        lines.append(Text(f"note: {r.note}", style="dim"))
    return lines


def _cell(ms: float) -> str:
    """Milliseconds without the unit (the column says it): three significant digits or more."""
    return format_ms_value(ms)


def _spectrum(r: BenchReport) -> Table:
    # Unitless cells keep the ten columns inside 80 terminal columns.
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("ms", no_wrap=True)
    for key in SUMMARY_KEYS:
        table.add_column(key, justify="right", no_wrap=True)
    rows = [("latency", r.latency_ms)]
    if r.service_time_ms:
        rows.append(("service", r.service_time_ms))
    for label, values in rows:
        cells = [_cell(values[k]) if r.ok else "-" for k in SUMMARY_KEYS]
        table.add_row(label, *cells)
    return table


PHASE_LABELS = {
    "first_event": "first event",
    "first_artifact": "first artifact",
    "gap": "gap (max/msg)",
    "total": "total",
}


def _phases(r: BenchReport) -> Table | None:
    """--endpoint stream: the phases' spectrum over answered streams (None otherwise)."""
    phases = r.phases_ms
    if not phases:
        return None
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("stream ms", no_wrap=True)
    for key in SUMMARY_KEYS:
        table.add_column(key, justify="right", no_wrap=True)
    for phase, label in PHASE_LABELS.items():
        values = phases.get(phase)
        seen = values is not None and r.ok and any(values[k] for k in SUMMARY_KEYS)
        cells = [_cell(values[k]) if seen and values else "-" for k in SUMMARY_KEYS]
        table.add_row(label, *cells)
    return table


def _errors(r: BenchReport) -> Text:
    text = Text("errors     ", style="bold")
    errors = sorted(r.errors.items(), key=lambda kv: -kv[1])
    if not errors:
        return text.append("none", style="green")
    total = max(r.requests, 1)
    parts = [f"{kind} {n:,} ({format_percent(n / total)})" for kind, n in errors]
    return text.append(" · ".join(parts), style="red")


def _statuses(r: BenchReport) -> Text | None:
    """HTTP statuses as hey prints them: ``[200] 127 · [503] 23``; None when unknown (a report
    from an .hlog or from before status counts, whose answers had statuses not kept)."""
    text = Text("status     ", style="bold")
    codes = sorted(r.status_codes.items())
    if not codes and r.ok:
        return None
    if not codes:
        return text.append("no HTTP response", style="dim")
    for i, (code, n) in enumerate(codes):
        text.append(" · " if i else "")
        text.append(f"[{code}] {n:,}", style="green" if str(code).startswith("2") else "red")
    return text


def _generator(r: BenchReport) -> Text:
    gen = r.generator
    text = Text("generator  ", style="bold")
    parts = []
    if gen.target_rate is not None:
        parts.append(f"target {format_number(float(gen.target_rate))} req/s")
    parts.append(f"achieved {_rate(float(gen.achieved_rate))}")
    if gen.schedule_lag_ms_p99 is not None:
        parts.append(f"schedule lag p99 {format_ms(gen.schedule_lag_ms_p99)}")
    text.append(" · ".join(parts) + " · ")
    if r.interrupted:
        return text.append("INTERRUPTED (a partial run)", style="bold yellow")
    if answered_none(r):
        return text.append("FAILED (no request was answered)", style="bold red")
    if gen.valid:
        return text.append("VALID", style="bold green")
    text.append("INVALID", style="bold red")
    return text.append(f" ({gen.reason})" if gen.reason else "", style="red")


def _agents(r: BenchReport) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("agent", no_wrap=True, max_width=40)
    streams = bool(r.phases_ms)
    names = ["share", "requests", "p50", "p99", "max"]
    names += ["first artifact p50", "first artifact p99"] if streams else []
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    ranked = sorted(r.agents.items(), key=lambda kv: -kv[1].requests)
    for agent_id, a in ranked:
        lat = a.latency_ms
        has = a.answered > 0
        cells = [format_ms(lat[k]) if has else "-" for k in ("p50", "p99", "max")]
        if streams:
            first: Spectrum | None = (a.phases_ms or {}).get("first_artifact")
            cells += [format_ms(first[k]) if has and first else "-" for k in ("p50", "p99")]
        table.add_row(Text(agent_id), format_percent(float(a.share)), f"{a.requests:,}", *cells)
    return table


def _sla(r: BenchReport) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("sla", no_wrap=True)
    table.add_column("threshold", max_width=48)
    table.add_column("observed", justify="right", no_wrap=True)
    for v in r.sla:
        verdict = Text("PASS", style="bold green") if v.passed else Text("FAIL", style="bold red")
        label = v.expr if v.name == v.expr.split(" ", 1)[0] else f"{v.name}: {v.expr}"
        table.add_row(verdict, Text(label), v.format_observed())
    return table


HISTOGRAM_BUCKETS = 10  # hey's and oha's count: linear from the fastest to the slowest answer
BAR_WIDTH = 40


def _distribution(r: BenchReport) -> list[tuple[float, int]]:
    """``(upper bound ms, answered requests)`` per linear bucket from min to max."""
    latency = r.histograms.latency
    if not latency.hist.count or not r.ok:
        return []
    values = latency.hist.recorded()
    # The exact bounds travel beside the encoding, which keeps bucket edges only.
    low = latency.min_us
    high = max(latency.max_us, low)
    step = (high - low) / HISTOGRAM_BUCKETS
    counts = [0] * HISTOGRAM_BUCKETS
    for us, n in values:
        i = int((min(max(us, low), high) - low) / step) if step > 0 else 0
        counts[min(i, HISTOGRAM_BUCKETS - 1)] += n
    return [((low + step * (i + 1)) / 1000.0, n) for i, n in enumerate(counts)]


def latency_histogram(r: BenchReport) -> Table | None:
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


def bench_summary(report: BenchReport) -> RenderableType:
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
    if report.agents:
        parts += [Text(), fit(_agents(report))]
    if report.sla:
        parts += [Text(), fit(_sla(report))]
    return Group(*parts)
