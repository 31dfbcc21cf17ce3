"""Canary messages in ``latcli watch`` (issue 12 item 5): inventory, verdicts, engine, outputs.

The verdict and the window are sans-I/O and driven by hand; the watch runs against real
a2a-sdk 1.3.0 agents (tests/support/a2a_sdk_agents.py) on loopback: one that streams its answer, one
whose task fails. Nothing on the network is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from a2a_sdk_agents import RunningAgent, run_sdk_agent
from inventory_files import problems, write
from prom_samples import metric_value
from rich.console import Console
from webhook_receiver import _Receiver

from latcli.cli.app import main
from latcli.config.loading import load_inventory
from latcli.config.model import Agent, CanaryConfig, HealthConfig
from latcli.core.breaker import BreakerConfig
from latcli.core.errors import ErrorKind
from latcli.core.sla import canary_thresholds, evaluate
from latcli.demo.fleet import free_port
from latcli.engines.watch.canary import CanaryWindow, judge, phases_of
from latcli.engines.watch.loop import Watch
from latcli.engines.watch.run import WatchOptions, run_watch
from latcli.render.watch_view import watch_renderable
from latcli.reports.watch import WatchSnapshot, watch_dict
from latcli.routing.router import Router
from latcli.routing.state import NullStore
from latcli.transport.a2a.stream import StreamPhases
from latcli.transport.base import Timings
from latcli.transport.factory import make_transport
from latcli.transport.replies import Reply

pytestmark = pytest.mark.timeout(60)

HEAD = "version: 1\n"
URL = "http://127.0.0.1:8001"


def agent_with(canary: str) -> str:
    return f'agents:\n  - {{id: a-1, type: t, url: "{URL}", health: {{canary: {canary}}}}}\n'


# -- inventory: health.canary and sla.canary ------------------------------------------------

# (name, file text, expected problem lines): each line names the file, the line and the key.
BAD = [
    (
        "bad regex",
        HEAD + agent_with('{expect: "(unclosed"}'),
        [
            "agents.yaml:3 agents[0].health.canary.expect: not a regular expression:"
            " missing ), unterminated subpattern at position 0"
        ],
    ),
    (
        "every zero",
        HEAD + agent_with("{every: 0s}"),
        ["agents.yaml:3 agents[0].health.canary.every: must be greater than 0"],
    ),
    (
        "every not a duration",
        HEAD + agent_with("{every: soon}"),
        ["agents.yaml:3 agents[0].health.canary.every: not a duration (try 250ms, 5s, 1m): 'soon'"],
    ),
    (
        "bad timeout",
        HEAD + agent_with("{timeout: 0}"),
        ["agents.yaml:3 agents[0].health.canary.timeout: must be greater than 0"],
    ),
    (
        "empty message",
        HEAD + agent_with('{message: ""}'),
        ["agents.yaml:3 agents[0].health.canary.message: expected a string of length >= 1"],
    ),
    (
        "misspelt key",
        HEAD + agent_with("{mesage: hi}"),
        ["agents.yaml:3 agents[0].health.canary.mesage: unknown key (did you mean 'message'?)"],
    ),
    (
        "not a mapping",
        HEAD + agent_with("5"),
        ["agents.yaml:3 agents[0].health.canary: expected a mapping or null, got an integer"],
    ),
    (
        "in defaults",
        HEAD + "defaults:\n  health:\n    canary: {expect: '['}\n" + agent_with("{}"),
        [
            "agents.yaml:4 defaults.health.canary.expect: not a regular expression:"
            " unterminated character set at position 0"
        ],
    ),
    (
        "sla phase misspelt",
        HEAD + "sla:\n  canary: {first_artefact: p95 < 1s}\n" + agent_with("{}"),
        ["agents.yaml:3 sla.canary.first_artefact: unknown key (did you mean 'first_artifact'?)"],
    ),
    (
        "sla canary is not a message key",
        HEAD + "sla:\n  canary: {message: p95 < 1s}\n" + agent_with("{}"),
        [
            "agents.yaml:3 sla.canary.message: unknown key"
            " (expected one of: first_event, first_artifact, gap, total)"
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_canary_is_one_problem_line(here: Path, text: str, expected: list[str]) -> None:
    assert problems(text) == expected


# (name, file text, {agent id: expected canary})
GOOD = [
    ("none", HEAD + "agents:\n" + f'  - {{id: a-1, type: t, url: "{URL}"}}\n', {"a-1": None}),
    ("defaults only", HEAD + agent_with("{}"), {"a-1": CanaryConfig()}),
    (
        "every key",
        HEAD + agent_with("{message: hi, every: 2s, expect: '^tok\\d', timeout: 500ms}"),
        {"a-1": CanaryConfig("hi", 2.0, re.compile(r"^tok\d"), 0.5)},
    ),
    (
        "inherited from defaults, switched off with null",
        HEAD
        + "defaults:\n  health: {interval: 1s, canary: {every: 5s}}\nagents:\n"
        + f'  - {{id: a-1, type: t, url: "{URL}"}}\n'
        + f'  - {{id: a-2, type: t, url: "{URL}", health: {{canary: null}}}}\n'
        + f'  - {{id: a-3, type: t, url: "{URL}", health: {{canary: {{message: yo}}}}}}\n',
        {"a-1": CanaryConfig(every=5.0), "a-2": None, "a-3": CanaryConfig(message="yo")},
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in GOOD], ids=[c[0] for c in GOOD])
def test_canary_config_loads(
    here: Path,
    text: str,
    expected: dict[str, CanaryConfig | None],
) -> None:
    inv = load_inventory(write(text), {})
    assert {a.id: a.health.canary for a in inv.agents} == expected


def test_sla_canary_phases_become_canary_thresholds(here: Path) -> None:
    text = (
        HEAD + "sla:\n  health: p99 < 1s\n  canary: {first_artifact: p95 < 1s, total: p90 < 5s}\n"
    )
    inv = load_inventory(write(text + agent_with("{}")), {})
    assert inv.sla == {
        "health": "p99 < 1s",
        "canary.first_artifact": "p95 < 1s",
        "canary.total": "p90 < 5s",
    }
    found = canary_thresholds(inv.sla)
    assert [(t.name, t.expr, t.phase, t.limit) for t in found] == [
        ("canary.first_artifact", "first_artifact.p95 < 1s", "first_artifact", 1000.0),
        ("canary.total", "total.p90 < 5s", "total", 5000.0),
    ]


def test_schema_describes_the_canary() -> None:
    from latcli.config.schema import inventory_json_schema

    defs = inventory_json_schema()["$defs"]
    assert isinstance(defs, dict)
    assert set(defs["CanarySection"]["properties"]) == {"message", "every", "expect", "timeout"}
    assert "canary" in defs["SlaSection"]["properties"]


def test_cli_bad_canary_regex_exits_2_with_the_line(
    here: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write(HEAD + agent_with("{expect: '*'}"))
    assert main(["watch", "-i", "agents.yaml", "--count", "1", "--json", "--no-state"]) == 2
    err = capsys.readouterr().err
    assert "agents.yaml:3 agents[0].health.canary.expect: not a regular expression" in err
    assert "Traceback" not in err


# -- the verdict (sans-I/O) ---------------------------------------------------------------

PHASES = StreamPhases(5.0, 8.0, 210.0, 90.0, 600.0, 9, 5)


def reply(text: str | None = "tok0 tok1", **kw: Any) -> Reply:
    return Reply(200, Timings(total=kw.pop("total", 600.0)), text=text, **kw)


VERDICTS = [
    ("match", reply(state="completed"), r"tok\d", None, None),
    ("no expect: any answer", reply(text=None), None, None, None),
    ("plain message (no task)", reply(), "tok1", None, None),
    (
        "no match",
        reply(state="completed"),
        "pong",
        "bad_response",
        "answer does not match /pong/: 'tok0 tok1'",
    ),
    (
        "long answers are cut",
        reply(text="x" * 100),
        "y",
        "bad_response",
        "answer does not match /y/: '" + "x" * 59 + "…'",
    ),
    (
        "stopped early",
        reply(state="input-required"),
        None,
        "bad_response",
        "answer stopped at input-required",
    ),
    (
        "failed task stays failed",
        reply(None, state="failed", error=ErrorKind.TASK_FAILED, message="model overloaded"),
        "tok",
        "task_failed",
        "model overloaded",
    ),
    (
        "timeout stays",
        reply(None, error=ErrorKind.TIMEOUT, message="timed out"),
        None,
        "timeout",
        "timed out",
    ),
]


@pytest.mark.parametrize(
    ("given", "expect", "kind", "message"), [v[1:] for v in VERDICTS], ids=[v[0] for v in VERDICTS]
)
def test_judge(given: Reply, expect: str | None, kind: str | None, message: str | None) -> None:
    config = CanaryConfig(expect=None if expect is None else re.compile(expect))
    verdict = judge(given, config)
    assert (verdict.error.value if verdict.error else None, verdict.message) == (kind, message)
    assert verdict.latency_ms == given.latency_ms  # judging never changes what was measured


def test_phases_of_a_streamed_and_a_unary_answer() -> None:
    streamed = phases_of(reply(stream=PHASES))
    assert streamed == {"first_event": 5.0, "first_artifact": 210.0, "gap": 90.0, "total": 600.0}
    assert phases_of(reply(total=42.0)) == {"total": 42.0}


def test_canary_window_judges_passing_canaries_and_slides() -> None:
    window = CanaryWindow(span=10.0)
    for at, first in ((0.0, 100.0), (1.0, 300.0), (2.0, 200.0)):
        phases = StreamPhases(1.0, 2.0, first, None, first + 400.0, 3, 2)
        window.add(at, reply(stream=phases, total=first + 400.0), True)
    window.add(3.0, reply(None, error=ErrorKind.TIMEOUT, total=5000.0), False)
    obs = window.observation(5.0)
    assert (obs.requests, obs.errors) == (4, 1)
    assert obs.phases is not None
    first_artifact = obs.phases["first_artifact"]
    assert first_artifact.samples == 3 and first_artifact.percentile(50) == 200.0
    assert first_artifact.percentile(95) == 300.0 and first_artifact.max_ms == 300.0
    assert obs.phases["gap"].samples == 0  # no gap measured: an SLA on it has no data
    assert obs.max_ms == 700.0  # the timeout's 5 s is not a latency of a working model
    later = window.observation(11.5)  # the first two are out of the window
    assert later.phases is not None and later.phases["first_artifact"].samples == 1
    (verdict,) = evaluate(canary_thresholds({"canary.first_artifact": "p95 < 250ms"}), later)
    assert verdict.passed and verdict.observed == 200.0


# -- the engine on an injected clock ---------------------------------------------------------


def _canary_agent(**canary: Any) -> Agent:
    health = HealthConfig(interval=0.1, timeout=0.5, canary=CanaryConfig(**canary))
    return Agent("a-1", "a", f"http://127.0.0.1:{free_port()}", health=health)


def test_a_failed_canary_degrades_the_agent_and_raises_events_once() -> None:
    now = [100.0]
    watch = Watch(
        [_canary_agent(every=30.0)],
        interval=1.0,
        clock=lambda: now[0],
        wall=lambda: 1_700_000_000.0 + now[0],
        rng=random.Random(1),
        store=NullStore(),
    )
    t = watch._tracked[0]
    card = Reply(200, Timings(total=2.0))
    answered = reply(state="completed", stream=PHASES)
    failed = reply(None, state="failed", error=ErrorKind.TASK_FAILED, message="model overloaded")

    watch.record(t, card)
    first = watch.tick()
    assert first.agents[0].has_canary and first.agents[0].canary is None
    assert first.agents[0].state == "healthy"

    watch.record_canary(t, answered)
    snap = watch.tick()
    row = snap.agents[0]
    assert row.canary is not None and row.canary.ok and row.canary.first_artifact_ms == 210.0
    assert row.state == "healthy" and not snap.events  # a first pass is no news
    assert row.p50_ms == 2.0 and row.recent_ms == (2.0,)  # the canary's 600 ms is not a check's

    now[0] += 1
    watch.record_canary(t, failed)
    snap = watch.tick()
    row = snap.agents[0]
    assert row.state == "degraded" and row.success_rate == 2 / 3
    assert [(e.kind, e.before, e.after, e.message) for e in snap.events] == [
        ("state", "healthy", "degraded", "a-1 healthy → degraded (canary task_failed)"),
        ("canary", "ok", "failed", "a-1 canary failed: model overloaded (task_failed)"),
    ]
    assert watch_dict(snap)["agents"][0]["canary"] == {
        "ok": False,
        "first_artifact_ms": None,
        "total_ms": 600.0,
        "at": 1_700_000_101.0,
        "error": "task_failed",
        "message": "model overloaded",
    }

    now[0] += 1
    watch.record_canary(t, failed)  # failing the same way again: no new event
    assert not watch.tick().events

    now[0] += 40  # the failures left the window; the latest canary still failed
    watch.record(t, card)
    assert watch.tick().agents[0].state == "degraded"

    watch.record_canary(t, answered)
    snap = watch.tick()
    assert snap.agents[0].state == "healthy"
    assert [(e.kind, e.message) for e in snap.events] == [
        ("state", "a-1 degraded → healthy"),
        ("canary", "a-1 canary ok again (600 ms, ttft 210 ms)"),
    ]


def test_a_rate_limited_canary_is_not_a_failed_check() -> None:
    now = [5.0]
    watch = Watch([_canary_agent()], interval=1.0, clock=lambda: now[0], store=NullStore())
    t = watch._tracked[0]
    watch.record(t, Reply(200, Timings(total=2.0)))
    watch.record_canary(t, Reply(429, Timings(total=3.0), ErrorKind.RATE_LIMITED, "HTTP 429"))
    row = watch.tick().agents[0]
    assert row.canary is not None and row.canary.error == "rate_limited"
    assert row.state == "healthy" and row.success_rate == 1.0


def test_router_canary_counts_for_the_breaker_never_for_the_ewma() -> None:
    """Two refused canaries open a `failures: 2` breaker; the EWMA has learnt nothing."""
    agent = _canary_agent()
    breaker = BreakerConfig(failures=2, window=30.0, min_calls=100, open_for=30.0)
    agent = Agent(agent.id, agent.type, agent.url, health=agent.health, breaker=breaker)

    async def go() -> tuple[list[Reply], Router]:
        async with Router([agent], state=None) as router:
            config = CanaryConfig()
            replies = [await router.canary(agent, "ping", lambda r: judge(r, config)) for _ in "12"]
            return replies, router

    replies, router = asyncio.run(go())
    assert [r.error for r in replies] == [ErrorKind.CONNECT, ErrorKind.CONNECT]
    replica = router.replica("a-1")
    assert replica.breaker.state(router._clock()).value == "open"
    assert not replica.stats.has_history and replica.stats.in_flight == 0
    assert replica.stats.success.failures(router._clock()) == 2


# -- the engine against real a2a-sdk agents ---------------------------------------------------


@pytest.fixture(scope="module")
def sdk() -> Iterator[dict[str, RunningAgent]]:
    """A streaming agent (first token after 150 ms, five chunks 60 ms apart) and a failing one."""
    with contextlib.ExitStack() as stack:
        yield {
            "stream": stack.enter_context(
                run_sdk_agent("stream", "--think-ms", "150", "--gap-ms", "60")
            ),
            "fail": stack.enter_context(run_sdk_agent("fail", "--think-ms", "20")),
        }


def _sdk_inventory(tmp: Path, sdk: dict[str, RunningAgent]) -> Path:
    stream, fail = sdk["stream"].url, sdk["fail"].url
    canary = "message: ping, every: 300ms"
    ok = f'{canary}, expect: "^tok0 tok1"'
    text = f"""version: 1
defaults:
  protocol: a2a
  timeout: 5s
  health: {{interval: 200ms, timeout: 3s}}  # a loaded machine: no check may time out
sla:
  canary: {{first_artifact: p95 < 1ms, total: p95 < 30s}}
agents:
  - {{id: sdk-ok, type: llm, url: "{stream}", health: {{canary: {{{ok}}}}}}}
  - {{id: sdk-mismatch, type: llm, url: "{stream}", health: {{canary: {{{canary}, expect: pong}}}}}}
  - {{id: sdk-slow, type: llm, url: "{stream}", health: {{canary: {{{canary}, timeout: 80ms}}}}}}
  - {{id: sdk-fail, type: llm, url: "{fail}", health: {{canary: {{{canary}}}}}}}
  - {{id: sdk-plain, type: plain, url: "{stream}"}}
"""
    path = tmp / "agents.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize("engine", ["httpx", "raw"])
def test_canaries_against_real_sdk_agents(
    sdk: dict[str, RunningAgent], tmp_path: Path, engine: Any
) -> None:
    inv = load_inventory(_sdk_inventory(tmp_path, sdk), {})
    port = free_port()
    scraped: list[str] = []
    seen: list[WatchSnapshot] = []

    def sink(snap: WatchSnapshot) -> None:
        seen.append(snap)
        if snap.tick == 12:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                scraped.append(r.read().decode())

    async def go() -> None:
        transport = make_transport(engine, len(inv.agents), phases=False)
        try:
            opts = WatchOptions(count=12, no_state=True, metrics_port=port, webhook=hook.url)
            await run_watch(inv, inv.agents, opts, sink, lambda _: None, transport=transport)
        finally:
            await transport.aclose()

    with _Receiver() as hook:
        asyncio.run(go())
    last = seen[-1]
    rows = {r.id: r for r in last.agents}
    doc = {a["id"]: a for a in watch_dict(last)["agents"]}

    ok = rows["sdk-ok"]
    assert ok.canary is not None and ok.canary.ok, ok.canary
    assert ok.canary.first_artifact_ms is not None and 100 < ok.canary.first_artifact_ms < 2000
    assert ok.canary.total_ms > ok.canary.first_artifact_ms + 150  # four more chunks, 60 ms apart
    # a peak EWMA never exceeds its samples: the card GETs' (the canary's ~400 ms are not one)
    assert ok.ewma_ms is not None and ok.ewma_ms <= max(ok.recent_ms) * 1.01
    assert ok.success_rate == 1.0 and ok.breaker == "closed"
    assert doc["sdk-ok"]["canary"].keys() >= {"ok", "first_artifact_ms", "total_ms", "at"}
    assert doc["sdk-ok"]["canary"]["first_artifact_ms"] == round(ok.canary.first_artifact_ms, 3)
    assert doc["sdk-plain"]["canary"] is None and not rows["sdk-plain"].has_canary
    assert rows["sdk-plain"].state == "healthy"

    failures = {
        "sdk-fail": ("task_failed", "task failed: model overloaded"),
        "sdk-mismatch": ("bad_response", "answer does not match /pong/: 'tok0 tok1"),
        "sdk-slow": ("timeout", ""),
    }
    events = [e for s in seen for e in s.events]
    for agent_id, (kind, message) in failures.items():
        row = rows[agent_id]
        assert row.canary is not None and not row.canary.ok
        assert (row.canary.error, row.state) == (kind, "degraded"), row
        assert (row.canary.message or "").startswith(message)
        assert row.success_rate is not None and row.success_rate < 1.0
        raised = [e for e in events if e.kind == "canary" and e.agent == agent_id]
        assert len(raised) == 1 and raised[0].after == "failed", raised
        assert raised[0].message.startswith(f"{agent_id} canary failed: {message}")
        assert raised[0].message.endswith(f"({kind})")

    # sla.canary: the first token in under 1 ms breaches; a whole answer under 30 s passes
    sla = {s.name: s for s in ok.sla}
    assert not sla["canary.first_artifact"].passed and sla["canary.total"].passed
    breach = [e for e in events if e.kind == "sla_breach" and e.agent == "sdk-ok"]
    assert [e.message.split(":")[0] for e in breach] == [
        "sdk-ok SLA canary.first_artifact breached"
    ]
    assert not any(s.name.startswith("canary.") for s in rows["sdk-plain"].sla)

    posted = [e["message"] for b in hook.bodies for e in b["events"]]
    assert breach[0].message in posted
    assert "sdk-fail canary failed: task failed: model overloaded (task_failed)" in posted

    def value(family: str, agent: str, suffix: str = "", **labels: str) -> float:
        return metric_value(scraped[0], family, agent, suffix, **labels)

    assert value("latcli_canary_ok", "sdk-ok") == 1
    assert value("latcli_canary_ok", "sdk-fail") == 0
    assert value("latcli_canary_first_artifact_seconds", "sdk-ok", "_count") >= 1
    assert 0.1 < value("latcli_canary_first_artifact_seconds", "sdk-ok", "_sum") < 60
    assert value("latcli_canary_total_seconds", "sdk-ok", "_count") >= 1
    assert value("latcli_canary_checks", "sdk-fail", "_total", outcome="task_failed") >= 1
    assert value("latcli_canary_checks", "sdk-slow", "_total", outcome="timeout") >= 1
    assert value("latcli_agent_sla_breached", "sdk-ok") == 1

    # the table: a ttft column, the time for sdk-ok (marked: its SLA breaches), fail, and -
    console = Console(width=120, record=True, color_system=None)
    console.print(watch_renderable(last))
    table = console.export_text()
    header = next(line for line in table.splitlines() if line.startswith("agent "))
    assert "ttft" in header
    cells = {line.split()[0]: line for line in table.splitlines() if line.startswith("sdk-")}
    assert re.search(r"\d+ ms!", cells["sdk-ok"]), cells["sdk-ok"]
    assert " fail " in cells["sdk-fail"] and " fail " in cells["sdk-slow"]


@pytest.mark.timeout(60)
def test_cli_json_lines_carry_the_canary(
    sdk: dict[str, RunningAgent], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = str(_sdk_inventory(tmp_path, sdk))
    argv = ["watch", "sdk-ok", "sdk-plain", "-i", inv, "--count", "6", "--json", "--no-state"]
    assert main(argv) == 1  # the 1 ms first-token SLA is breached: exit 1, as any SLA
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["tick"] for d in docs] == [1, 2, 3, 4, 5, 6]
    last = {a["id"]: a for a in docs[-1]["agents"]}
    canary = last["sdk-ok"]["canary"]
    assert canary["ok"] is True and canary["first_artifact_ms"] > 100
    assert canary["total_ms"] > canary["first_artifact_ms"] and canary["at"] > 1e9
    assert last["sdk-plain"]["canary"] is None
    assert docs[0]["agents"][0]["canary"] is None  # no canary has answered at the first tick


@pytest.mark.timeout(60)
def test_the_demo_assistants_show_their_time_to_first_token(demo_fleet: Any) -> None:
    """`latcli demo`'s inventory: both assistants have a canary; the table shows its ttft."""
    inv = load_inventory(demo_fleet.inventory_path, {})
    chosen = [a for a in inv.agents if a.type in ("assistant", "weather")]
    seen: list[WatchSnapshot] = []
    asyncio.run(
        run_watch(
            inv, chosen, WatchOptions(interval=0.25, count=12, no_state=True), seen.append, print
        )
    )
    rows = {r.id: r for r in seen[-1].agents}
    assert [i for i, r in rows.items() if r.has_canary] == ["assistant-1", "assistant-2"]
    answered = [r.canary for r in rows.values() if r.canary is not None and r.canary.ok]
    assert answered and all(c.first_artifact_ms is not None for c in answered)
    console = Console(width=100, record=True, color_system=None)
    console.print(watch_renderable(seen[-1]))
    text = console.export_text()
    header = next(line for line in text.splitlines() if line.startswith("agent "))
    assert "ttft" in header and "ttft: canary first token" in text


@pytest.mark.timeout(30)
def test_a_timed_out_canary_task_is_cancelled() -> None:
    """The model must not go on generating for a canary nobody waits for any more."""
    import httpx

    async def go(agent: Agent) -> Reply:
        async with Router([agent], state=None) as router:
            return await router.canary(agent, "ping", lambda r: judge(r, CanaryConfig()))

    with run_sdk_agent("stream", "--think-ms", "3000") as running:
        url = running.url
        got = asyncio.run(go(Agent("slow-1", "llm", url, protocol="a2a", timeout=1.0)))
        assert got.error is ErrorKind.TIMEOUT and got.task_id, got
        call = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": got.task_id}}
        answer = httpx.post(url + "/", json=call, headers={"A2A-Version": "1.0"}, timeout=5)
    assert answer.json()["result"]["status"]["state"] == "TASK_STATE_CANCELED", answer.json()
