"""Prometheus metrics for ``latcli watch --metrics-port`` (prometheus_client).

A dedicated :class:`CollectorRegistry` (not the process-global one, so several watches in one
process, e.g. tests, never collide), served by prometheus_client's own HTTP server on
127.0.0.1. Seconds and ratios, as Prometheus' naming conventions ask; every per-agent series
carries ``agent`` and ``type`` labels.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from latcli.config.model import Agent
from latcli.reports.watch import CanaryStatus, WatchSnapshot
from latcli.transport.replies import Reply

# Health checks on loopback take ~1 ms, across a WAN 50-500 ms; a timeout is 1 s by default.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Canaries are real messages: an LLM's first token takes 0.1-2 s, its whole answer seconds.
CANARY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BREAKER_CODES = {"closed": 0, "half_open": 1, "open": 2}
LABELS = ("agent", "type")


class WatchMetrics:
    """The metric families; ``observe_check`` per check, ``update`` per tick."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = Histogram(
            "latcli_health_check_duration_seconds",
            "Latency of successful health checks.",
            LABELS,
            buckets=BUCKETS,
            registry=r,
        )
        self.checks = Counter(
            "latcli_health_checks",
            "Health checks by outcome (ok or an error kind).",
            (*LABELS, "outcome"),
            registry=r,
        )
        self.ewma = Gauge(
            "latcli_agent_ewma_seconds",
            "Peak EWMA latency the router ranks on.",
            LABELS,
            registry=r,
        )
        self.up = Gauge(
            "latcli_agent_up", "1 when the agent is up (rise/fall), else 0.", LABELS, registry=r
        )
        self.state = Gauge(
            "latcli_agent_state",
            "1 for the agent's current state (healthy, degraded, down), 0 for the others.",
            (*LABELS, "state"),
            registry=r,
        )
        self.success = Gauge(
            "latcli_agent_success_ratio",
            "Share of successful checks in the sliding window.",
            LABELS,
            registry=r,
        )
        self.breaker = Gauge(
            "latcli_agent_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            LABELS,
            registry=r,
        )
        self.cooling = Gauge(
            "latcli_agent_cooling_seconds",
            "Seconds left of a rate limit's cooldown (429/503 + Retry-After); 0: not cooling.",
            LABELS,
            registry=r,
        )
        self.sla_breached = Gauge(
            "latcli_agent_sla_breached",
            "1 while any SLA threshold fails over the sliding window.",
            LABELS,
            registry=r,
        )
        self.canary_first = Histogram(
            "latcli_canary_first_artifact_seconds",
            "Time to first token of passing canary messages (streamed answers).",
            LABELS,
            buckets=CANARY_BUCKETS,
            registry=r,
        )
        self.canary_total = Histogram(
            "latcli_canary_total_seconds",
            "Whole answer time of passing canary messages.",
            LABELS,
            buckets=CANARY_BUCKETS,
            registry=r,
        )
        self.canaries = Counter(
            "latcli_canary_checks",
            "Canary messages by outcome (ok or an error kind).",
            (*LABELS, "outcome"),
            registry=r,
        )
        self.canary_ok = Gauge(
            "latcli_canary_ok", "1 when the latest canary passed, else 0.", LABELS, registry=r
        )
        self.lag = Gauge(
            "latcli_watch_tick_lag_seconds", "How late the latest tick ran.", registry=r
        )
        self.ticks = Counter("latcli_watch_ticks", "Ticks made.", registry=r)
        self._server: WSGIServer | None = None
        self._hist: dict[str, Histogram] = {}

    def observe_check(self, agent: Agent, reply: Reply) -> None:
        labels = (agent.id, agent.type)
        outcome = "ok" if reply.ok else (reply.error.value if reply.error else "bad_response")
        self.checks.labels(*labels, outcome).inc()
        if reply.ok:
            child = self._hist.get(agent.id)
            if child is None:
                child = self._hist[agent.id] = self.latency.labels(*labels)
            child.observe(reply.latency_ms / 1000.0)

    def observe_canary(self, agent: Agent, status: CanaryStatus) -> None:
        labels = (agent.id, agent.type)
        self.canaries.labels(*labels, "ok" if status.ok else status.error or "bad_response").inc()
        self.canary_ok.labels(*labels).set(1 if status.ok else 0)
        if status.ok:
            self.canary_total.labels(*labels).observe(status.total_ms / 1000.0)
            if status.first_artifact_ms is not None:
                self.canary_first.labels(*labels).observe(status.first_artifact_ms / 1000.0)

    def update(self, snapshot: WatchSnapshot) -> None:
        self.lag.set(snapshot.lag_ms / 1000.0)
        self.ticks.inc()
        for a in snapshot.agents:
            labels = (a.id, a.type)
            if a.ewma_ms is not None:
                self.ewma.labels(*labels).set(a.ewma_ms / 1000.0)
            if a.success_rate is not None:
                self.success.labels(*labels).set(a.success_rate)
            self.up.labels(*labels).set(0 if a.state == "down" else 1)
            for state in ("healthy", "degraded", "down"):
                self.state.labels(*labels, state).set(1 if a.state == state else 0)
            self.breaker.labels(*labels).set(BREAKER_CODES[a.breaker])
            self.cooling.labels(*labels).set(a.cooling_s or 0.0)
            self.sla_breached.labels(*labels).set(1 if a.sla_breached else 0)

    def serve(self, port: int) -> int:
        """Serve ``/metrics`` on 127.0.0.1:``port`` (0: any free port); the port bound."""
        from latcli.core.errors import LatcliError

        try:
            server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        except OSError as exc:
            raise LatcliError(f"--metrics-port {port}: {exc.strerror or exc}") from None
        self._server = server
        return int(server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
