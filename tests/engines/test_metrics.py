"""latcli/engines/watch/metrics.py: what ``watch --metrics-port`` exposes, scraped over real HTTP
and parsed
with prometheus_client's own text parser (the format Prometheus reads), value by value."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from latcli.config.model import Agent
from latcli.core.errors import ErrorKind, LatcliError
from latcli.engines.watch.metrics import WatchMetrics
from latcli.reports.watch import AgentRow, WatchSnapshot
from latcli.transport.base import Timings
from latcli.transport.replies import Reply

FAST = Agent(id="weather-1", type="weather", url="http://127.0.0.1:1")
DOWN = Agent(id="weather-2", type="weather", url="http://127.0.0.1:2")


def _row(agent: Agent, **kw: object) -> AgentRow:
    base: dict[str, object] = dict(
        id=agent.id, type=agent.type, url=agent.url, protocol="http", state="healthy",
        ewma_ms=None, p50_ms=None, p99_ms=None, success_rate=None, breaker="closed",
        retry_in_s=None, in_flight=0, last_error=None, checks=1,
    )  # fmt: skip
    base.update(kw)
    return AgentRow(**base)  # type: ignore[arg-type]


def _snapshot(*rows: AgentRow, lag_ms: float = 0.0) -> WatchSnapshot:
    return WatchSnapshot(
        at=0.0, tick=1, inventory="agents.yaml", interval_s=2.0, strategy="p2c",
        agents=rows, lag_ms=lag_ms,
    )  # fmt: skip


@pytest.fixture
def scraped() -> Iterator[tuple[WatchMetrics, int]]:
    metrics = WatchMetrics()
    port = metrics.serve(0)
    try:
        yield metrics, port
    finally:
        metrics.stop()


def _samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _at(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples[(name, tuple(sorted(labels.items())))]


def test_checks_count_by_outcome_and_time_only_the_successful(
    scraped: tuple[WatchMetrics, int],
) -> None:
    metrics, port = scraped
    for ms in (1.0, 3.0, 40.0):
        metrics.observe_check(FAST, Reply(status=200, timings=Timings(total=ms)))
    metrics.observe_check(FAST, Reply(status=None, timings=Timings(total=900.0),
                                      error=ErrorKind.TIMEOUT))  # fmt: skip
    samples = _samples(port)
    who = {"agent": "weather-1", "type": "weather"}
    assert _at(samples, "latcli_health_checks_total", outcome="ok", **who) == 3
    assert _at(samples, "latcli_health_checks_total", outcome="timeout", **who) == 1
    assert _at(samples, "latcli_health_check_duration_seconds_count", **who) == 3
    assert _at(samples, "latcli_health_check_duration_seconds_sum", **who) == pytest.approx(0.044)
    # buckets are seconds: 1 ms and 3 ms are under 5 ms, the 40 ms one is not
    assert _at(samples, "latcli_health_check_duration_seconds_bucket", le="0.005", **who) == 2
    assert _at(samples, "latcli_health_check_duration_seconds_bucket", le="0.05", **who) == 3


def test_a_tick_sets_every_gauge_in_base_units(scraped: tuple[WatchMetrics, int]) -> None:
    metrics, port = scraped
    metrics.update(
        _snapshot(
            _row(FAST, ewma_ms=12.5, success_rate=0.98, cooling_s=7.0),
            _row(DOWN, state="down", breaker="open", retry_in_s=3.0, success_rate=0.0),
            lag_ms=4.0,
        )
    )
    samples = _samples(port)
    fast = {"agent": "weather-1", "type": "weather"}
    down = {"agent": "weather-2", "type": "weather"}
    assert _at(samples, "latcli_agent_ewma_seconds", **fast) == pytest.approx(0.0125)
    assert _at(samples, "latcli_agent_success_ratio", **fast) == pytest.approx(0.98)
    assert _at(samples, "latcli_agent_cooling_seconds", **fast) == 7.0
    assert _at(samples, "latcli_agent_cooling_seconds", **down) == 0.0
    assert (_at(samples, "latcli_agent_up", **fast), _at(samples, "latcli_agent_up", **down)) == (
        1.0,
        0.0,
    )
    assert _at(samples, "latcli_agent_breaker_state", **down) == 2.0  # 0 closed, 1 half, 2 open
    states = {s: _at(samples, "latcli_agent_state", state=s, **down) for s in
              ("healthy", "degraded", "down")}  # fmt: skip
    assert states == {"healthy": 0.0, "degraded": 0.0, "down": 1.0}  # one-hot
    assert ("latcli_agent_ewma_seconds", tuple(sorted(down.items()))) not in samples  # no data
    assert _at(samples, "latcli_watch_tick_lag_seconds") == pytest.approx(0.004)
    assert _at(samples, "latcli_watch_ticks_total") == 1.0


def test_state_moves_are_seen_on_the_next_tick(scraped: tuple[WatchMetrics, int]) -> None:
    metrics, port = scraped
    metrics.update(_snapshot(_row(FAST, state="degraded", breaker="half_open")))
    metrics.update(_snapshot(_row(FAST)))
    samples = _samples(port)
    fast = {"agent": "weather-1", "type": "weather"}
    assert _at(samples, "latcli_agent_state", state="degraded", **fast) == 0.0
    assert _at(samples, "latcli_agent_state", state="healthy", **fast) == 1.0
    assert _at(samples, "latcli_agent_breaker_state", **fast) == 0.0
    assert _at(samples, "latcli_watch_ticks_total") == 2.0


def test_two_watches_in_one_process_do_not_share_series() -> None:
    a, b = WatchMetrics(), WatchMetrics()
    a.observe_check(FAST, Reply(status=200, timings=Timings(total=1.0)))
    names = {s.name for f in b.registry.collect() for s in f.samples}
    assert "latcli_health_checks_total" not in names


def test_a_taken_port_is_one_line_naming_the_option() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LatcliError, match=rf"^--metrics-port {port}: .*in use"):
            WatchMetrics().serve(port)
