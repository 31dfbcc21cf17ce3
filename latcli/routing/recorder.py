"""What each answer teaches the router: a replica's measurements and breaker verdict, its
journal for the state store, the type's latency windows (hedging waits on their p95) and the
rate-limit cooldowns."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from latcli.config.model import Agent
from latcli.core.breaker import Permit
from latcli.core.errors import ErrorKind
from latcli.core.ratelimit import COOLING_DEFAULT_S, cooldown
from latcli.core.stats import LatencyWindow
from latcli.routing.replica import Replica
from latcli.routing.state import CallRecord
from latcli.transport.replies import Reply

__all__ = ["HEDGE_MIN_SAMPLES", "Recorder", "ewma_sample"]

HEDGE_MIN_SAMPLES = 20  # no hedging until the type's p95 rests on this many answers

# A cooldown to save: the replica's state key and the epoch second it ends.
OnCooled = Callable[[str, float], None]


class Recorder:
    """Records answers into the replicas and the per-type windows. ``clock`` is monotonic
    seconds, ``wall`` epoch seconds (journals and saved cooldowns are wall time)."""

    def __init__(
        self,
        replicas: Mapping[str, Replica],
        on_cooled: OnCooled,
        clock: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self._replicas, self._on_cooled = replicas, on_cooled
        self.clock, self._wall = clock, wall
        types = list(dict.fromkeys(r.agent.type for r in replicas.values()))
        self.latency = {t: LatencyWindow(256) for t in types}  # answered messages, per type
        # A streamed send hedges on the type's time to first token (after it, it is committed).
        self.first_token = {t: LatencyWindow(256) for t in types}
        self._cooling: dict[str, set[str]] = {}  # type -> ids rate-limited (maybe expired)

    def record(
        self,
        replica: Replica,
        permit: Permit | None,
        reply: Reply,
        message: bool = True,
        sample: bool = True,
    ) -> bool:
        """Record ``reply`` as ``replica``'s verdict. False: none given (rate limited: set
        aside to cool, no EWMA sample); the caller then settles the call without one."""
        now = self.clock()
        if reply.error is ErrorKind.RATE_LIMITED:
            self._cool(replica, reply, now)
            return False
        healthy = not reply.is_failure
        if not sample:  # a canary: the breaker's verdict only (not journaled: this run's)
            replica.stats.settle(now, healthy)
            if permit is not None:
                replica.breaker.record(now, permit, healthy)
            return True
        # A failed call costs the EWMA as much as a timeout: a replica that fails *fast*
        # must not look fast to p2c (the breaker alone would let it take the next calls).
        penalty = None if healthy else max(reply.latency_ms, replica.agent.timeout * 1000.0)
        if healthy and message:
            penalty = ewma_sample(replica.agent, reply)
        replica.stats.finish(now, reply.latency_ms, healthy, cost_ms=penalty)
        if permit is not None:
            replica.breaker.record(now, permit, healthy)
        if reply.ok and message:  # hedging waits for the p95 of messages, not health checks
            self.latency[replica.agent.type].add(reply.latency_ms)
            first = reply.stream.first_artifact_ms if reply.stream is not None else None
            if first is not None:
                self.first_token[replica.agent.type].add(first)
        replica.journal.append(CallRecord(self._wall(), reply.latency_ms, healthy, penalty))
        return True

    def _cool(self, replica: Replica, reply: Reply, now: float) -> None:
        """Set ``replica`` aside for its answer's Retry-After (capped; 429 without: a default)."""
        wall = self._wall()
        seconds = cooldown(reply.status, reply.retry_after, wall)
        seconds = COOLING_DEFAULT_S if seconds is None else seconds
        if now + seconds > replica.cool_until:
            self.cool_until(replica, now + seconds)
            self._on_cooled(replica.key, wall + seconds)

    def cool_until(self, replica: Replica, until: float) -> None:
        """Set ``replica`` aside until ``until`` (monotonic)."""
        replica.cool_until = until
        self._cooling.setdefault(replica.agent.type, set()).add(replica.agent.id)

    def still_cooling(self, type_: str, now: float) -> Collection[str]:
        """``type_``'s rate-limited ids, forgetting those whose cooldown is over."""
        cooling = self._cooling.get(type_)
        if not cooling:
            return ()
        for agent_id in [i for i in cooling if self._replicas[i].cool_until <= now]:
            cooling.discard(agent_id)
        return cooling

    def hedge_delay(self, type_: str, first_token: bool = False) -> float | None:
        """Seconds before a hedge joins: the type's p95 (streams: of the first token); None
        until it rests on :data:`HEDGE_MIN_SAMPLES` answers."""
        window = (self.first_token if first_token else self.latency)[type_]
        if len(window.values()) < HEDGE_MIN_SAMPLES:
            return None
        p95 = window.percentile(95)
        return None if p95 is None else p95 / 1000.0


def ewma_sample(agent: Agent, reply: Reply) -> float | None:
    """What a successful message teaches the EWMA instead of its total time, if anything.

    ``ewma.signal`` (default: ``first_artifact`` for a streamed answer, ``total`` otherwise):
    a streamed answer's time to first token is what its user waits for, as LiteLLM's latency
    routing measures streaming calls. No first token (an answer without text): the total.
    """
    phases = reply.stream
    signal = agent.ewma.signal or ("first_artifact" if phases is not None else "total")
    if signal == "first_artifact" and phases is not None:
        return phases.first_artifact_ms
    return None
