"""The probe engine and ``latcli probe`` against real servers on loopback.

The demo fleet (conftest ``demo_fleet``) gives healthy http and A2A 0.3 / 1.0 agents;
tests/support/fault_servers.py gives servers that misbehave in one precise way each; the real
a2a-sdk agent (tests/support/a2a_sdk_agent.py) checks interop. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import fault_servers as fs
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from latcli.cli.app import main
from latcli.config.loading import load_inventory
from latcli.config.model import Agent, HealthConfig
from latcli.core.errors import ErrorKind
from latcli.demo.fleet import Fleet, free_port
from latcli.engines.probe import probe_agents
from latcli.engines.send import run_probe
from latcli.reports.probe import ProbeReport, ProbeResult
from latcli.transport.httpx_engine import HttpxTransport
from latcli.transport.protocols import ProtocolClient
from latcli.transport.replies import Reply

pytestmark = pytest.mark.timeout(30)

AGENT_KEYS = {
    "id",
    "type",
    "url",
    "protocol",
    "healthy",
    "status",
    "latency_ms",
    "timings_ms",
    "discovery_ms",
    "card",
    "error",
}


# -- helpers ------------------------------------------------------------------------


def latcli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m latcli ARGS`` as a user runs it: real stdout, stderr and exit code."""
    base = {k: v for k, v in os.environ.items() if k != "LATCLI_INVENTORY"}
    return subprocess.run(
        [sys.executable, "-m", "latcli", *args],
        capture_output=True,
        text=True,
        timeout=25,
        env={**base, "NO_COLOR": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def probe_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """``latcli probe ARGS --json`` in-process: exit code and the parsed JSON."""
    code = main(["probe", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in doc["agents"]}


def fault_agent(url: str, protocol: str = "http", timeout: float = 1.0) -> Agent:
    return Agent(
        id="under-test",
        type="fault",
        url=url,
        protocol=protocol,  # type: ignore[arg-type]
        timeout=timeout,
        health=HealthConfig(timeout=timeout),
    )


def probe_one_agent(agent: Agent, count: int = 1) -> ProbeResult:
    report = asyncio.run(run_probe([agent], count))
    (result,) = report.results
    return result


def send(agent: Agent, text: str = "hello") -> Reply:
    async def go() -> Reply:
        async with HttpxTransport() as transport:
            return await ProtocolClient(transport).send_message(agent, text)

    return asyncio.run(go())


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@contextlib.contextmanager
def serve_app(app: Starlette) -> Iterator[str]:
    """Run a Starlette app with uvicorn in a thread on a free port; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "test app did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


# -- the demo fleet through `latcli probe` -------------------------------------------------


def test_probe_json_matches_the_contract_for_every_demo_agent(demo_fleet: Any) -> None:
    result = latcli("probe", "-i", str(demo_fleet.inventory_path), "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "latcli.probe/v1"
    assert doc["ok"] is True
    assert [a["id"] for a in doc["agents"]] == [a.id for a in demo_fleet.agents]
    versions = {
        "calendar-1": "1.0",
        "calendar-2": "0.3",
        "assistant-1": "1.0",
        "assistant-2": "1.0",
    }
    for agent, got in zip(demo_fleet.agents, doc["agents"], strict=True):
        assert set(got) >= AGENT_KEYS, agent.id
        assert (got["id"], got["type"], got["url"]) == (agent.id, agent.type, agent.url)
        assert got["protocol"] == agent.protocol
        assert got["healthy"] is True
        assert got["status"] == 200
        assert got["error"] is None
        assert isinstance(got["latency_ms"], float) and got["latency_ms"] > 0
        timings = got["timings_ms"]
        assert set(timings) == {"connect", "tls", "ttfb", "total"}
        assert timings["tls"] is None  # plain http
        assert 0 < timings["connect"] <= timings["ttfb"] <= timings["total"]
        assert got["latency_ms"] == pytest.approx(timings["total"], abs=0.002)
        if agent.protocol == "a2a":
            assert isinstance(got["discovery_ms"], float) and got["discovery_ms"] > 0
            card = got["card"]
            assert card["version"] == versions[agent.id]
            assert card["name"] == agent.id  # the demo cards are named after the agent
            assert card["url"].rstrip("/") == agent.url
            assert card["skills"] == ["Answer"]
        else:
            assert got["discovery_ms"] is None
            assert got["card"] is None


def test_count_gives_consistent_percentiles(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = str(demo_fleet.inventory_path)
    code, doc = probe_main(capsys, "-i", inv, "weather", "calendar-2", "--count", "5")
    assert code == 0
    assert [a["id"] for a in doc["agents"]] == ["weather-1", "weather-2", "calendar-2"]
    for got in doc["agents"]:
        assert got["checks"] == 5 and got["failures"] == 0
        assert got["min_ms"] <= got["p50_ms"] <= got["p99_ms"] <= got["max_ms"]
        assert got["min_ms"] <= got["latency_ms"] <= got["max_ms"]
        assert got["min_ms"] > 0


# Off a terminal the table is printed at its natural width (issue 15: never crop a digit);
# tests/cli/test_habits.py checks the wrapping at 60 columns.
@pytest.mark.parametrize("count", ["1", "3"])
def test_human_table_shows_every_agent_whole_off_a_terminal(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str], count: str
) -> None:
    assert main(["probe", "-i", str(demo_fleet.inventory_path), "--count", count]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # not a terminal: no colour codes
    n = len(demo_fleet.agents)
    assert out.rstrip().splitlines()[-1] == f"{n}/{n} healthy"
    lines = [line for line in out.splitlines() if line.strip()]
    assert "…" not in out and "..." not in out
    assert len(lines) == 2 + len(demo_fleet.agents) + 1  # header, rule, one line per agent
    assert "discovery" in lines[0]
    for agent, row in zip(demo_fleet.agents, lines[2:], strict=False):
        assert row.split()[:3] == [agent.id, agent.type, "healthy"], row
        if agent.protocol == "a2a":
            assert re.search(r"\bms\s+a2a [01]\.[03]\b", row), row


# -- selection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (["weather-2"], ["weather-2"]),
        (["calendar"], ["calendar-1", "calendar-2"]),
        # Inventory order, no duplicates, whatever the order on the command line.
        (["news", "weather-1", "weather"], ["weather-1", "weather-2", "flaky-1"]),
    ],
)
def test_select_by_id_and_type(
    demo_fleet: Any,
    capsys: pytest.CaptureFixture[str],
    selectors: list[str],
    expected: list[str],
) -> None:
    code, doc = probe_main(capsys, "-i", str(demo_fleet.inventory_path), *selectors)
    assert code == 0
    assert [a["id"] for a in doc["agents"]] == expected


def test_select_by_inventory_url_keeps_the_inventory_agent(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    calendar = demo_fleet.agent("calendar-1")
    code, doc = probe_main(capsys, "-i", str(demo_fleet.inventory_path), calendar.url + "/")
    assert code == 0
    (got,) = doc["agents"]
    assert (got["id"], got["type"], got["protocol"]) == ("calendar-1", "calendar", "a2a")
    assert got["card"]["version"] == "1.0"


def test_select_by_adhoc_url_probes_it_as_plain_http(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with fs.ok_server() as server:
        code, doc = probe_main(
            capsys, "-i", str(demo_fleet.inventory_path), "weather-1", server.url
        )
    assert code == 0
    assert [a["id"] for a in doc["agents"]] == ["weather-1", f"127.0.0.1:{server.port}"]
    adhoc = doc["agents"][1]
    assert (adhoc["type"], adhoc["protocol"], adhoc["url"]) == ("adhoc", "http", server.url)
    assert adhoc["healthy"] is True and adhoc["status"] == 200


def test_unknown_selector_is_a_usage_error_in_one_line(demo_fleet: Any) -> None:
    result = latcli("probe", "-i", str(demo_fleet.inventory_path), "nosuch-agent", "--json")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "nosuch-agent" in lines[0] and "weather-1" in lines[0]  # names what exists


# -- unhealthy agents -------------------------------------------------------------------


def test_downed_agents_are_http_5xx_and_exit_1(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = str(demo_fleet.inventory_path)
    with demo_fleet.faulted("weather-2", down=True), demo_fleet.faulted("calendar-1", down=True):
        code, doc = probe_main(capsys, "-i", inv, "weather", "calendar")
    assert code == 1
    assert doc["ok"] is False
    got = by_id(doc)
    for down in ("weather-2", "calendar-1"):
        assert got[down]["healthy"] is False
        assert got[down]["status"] == 503
        assert got[down]["error"]["kind"] == "http_5xx"
        assert "503" in got[down]["error"]["message"]
    # A failed discovery has no discovery latency and no card.
    assert (got["calendar-1"]["discovery_ms"], got["calendar-1"]["card"]) == (None, None)
    for up in ("weather-1", "calendar-2"):
        assert got[up]["healthy"] is True and got[up]["error"] is None
    # The agents are back once the fault is lifted.
    assert probe_main(capsys, "-i", inv, "weather-2", "calendar-1")[0] == 0


def test_killed_agent_is_connect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    inv = write(
        tmp_path / "agents.yaml",
        f"""\
        version: 1
        agents:
          - {{id: lonely, type: weather, url: "http://127.0.0.1:{port}"}}
        """,
    )
    agents = load_inventory(inv, {}).agents
    with Fleet(agents) as fleet:
        assert probe_main(capsys, "-i", str(inv))[0] == 0
        fleet.kill("lonely")
        code, doc = probe_main(capsys, "-i", str(inv))
    assert code == 1
    (got,) = doc["agents"]
    assert got["healthy"] is False
    assert got["status"] is None and got["latency_ms"] is None
    assert got["error"]["kind"] == "connect"


# -- faults through the probe engine ------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "kind"),
    [
        (fs.refused_port, ErrorKind.CONNECT),
        (fs.reset_server, ErrorKind.RESET),
        (fs.not_http_server, ErrorKind.BAD_RESPONSE),
        (fs.big_body_server, ErrorKind.TOO_LARGE),  # 64 MiB, cut at the 1 MiB cap
    ],
    ids=["refused", "reset", "not-http", "64mib"],
)
def test_fault_server_gives_its_error_kind(
    server: Callable[[], AbstractContextManager[Any]], kind: ErrorKind
) -> None:
    with server() as running:
        url = running if isinstance(running, str) else running.url
        started = time.monotonic()
        result = probe_one_agent(fault_agent(url))
        elapsed = time.monotonic() - started
    assert result.healthy is False
    assert result.error is kind, result.message
    assert result.message
    assert result.failures == result.checks == 1
    assert elapsed < 1.5  # an answer, not the timeout, ended it


def test_unreachable_a2a_agent_has_no_discovery_latency() -> None:
    with fs.refused_port() as url:
        result = probe_one_agent(fault_agent(url, protocol="a2a"), count=2)
    assert result.error is ErrorKind.CONNECT
    assert (result.latency_ms, result.discovery_ms, result.card) == (None, None, None)
    assert result.failures == 2


def test_plain_http_health_needs_only_a_2xx_not_json() -> None:
    # A plain agent's health check is `GET /health` -> any 2xx; the body is not read as JSON
    # (DESIGN §2 gives /health no body format). Its messages must be JSON, see below.
    with fs.not_json_server() as server:
        result = probe_one_agent(fault_agent(server.url))
    assert result.healthy is True
    assert (result.status, result.error) == (200, None)


def test_a2a_card_that_is_not_json_is_bad_response() -> None:
    with fs.not_json_server() as server:
        result = probe_one_agent(fault_agent(server.url, protocol="a2a"))
    assert result.healthy is False
    assert result.error is ErrorKind.BAD_RESPONSE
    assert result.card is None


def test_silent_server_times_out_within_the_health_timeout_plus_ten_percent() -> None:
    async def timed(agent: Agent) -> tuple[ProbeReport, float]:
        async with HttpxTransport() as transport:
            client = ProtocolClient(transport)
            started = time.monotonic()
            report = await probe_agents(client, [agent])
            return report, time.monotonic() - started

    with fs.silent_server() as server:
        report, elapsed = asyncio.run(timed(fault_agent(server.url, timeout=1.0)))
    (result,) = report.results
    assert result.error is ErrorKind.TIMEOUT, result.message
    assert result.status is None and result.samples == ()
    assert 1.0 <= elapsed <= 1.1


def test_latcli_probe_of_a_silent_server_ends_on_time(tmp_path: Path) -> None:
    inv = write(
        tmp_path / "agents.yaml",
        """\
        version: 1
        defaults: {health: {timeout: 1s}}
        agents:
          - {id: placeholder, type: none, url: "http://127.0.0.1:9"}
        """,
    )
    # Process start-up, measured with an agent that fails at once.
    with fs.refused_port() as refused:
        started = time.monotonic()
        baseline = latcli("probe", "-i", str(inv), refused, "--json")
        startup = time.monotonic() - started
    assert baseline.returncode == 1
    assert json.loads(baseline.stdout)["agents"][0]["error"]["kind"] == "connect"
    with fs.silent_server() as server:
        started = time.monotonic()
        result = latcli("probe", "-i", str(inv), server.url, "--json")
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    (got,) = json.loads(result.stdout)["agents"]
    assert got["error"]["kind"] == "timeout"
    assert got["healthy"] is False and got["status"] is None
    assert elapsed <= startup + 1.1 + 1.0, (elapsed, startup)  # + 1 s for a busy machine


# -- messages through ProtocolClient.send_message (what `latcli send` uses) ----------------


@pytest.mark.parametrize("agent_id", ["weather-1", "calendar-1", "calendar-2"])
def test_demo_agents_answer_messages(demo_fleet: Any, agent_id: str) -> None:
    reply = send(demo_fleet.agent(agent_id), "status?")
    assert reply.ok, reply.message
    assert reply.status == 200
    assert reply.text is not None and reply.text.startswith(f"{agent_id}: ")
    assert "status?" in reply.text


@pytest.mark.parametrize("agent_id", ["calendar-1", "calendar-2"])
def test_jsonrpc_error_with_http_200_is_rpc_error(demo_fleet: Any, agent_id: str) -> None:
    with demo_fleet.faulted(agent_id, errors=1.0) as agent:
        reply = send(agent)
    assert reply.status == 200
    assert reply.error is ErrorKind.RPC_ERROR
    assert reply.is_failure
    assert reply.message is not None and "injected" in reply.message
    assert reply.text is None


def test_http_agent_error_is_http_5xx(demo_fleet: Any) -> None:
    with demo_fleet.faulted("weather-1", errors=1.0) as agent:
        reply = send(agent)
    assert (reply.status, reply.error) == (500, ErrorKind.HTTP_5XX)


def _card_03(request: Request) -> Response:
    """A 0.3 card (no supportedInterfaces) for an agent that only speaks 1.0."""
    base = str(request.base_url)
    return JSONResponse({"name": "liar", "url": base, "protocolVersion": "0.3.0", "skills": []})


def _card_10(request: Request) -> Response:
    base = str(request.base_url)
    interface = {"url": base, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
    return JSONResponse({"name": "html-rpc", "supportedInterfaces": [interface], "skills": []})


async def _only_send_message(request: Request) -> Response:
    call = await request.json()
    if call.get("method") == "SendMessage":
        result = {"message": {"role": "ROLE_AGENT", "parts": [{"text": "ok"}]}}
        return JSONResponse({"jsonrpc": "2.0", "id": call.get("id"), "result": result})
    error = {"code": -32601, "message": "Method not found"}
    return JSONResponse({"jsonrpc": "2.0", "id": call.get("id"), "error": error})


async def _html(request: Request) -> Response:
    return PlainTextResponse("<html>oops</html>", media_type="text/html")


CARD = "/.well-known/agent-card.json"


def test_a2a_version_mismatch_is_rpc_error_naming_the_version() -> None:
    app = Starlette(
        routes=[Route(CARD, _card_03), Route("/", _only_send_message, methods=["POST"])]
    )
    with serve_app(app) as url:
        reply = send(fault_agent(url, protocol="a2a"))
    assert reply.card is not None and reply.card.version == "0.3"
    assert reply.status == 200
    assert reply.error is ErrorKind.RPC_ERROR
    assert reply.message is not None and "version" in reply.message.lower()


def test_non_json_reply_to_a_message_is_bad_response() -> None:
    with fs.not_json_server() as server:
        reply = send(fault_agent(server.url))
    assert (reply.status, reply.error) == (200, ErrorKind.BAD_RESPONSE)
    assert reply.is_failure


def test_non_json_reply_to_an_a2a_message_is_bad_response() -> None:
    app = Starlette(routes=[Route(CARD, _card_10), Route("/", _html, methods=["POST"])])
    with serve_app(app) as url:
        reply = send(fault_agent(url, protocol="a2a"))
    assert reply.card is not None and reply.card.version == "1.0"
    assert (reply.status, reply.error) == (200, ErrorKind.BAD_RESPONSE)


# -- interop with the real a2a-sdk agent --------------------------------------------------


@pytest.fixture(scope="module")
def sdk_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from a2a_sdk_runner import run_agent

    with run_agent(tmp_path_factory.mktemp("sdk-agent")) as agent:
        yield agent.base_url


@pytest.mark.timeout(45)
def test_probe_and_message_the_real_a2a_sdk_agent(sdk_agent: str, tmp_path: Path) -> None:
    # An ad-hoc URL is plain http, so the A2A peer goes through an inventory.
    inv = write(
        tmp_path / "agents.yaml",
        f"""\
        version: 1
        agents:
          - {{id: sdk, type: echo, url: "{sdk_agent}", protocol: a2a}}
        """,
    )
    result = latcli("probe", "-i", str(inv), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    (got,) = json.loads(result.stdout)["agents"]
    assert (got["id"], got["protocol"], got["healthy"], got["status"]) == ("sdk", "a2a", True, 200)
    assert isinstance(got["discovery_ms"], float) and got["discovery_ms"] > 0
    assert got["card"]["name"] == "sdk-echo"
    assert got["card"]["version"] == "1.0"
    assert got["card"]["url"] == sdk_agent + "/"
    assert got["card"]["skills"] == ["Echo"]

    (agent,) = load_inventory(inv, {}).agents
    reply = send(agent, "hello")
    assert reply.ok, reply.message
    assert reply.text == "echo: hello"
    assert reply.card is not None and reply.card.version == "1.0"
