"""Reading `latcli demo --chaos --json` ticks (latcli.watch/v1): the chaos phases and one agent."""

from __future__ import annotations

from typing import Any

Tick = dict[str, Any]


def chaos_segments(ticks: list[Tick], agent: str) -> list[tuple[str, list[Tick], str]]:
    """(phase, the ticks while it was in force, its chaos event message), in order; every
    chaos event must be about ``agent``."""
    out: list[tuple[str, list[Tick], str]] = []
    for tick in ticks:
        for e in tick["events"]:
            if e["kind"] == "chaos":
                assert e["agent"] == agent
                out.append((e["after"], [], e["message"]))
        if out:
            out[-1][1].append(tick)
    return out


def agent_row(tick: Tick, agent: str) -> dict[str, Any]:
    """``agent``'s row of one tick."""
    return next(a for a in tick["agents"] if a["id"] == agent)
