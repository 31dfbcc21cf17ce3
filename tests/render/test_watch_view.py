"""The watch screen rendered on a capture console: every state, breaker, SLA verdict, events."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import datetime

import pytest
from rich.console import Console

from latcli.render.watch_view import (
    BLOCKS,
    MAX_EVENTS,
    breaker_text,
    sla_column,
    sparkline,
    state_style,
    watch_renderable,
)
from latcli.reports.watch import AgentRow, SlaStatus, WatchEvent, WatchSnapshot

AT = 1_700_000_000.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HEALTH_OK = SlaStatus("health", "p99 < 100ms", 12.0, True, "12 ms")
HEALTH_BAD = SlaStatus("health", "p99 < 100ms", 180.0, False, "180 ms")
AVAIL_NO_DATA = SlaStatus("availability", "availability >= 99.9%", None, False, "no data")


def row(agent_id: str = "weather-1", **change: object) -> AgentRow:
    base = AgentRow(
        id=agent_id,
        type="weather",
        url="http://127.0.0.1:8001",
        protocol="http",
        state="healthy",
        ewma_ms=1.5,
        p50_ms=1.4,
        p99_ms=3.25,
        success_rate=1.0,
        breaker="closed",
        retry_in_s=None,
        in_flight=0,
        last_error=None,
        checks=20,
        recent_ms=(1.0, 2.0, 3.0, 4.0),
        sla=(HEALTH_OK,),
    )
    return replace(base, **change)  # type: ignore[arg-type]


def fleet() -> tuple[AgentRow, ...]:
    """Five agents, as the demo: healthy, degraded (SLA breach), down, half-open, flaky."""
    return (
        row("weather-1"),
        row(
            "weather-2",
            state="degraded",
            ewma_ms=150.0,
            p99_ms=180.0,
            sla=(HEALTH_BAD,),
            recent_ms=(60.0, 90.0, 180.0, 120.0, 150.0),
        ),
        row(
            "calendar-1",
            type="calendar",
            state="down",
            breaker="open",
            retry_in_s=4.23,
            success_rate=0.5,
            last_error="connect",
            ewma_ms=None,
            p50_ms=None,
            p99_ms=None,
            recent_ms=(),
        ),
        row("calendar-2", type="calendar", breaker="half_open", in_flight=3),
        row(
            "flaky-1",
            type="news",
            success_rate=0.8,
            last_error="bad_response",
            sla=(HEALTH_OK, AVAIL_NO_DATA),
        ),
    )


def snapshot(**change: object) -> WatchSnapshot:
    base = WatchSnapshot(
        at=AT,
        tick=7,
        inventory="agents.yaml",
        interval_s=0.5,
        strategy="p2c",
        agents=fleet(),
        picks={"weather": "weather-1", "calendar": "calendar-2", "news": None},
    )
    return replace(base, **change)  # type: ignore[arg-type]


def event(
    kind: str, message: str, before: str | None = None, after: str | None = None
) -> WatchEvent:
    return WatchEvent(AT, kind, "calendar-1", message, before, after)  # type: ignore[arg-type]


EVENTS = (
    event("state", "calendar-1 healthy → down (connect)", "healthy", "down"),
    event("breaker", "calendar-1 breaker closed → open", "closed", "open"),
    event("sla_breach", "weather-2 SLA health breached (180 ms)"),
    event("sla_recovery", "weather-1 health p99 < 100ms: 12 ms"),
)


def render(snap: WatchSnapshot, width: int = 100, **console: object) -> tuple[str, str]:
    """(plain text, the bytes a 100-column colour terminal receives)."""
    con = capture(width, **console)
    con.print(watch_renderable(snap))
    assert isinstance(con.file, io.StringIO)
    return con.export_text(styles=False), con.file.getvalue()


def capture(width: int = 100, **options: object) -> Console:
    """A recording colour terminal that writes nowhere else."""
    return Console(
        file=io.StringIO(),
        record=True,
        width=width,
        force_terminal=True,
        color_system="truecolor",
        **options,  # type: ignore[arg-type]
    )


def line_of(text: str, agent_id: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(agent_id + " "))


def sgr(styled: str, fragment: str) -> str:
    """The SGR parameters in force where ``fragment`` starts (``"1;31"`` for bold red)."""
    at = styled.index(fragment)
    codes = ANSI.findall(styled[:at])
    last = codes[-1][2:-1] if codes else ""
    return "" if last == "0" else last


# -- the table ----------------------------------------------------------------------------


def test_every_agent_row_and_column_fits_100_columns() -> None:
    text, _ = render(snapshot())
    assert max(len(line) for line in text.splitlines()) <= 100
    header = next(line for line in text.splitlines() if line.startswith("agent "))
    for column in ("type", "state", "ewma", "p50", "p99", "success", "breaker", "in-fl"):
        assert column in header
    assert "error" in header and "recent" in header
    for agent in ("weather-1", "weather-2", "calendar-1", "calendar-2", "flaky-1"):
        assert agent in text


def test_healthy_row_shows_every_metric() -> None:
    text, _ = render(snapshot())
    line = line_of(text, "weather-1")
    assert line.split()[:3] == ["weather-1", "weather", "healthy"]
    for cell in ("1.50 ms", "1.40 ms", "3.25 ms", "100%", "closed", "▁▃▆█"):
        assert cell in line
    assert " - " in line  # no last error


@pytest.mark.parametrize(
    ("agent", "state", "style"),
    [
        ("weather-1", "healthy", "32"),
        ("weather-2", "degraded", "33"),
        ("calendar-1", "down", "1;31"),
    ],
)
def test_state_words_and_colours(agent: str, state: str, style: str) -> None:
    text, styled = render(snapshot())
    assert line_of(text, agent).split()[2] == state
    styled_line = next(x for x in styled.splitlines() if agent in x)
    assert sgr(styled_line, state) == style


def test_state_style_helper() -> None:
    assert state_style("healthy") == "green"
    assert state_style("degraded") == "yellow"
    assert "red" in state_style("down")


def test_down_agent_shows_open_breaker_with_time_to_next_probe() -> None:
    text, styled = render(snapshot())
    line = line_of(text, "calendar-1")
    assert "down" in line and "open 5 s" in line and "connect" in line and "50%" in line
    assert line.count(" - ") >= 3  # ewma, p50, p99 have no data
    assert sgr(next(x for x in styled.splitlines() if "calendar-1" in x), "open 5 s") == "1;31"


@pytest.mark.parametrize(
    ("breaker", "retry_in", "expected"),
    [
        ("closed", None, "closed"),
        ("half_open", None, "half-open"),
        ("open", 4.23, "open 5 s"),  # whole seconds, rounded up: the probe is not due yet
        ("open", 0.04, "open 1 s"),
        ("open", -0.5, "open 0 s"),
        ("open", 42.4, "open 43 s"),
        ("open", None, "open"),
    ],
)
def test_breaker_text(breaker: str, retry_in: float | None, expected: str) -> None:
    assert breaker_text(row(breaker=breaker, retry_in_s=retry_in)) == expected


@pytest.mark.parametrize(
    ("breaker", "cooling", "expected"),
    [
        ("closed", 11.2, "cooling 12 s"),  # rate-limited: set aside, breaker untouched
        ("closed", 0.01, "cooling 1 s"),
        ("closed", None, "closed"),
        ("open", 11.2, "open 3 s"),  # an open breaker says more than a cooldown
        ("half_open", 11.2, "half-open"),
    ],
)
def test_breaker_text_shows_a_rate_limit_cooldown(
    breaker: str, cooling: float | None, expected: str
) -> None:
    assert breaker_text(row(breaker=breaker, retry_in_s=2.5, cooling_s=cooling)) == expected


def test_half_open_breaker_is_yellow_and_in_flight_shown() -> None:
    text, styled = render(snapshot())
    line = line_of(text, "calendar-2")
    assert "half-open" in line and " 3 " in line
    assert sgr(next(x for x in styled.splitlines() if "calendar-2" in x), "half-open") == "33"


# -- SLA ----------------------------------------------------------------------------------


def test_sla_breach_marks_the_failing_metric_and_the_agent_in_bold_red() -> None:
    text, styled = render(snapshot())
    line = line_of(text, "weather-2")
    assert "180 ms!" in line  # the p99 cell: the health SLA is about p99
    assert "150 ms!" not in line  # ewma is not what the SLA measures
    styled_line = next(x for x in styled.splitlines() if "weather-2" in x and "180" in x)
    assert sgr(styled_line, "180 ms!") == "1;31"
    assert sgr(styled_line, "weather-2") == "1;31"
    assert "SLA weather-2 health p99 < 100ms: 180 ms" in text


def test_sla_pass_is_not_highlighted() -> None:
    text, styled = render(snapshot())
    line = line_of(text, "weather-1")
    assert "!" not in line and "?" not in line
    assert "SLA weather-1" not in text
    assert sgr(next(x for x in styled.splitlines() if x.startswith("weather-1")), "3.25 ms") == ""


def test_sla_without_data_is_yellow_not_a_breach() -> None:
    text, styled = render(snapshot())
    line = line_of(text, "flaky-1")
    assert "80%?" in line and "!" not in line
    styled_line = next(x for x in styled.splitlines() if x.startswith("flaky-1"))
    assert sgr(styled_line, "80%?") == "33"
    assert sgr(styled_line, "flaky-1") == ""  # not proven broken: the agent is not flagged
    assert "SLA flaky-1 availability >= 99.9%: no data" in text


def test_no_sla_at_all() -> None:
    agents = tuple(replace(a, sla=()) for a in fleet())
    text, _ = render(snapshot(agents=agents))
    assert not any(line.startswith("SLA ") for line in text.splitlines())
    assert not any(line_of(text, a.id).count("!") for a in agents)


@pytest.mark.parametrize(
    ("expr", "column"),
    [
        ("p99 < 100ms", "p99"),
        ("p95 < 200ms", "p99"),
        ("p50 <= 10ms", "p50"),
        ("mean < 50ms", "ewma"),
        ("availability >= 99.9%", "success"),
        ("error_rate < 0.1%", "success"),
        ("rps >= 10", "ewma"),
    ],
)
def test_sla_column(expr: str, column: str) -> None:
    assert sla_column(SlaStatus("x", expr, 1.0, False, "1")) == column


def test_success_rate_never_rounds_up_to_100() -> None:
    agents = (row(success_rate=0.9996), row("weather-2", success_rate=None))
    text, _ = render(snapshot(agents=agents))
    assert "99.96%" in line_of(text, "weather-1")
    assert "100%" not in text


# -- header, picks, events ------------------------------------------------------------------


def test_header_shows_interval_strategy_clock_tick_and_inventory() -> None:
    text, _ = render(snapshot(interval_s=2.0, strategy="fastest", inventory="/etc/agents.yaml"))
    first = text.splitlines()[0]
    clock = datetime.fromtimestamp(AT).strftime("%H:%M:%S")
    for part in ("latcli watch", "every 2 s", "fastest", clock, "tick 7", "/etc/agents.yaml"):
        assert part in first
    text, _ = render(snapshot())
    assert "every 500 ms" in text.splitlines()[0]


def test_picks_per_type_and_none_in_red() -> None:
    text, styled = render(snapshot())
    line = next(x for x in text.splitlines() if x.startswith("send would pick"))
    assert "weather → weather-1" in line
    assert "calendar → calendar-2" in line
    assert "news → none" in line
    assert sgr(styled, "none") == "1;31"


def test_no_picks() -> None:
    text, _ = render(snapshot(picks={}))
    assert "send would pick -" in text


def test_without_events_there_is_no_events_section() -> None:
    text, _ = render(snapshot())
    assert "events" not in text


def test_events_listed_newest_last_with_colours() -> None:
    text, styled = render(snapshot(recent_events=EVENTS, events=EVENTS[-1:]))
    lines = text.splitlines()
    start = lines.index("events")
    shown = lines[start + 1 :]
    clock = datetime.fromtimestamp(AT).strftime("%H:%M:%S")
    assert [x.split(None, 2)[0] for x in shown] == [clock] * 4
    assert "calendar-1 healthy → down (connect)" in shown[0]
    assert "sla ok" in shown[-1] and "weather-1 health" in shown[-1]
    assert sgr(styled, "calendar-1 healthy → down") == "1;31"
    assert sgr(styled, "calendar-1 breaker closed → open") == "1;31"
    assert sgr(styled, "weather-2 SLA health breached") == "1;31"
    assert sgr(styled, "weather-1 health p99 < 100ms: 12 ms") == "32"


def test_recovery_this_tick_highlights_the_agent_green() -> None:
    recovery = WatchEvent(AT, "sla_recovery", "weather-1", "weather-1 health ok")
    _, styled = render(snapshot(events=(recovery,), recent_events=(recovery,)))
    assert sgr(next(x for x in styled.splitlines() if x.startswith("\x1b[1;32mweather-1")), "w")


def test_only_the_last_events_are_shown() -> None:
    many = tuple(event("state", f"change {i}", "healthy", "degraded") for i in range(20))
    text, _ = render(snapshot(recent_events=many))
    assert "change 11" not in text
    assert all(f"change {i}" in text for i in range(20 - MAX_EVENTS, 20))
    assert text.rstrip().splitlines()[-1].endswith("change 19")


def test_notes_are_shown() -> None:
    text, _ = render(snapshot(notes=("webhook http://hook unreachable (reported once)",)))
    assert "webhook http://hook unreachable (reported once)" in text


# -- width and colour -----------------------------------------------------------------------


@pytest.mark.parametrize("width", [120, 100, 90, 80, 60, 50])
def test_table_fits_the_terminal(width: int) -> None:
    text, _ = render(snapshot(inventory="a.yaml"), width=width)
    lines = text.splitlines()
    rule = next(i for i, x in enumerate(lines) if x.startswith("─"))
    table = [lines[rule - 1], *lines[rule + 1 : rule + 6]]
    assert table[0].startswith("agent ") and table[-1].startswith("flaky-1 ")
    assert max(len(x) for x in table) <= width
    assert all("…" not in x for x in table)  # columns went, cells were not cut


def test_sparkline_goes_first_on_a_narrow_terminal() -> None:
    wide, _ = render(snapshot(), width=100)
    narrow, _ = render(snapshot(), width=90)
    assert "recent" in wide and "recent" not in narrow
    assert "▁" not in narrow
    header = next(x for x in narrow.splitlines() if x.startswith("agent "))
    assert "p50" in header and "type" in header


def test_width_argument_overrides_the_console() -> None:
    con = capture(200)
    con.print(watch_renderable(snapshot(), width=70))
    text = con.export_text()
    header = next(x for x in text.splitlines() if x.startswith("agent "))
    assert "recent" not in header and "breaker" in header
    assert max(len(x) for x in text.splitlines()) <= 70


def test_colour_codes_present_on_a_colour_terminal() -> None:
    _, styled = render(snapshot(recent_events=EVENTS))
    for colour in ("\x1b[32m", "\x1b[33m", "\x1b[1;31m", "\x1b[36m"):
        assert colour in styled


def test_no_color_console_has_no_colour_codes() -> None:
    text, styled = render(snapshot(recent_events=EVENTS), no_color=True)
    for code in re.findall(r"\x1b\[([0-9;]*)m", styled):
        params = code.split(";")
        assert not any(p.startswith(("3", "4", "9")) and p != "" for p in params), code
    # The meaning survives in words and marks.
    assert "down" in text and "open 5 s" in text and "180 ms!" in text and "80%?" in text


def test_no_color_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    Console(file=out, width=100, force_terminal=True).print(
        watch_renderable(snapshot(recent_events=EVENTS))
    )
    styled = out.getvalue()
    assert "\x1b[1m" in styled  # still a terminal: bold stays, colours go
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]m", styled)
    assert "calendar-1" in styled


def test_renderable_is_reused_across_widths_like_a_resized_live() -> None:
    view = watch_renderable(snapshot())
    for width in (100, 70, 100):
        con = capture(width)
        con.print(view)
        assert ("recent" in con.export_text()) is (width == 100)


def test_empty_sparkline_and_empty_fleet() -> None:
    agents = tuple(replace(a, recent_ms=()) for a in fleet())
    text, _ = render(snapshot(agents=agents))
    assert not any(b in text for b in BLOCKS)
    text, _ = render(snapshot(agents=(), picks={}))
    assert "latcli watch" in text


# -- sparkline ------------------------------------------------------------------------------


def test_sparkline_empty() -> None:
    assert sparkline([]) == ""
    assert sparkline([1.0, 2.0], width=0) == ""


def test_sparkline_scales_min_to_max() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([10.0, 1000.0]) == "▁█"
    assert sparkline([0.0, 50.0, 100.0]) == "▁▅█"


def test_sparkline_flat_is_mid_height() -> None:
    assert sparkline([5.0, 5.0, 5.0]) == "▄▄▄"
    assert sparkline([7.0]) == "▄"


def test_sparkline_keeps_the_latest_width_values() -> None:
    values = [100.0] + [float(i) for i in range(12)]
    line = sparkline(values)
    assert len(line) == 12 and line[0] == "▁" and line[-1] == "█"
    assert sparkline([float(v) for v in range(100)], width=5) == "▁▃▅▆█"


def test_sparkline_non_finite_values_are_blanks() -> None:
    assert sparkline([1.0, float("nan"), 3.0, float("inf")]) == "▁ █ "
    assert sparkline([float("nan")]) == " "


def test_sparkline_blocks_are_ordered() -> None:
    assert list(BLOCKS) == sorted(BLOCKS)
    assert len(BLOCKS) == 8


# -- explaining itself ------------------------------------------------------------------------


def test_a_legend_line_explains_the_markers_and_what_is_measured() -> None:
    text, _ = render(snapshot())
    legend = next(x for x in text.splitlines() if x.startswith("latencies are health checks"))
    assert "! SLA breached" in legend and "? SLA without data yet" in legend
    assert "*" not in text  # no EWMA penalty in this fleet: no marker, no note


def test_an_ewma_held_up_by_failure_penalties_is_marked_and_explained() -> None:
    failing = row("weather-2", ewma_ms=1660.0, p99_ms=1.2, success_rate=0.4, ewma_penalty=True)
    text, _ = render(snapshot(agents=(row(), failing)))
    assert "1.66 s*" in line_of(text, "weather-2") and "*" not in line_of(text, "weather-1")
    note = next(x for x in text.splitlines() if x.startswith("* weather-2: EWMA holds failure"))
    assert "timeout" in note and len(note) <= 100


def test_column_widths_do_not_change_from_tick_to_tick() -> None:
    calm = (row(), row("weather-2"))
    busy = (
        row(ewma_ms=1514.0, p50_ms=952.0, p99_ms=24.06, success_rate=0.9995),
        row("weather-2", breaker="open", retry_in_s=42.0, ewma_ms=0.952, sla=(HEALTH_BAD,)),
    )
    first, _ = render(snapshot(agents=calm))
    second, _ = render(snapshot(agents=busy))

    def header(text: str) -> str:
        return next(x for x in text.splitlines() if x.startswith("agent "))

    assert header(first) == header(second)
    for name in ("weather-1", "weather-2"):
        assert len(line_of(first, name).rstrip()) == len(line_of(second, name).rstrip())
