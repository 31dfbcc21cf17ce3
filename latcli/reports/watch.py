"""What one watch tick shows: frozen snapshots shared by the engine, the views and the JSON.

The engine (:mod:`latcli.engines.watch.loop`) builds a :class:`WatchSnapshot` per tick; renderers
(:mod:`latcli.render.watch_view`, :mod:`latcli.reports.watch_json`) turn it into text. Nothing here
does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

AgentState = Literal["healthy", "degraded", "down"]
EventKind = Literal[
    "state", "breaker", "sla_breach", "sla_recovery", "webhook", "chaos", "rate_limit"
]
BreakerName = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class SlaStatus:
    """One SLA threshold evaluated over an agent's sliding window."""

    name: str  # inventory key: health, availability, error_rate, ...
    expr: str  # normalised expression, e.g. "p99 < 100ms"
    observed: float | None  # ms for latency, fraction for rates; None: no data
    passed: bool
    shown: str  # observed value formatted for humans ("87 ms", "99.5%", "no data")


@dataclass(frozen=True)
class AgentRow:
    """One agent at one tick. Latencies in ms; rates are fractions in [0, 1]."""

    id: str
    type: str
    url: str
    protocol: str
    state: AgentState
    ewma_ms: float | None
    p50_ms: float | None
    p99_ms: float | None
    success_rate: float | None
    breaker: BreakerName
    retry_in_s: float | None  # seconds until the breaker's next probe; None unless open
    in_flight: int
    last_error: str | None  # error kind of the latest failed check, if the latest failed
    checks: int  # health checks done since watch started
    recent_ms: tuple[float, ...] = ()  # latest check latencies, oldest first (sparkline)
    sla: tuple[SlaStatus, ...] = ()
    # the latest failed check's message (agent text: escape before printing), URL passwords masked
    last_message: str | None = None
    # The EWMA is above every latency measured: failures fed it their penalty (the timeout).
    ewma_penalty: bool = False
    # Seconds left of a rate limit's cooldown (429/503 + Retry-After); None: not cooling.
    cooling_s: float | None = None

    @property
    def sla_breached(self) -> bool:
        return any(not s.passed for s in self.sla)


@dataclass(frozen=True)
class WatchEvent:
    """Something that changed: shown under the table, appended to --events, posted to webhooks."""

    at: float  # wall clock, seconds since the epoch
    kind: EventKind
    agent: str | None
    message: str  # one human line, e.g. "weather-1 healthy → down (connect)"
    before: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class WatchSnapshot:
    """Everything one tick shows."""

    at: float  # wall clock of the tick
    tick: int  # 1, 2, ...
    inventory: str  # path shown in the header
    interval_s: float
    strategy: str
    agents: tuple[AgentRow, ...]
    picks: Mapping[str, str | None] = field(default_factory=dict)  # type -> agent send would pick
    events: tuple[WatchEvent, ...] = ()  # new this tick
    recent_events: tuple[WatchEvent, ...] = ()  # the last few, newest last, for the view
    notes: tuple[str, ...] = ()  # e.g. "webhook http://... unreachable (reported once)"
    lag_ms: float = 0.0  # how late this tick ran after its scheduled time
