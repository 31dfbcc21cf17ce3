"""``latcli watch``: the engine over real demo agents, JSON lines, events, webhook, Prometheus.

No network is mocked: agents are the session's demo fleet (tests/conftest.py), dead agents are
free loopback ports nobody listens on, the webhook receiver and the scrape are real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sqlite3
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cli_run import spawn
from prom_samples import metric_value
from prometheus_client.parser import text_string_to_metric_families
from webhook_receiver import _Receiver

from latcli.cli.app import main
from latcli.config.loading import load_inventory
from latcli.config.model import Agent, HealthConfig, Inventory
from latcli.core.breaker import BreakerConfig, BreakerState
from latcli.core.sla import parse_threshold
from latcli.demo.control import set_fault
from latcli.demo.fleet import free_port
from latcli.engines.watch.check_window import CheckWindow
from latcli.engines.watch.health import FALL, RISE, RiseFall, agent_state
from latcli.engines.watch.loop import Watch
from latcli.engines.watch.run import WatchOptions, run_watch, unhealthy
from latcli.reports.watch import SCHEMA, WatchSnapshot, watch_json
from latcli.routing.state import NullStore

pytestmark = pytest.mark.timeout(60)

REQUIRED_AGENT_KEYS = {
    "id",
    "type",
    "state",
    "ewma_ms",
    "p50_ms",
    "p99_ms",
    "success_rate",
    "breaker",
    "in_flight",
}


def _dead_agent(agent_id: str = "ghost-1", type_: str = "ghost", **change: Any) -> Agent:
    """An agent on a loopback port nobody listens on: every check is a refused connect."""
    health = HealthConfig(interval=0.1, timeout=0.5)
    breaker = BreakerConfig(failures=3, window=5.0, min_calls=100, open_for=30.0)
    agent = Agent(agent_id, type_, f"http://127.0.0.1:{free_port()}", health=health)
    return replace(agent, **{"breaker": breaker, **change})


def _inventory(agents: list[Agent], sla: dict[str, str] | None = None) -> Inventory:
    return Inventory(None, tuple(agents), sla=sla or {})


def _run(
    inv: Inventory,
    opts: WatchOptions,
    agents: list[Agent] | None = None,
) -> list[WatchSnapshot]:
    """Run a whole watch; every snapshot the renderer was handed."""
    seen: list[WatchSnapshot] = []
    chosen = list(agents if agents is not None else inv.agents)
    asyncio.run(run_watch(inv, chosen, opts, seen.append, lambda _: None))
    return seen


def _opts(**kw: Any) -> WatchOptions:
    return WatchOptions(**{"interval": 0.1, "no_state": True, **kw})


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ([True], [True]),  # the first check decides at once
        ([False], [False]),
        ([True, False, False], [True, True, True]),  # FALL - 1 failures: still up
        ([True] + [False] * FALL, [True] + [True] * (FALL - 1) + [False]),
        ([True, False, True, False, False], [True] * 5),  # a success resets the run
        ([False] * 2 + [True] * RISE, [False] * (1 + RISE) + [True]),
        ([False, True, False, True], [False] * 4),  # flapping never comes up
    ],
)
def test_rise_fall_is_haproxy_hysteresis(checks: list[bool], expected: list[bool]) -> None:
    health = RiseFall()
    assert [health.record(ok) for ok in checks] == expected


def test_an_agents_own_rise_and_fall_decide_its_state() -> None:
    # health.rise / health.fall from the inventory: fall 1 is down at the first bad check.
    from latcli.core.errors import ErrorKind
    from latcli.transport.base import Timings
    from latcli.transport.replies import Reply

    now = [100.0]
    quick = replace(
        _dead_agent("q-1", "q"), health=HealthConfig("/health", 0.1, 0.5, rise=3, fall=1)
    )
    watch = Watch(
        [quick], interval=1.0, clock=lambda: now[0], rng=random.Random(1), store=NullStore()
    )
    t = watch._tracked[0]
    assert (t.health.rise, t.health.fall) == (3, 1)
    ok, refused = Reply(200, Timings(total=5.0)), Reply(None, Timings(), error=ErrorKind.CONNECT)
    watch.record(t, ok)
    assert watch.tick().agents[0].state == "healthy"
    now[0] += 1
    watch.record(t, refused)  # fall 1: down at once, where the default (3) would wait
    assert watch.tick().agents[0].state == "down"
    for n in range(3):  # rise 3: up again only after the third good check
        now[0] += 1
        watch.record(t, ok)
        assert (watch.tick().agents[0].state == "down") == (n < 2)


@pytest.mark.parametrize(
    ("up", "breaker", "sla_ok", "success", "state"),
    [
        (None, BreakerState.CLOSED, True, None, "down"),
        (False, BreakerState.CLOSED, True, 1.0, "down"),
        (True, BreakerState.CLOSED, True, 1.0, "healthy"),
        (True, BreakerState.CLOSED, True, None, "healthy"),
        (True, BreakerState.HALF_OPEN, True, 1.0, "degraded"),
        (True, BreakerState.OPEN, True, 1.0, "degraded"),
        (True, BreakerState.CLOSED, False, 1.0, "degraded"),
        (True, BreakerState.CLOSED, True, 0.95, "degraded"),
    ],
)
def test_agent_state(
    up: bool | None, breaker: BreakerState, sla_ok: bool, success: float | None, state: str
) -> None:
    assert agent_state(up, breaker, sla_ok, success) == state


def test_check_window_slides_and_judges_latency_on_successes_only() -> None:
    window = CheckWindow(span=10.0)
    for i, (ms, ok) in enumerate([(50.0, True), (0.2, False), (10.0, True), (30.0, True)]):
        window.add(float(i), ms, ok)
    s = window.summary(3.0)
    assert (s.requests, s.errors, s.ok_ms) == (4, 1, [10.0, 30.0, 50.0])
    assert s.percentile(50) == 30.0 and s.percentile(99) == 50.0
    assert s.success_rate == 0.75
    s = window.summary(11.5)  # the first two left the window
    assert (s.requests, s.errors, s.ok_ms) == (2, 0, [10.0, 30.0])
    assert list(window.recent) == [50.0, 0.2, 10.0, 30.0]  # the sparkline keeps them all


def test_tick_events_and_snapshot_on_an_injected_clock() -> None:
    """Drive record() and tick() by hand: state, SLA and breaker events are diffs."""
    from latcli.core.errors import ErrorKind
    from latcli.transport.base import Timings
    from latcli.transport.replies import Reply

    now = [100.0]
    agent = _dead_agent("a-1", "a")
    health = parse_threshold("p99 < 100ms", "health")
    watch = Watch(
        [agent],
        interval=1.0,
        thresholds=[health],
        clock=lambda: now[0],
        wall=lambda: 1_700_000_000.0 + now[0],
        rng=random.Random(1),
        store=NullStore(),
    )
    t = watch._tracked[0]
    ok = Reply(200, Timings(total=20.0))
    slow = Reply(200, Timings(total=300.0))
    refused = Reply(None, Timings(total=0.3), error=ErrorKind.CONNECT)

    first = watch.tick()
    assert first.agents[0].state == "down" and first.agents[0].checks == 0 and not first.events

    watch.record(t, ok)
    snap = watch.tick()
    assert snap.agents[0].state == "healthy" and not snap.events  # healthy at first: no news

    now[0] += 1
    watch.record(t, slow)
    state, breach = watch.tick().events
    assert (state.kind, state.before, state.after) == ("state", "healthy", "degraded")
    assert breach.kind == "sla_breach" and "p99 < 100ms" in breach.message
    assert breach.message == "a-1 SLA health breached: p99 < 100ms (observed 300 ms)"
    again = watch.tick()
    assert again.agents[0].state == "degraded" and not again.events

    # failures through the router itself, so the breaker (failures: 3) trips and says so
    replica = watch.router.replica("a-1")
    for _ in range(FALL):
        now[0] += 1
        permit = replica.breaker.allow(now[0])
        watch.router._recorder.record(replica, permit, refused, message=False)
        watch.record(t, refused)
    snap = watch.tick()
    kinds = [(e.kind, e.before, e.after) for e in snap.events]
    assert ("breaker", "closed", "open") in kinds and ("state", "degraded", "down") in kinds
    assert snap.agents[0].last_error == "connect"
    assert snap.recent_events[-len(snap.events) :] == snap.events
    doc = json.loads(watch_json(snap))
    assert doc["schema"] == SCHEMA and doc["agents"][0]["state"] == "down"


@pytest.mark.timeout(30)
def test_watch_over_the_demo_fleet(demo_fleet: Any) -> None:
    inv = load_inventory(demo_fleet.inventory_path, {})
    weather = [a for a in inv.agents if a.type in ("weather", "calendar")]
    snaps = _run(inv, _opts(interval=0.2, count=3), weather)
    assert [s.tick for s in snaps] == [1, 2, 3]
    last = snaps[-1]
    assert [a.id for a in last.agents] == ["weather-1", "weather-2", "calendar-1", "calendar-2"]
    for row in last.agents:
        assert row.checks >= 2 and row.breaker == "closed" and row.last_error is None
        assert row.ewma_ms is not None and row.p50_ms is not None and row.success_rate == 1.0
        assert [s.name for s in row.sla] == ["health", "availability", "error_rate"]
        assert len(row.recent_ms) == row.checks
    assert last.picks["weather"] in ("weather-1", "weather-2")
    assert last.picks["calendar"] in ("calendar-1", "calendar-2")
    assert last.strategy == "p2c" and last.interval_s == 0.2
    assert all(0 <= s.lag_ms < 100 for s in snaps)


@pytest.mark.timeout(30)
def test_a_dead_agent_goes_down_and_its_breaker_opens() -> None:
    ghost = _dead_agent()
    snaps = _run(_inventory([ghost], {"health": "p99 < 100ms"}), _opts(count=8))
    last = snaps[-1].agents[0]
    assert last.state == "down" and last.last_error == "connect" and last.success_rate == 0.0
    assert last.breaker == "open" and last.retry_in_s is not None and last.retry_in_s > 20
    assert snaps[-1].picks == {"ghost": None}
    events = [e for s in snaps for e in s.events]
    kinds = [(e.kind, e.before, e.after) for e in events]
    assert kinds.count(("state", None, "down")) == 1  # reported once, at its first verdict
    assert ("breaker", "closed", "open") in kinds
    assert ("sla_breach", None, "breach") in kinds  # no data is no proof
    assert unhealthy(snaps[-1])


@pytest.mark.timeout(30)
def test_a_fault_is_visible_within_two_intervals(demo_fleet: Any) -> None:
    """`latcli demo fault weather-1 --down` while a watch runs: degraded, then down."""
    inv = load_inventory(demo_fleet.inventory_path, {})
    agents = [a for a in inv.agents if a.id == "weather-1"]
    seen: list[WatchSnapshot] = []
    stack = contextlib.ExitStack()

    def render(snap: WatchSnapshot) -> None:
        seen.append(snap)
        if snap.tick == 2:
            assert snap.agents[0].state == "healthy"
            # faulted() runs its own event loop: from a thread, as `latcli demo fault` would
            with ThreadPoolExecutor(1) as pool:
                pool.submit(
                    stack.enter_context, demo_fleet.faulted("weather-1", down=True)
                ).result()

    with stack:
        asyncio.run(run_watch(inv, agents, _opts(interval=0.25, count=8), render, print))
    states = [s.agents[0].state for s in seen]
    assert states[2:4] != ["healthy", "healthy"], states  # within two ticks of the fault
    assert states[-1] == "down"
    assert seen[-1].agents[0].last_error == "http_5xx"


@pytest.mark.timeout(30)
def test_cli_prints_one_json_object_per_tick(
    demo_fleet: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = str(demo_fleet.inventory_path)
    events = tmp_path / "events.jsonl"
    argv = ["watch", "weather", "-i", inv, "--interval", "150ms", "--count", "3"]
    code = main([*argv, "--events", str(events), "--no-state"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert len(out) == 3
    docs = [json.loads(line) for line in out]
    for tick, doc in enumerate(docs, 1):
        assert doc["schema"] == "latcli.watch/v1" and doc["tick"] == tick
        assert isinstance(doc["t"], float) and isinstance(doc["lag_ms"], float)
        assert doc["picks"].keys() == {"weather"}
        assert isinstance(doc["events"], list)
        for agent in doc["agents"]:
            assert agent.keys() >= REQUIRED_AGENT_KEYS
            assert agent["state"] in ("healthy", "degraded", "down")
            assert agent["breaker"] in ("closed", "open", "half_open")
    assert [a["id"] for a in docs[-1]["agents"]] == ["weather-1", "weather-2"]
    assert events.read_text() == ""  # two healthy agents: nothing happened


@pytest.mark.timeout(30)
def test_cli_events_file_and_exit_1_for_a_dead_agent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"kept": true}\n')  # appended to, never truncated
    url = f"http://127.0.0.1:{free_port()}"
    argv = ["watch", url, "--interval", "100ms", "--count", "4", "--no-state", "--json"]
    assert main([*argv, "--events", str(events), "-i", str(tmp_path / "none.yaml")]) == 2
    code = main([*argv, "--events", str(events)])
    captured = capsys.readouterr()
    assert code == 1
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines[0] == {"kept": True}
    first = lines[1]
    assert first.keys() == {"t", "kind", "agent", "message", "before", "after"}
    assert (first["kind"], first["after"]) == ("state", "down") and "connect" in first["message"]
    ticks = [json.loads(line) for line in captured.out.splitlines()]
    assert sum(len(t["events"]) for t in ticks) == len(lines) - 1


def test_cli_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["watch", url, "--interval", "soon", "--no-state"]) == 2
    assert main(["watch", url, "--interval", "0s", "--no-state"]) == 2
    assert main(["watch", url, "--strategy", "best", "--no-state", "--count", "1"]) == 2
    assert main(["watch", url, "--events", str(tmp_path / "no" / "dir.jsonl"), "--no-state"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "'soon'" in err and "more than zero" in err
    assert "latcli: unknown strategy 'best'" in err or "'best'" in err
    assert "latcli: --events " in err and "dir.jsonl" in err


@pytest.mark.timeout(30)
def test_webhook_receives_the_events() -> None:
    with _Receiver() as hook:
        snaps = _run(_inventory([_dead_agent()]), _opts(count=6, webhook=hook.url))
    sent = [e.message for s in snaps for e in s.events]
    assert hook.bodies, "nothing was posted"
    posted = [e["message"] for b in hook.bodies for e in b["events"]]
    assert posted == sent  # every event, in order, drained before the watch returned
    body = hook.bodies[0]
    assert body["schema"] == "latcli.watch.alert/v1" and body["text"].startswith("ghost-1")
    assert not any(s.notes for s in snaps)


@pytest.mark.timeout(30)
def test_a_dead_webhook_is_reported_once_and_its_recovery_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from latcli.engines.watch import webhook as webhook_mod

    monkeypatch.setattr(webhook_mod, "WEBHOOK_BACKOFF", 0.01)
    # fails the first payload's three attempts, then answers: unreachable once, then back
    with _Receiver(fail_first=webhook_mod.WEBHOOK_ATTEMPTS) as hook:
        agents = [_dead_agent(f"ghost-{i}", breaker=BreakerConfig(failures=2)) for i in range(3)]
        snaps = _run(_inventory(agents), _opts(count=10, webhook=hook.url))
    notes = [e for s in snaps for e in s.events if e.kind == "webhook"]
    assert len(notes) == 2, [e.message for e in notes]
    assert "unreachable" in notes[0].message and "HTTP 500" in notes[0].message
    assert "reachable again" in notes[1].message
    assert any(s.notes for s in snaps) and not snaps[-1].notes


@pytest.mark.timeout(30)
def test_a_webhook_nobody_listens_on_never_slows_the_ticks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from latcli.engines.watch import webhook as webhook_mod

    monkeypatch.setattr(webhook_mod, "WEBHOOK_BACKOFF", 0.05)
    dead = f"http://127.0.0.1:{free_port()}/hook"
    agents = [_dead_agent(f"ghost-{i}") for i in range(4)]
    started = time.monotonic()
    snaps = _run(_inventory(agents), _opts(count=6, webhook=dead))
    assert time.monotonic() - started < 6 * 0.1 + 3.0  # + the 2 s drain grace at most
    notes = [e for s in snaps for e in s.events if e.kind == "webhook"]
    assert len(notes) == 1 and "unreachable (connect)" in notes[0].message
    assert all(s.lag_ms < 50 for s in snaps)
    assert snaps[-1].notes == (notes[0].message,)


@pytest.mark.timeout(30)
def test_prometheus_scrape_parses_with_prometheus_client(demo_fleet: Any) -> None:
    inv = load_inventory(demo_fleet.inventory_path, {})
    agents = [a for a in inv.agents if a.type == "weather"] + [_dead_agent()]
    scraped: list[str] = []
    port = free_port()

    def render(snap: WatchSnapshot) -> None:
        if snap.tick == 4:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                scraped.append(r.read().decode())

    asyncio.run(run_watch(inv, agents, _opts(count=4, metrics_port=port), render, print))

    families = {f.name: f for f in text_string_to_metric_families(scraped[0])}

    def value(family: str, agent: str, suffix: str = "", **labels: str) -> float:
        return metric_value(scraped[0], family, agent, suffix, **labels)

    assert value("latcli_agent_up", "weather-1") == 1
    assert value("latcli_agent_up", "ghost-1") == 0
    assert value("latcli_agent_state", "ghost-1", state="down") == 1
    assert value("latcli_agent_breaker_state", "weather-1") == 0
    assert value("latcli_agent_success_ratio", "weather-2") == 1.0
    assert value("latcli_agent_sla_breached", "ghost-1") == 1
    assert 0 < value("latcli_agent_ewma_seconds", "weather-1") < 1
    assert value("latcli_health_check_duration_seconds", "weather-1", "_count") >= 3
    assert value("latcli_health_checks", "ghost-1", "_total", outcome="connect") >= 3
    sample = next(s for s in families["latcli_agent_up"].samples)
    assert sample.labels.keys() == {"agent", "type"}
    # the server is gone with the watch
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def _state_rows(path: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT key, stats FROM agents").fetchall())


@pytest.mark.timeout(40)
def test_ctrl_c_saves_state_flushes_events_and_exits_130(tmp_path: Path) -> None:
    state, events = tmp_path / "state.db", tmp_path / "events.jsonl"
    url = f"http://127.0.0.1:{free_port()}"
    args = ["watch", url, "--interval", "100ms", "--state", str(state), "--events", str(events)]
    proc = spawn(*args, env={"PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        for _ in range(3):  # three ticks, then Ctrl-C
            assert json.loads(proc.stdout.readline())["schema"] == SCHEMA
        rows_while_running = _state_rows(state)  # saved every tick, for a send elsewhere
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    (key,) = rows_while_running
    assert key.endswith(f"@{url}")
    stats = json.loads(next(iter(_state_rows(state).values())))
    assert stats["ewma"]["has_history"] is True
    assert json.loads(events.read_text().splitlines()[0])["after"] == "down"


def _demo_inventory(path: Path, ports: list[int]) -> Path:
    lines = ["version: 1", "agents:"]
    for i, port in enumerate(ports, 1):
        url = f"http://127.0.0.1:{port}"
        lines.append(f'  - {{id: w{i}, type: weather, url: "{url}", demo: {{latency: 5ms}}}}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.timeout(40)
def test_demo_fault_shows_in_the_demo_watch_within_two_ticks(tmp_path: Path) -> None:
    inv = _demo_inventory(tmp_path / "agents.yaml", [free_port(), free_port()])
    proc = spawn(
        "demo", "-i", str(inv), "--interval", "300ms",
        env={"COLUMNS": "120", "LATCLI_STATE": str(tmp_path / "s")},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        tick, w1 = 0, ""
        faulted_at = None
        for line in proc.stdout:
            if "latcli watch · every 300 ms" in line:
                tick = int(line.split("tick ")[1].split()[0])
            elif line.startswith("w1 ") and tick:
                w1 = line.split()[2]
                if faulted_at is None and tick >= 2:
                    assert w1 == "healthy", line
                    # what `latcli demo fault w1 --down` does, minus a process start
                    url = load_inventory(inv, {}).agents[0].url
                    asyncio.run(set_fault(url, latency=None, errors=None, down=True))
                    faulted_at = tick
                elif faulted_at is not None and w1 != "healthy":
                    break
                elif faulted_at is not None:
                    assert tick < faulted_at + 3, f"w1 still healthy at tick {tick}"
        assert faulted_at is not None and w1 in ("degraded", "down"), w1
        assert tick <= faulted_at + 2
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 130 and "stopping 2 agents" in err and "Traceback" not in err
