"""latcli.engines.watch.events: what one agent's row says changed since the previous tick.

Pure functions over a row and the agent's memory: no watch, no clock, no socket.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from latcli.config.model import Agent
from latcli.engines.watch.events import (
    agent_events,
    rate_limit_events,
    sla_events,
    state_events,
)
from latcli.engines.watch.tracked import Tracked, track
from latcli.reports.watch import AgentRow, AgentState, SlaStatus, alert_dict, event_dict

WALL = 1_700_000_000.0


def _tracked(checks: int = 1) -> Tracked:
    t = track(Agent("w-1", "weather", "http://127.0.0.1:9"), 1.0)
    t.checks = checks
    return t


def _row(state: AgentState = "healthy", **changes: object) -> AgentRow:
    row = AgentRow(
        id="w-1",
        type="weather",
        url="http://127.0.0.1:9",
        protocol="http",
        state=state,
        ewma_ms=None,
        p50_ms=None,
        p99_ms=None,
        success_rate=None,
        breaker="closed",
        retry_in_s=None,
        in_flight=0,
        last_error=None,
        checks=1,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("before", "after", "last_error", "message"),
    [
        (None, "healthy", None, None),  # a first verdict of healthy is no news
        (None, "down", "connect", "w-1 new → down (connect)"),
        ("healthy", "degraded", None, "w-1 healthy → degraded"),
        ("down", "healthy", "connect", "w-1 down → healthy"),  # no error named on recovery
        ("degraded", "degraded", None, None),
    ],
)
def test_state_changes_are_told_once(
    before: AgentState | None, after: AgentState, last_error: str | None, message: str | None
) -> None:
    t = _tracked()
    t.state = before
    told = list(state_events(t, _row(after, last_error=last_error), WALL))
    assert [e.message for e in told] == ([] if message is None else [message])
    assert t.state == after
    assert list(state_events(t, _row(after, last_error=last_error), WALL)) == []


def test_a_rate_limit_is_told_when_it_starts_and_when_it_ends() -> None:
    t = _tracked()
    assert list(rate_limit_events(t, _row(), WALL)) == []
    started = list(rate_limit_events(t, _row(cooling_s=29.2), WALL))
    assert [(e.message, e.before, e.after) for e in started] == [
        ("w-1 rate limited: set aside for 30 s", "ready", "cooling")
    ]
    assert list(rate_limit_events(t, _row(cooling_s=10.0), WALL)) == []
    ended = list(rate_limit_events(t, _row(), WALL))
    assert [(e.message, e.before, e.after) for e in ended] == [
        ("w-1 cooled down", "cooling", "ready")
    ]


def _sla(passed: bool) -> tuple[SlaStatus, ...]:
    return (SlaStatus("health", "p99 < 100ms", 120.0, passed, "120 ms"),)


def test_an_sla_that_passes_from_the_start_is_no_news_a_breach_and_recovery_are() -> None:
    t = _tracked()
    assert list(sla_events(t, _row(sla=_sla(True)), WALL)) == []
    breach = list(sla_events(t, _row(sla=_sla(False)), WALL))
    assert [(e.kind, e.before, e.after) for e in breach] == [("sla_breach", "pass", "breach")]
    assert breach[0].message == "w-1 SLA health breached: p99 < 100ms (observed 120 ms)"
    assert list(sla_events(t, _row(sla=_sla(False)), WALL)) == []
    recovery = list(sla_events(t, _row(sla=_sla(True)), WALL))
    assert [(e.kind, e.before, e.after) for e in recovery] == [("sla_recovery", "breach", "pass")]


def test_an_sla_breached_at_the_first_verdict_has_no_before() -> None:
    told = list(sla_events(_tracked(), _row(sla=_sla(False)), WALL))
    assert [(e.kind, e.before) for e in told] == [("sla_breach", None)]


def test_an_agent_never_checked_tells_nothing_and_remembers_nothing() -> None:
    t = _tracked(checks=0)
    assert list(agent_events(t, _row("down", cooling_s=5.0, sla=_sla(False)), WALL)) == []
    assert (t.state, t.cooling, t.sla_passed) == (None, False, {})


def test_one_tick_tells_state_rate_limit_and_sla_in_that_order() -> None:
    told = list(agent_events(_tracked(), _row("down", cooling_s=5.0, sla=_sla(False)), WALL))
    assert [e.kind for e in told] == ["state", "rate_limit", "sla_breach"]
    assert all(e.at == WALL and e.agent == "w-1" for e in told)


def test_the_alert_carries_its_schema_the_tick_and_every_event() -> None:
    from latcli.reports.watch import WatchSnapshot

    events = list(agent_events(_tracked(), _row("down", sla=_sla(False)), WALL))
    snapshot = WatchSnapshot(WALL + 0.00049, 7, "agents.yaml", 1.0, "p2c", (_row("down"),))
    alert = alert_dict(snapshot, events)
    assert alert["schema"] == "latcli.watch.alert/v1"
    assert (alert["t"], alert["tick"]) == (WALL, 7)
    assert alert["text"] == "\n".join(e.message for e in events)
    assert alert["events"] == [event_dict(e) for e in events]
