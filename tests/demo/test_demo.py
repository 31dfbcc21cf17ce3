"""The demo fleet: real agent subprocesses on free loopback ports, driven over HTTP.

Card and message shapes are checked against the a2a-sdk's own types (1.0 protobuf,
0.3 pydantic), so a field the SDK would reject fails here too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
import yaml
from a2a.client import ClientConfig, create_client
from a2a.compat.v0_3 import types as v03
from a2a.types import a2a_pb2
from google.protobuf.json_format import ParseDict

from latcli.config.loading import load_inventory
from latcli.config.model import Agent, DemoConfig
from latcli.core.distribution import parse_distribution
from latcli.core.errors import ExitCode, LatcliError
from latcli.demo.agent import FaultState, apply_fault
from latcli.demo.control import get_fault, set_fault
from latcli.demo.fleet import DEMO_INVENTORY, Fleet, free_port

pytestmark = pytest.mark.timeout(60)

IDS = ["weather-1", "weather-2", "calendar-1", "calendar-2", "flaky-1"]
ASSISTANTS = ["assistant-1", "assistant-2"]  # latcli.demo.assistant: LLM-like A2A 1.0 agents


def _demo_agents() -> tuple[Agent, ...]:
    return load_inventory(DEMO_INVENTORY, {}).agents


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    agents = _demo_agents()
    with Fleet(agents, {a.id: free_port() for a in agents}, seed=7) as running:
        yield running


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5.0) as c:
        yield c


def _fault(url: str, **change: Any) -> dict[str, object]:
    args: dict[str, Any] = {"latency": None, "errors": None, "down": None, **change}
    return asyncio.run(set_fault(url, **args))


def _rpc(method: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 11, "method": method, "params": {"message": message}}


def _v1_call(text: str, method: str = "SendMessage") -> dict[str, Any]:
    msg = {"role": "ROLE_USER", "messageId": str(uuid.uuid4()), "parts": [{"text": text}]}
    return _rpc(method, msg)


def _v03_call(text: str, method: str = "message/send") -> dict[str, Any]:
    parts = [{"kind": "text", "text": text}]
    msg = {"kind": "message", "role": "user", "messageId": str(uuid.uuid4()), "parts": parts}
    return _rpc(method, msg)


V1 = {"A2A-Version": "1.0"}


# -- the inventory ----------------------------------------------------------------


def test_demo_inventory_describes_the_five_agents_on_8001_to_8005() -> None:
    inventory = load_inventory(DEMO_INVENTORY, {})
    assert yaml.safe_load(DEMO_INVENTORY.read_text())["version"] == 1
    assert inventory.routing.strategy == "p2c"
    assert set(inventory.sla) == {
        "health",
        "discovery",
        "message",
        "coordination",
        "availability",
        "error_rate",
    }
    agents = inventory.agents
    assert all((a.health.interval, a.health.timeout) == (2.0, 1.0) for a in agents)
    assert [a.id for a in agents] == IDS + ASSISTANTS
    assert [a.url for a in agents] == [f"http://127.0.0.1:{p}" for p in range(8001, 8008)]
    assert [a.protocol for a in agents] == ["http", "http", "a2a", "a2a", "http", "a2a", "a2a"]
    versions = [a.demo.a2a_version for a in agents if a.demo and a.protocol == "a2a"]
    assert versions == ["1.0", "0.3", "1.0", "1.0"]
    for agent in agents:
        assert agent.demo is not None
        parse_distribution(agent.demo.latency)  # raises on a bad distribution
    flaky = agents[len(IDS) - 1]
    assert flaky.type == "news" and flaky.demo is not None
    assert flaky.demo.errors == pytest.approx(0.2)
    one, two = (a.demo for a in agents[len(IDS) :])
    assert one is not None and two is not None and one.app == two.app == "assistant"
    assert {a.type for a in agents[len(IDS) :]} == {"assistant"}
    # one replica is faster to first token: the pick by time to first token has a winner
    assert parse_distribution(two.ttft).median < parse_distribution(one.ttft).median
    # the assistants carry a canary, so `latcli demo` shows their time to first token
    canaries = {a.id: a.health.canary for a in agents if a.health.canary is not None}
    assert list(canaries) == ASSISTANTS
    assert all(c.expect is not None and c.expect.search("the answer") for c in canaries.values())


def test_top_level_agents_yaml_is_the_demo_inventory() -> None:
    top = DEMO_INVENTORY.parents[2] / "agents.yaml"
    assert top.is_symlink()
    assert top.resolve() == DEMO_INVENTORY.resolve()


# -- the fleet ---------------------------------------------------------------------


def test_fleet_describes_where_each_agent_listens(fleet: Fleet) -> None:
    rows = fleet.describe()
    assert [r[0] for r in rows] == IDS + ASSISTANTS
    assert rows[2][1:3] == ("calendar", "a2a 1.0")
    assert rows[3][2] == "a2a 0.3"
    assert rows[5][1:3] == ("assistant", "a2a 1.0")
    assert all(url == fleet.urls[i] for i, _, _, url in rows)
    assert set(fleet.pids) == set(IDS + ASSISTANTS)


@pytest.mark.parametrize("agent", ASSISTANTS)
def test_assistants_stream_their_answer(fleet: Fleet, client: httpx.Client, agent: str) -> None:
    card = client.get(fleet.urls[agent] + "/.well-known/agent-card.json").json()
    assert card["capabilities"]["streaming"] is True
    call = _v1_call("hello", method="SendStreamingMessage")
    with client.stream("POST", fleet.urls[agent], json=call, headers=V1) as r:
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert r.headers["content-type"].startswith("text/event-stream")
    assert '"task"' in events[0] and "TASK_STATE_" in events[-1]


def test_children_run_in_their_own_session(fleet: Fleet) -> None:
    # Ctrl-C at the terminal signals the foreground process group: not theirs.
    for pid in fleet.pids.values():
        assert os.getsid(pid) == pid
        assert os.getpgid(pid) != os.getpgid(0)


# -- the seed's http protocol ------------------------------------------------------


def test_http_health(fleet: Fleet, client: httpx.Client) -> None:
    r = client.get(fleet.urls["weather-1"] + "/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "agent": "weather-1"}


def test_http_message_reply_is_deterministic(fleet: Fleet, client: httpx.Client) -> None:
    url = fleet.urls["weather-2"] + "/message/send"
    first = client.post(url, json={"message": "rain in Oslo?"})
    second = client.post(url, json={"message": "rain in Oslo?"})
    assert first.status_code == 200
    body = first.json()
    assert body["agent"] == "weather-2"
    assert body["reply"].startswith("weather-2: ") and "rain in Oslo?" in body["reply"]
    assert second.json() == body


@pytest.mark.parametrize("payload", [b"not json", b"[1]", b'{"message": 3}', b"{}"])
def test_http_bad_body_is_400(fleet: Fleet, client: httpx.Client, payload: bytes) -> None:
    r = client.post(fleet.urls["weather-1"] + "/message/send", content=payload)
    assert r.status_code == 400


def test_http_agent_serves_no_card(fleet: Fleet, client: httpx.Client) -> None:
    assert client.get(fleet.urls["weather-1"] + "/.well-known/agent-card.json").status_code == 404


# -- A2A 1.0 -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/agent-card.json", "/.well-known/agent.json"])
def test_v1_card_is_a_valid_1_0_agent_card(fleet: Fleet, client: httpx.Client, path: str) -> None:
    base = fleet.urls["calendar-1"]
    card = client.get(base + path).json()
    parsed = ParseDict(card, a2a_pb2.AgentCard())  # raises on unknown or mistyped fields
    assert parsed.name == "calendar-1" and parsed.skills
    [iface] = parsed.supported_interfaces
    assert (iface.url, iface.protocol_binding, iface.protocol_version) == (base, "JSONRPC", "1.0")


def test_v1_send_message_with_version_header(fleet: Fleet, client: httpx.Client) -> None:
    r = client.post(fleet.urls["calendar-1"], json=_v1_call("free at 3pm?"), headers=V1)
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == 11 and "error" not in body
    reply = ParseDict(body["result"], a2a_pb2.SendMessageResponse())
    assert reply.WhichOneof("payload") == "message"
    assert reply.message.role == a2a_pb2.ROLE_AGENT
    assert reply.message.parts[0].text.startswith("calendar-1: ")


@pytest.mark.parametrize("headers", [{}, {"A2A-Version": "0.3"}, {"A2A-Version": "2.0"}])
def test_v1_without_its_version_header_is_rpc_error_32009(
    fleet: Fleet, client: httpx.Client, headers: dict[str, str]
) -> None:
    r = client.post(fleet.urls["calendar-1"], json=_v1_call("hi"), headers=headers)
    assert r.status_code == 200
    assert r.json()["error"]["code"] == -32009
    assert "result" not in r.json()


# -- A2A 0.3 -----------------------------------------------------------------------


def test_v03_card_is_a_valid_0_3_agent_card(fleet: Fleet, client: httpx.Client) -> None:
    base = fleet.urls["calendar-2"]
    card = v03.AgentCard.model_validate(client.get(base + "/.well-known/agent-card.json").json())
    assert (card.protocol_version, card.url, card.preferred_transport) == ("0.3.0", base, "JSONRPC")


def test_v03_message_send(fleet: Fleet, client: httpx.Client) -> None:
    r = client.post(fleet.urls["calendar-2"], json=_v03_call("lunch on friday?"))
    assert r.status_code == 200
    message = v03.Message.model_validate(r.json()["result"])
    assert message.role == v03.Role.agent
    text = message.parts[0].root
    assert isinstance(text, v03.TextPart) and text.text.startswith("calendar-2: ")


async def _sdk_send(url: str, text: str) -> list[Any]:
    """Send with a2a-sdk's own client, which picks 1.0 or 0.3 from the card."""
    async with httpx.AsyncClient(trust_env=False) as http:
        config = ClientConfig(httpx_client=http, streaming=False)
        sdk = await create_client(url, config)
        message = a2a_pb2.Message(
            role=a2a_pb2.ROLE_USER, message_id=str(uuid.uuid4()), parts=[a2a_pb2.Part(text=text)]
        )
        return [ev async for ev in sdk.send_message(a2a_pb2.SendMessageRequest(message=message))]


@pytest.mark.parametrize("agent", ["calendar-1", "calendar-2"])
def test_a2a_sdk_client_gets_a_reply(fleet: Fleet, agent: str) -> None:
    [event] = asyncio.run(_sdk_send(fleet.urls[agent], "dentist next week?"))
    assert event.message.role == a2a_pb2.ROLE_AGENT
    assert event.message.parts[0].text.startswith(f"{agent}: ")


@pytest.mark.parametrize(
    ("agent", "call"),
    [
        ("calendar-1", _v1_call("hi", method="tasks/get")),
        ("calendar-1", _v03_call("hi")),  # 0.3's method name on a 1.0 agent
        ("calendar-2", _v1_call("hi")),  # 1.0's method name on a 0.3 agent
    ],
)
def test_unknown_method_is_rpc_error_32601_with_http_200(
    fleet: Fleet, client: httpx.Client, agent: str, call: dict[str, Any]
) -> None:
    r = client.post(fleet.urls[agent], json=call, headers=V1)
    assert r.status_code == 200
    assert r.json()["error"]["code"] == -32601


def test_rpc_garbage_is_parse_error(fleet: Fleet, client: httpx.Client) -> None:
    r = client.post(fleet.urls["calendar-2"], content=b"{oops")
    assert (r.status_code, r.json()["error"]["code"]) == (200, -32700)


# -- faults ------------------------------------------------------------------------


def test_injected_errors(fleet: Fleet, client: httpx.Client) -> None:
    urls = fleet.urls
    try:
        _fault(urls["weather-1"], errors=1.0)
        _fault(urls["calendar-1"], errors="100%")
        _fault(urls["calendar-2"], errors=1.0)
        r = client.post(urls["weather-1"] + "/message/send", json={"message": "x"})
        assert (r.status_code, r.json()) == (500, {"error": "injected"})
        r = client.post(urls["calendar-1"], json=_v1_call("x"), headers=V1)
        assert (r.status_code, r.json()["error"]["code"]) == (200, -32603)
        r = client.post(urls["calendar-2"], json=_v03_call("x"))
        assert (r.status_code, r.json()["error"]["code"]) == (200, -32603)
        assert client.get(urls["weather-1"] + "/health").status_code == 200
    finally:
        for agent in ("weather-1", "calendar-1", "calendar-2"):
            _fault(urls[agent], errors=0.0)
    r = client.post(urls["weather-1"] + "/message/send", json={"message": "x"})
    assert r.status_code == 200


def test_flaky_agent_fails_about_one_in_five(fleet: Fleet, client: httpx.Client) -> None:
    url = fleet.urls["flaky-1"] + "/message/send"
    try:
        _fault(fleet.urls["flaky-1"], latency="0ms")
        codes = [client.post(url, json={"message": "news?"}).status_code for _ in range(200)]
    finally:
        _fault(fleet.urls["flaky-1"], latency="lognormal 40ms 0.8")
    assert set(codes) == {200, 500}
    assert 15 <= codes.count(500) <= 70  # binomial(200, 0.2): mean 40, sd 5.7


def test_down_answers_503_until_up(fleet: Fleet, client: httpx.Client) -> None:
    urls = fleet.urls
    try:
        state = _fault(urls["weather-2"], down=True)
        assert state["down"] is True
        _fault(urls["calendar-1"], down=True)
        r = client.get(urls["weather-2"] + "/health")
        assert (r.status_code, r.json()) == (503, {"error": "down"})
        assert (
            client.post(urls["weather-2"] + "/message/send", json={"message": "x"}).status_code
            == 503
        )
        assert client.get(urls["calendar-1"] + "/.well-known/agent-card.json").status_code == 503
        assert client.post(urls["calendar-1"], json=_v1_call("x"), headers=V1).status_code == 503
        assert client.get(urls["weather-2"] + "/admin/fault").json()["down"] is True
    finally:
        _fault(urls["weather-2"], down=False)
        _fault(urls["calendar-1"], down=False)
    assert client.get(urls["weather-2"] + "/health").status_code == 200
    assert client.get(urls["calendar-1"] + "/.well-known/agent-card.json").status_code == 200


def _timed(client: httpx.Client, method: str, url: str, **kw: Any) -> float:
    start = time.perf_counter()
    client.request(method, url, **kw).raise_for_status()
    return time.perf_counter() - start


def test_latency_fault_is_visible_in_measured_latency(fleet: Fleet, client: httpx.Client) -> None:
    base = fleet.urls["weather-1"]
    send = base + "/message/send"
    try:
        state = _fault(base, latency="300ms")
        assert state["latency"] == "fixed 300ms"
        slow = _timed(client, "POST", send, json={"message": "x"})
        health = _timed(client, "GET", base + "/health")
    finally:
        _fault(base, latency="lognormal 15ms 0.4")
    fast = min(_timed(client, "POST", send, json={"message": "x"}) for _ in range(3))
    assert 0.3 <= slow < 1.0
    assert 0.3 <= health < 1.0  # a latency fault slows health checks too
    assert fast < 0.2


def test_get_fault_reports_the_state(fleet: Fleet) -> None:
    state = asyncio.run(get_fault(fleet.urls["calendar-2"]))
    assert state == {
        "agent": "calendar-2",
        "latency": "normal 80ms 20ms",
        "health_latency": "normal 8ms 2ms",  # cheap checks: a tenth, while no fault is set
        "errors": 0.0,
        "down": False,
    }


@pytest.mark.parametrize(
    "change", [{"latency": "soon"}, {"errors": "120%"}, {"errors": "lots"}, {"latency": "-5ms"}]
)
def test_set_fault_rejects_bad_values(fleet: Fleet, change: dict[str, Any]) -> None:
    url = fleet.urls["weather-2"]
    with pytest.raises(LatcliError, match="refused the fault") as info:
        _fault(url, **change)
    assert info.value.exit_code == ExitCode.USAGE
    assert asyncio.run(get_fault(url))["latency"] == "lognormal 60ms 0.5"


def test_set_fault_on_a_dead_port_names_agent_and_reason() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(LatcliError) as info:
        asyncio.run(set_fault(url, latency="1ms", errors=None, down=None, agent_id="weather-1"))
    assert str(info.value) == f"cannot reach weather-1 at {url}: connection refused"
    assert info.value.exit_code == ExitCode.FAILED


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"latency": 5}, "latency must be text"),
        ({"down": "yes"}, "down must be true or false"),
        ({"errors": True}, "errors must be"),
        ({"speed": 1}, "unknown fault keys"),
        ({"rate_limit": -1}, "rate_limit must be whole seconds"),
        ({"rate_limit": "1s"}, "rate_limit must be whole seconds"),
    ],
)
def test_apply_fault_validates_before_changing(change: dict[str, Any], message: str) -> None:
    state = FaultState(parse_distribution("5ms"), 0.1)
    with pytest.raises(ValueError, match=message):
        apply_fault(state, {"errors": 0.5, **change})
    assert state == FaultState(parse_distribution("5ms"), 0.1)


def test_rate_limit_fault_is_set_shown_and_lifted() -> None:
    state = FaultState(parse_distribution("5ms"), 0.0)
    apply_fault(state, {"rate_limit": 3})
    assert state.rate_limit == 3 and state.as_json("a")["rate_limit"] == 3
    apply_fault(state, {"rate_limit": 0})
    assert state.rate_limit is None and "rate_limit" not in state.as_json("a")


# -- lifecycle: ports, startup, kill, stop -----------------------------------------


def _two_agents() -> list[Agent]:
    return [
        Agent(id="a", type="t", url="http://127.0.0.1:1", demo=DemoConfig(latency="1ms")),
        Agent(id="b", type="t", url="http://127.0.0.1:1", protocol="a2a"),
    ]


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_port_in_use_is_a_usage_error_and_starts_nothing() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        fleet = Fleet(_two_agents(), {"a": free_port(), "b": port})
        with pytest.raises(LatcliError) as info:
            fleet.start()
    assert str(info.value) == (
        f"port {port} (b) is already in use — stop the other process or change agents.yaml"
    )
    assert info.value.exit_code == ExitCode.USAGE
    assert fleet.pids == {}


def test_same_port_twice_is_a_usage_error() -> None:
    port = free_port()
    with pytest.raises(LatcliError, match=f"port {port} is used by both a and b"):
        Fleet(_two_agents(), {"a": port, "b": port}).start()


def test_agent_that_cannot_start_is_named_with_its_stderr() -> None:
    bad = Agent(id="bad-1", type="t", url="http://127.0.0.1:1", demo=DemoConfig(latency="soon"))
    fleet = Fleet([*_two_agents(), bad], {"a": free_port(), "b": free_port(), "bad-1": free_port()})
    with pytest.raises(LatcliError, match=r"demo agent bad-1 at .* exited during startup: .*soon"):
        fleet.start()
    assert fleet.pids == {}


def test_kill_leaves_the_others_alive_and_restart_brings_it_back(client: httpx.Client) -> None:
    with Fleet(_two_agents(), {"a": free_port(), "b": free_port()}) as fleet:
        a_pid, b_pid = fleet.pids["a"], fleet.pids["b"]
        fleet.kill("a")
        assert _gone(a_pid) and not _gone(b_pid)
        assert set(fleet.pids) == {"b"}
        with pytest.raises(httpx.ConnectError):
            client.get(fleet.urls["a"] + "/health")
        assert client.get(fleet.urls["b"] + "/.well-known/agent-card.json").status_code == 200
        fleet.restart("a")
        assert fleet.pids["a"] != a_pid and fleet.pids["b"] == b_pid
        assert client.get(fleet.urls["a"] + "/health").status_code == 200
        with pytest.raises(LatcliError, match="no demo agent 'zz'"):
            fleet.kill("zz")


def test_stop_leaves_no_child_even_after_an_exception() -> None:
    fleet = Fleet(_two_agents(), {"a": free_port(), "b": free_port()})
    with pytest.raises(RuntimeError), fleet:
        pids = list(fleet.pids.values())
        assert len(pids) == 2 and not any(_gone(p) for p in pids)
        raise RuntimeError("boom")
    assert all(_gone(p) for p in pids)
    assert fleet.pids == {}
    fleet.stop()  # idempotent


_ORPHAN_SCRIPT = """
import sys
from latcli.demo.fleet import Fleet, free_port
from latcli.config.model import Agent
fleet = Fleet([Agent(id="o", type="t", url="http://127.0.0.1:1")], {"o": free_port()})
fleet.start()
print(fleet.pids["o"], flush=True)
sys.stdin.read()
"""


def test_agents_exit_when_the_launcher_is_killed() -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert launcher.stdout is not None
        pid = int(launcher.stdout.readline())
    finally:
        launcher.kill()  # no atexit, no __exit__: only --parent-pid can save us
        launcher.wait()
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


def test_agent_prints_nothing_per_request(client: httpx.Client) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "latcli.demo.agent", "--id", "q", "--port", str(port)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as agent:
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.get(f"http://127.0.0.1:{port}/health")
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline and agent.poll() is None
                    time.sleep(0.05)
            for _ in range(5):
                client.post(f"http://127.0.0.1:{port}/message/send", json={"message": "m"})
                client.get(f"http://127.0.0.1:{port}/nope")
        finally:
            agent.terminate()
        out, err = agent.communicate(timeout=5)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert agent.returncode in (0, -signal.SIGTERM)
    assert out == b"" and err == b""
