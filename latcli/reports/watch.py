"""What one watch tick shows, and ``latcli.watch/v1``: one JSON object per tick (DESIGN §6).

The engine (:mod:`latcli.engines.watch.loop`) builds a frozen :class:`WatchSnapshot` per tick;
the view (:mod:`latcli.render.watch_view`) draws it, :func:`watch_json` prints it, and
:func:`event_dict` / :func:`alert_dict` are what ``--events`` and the webhook write. Nothing here
does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from latcli.core.escape import json_safe

AgentState = Literal["healthy", "degraded", "down"]
EventKind = Literal[
    "state", "breaker", "sla_breach", "sla_recovery", "webhook", "chaos", "rate_limit", "canary"
]
BreakerName = Literal["closed", "open", "half_open"]
SCHEMA = "latcli.watch/v1"
ALERT_SCHEMA = "latcli.watch.alert/v1"


@dataclass(frozen=True)
class SlaStatus:
    """One SLA threshold evaluated over an agent's sliding window."""

    name: str  # inventory key: health, availability, error_rate, ...
    expr: str  # normalised expression, e.g. "p99 < 100ms"
    observed: float | None  # ms for latency, fraction for rates; None: no data
    passed: bool
    shown: str  # observed value formatted for humans ("87 ms", "99.5%", "no data")


@dataclass(frozen=True)
class CanaryStatus:
    """An agent's latest canary message (issue 12 item 5). Latencies in ms."""

    ok: bool
    first_artifact_ms: float | None  # time to first token; None: not streamed, or no text
    total_ms: float
    at: float  # wall clock when the answer ended
    error: str | None = None  # error kind when not ok ("task_failed", "timeout", ...)
    message: str | None = None  # why, when not ok (agent text: escape before printing)


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
    has_canary: bool = False  # the inventory gives it a canary (health.canary)
    canary: CanaryStatus | None = None  # the latest canary; None before the first ends

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


# ---- latcli.watch/v1 ---------------------------------------------------------------------------


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def agent_json(a: AgentRow) -> dict[str, Any]:
    return {
        "id": a.id,
        "type": a.type,
        "state": a.state,
        "ewma_ms": _r(a.ewma_ms),
        "ewma_penalty": a.ewma_penalty,  # failure penalties hold ewma_ms above the latencies
        "p50_ms": _r(a.p50_ms),
        "p99_ms": _r(a.p99_ms),
        "success_rate": _r(a.success_rate, 6),
        "breaker": a.breaker,
        "in_flight": a.in_flight,
        "url": a.url,
        "protocol": a.protocol,
        "retry_in_s": _r(a.retry_in_s),
        "cooling_s": _r(a.cooling_s),  # rate-limited: set aside this long more; null: not
        "last_error": a.last_error,
        "last_message": a.last_message,
        "checks": a.checks,
        "canary": canary_json(a.canary),  # null: no canary, or none answered yet
        "sla_breached": a.sla_breached,
        "sla": [
            {"name": s.name, "expr": s.expr, "observed": _r(s.observed, 6), "pass": s.passed}
            for s in a.sla
        ],
    }


def canary_json(c: CanaryStatus | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "ok": c.ok,
        "first_artifact_ms": _r(c.first_artifact_ms),
        "total_ms": _r(c.total_ms),
        "at": round(c.at, 3),
        "error": c.error,
        "message": c.message,
    }


def event_dict(e: WatchEvent) -> dict[str, object]:
    """One event as JSON (the --events line, the webhook item, the tick's ``events``)."""
    return {
        "t": round(e.at, 3),
        "kind": e.kind,
        "agent": e.agent,
        "message": e.message,
        "before": e.before,
        "after": e.after,
    }


def alert_dict(s: WatchSnapshot, events: Sequence[WatchEvent]) -> dict[str, object]:
    """``latcli.watch.alert/v1``: one tick's ``events`` as the webhook posts them."""
    return {
        "schema": ALERT_SCHEMA,
        "t": round(s.at, 3),
        "tick": s.tick,
        "text": "\n".join(e.message for e in events),  # Slack-style receivers show this
        "events": [event_dict(e) for e in events],
    }


def watch_dict(s: WatchSnapshot) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "t": round(s.at, 3),
        "tick": s.tick,
        "lag_ms": round(s.lag_ms, 3),
        "interval_s": s.interval_s,
        "strategy": s.strategy,
        "inventory": s.inventory,
        "agents": [agent_json(a) for a in s.agents],
        "picks": dict(s.picks),
        "events": [event_dict(e) for e in s.events],
        "notes": list(s.notes),
    }


def watch_json(s: WatchSnapshot) -> str:
    """One line: JSON lines mode prints one of these per tick."""
    return json_safe(json.dumps(watch_dict(s), ensure_ascii=False, separators=(",", ":")))
