"""The live ``latcli watch`` screen: header, agent table, per-type picks, recent events.

:func:`watch_renderable` turns one frozen :class:`~latcli.reports.watch.WatchSnapshot` into a
rich renderable; the engine hands it to ``rich.live.Live`` each tick. The view is measured
when rich renders it, not when it is built, so a terminal resized between ticks gets the
right columns on the next refresh. Colour carries meaning (state, breaker, SLA) but every
meaning is also spelled in text (``down``, ``open 4.2s``, a ``!`` on a breached metric), so
the screen still reads under ``NO_COLOR``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from latcli.core.units import format_duration, format_ms, format_percent
from latcli.render.text import agent_text, escape_controls
from latcli.reports.watch import AgentRow, AgentState, SlaStatus, WatchEvent, WatchSnapshot

BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 12  # recent checks in the sparkline: at 2s per tick, the last ~half minute
MAX_EVENTS = 8  # events under the table; more would push the table off a 40-line terminal
# Columns given up on a narrow terminal, first to go first. agent, state and breaker stay.
DROP_ORDER = ("sparkline", "p50", "type", "in-flight", "last error", "ewma")
MIN_SPARK = 6  # as wide as its header; fewer checks say little about a trend
_GAP = 1  # one blank between columns: with two, five demo agents overflow 100 columns

_STATE_STYLES: dict[str, str] = {"healthy": "green", "degraded": "yellow", "down": "bold red"}
_BREAKER_STYLES = {"closed": "green", "half_open": "yellow", "open": "bold red"}
_BREACH = "bold red"  # an SLA metric that fails with data behind it
_NO_DATA = "yellow"  # an SLA metric with nothing measured yet: not proven, not broken


def state_style(state: AgentState | str) -> str:
    """The rich style of an agent state: healthy green, degraded yellow, down bold red."""
    return _STATE_STYLES.get(state, "")


def breaker_text(row: AgentRow) -> str:
    """``closed``, ``half-open``, ``open`` or ``open 5 s`` (time until the next probe);
    ``cooling 12 s`` for a closed replica set aside by a rate limit (issue 12)."""
    if row.cooling_s is not None and row.breaker == "closed":
        return f"cooling {math.ceil(max(0.0, row.cooling_s)):,} s"
    if row.breaker == "open":
        if row.retry_in_s is None:
            return "open"
        # Whole seconds, rounded up: a countdown that ticks every interval needs no decimals.
        return f"open {math.ceil(max(0.0, row.retry_in_s)):,} s"
    return "half-open" if row.breaker == "half_open" else "closed"


def _breaker_style(row: AgentRow) -> str:
    cooling = row.cooling_s is not None and row.breaker == "closed"
    return "yellow" if cooling else _BREAKER_STYLES[row.breaker]


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """The last ``width`` values as blocks ▁..█ scaled to their own min..max; ``""`` if empty.

    A flat window draws mid-height (steady, not "fast"); a NaN or infinite value (a check
    with no latency) is a blank.
    """
    window = list(values)[-width:] if width > 0 else []
    finite = [v for v in window if math.isfinite(v)]
    if not finite:
        return " " * len(window) if window else ""
    lo, hi = min(finite), max(finite)
    top = len(BLOCKS) - 1
    chars = []
    for v in window:
        if not math.isfinite(v):
            chars.append(" ")
        elif hi == lo:
            chars.append(BLOCKS[top // 2])
        else:
            chars.append(BLOCKS[round((v - lo) / (hi - lo) * top)])
    return "".join(chars)


def watch_renderable(snap: WatchSnapshot, *, width: int | None = None) -> RenderableType:
    """Header, agent table, ``send`` picks per type and the last events, newest last.

    ``width`` fixes the width the table must fit; None measures the console at render time
    (inside ``Live`` that follows terminal resizes). Columns are dropped to fit, sparkline first.
    """
    return _WatchView(snap, width)


@dataclass(frozen=True)
class _WatchView:
    snap: WatchSnapshot
    width: int | None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.width is not None:
            options = options.update_width(self.width)
        yield from console.render(Group(*_parts(self.snap, options.max_width)), options)


def _parts(snap: WatchSnapshot, width: int) -> Iterator[RenderableType]:
    yield header(snap)
    yield agent_table(snap, width)
    yield legend(snap.agents)
    sla = sla_lines(snap.agents)
    if sla is not None:
        yield sla
    yield picks_line(snap)
    events = snap.recent_events[-MAX_EVENTS:]
    if events:
        yield Text("events", style="bold")
        yield from (event_line(e) for e in events)
    yield from (agent_text(note, style="dim yellow") for note in snap.notes)


def clock(at: float) -> str:
    """Wall-clock seconds since the epoch as local ``HH:MM:SS``."""
    return datetime.fromtimestamp(at).strftime("%H:%M:%S")


def header(snap: WatchSnapshot) -> Text:
    """``latcli watch · every 2s · p2c · 12:34:56 · tick 7 · agents.yaml``."""
    text = Text()
    text.append("latcli watch", style="bold")
    # The path goes last: it is the long part, and a wrap should not hide the clock.
    for part in (
        f"every {format_duration(snap.interval_s)}",
        snap.strategy,
        clock(snap.at),
        f"tick {snap.tick}",
        snap.inventory,
    ):
        text.append(" · ", style="dim")
        text.append(part)
    return text


# -- the table ---------------------------------------------------------------------------

_HEADERS = {"in-flight": "in-fl", "last error": "error", "sparkline": "recent"}  # 100 columns
# Each number column as wide as its widest usual value (with the usual marker: "24.1 ms!"
# "99.95%!", "open 60 s"), so the table does not shift from one tick to the next.
_MIN_WIDTHS = {"state": 8, "ewma": 7, "p50": 7, "p99": 8, "success": 7, "breaker": 9}


@dataclass(frozen=True)
class _Column:
    name: str
    cells: tuple[Text, ...]
    right: bool = False

    @property
    def header(self) -> str:
        return _HEADERS.get(self.name, self.name)

    @property
    def width(self) -> int:
        least = _MIN_WIDTHS.get(self.name, 0)
        return max([least, len(self.header), *(c.cell_len for c in self.cells)])


def agent_table(snap: WatchSnapshot, width: int) -> Table:
    """One row per agent, fitted to ``width``.

    Columns in :data:`DROP_ORDER` go until the rest fits; the sparkline takes what is left
    (up to :data:`SPARK_WIDTH` checks) and is the first to go.
    """
    recovered = {e.agent for e in snap.events if e.kind == "sla_recovery"}
    columns = _columns(snap.agents, recovered)
    full = len(columns)
    for name in DROP_ORDER[1:]:
        if _table_width(columns) <= width:
            break
        columns = [c for c in columns if c.name != name]
    spare = width - _table_width(columns) - _GAP
    if len(columns) == full and spare >= MIN_SPARK:
        spark = min(spare, SPARK_WIDTH)
        cells = (Text(sparkline(r.recent_ms, spark), style="cyan") for r in snap.agents)
        columns.append(_Column("sparkline", tuple(cells)))
    # The box draws the header rule; its blank divider is the one-space gap between columns.
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, padding=0)
    for col in columns:
        justify: Literal["left", "right"] = "right" if col.right else "left"
        table.add_column(
            col.header, justify=justify, no_wrap=True, overflow="ellipsis", min_width=col.width
        )
    for i in range(len(snap.agents)):
        table.add_row(*(c.cells[i] for c in columns))
    return table


def _table_width(columns: Sequence[_Column]) -> int:
    return sum(c.width for c in columns) + _GAP * max(0, len(columns) - 1)


def _columns(rows: Sequence[AgentRow], recovered: set[str | None]) -> list[_Column]:
    def col(name: str, cells: Iterator[Text], right: bool = False) -> _Column:
        return _Column(name, tuple(cells), right)

    return [
        col("agent", (_agent_cell(r, r.id in recovered) for r in rows)),
        col("type", (Text(r.type) for r in rows)),
        col("state", (Text(r.state, style=state_style(r.state)) for r in rows)),
        col("ewma", (_ewma_cell(r) for r in rows), True),
        col("p50", (_metric_cell(format_ms(r.p50_ms), r, "p50") for r in rows), True),
        col("p99", (_metric_cell(format_ms(r.p99_ms), r, "p99") for r in rows), True),
        col("success", (_metric_cell(_percent(r.success_rate), r, "success") for r in rows), True),
        col("breaker", (Text(breaker_text(r), style=_breaker_style(r)) for r in rows)),
        col("in-flight", (Text(str(r.in_flight)) for r in rows), True),
        col("last error", (_error_cell(r.last_error) for r in rows)),
    ]


def _agent_cell(row: AgentRow, recovered: bool) -> Text:
    if row.sla_breached and any(s.observed is not None for s in row.sla if not s.passed):
        return Text(row.id, style=_BREACH)
    return Text(row.id, style="bold green" if recovered else "")


def _error_cell(kind: str | None) -> Text:
    return Text(kind, style="red") if kind else Text("-", style="dim")


def _percent(rate: float | None) -> str:
    """``100%``, ``99.95%``: rounded down, so 99.96 % never shows as a perfect 100%."""
    return format_percent(rate)


def _ewma_cell(row: AgentRow) -> Text:
    """The EWMA, with ``*`` when failure penalties hold it up (see :func:`legend`)."""
    cell = _metric_cell(format_ms(row.ewma_ms), row, "ewma")
    if row.ewma_penalty:
        cell.append("*", style="yellow")
    return cell


def sla_column(status: SlaStatus) -> str:
    """The table column an SLA threshold is about, from the metric its expression names."""
    metric = status.expr.split()[0].lower() if status.expr.split() else ""
    if metric in ("availability", "error_rate"):
        return "success"
    if metric.startswith("p"):
        try:
            return "p50" if float(metric[1:]) <= 50 else "p99"
        except ValueError:
            pass
    return "ewma"  # mean / min / max: the closest live number we show


def _metric_cell(text: str, row: AgentRow, column: str) -> Text:
    """A metric cell; a failing SLA on it turns it bold red with a ``!`` (yellow if no data)."""
    failing = [s for s in row.sla if not s.passed and sla_column(s) == column]
    if not failing:
        return Text(text)
    if all(s.observed is None for s in failing):
        return Text(text + "?", style=_NO_DATA)
    return Text(text + "!", style=_BREACH)


def sla_lines(rows: Sequence[AgentRow]) -> Text | None:
    """One line per failing SLA threshold: ``SLA weather-2 health p99 < 100ms: 180 ms``."""
    lines = [(r.id, s) for r in rows for s in r.sla if not s.passed]
    if not lines:
        return None
    text = Text()
    for i, (agent, s) in enumerate(lines):
        style = _NO_DATA if s.observed is None else _BREACH
        text.append("\n" if i else "")
        # "availability >= 99.9%" names itself; "p99 < 100ms" needs its endpoint: "health".
        what = s.expr if s.expr.startswith(s.name) else f"{s.name} {s.expr}"
        text.append(f"SLA {agent} {what}: {s.shown}", style=style)
    return text


# -- under the table ---------------------------------------------------------------------

LEGEND = "latencies are health checks · ! SLA breached · ? SLA without data yet"


def legend(rows: Sequence[AgentRow]) -> Text:
    """What the markers mean, in one dim line; a second when an EWMA holds failure penalties
    (a fast-failing agent would otherwise show a slow EWMA with no hint why)."""
    text = Text(LEGEND, style="dim")
    penalised = [r.id for r in rows if r.ewma_penalty]
    if penalised:
        text.append(
            f"\n* {', '.join(penalised)}: EWMA holds failure penalties (each failure counts as"
            " the timeout)",
            style="yellow",
        )
    return text


def picks_line(snap: WatchSnapshot) -> Text:
    """``send would pick  weather → weather-1 · calendar → calendar-1`` (``none`` in red)."""
    text = Text()
    text.append("send would pick", style="bold")
    if not snap.picks:
        text.append(" -", style="dim")
    for i, (kind, agent) in enumerate(snap.picks.items()):
        text.append(" · " if i else " ", style="dim")
        text.append(f"{kind} → ")
        text.append(agent or "none", style="bold" if agent else "bold red")
    return text


_EVENT_LABELS = {
    "state": "state",
    "breaker": "breaker",
    "sla_breach": "sla breach",
    "sla_recovery": "sla ok",
    "webhook": "webhook",
    "chaos": "chaos",
    "rate_limit": "rate limit",
}
_AFTER_STYLES = {**_STATE_STYLES, **_BREAKER_STYLES, "half-open": "yellow"}


def event_style(event: WatchEvent) -> str:
    """Red for breaches and things going down or open, green for recoveries."""
    if event.kind == "sla_breach":
        return _BREACH
    if event.kind == "sla_recovery":
        return "green"
    if event.kind == "webhook":
        return "dim"
    return _AFTER_STYLES.get(event.after or "", "")


def event_line(event: WatchEvent) -> Text:
    """``12:34:56  state       weather-1 healthy → down (connect)``."""
    text = Text()
    text.append(f"{clock(event.at)}  ", style="dim")
    text.append(f"{_EVENT_LABELS.get(event.kind, event.kind):<10} ", style="dim")
    text.append(escape_controls(event.message), style=event_style(event))
    return text
