"""One agent at one tick: its window, rise/fall, breaker and canary as an :class:`AgentRow`."""

from __future__ import annotations

from collections.abc import Sequence

from latcli.core.breaker import BreakerState
from latcli.core.redact import redact_url
from latcli.core.sla import Threshold, Verdict, evaluate
from latcli.core.stats import ReplicaStats
from latcli.engines.watch.health import agent_state
from latcli.engines.watch.tracked import Tracked
from latcli.reports.watch import AgentRow, SlaStatus
from latcli.routing.replica import Replica


def agent_row(
    t: Tracked,
    replica: Replica,
    now: float,
    *,
    thresholds: Sequence[Threshold],
    canary_sla: Sequence[Threshold],
    cooling_s: float | None,
) -> AgentRow:
    """``t`` now: the SLA over its window (and its canaries'), its state, the router's view."""
    breaker = replica.breaker.state(now)
    summary = t.window.summary(now)
    verdicts = evaluate(thresholds, summary.observation()) if t.checks else []
    canary = t.canary
    last = None if canary is None else canary.last
    if canary is not None and last is not None and canary_sla:
        verdicts += evaluate(canary_sla, canary.window.observation(now))
    sla = tuple(sla_status(v) for v in verdicts)
    success = summary.success_rate
    canary_ok = last is None or last.ok or last.error == "rate_limited"
    state = agent_state(t.health.up, breaker, all(s.passed for s in sla), success, canary_ok)
    stats = replica.stats
    return AgentRow(
        id=t.agent.id,
        type=t.agent.type,
        url=redact_url(t.agent.url),
        protocol=t.agent.protocol,
        state=state,
        ewma_ms=stats.cost(now) if stats.has_history else None,
        p50_ms=summary.percentile(50),
        p99_ms=summary.percentile(99),
        success_rate=success,
        breaker=breaker.value,
        retry_in_s=replica.breaker.retry_in(now) if breaker is BreakerState.OPEN else None,
        in_flight=stats.in_flight,
        last_error=t.last_error,
        last_message=t.last_message,
        checks=t.checks,
        recent_ms=tuple(t.window.recent),
        sla=sla,
        ewma_penalty=penalised(stats, now),
        cooling_s=cooling_s,
        has_canary=canary is not None,
        canary=last,
    )


def penalised(stats: ReplicaStats, now: float) -> bool:
    """True when failure penalties hold the EWMA up: only they can lift it above every latency
    the replica really took (a peak EWMA of real samples never exceeds their maximum)."""
    seen = stats.latencies.values()
    return stats.has_history and bool(seen) and stats.cost(now) > max(seen) * 1.01


def sla_status(v: Verdict) -> SlaStatus:
    return SlaStatus(v.name, v.expr, v.observed, v.passed, v.format_observed())


__all__ = ["agent_row", "penalised", "sla_status"]
