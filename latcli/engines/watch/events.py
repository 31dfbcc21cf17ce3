"""What changed at a tick: one agent's row against what ``t`` remembers of the previous tick.

Each function yields the :class:`WatchEvent` s of one change (state, canary, rate limit, SLA)
and moves ``t``'s memory on; at an agent's first verdict only the bad news is told.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from latcli.core.units import format_ms
from latcli.engines.watch.tracked import Canary, Tracked
from latcli.reports.watch import AgentRow, WatchEvent


def agent_events(t: Tracked, row: AgentRow, wall: float) -> Iterator[WatchEvent]:
    """State, canary, rate-limit and SLA changes of one agent; at its first verdict only the
    bad news."""
    if t.checks == 0:
        return
    yield from state_events(t, row, wall)
    if t.canary is not None:
        yield from canary_events(t.canary, row, wall)
    yield from rate_limit_events(t, row, wall)
    yield from sla_events(t, row, wall)


def state_events(t: Tracked, row: AgentRow, wall: float) -> Iterator[WatchEvent]:
    """healthy / degraded / down changed; a first verdict of healthy is no news."""
    before = t.state
    if row.state != before and (before is not None or row.state != "healthy"):
        c = row.canary
        kind = row.last_error or (f"canary {c.error}" if c is not None and not c.ok else None)
        why = f" ({kind})" if kind and row.state != "healthy" else ""
        text = f"{row.id} {before or 'new'} → {row.state}{why}"
        yield WatchEvent(wall, "state", row.id, text, before, row.state)
    t.state = row.state


def rate_limit_events(t: Tracked, row: AgentRow, wall: float) -> Iterator[WatchEvent]:
    """The agent was set aside by a rate limit (429/503 + Retry-After), or cooled down."""
    cooling = row.cooling_s is not None
    if cooling == t.cooling:
        return
    t.cooling = cooling
    if row.cooling_s is not None:
        text = f"{row.id} rate limited: set aside for {math.ceil(row.cooling_s):,} s"
        yield WatchEvent(wall, "rate_limit", row.id, text, "ready", "cooling")
    else:
        yield WatchEvent(wall, "rate_limit", row.id, f"{row.id} cooled down", "cooling", "ready")


def sla_events(t: Tracked, row: AgentRow, wall: float) -> Iterator[WatchEvent]:
    """A threshold breached or recovered; one that passes from the start is no news."""
    for s in row.sla:
        was = t.sla_passed.get(s.name)
        t.sla_passed[s.name] = s.passed
        if was is s.passed or (was is None and s.passed):
            continue
        if s.passed:
            text = f"{row.id} SLA {s.name} recovered: {s.expr} (observed {s.shown})"
            yield WatchEvent(wall, "sla_recovery", row.id, text, "breach", "pass")
        else:
            text = f"{row.id} SLA {s.name} breached: {s.expr} (observed {s.shown})"
            yield WatchEvent(wall, "sla_breach", row.id, text, "pass" if was else None, "breach")


def canary_events(canary: Canary, row: AgentRow, wall: float) -> Iterator[WatchEvent]:
    """A canary that fails (or fails differently), or passes again; a first pass is no news."""
    was, now = canary.shown, row.canary
    if now is None or now is was:
        return
    canary.shown = now
    same = was.ok == now.ok and was.error == now.error if was is not None else now.ok
    if same:  # no news: still passing (or a first pass), still failing the same way
        return
    if now.ok:
        ttft = "" if now.first_artifact_ms is None else f", ttft {format_ms(now.first_artifact_ms)}"
        text = f"{row.id} canary ok again ({format_ms(now.total_ms)}{ttft})"
        yield WatchEvent(wall, "canary", row.id, text, "failed", "ok")
        return
    why = f"{now.message} ({now.error})" if now.message else now.error
    text = f"{row.id} canary failed: {why}"
    yield WatchEvent(wall, "canary", row.id, text, None if was is None else "ok", "failed")


__all__ = [
    "agent_events",
    "canary_events",
    "rate_limit_events",
    "sla_events",
    "state_events",
]
