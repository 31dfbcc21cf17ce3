"""The gateway's Prometheus families, in the watch's registry so one ``/metrics`` serves both."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, generate_latest

from latcli.config.model import Agent
from latcli.engines.watch.metrics import LABELS, WatchMetrics
from latcli.routing.results import RouteResult

# Routed calls on loopback take 1-100 ms, across a WAN up to seconds; timeouts are 2-5 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# An LLM's first token comes in 0.1-2 s, its answer in up to a minute.
STREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Outcomes whose series exist before the first one: alerts rate() them (deploy/prometheus).
ZERO_OUTCOMES = ("ok", "task_failed", "rate_limited")


class GatewayMetrics:
    """Watch's metric families plus the gateway's own, in one registry."""

    def __init__(
        self, watch_metrics: WatchMetrics | None = None, agents: Iterable[Agent] = ()
    ) -> None:
        self.watch = watch_metrics or WatchMetrics()
        r = self.watch.registry
        self.requests = Counter(
            "latcli_gateway_requests",
            "Routed requests by type and HTTP status answered.",
            ("type", "code"),
            registry=r,
        )
        self.latency = Histogram(
            "latcli_gateway_request_duration_seconds",
            "Time to answer a routed request, failovers included.",
            ("type",),
            buckets=BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "latcli_gateway_in_flight",
            "Routed requests being answered (their body read, or their call under way).",
            registry=r,
        )
        self.shed = Counter(
            "latcli_gateway_shed",
            "Requests and connections shed with 503 overloaded, by the limit that shed them.",
            ("limit",),
            registry=r,
        )
        self.refused = Counter(
            "latcli_gateway_refused",
            "Requests refused before routing: head too large, not received in time, malformed.",
            ("limit",),
            registry=r,
        )
        self.cut = Counter(
            "latcli_gateway_cut",
            "Routed calls cancelled: the client disconnected, fell too far behind a stream "
            "(slow_client), or the drain ran out.",
            ("reason",),
            registry=r,
        )
        self.task_cancels = Counter(
            "latcli_gateway_task_cancels",
            "A2A tasks of abandoned streams (client gone, stream broken) cancelled, by outcome.",
            ("outcome",),
            registry=r,
        )
        self.restarts = Counter(
            "latcli_gateway_task_restarts",
            "Background tasks (the health checks) restarted after they died.",
            ("task",),
            registry=r,
        )
        self.attempts = Counter(
            "latcli_gateway_attempts",
            "Attempts of routed requests by agent and outcome (ok or an error kind: task_failed, "
            "rate_limited, timeout, ...); a request failed over makes several.",
            (*LABELS, "outcome"),
            registry=r,
        )
        self.first_artifact = Histogram(
            "latcli_gateway_stream_first_artifact_seconds",
            "Streamed routes: time to first token, from the request sent to the agent that "
            "answered to its first answer text (a unary answer: its whole reply).",
            LABELS,
            buckets=STREAM_BUCKETS,
            registry=r,
        )
        self.stream_total = Histogram(
            "latcli_gateway_stream_total_seconds",
            "Streamed routes: from the request sent to the agent that answered to its last event.",
            LABELS,
            buckets=STREAM_BUCKETS,
            registry=r,
        )
        # Zero series from the start: an alert on rate(shed) needs the series before the first shed.
        for limit in ("max_in_flight", "max_connections"):
            self.shed.labels(limit)
        for agent in agents:
            for outcome in ZERO_OUTCOMES:
                self.attempts.labels(agent.id, agent.type, outcome)
        self._counts: dict[tuple[str, int], Counter] = {}
        self._timings: dict[str, Histogram] = {}
        self._outcomes: dict[tuple[str, str, str], Counter] = {}
        self._phases: dict[tuple[str, str], tuple[Histogram, Histogram]] = {}

    def observe(self, type_: str, code: int, seconds: float) -> None:
        # The labelled children, looked up once: labels() takes a lock and builds a key each call.
        count = self._counts.get((type_, code))
        if count is None:
            count = self._counts[type_, code] = self.requests.labels(type_, str(code))
        timing = self._timings.get(type_)
        if timing is None:
            timing = self._timings[type_] = self.latency.labels(type_)
        count.inc()
        timing.observe(seconds)

    def attempted(self, type_: str, result: RouteResult) -> None:
        """One count per attempt of a routed request, by its agent and outcome."""
        for a in result.attempts:
            key = (a.agent, type_, a.outcome)
            count = self._outcomes.get(key)
            if count is None:
                count = self._outcomes[key] = self.attempts.labels(*key)
            count.inc()

    def streamed(self, type_: str, result: RouteResult, seconds: float) -> None:
        """A streamed route's count and time, its attempts, and the answering agent's phases."""
        self.observe(type_, 200 if result.ok else 503, seconds)
        self.attempted(type_, result)
        if not result.ok or result.agent is None or not result.attempts:
            return
        phases = result.stream
        whole = result.attempts[-1].latency_ms  # the answer's own attempt
        first = whole if phases is None else phases.first_artifact_ms
        total = whole if phases is None or phases.total_ms is None else phases.total_ms
        key = (result.agent, type_)
        pair = self._phases.get(key)
        if pair is None:
            pair = self._phases[key] = (
                self.first_artifact.labels(*key),
                self.stream_total.labels(*key),
            )
        if first is not None:
            pair[0].observe(first / 1000.0)
        pair[1].observe(total / 1000.0)

    def limit_hit(self, name: str) -> None:
        """One count per refusal of the protocol (:mod:`latcli.engines.serve.limits`)."""
        if name == "max_connections":
            self.shed.labels(name).inc()
        else:
            self.refused.labels(name).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.watch.registry)


__all__ = ["GatewayMetrics"]
