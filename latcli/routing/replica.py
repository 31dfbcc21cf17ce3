"""One replica as the router keeps it (measurements, breaker, unsaved calls) and shows it."""

from __future__ import annotations

from dataclasses import dataclass, field

from latcli.config.model import Agent
from latcli.core.breaker import Breaker, BreakerState
from latcli.core.redact import redact_url
from latcli.core.stats import ReplicaStats, StatsSnapshot
from latcli.routing.state import CallRecord

__all__ = ["Replica", "ReplicaView"]


@dataclass(frozen=True)
class ReplicaView:
    """One replica as watch and ``GET /agents`` show it."""

    agent: Agent
    stats: StatsSnapshot
    breaker: BreakerState
    retry_in: float | None
    cooling_s: float | None = None  # seconds left of a rate limit's cooldown; None: not cooling


@dataclass
class Replica:
    """The router's live record of one agent: measurements, breaker, unsaved observations."""

    agent: Agent
    stats: ReplicaStats
    breaker: Breaker
    journal: list[CallRecord] = field(default_factory=list)
    cool_until: float = 0.0  # monotonic: rate-limited, set aside until then (latcli.core.ratelimit)

    @property
    def id(self) -> str:
        return self.agent.id

    @property
    def weight(self) -> float:
        return self.agent.weight

    @property
    def key(self) -> str:
        """State key: the id and the URL (password masked: the file must not hold it), so a
        re-pointed id starts afresh."""
        return f"{self.agent.id}@{redact_url(self.agent.url)}"
