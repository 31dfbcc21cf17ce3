"""The human probe table."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from latcli.probe import ProbeReport, ProbeResult
from latcli.units import format_ms


def _health(result: ProbeResult) -> Text:
    if result.healthy:
        return Text("healthy", style="green")
    return Text(result.error.value if result.error else "unhealthy", style="bold red")


def _detail(result: ProbeResult) -> str:
    if result.message and not result.healthy:
        return result.message
    if result.card is not None:
        card = result.card
        return f"A2A {card.version} · {card.name} · {len(card.skills)} skills"
    return f"HTTP {result.status}" if result.status is not None else ""


def probe_table(report: ProbeReport, count: int) -> Table:
    """One row per agent: verdict, latency (median and spread with ``--count``) and phases."""
    table = Table(title=None, header_style="bold", expand=False)
    for name in ("agent", "type", "proto", "health", "latency"):
        table.add_column(name, justify="right" if name == "latency" else "left")
    if count > 1:
        for name in ("p99", "min", "max"):
            table.add_column(name, justify="right")
    for name in ("connect", "tls", "ttfb", "discovery"):
        table.add_column(name, justify="right")
    table.add_column("detail", overflow="fold")
    for r in report.results:
        cells: list[str | Text] = [
            r.agent.id,
            r.agent.type,
            r.agent.protocol,
            _health(r),
            format_ms(r.latency_ms),
        ]
        if count > 1:
            lo = min(r.samples) if r.samples else None
            hi = max(r.samples) if r.samples else None
            cells += [format_ms(r.percentile(99)), format_ms(lo), format_ms(hi)]
        t = r.timings
        cells += [format_ms(t.connect), format_ms(t.tls), format_ms(t.ttfb)]
        cells += [format_ms(r.discovery_ms), _detail(r)]
        table.add_row(*cells)
    return table


def probe_summary(report: ProbeReport) -> Text:
    bad = [r.agent.id for r in report.results if not r.healthy]
    total = len(report.results)
    if not bad:
        return Text(f"{total}/{total} healthy", style="green")
    return Text(f"{total - len(bad)}/{total} healthy · unhealthy: {', '.join(bad)}", style="red")


def probe_round(report: ProbeReport, clock: str) -> Group:
    """One demo probe round: the table with a clock and the summary line."""
    return Group(
        Text(f"probe at {clock}", style="dim"), probe_table(report, 1), probe_summary(report)
    )
