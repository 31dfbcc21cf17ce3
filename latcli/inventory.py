"""agents.yaml -> frozen dataclasses (DESIGN §1).

Loader errors carry ``FILE:LINE key.path: problem``; see :class:`InventoryError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Protocol = Literal["http", "a2a"]


@dataclass(frozen=True)
class HealthConfig:
    path: str = "/health"
    interval: float = 5.0  # seconds
    timeout: float = 1.0  # seconds


@dataclass(frozen=True)
class BreakerConfig:
    failures: int = 5
    failure_rate: float = 0.5  # fraction
    window: float = 30.0  # seconds
    min_calls: int = 10
    open_for: float = 5.0  # seconds
    open_max: float = 60.0  # seconds
    half_open_probes: int = 1


@dataclass(frozen=True)
class EwmaConfig:
    decay: float = 10.0  # seconds (tau)


@dataclass(frozen=True)
class RoutingConfig:
    strategy: str = "p2c"
    retries: int = 1
    retry_budget: float = 0.2  # fraction


@dataclass(frozen=True)
class DemoConfig:
    """How ``latcli demo`` simulates this agent (ignored by every other command)."""

    latency: str = "fixed 5ms"  # parsed by latcli.demo.distribution.parse_distribution
    errors: float = 0.0  # fraction of requests that fail
    a2a_version: Literal["0.3", "1.0"] = "1.0"  # only for protocol a2a


@dataclass(frozen=True)
class Agent:
    id: str
    type: str
    url: str  # no trailing slash
    protocol: Protocol = "http"
    weight: float = 1.0
    timeout: float = 5.0
    connect_timeout: float = 1.0
    health: HealthConfig = field(default_factory=HealthConfig)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    ewma: EwmaConfig = field(default_factory=EwmaConfig)
    demo: DemoConfig | None = None
    adhoc: bool = False  # made from a URL on the command line

    def shown_headers(self) -> dict[str, str]:
        """Headers as they may be printed: every value is ``***``."""
        return {k: "***" for k in self.headers}


@dataclass(frozen=True)
class Inventory:
    path: Path | None
    agents: tuple[Agent, ...]
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    sla: Mapping[str, str] = field(default_factory=dict)  # name -> expression text
