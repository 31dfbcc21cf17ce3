"""Watch's own record of one agent, next to the router's replica: its window, rise/fall, canary."""

from __future__ import annotations

from dataclasses import dataclass, field

from latcli.config.model import Agent, CanaryConfig
from latcli.engines.watch.canary import CanaryWindow, canary_agent
from latcli.engines.watch.check_window import CheckWindow
from latcli.engines.watch.health import RiseFall
from latcli.reports.watch import AgentState, CanaryStatus

WINDOW_MIN_CHECKS = 5  # the SLA window spans the breaker window, but at least 5 intervals


@dataclass
class Canary:
    """One agent's canary: what is sent, to whom (with the canary's timeout), what it saw."""

    config: CanaryConfig
    agent: Agent
    window: CanaryWindow
    last: CanaryStatus | None = None  # the latest answer's verdict
    shown: CanaryStatus | None = None  # the verdict the previous tick reported


@dataclass
class Tracked:
    """Watch's own record of one agent, next to the router's replica."""

    agent: Agent
    period: float  # seconds between this agent's checks
    window: CheckWindow
    health: RiseFall = field(default_factory=RiseFall)
    last_error: str | None = None
    last_message: str | None = None
    checks: int = 0
    state: AgentState | None = None  # at the previous tick; None before the first verdict
    sla_passed: dict[str, bool] = field(default_factory=dict)  # by threshold, previous tick
    cooling: bool = False  # rate-limited (set aside) at the previous tick
    canary: Canary | None = None  # health.canary, when the agent has one


def track(agent: Agent, period: float, canaries: bool = True) -> Tracked:
    """A fresh record of ``agent``, checked every ``period`` seconds (its canary, if it has one
    and ``canaries``)."""
    span = max(agent.breaker.window, WINDOW_MIN_CHECKS * period)
    rise_fall = RiseFall(agent.health.rise, agent.health.fall)
    config = agent.health.canary if canaries else None
    canary = None
    if config is not None:
        canary_span = max(agent.breaker.window, WINDOW_MIN_CHECKS * config.every)
        canary = Canary(config, canary_agent(agent, config), CanaryWindow(canary_span))
    return Tracked(agent, period, CheckWindow(span), rise_fall, canary=canary)


__all__ = ["WINDOW_MIN_CHECKS", "Canary", "Tracked", "track"]
