"""The human probe table."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from latcli.core.errors import ErrorKind
from latcli.core.redact import redact_text
from latcli.core.units import format_ms
from latcli.engines.probe import ProbeReport, ProbeResult
from latcli.render.layout import fit
from latcli.render.text import agent_text


def _health(result: ProbeResult) -> Text:
    if result.healthy:
        return Text("healthy", style="green")
    return Text(result.error.value if result.error else "unhealthy", style="bold red")


def _detail(result: ProbeResult) -> Text:
    """The error message (agent text, shown as text), or the card's version, its bindings (the
    one latcli speaks first) unless JSON-RPC alone, and ``streams`` when its card says so; with
    ``--message``, a state short of ``completed`` (``input-required``)."""
    if result.message and not result.healthy:
        return agent_text(redact_text(result.message))
    text = Text("")
    card = result.card
    if card is not None:  # name and skills: see --json
        # only what differs from plain JSON-RPC unary, so the demo fleet's table fits 80 columns
        spoken = [card.binding, *(b for b in card.bindings if b != card.binding)]
        bindings = "" if spoken == ["jsonrpc"] else f" {','.join(spoken)}"
        text.append(f"a2a {card.version}{bindings}{' streams' if card.streaming else ''}")
    state = result.answer.state if result.answer is not None else None
    if state not in (None, "completed"):
        text.append(f"{' · ' if text else ''}{state}")
    return text


def probe_table(report: ProbeReport, count: int) -> RenderableType:
    """One row per agent: verdict, latency and phases (p50, p99, min, max with ``--count``).

    Columns that would be empty for every row (TLS on plain http, discovery without A2A) are left
    out so the table fits an 80-column terminal; on a narrower one its columns wrap into blocks.
    """
    rows = report.results
    show_tls = any(r.timings.tls is not None for r in rows)
    show_disc = any(r.discovery_ms is not None for r in rows)
    # One space between columns (the box's own): the demo fleet fits 80 columns even with --count.
    table = Table(
        box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, padding=(0, 0), show_edge=False
    )
    width = max((len(r.agent.id) for r in rows), default=5)
    table.add_column("agent", no_wrap=True, min_width=min(width, 24))
    table.add_column("type", no_wrap=True, min_width=4)
    table.add_column("health", no_wrap=True, min_width=7)
    # With --count the spread matters; one check's phases would mislead, so they go.
    phases = count == 1
    numeric = ["p50", "p99", "min", "max"] if count > 1 else ["latency", "connect"]
    numeric += (["tls"] if show_tls and phases else []) + (["ttfb"] if phases else [])
    numeric += ["discovery"] if show_disc else []
    show_answer = any(r.answer is not None for r in rows)  # --message: its first token, total
    numeric += ["1st token", "answer"] if show_answer else []
    for name in numeric:
        table.add_column(name, justify="right", no_wrap=True, min_width=max(len(name), 7))
    table.add_column("detail", overflow="fold", max_width=48)  # words wrap, digits never crop
    for r in rows:
        t = r.timings
        values: list[float | None] = [r.latency_ms]
        if count > 1:
            lo, hi = (min(r.samples), max(r.samples)) if r.samples else (None, None)
            values += [r.percentile(99), lo, hi]
        if phases:
            values += [t.connect] + ([t.tls] if show_tls else []) + [t.ttfb]
        values += [r.discovery_ms] if show_disc else []
        if show_answer:
            values += _answer_times(r)
        cells = [agent_text(r.agent.id), agent_text(r.agent.type), _health(r)]
        table.add_row(*cells, *(format_ms(v) for v in values), _detail(r))
    return fit(table)


def _answer_times(result: ProbeResult) -> list[float | None]:
    """``--message``'s time to first token (streamed answers) and total time."""
    answer = result.answer
    if answer is None:
        return [None, None]
    ttft = answer.stream.first_artifact_ms if answer.stream is not None else None
    return [ttft, answer.latency_ms]


def probe_summary(report: ProbeReport, demo_fleet: bool = False) -> Text:
    """``5/5 healthy``, or who is not; ``demo_fleet``: the agents are the built-in demo's, so
    refused connections most likely mean it is not running, and the line says so."""
    bad = [r for r in report.results if not r.healthy]
    total = len(report.results)
    if not bad:
        return Text(f"{total}/{total} healthy", style="green")
    names = ", ".join(r.agent.id for r in bad)
    text = Text(f"{total - len(bad)}/{total} healthy · unhealthy: {names}", style="red")
    if demo_fleet and any(r.error is ErrorKind.CONNECT for r in bad):
        text.append("\nis `latcli demo` running? It starts these agents.", style="yellow")
    return text


def probe_round(report: ProbeReport, clock: str) -> Group:
    """One demo probe round: the table with a clock and the summary line."""
    return Group(
        Text(f"probe at {clock}", style="dim"), probe_table(report, 1), probe_summary(report)
    )
