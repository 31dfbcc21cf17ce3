"""The streaming seam, SSE answers, card origins and deep JSON against real loopback servers
whose bytes each test scripts (tests/support/fault_servers.py): what the SDK agents never send."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from a2a_wire_agent import a2a_agent, agent_server, chunk, pointing_at, scripted, sse, status, whole
from fault_servers import refused_port

from latcli.config.model import A2AConfig, Agent
from latcli.core.errors import ErrorKind
from latcli.transport.base import RequestSpec, StreamingOutcome, can_stream
from latcli.transport.factory import ENGINES, Engine, make_transport
from latcli.transport.httpx_engine import HttpxTransport
from latcli.transport.protocols import ProtocolClient
from latcli.transport.replies import Reply

pytestmark = pytest.mark.timeout(60)

TOKEN = "Bearer s3cret-token"


def stream_reply(agent: Agent) -> tuple[Reply, list[str]]:
    chunks: list[str] = []

    async def go() -> Reply:
        async with HttpxTransport() as transport:
            return await ProtocolClient(transport).stream_message(agent, "hi", None, chunks.append)

    return asyncio.run(go()), chunks


@pytest.fixture(params=[e for e in ENGINES if e != "auto"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Every engine that implements the streaming seam runs the same contract."""
    name: Engine = request.param
    transport = make_transport(name)
    asyncio.run(transport.aclose())
    if not can_stream(transport):
        pytest.skip(f"the {name} engine has no streaming seam yet (transport/base.py)")
    return name


def collect(
    engine: Engine, spec: RequestSpec
) -> tuple[StreamingOutcome, list[tuple[float, bytes]]]:
    async def go() -> tuple[StreamingOutcome, list[tuple[float, bytes]]]:
        transport = make_transport(engine)
        assert can_stream(transport)
        try:
            async with transport.stream("k", spec) as outcome:
                return outcome, [item async for item in outcome]
        finally:
            await transport.aclose()

    return asyncio.run(go())


def test_the_body_is_delivered_as_it_arrives_with_first_byte_timing(engine: Engine) -> None:
    steps = [(0.0, b"a"), (0.15, b"b"), (0.15, b"c")]
    with agent_server(scripted(steps)) as (server, _):
        outcome, got = collect(engine, RequestSpec("POST", server.url + "/", body=b"{}"))
    assert outcome.error is None and outcome.status == 200
    assert b"".join(data for _, data in got) == b"abc"
    arrivals = [(at - outcome.started) * 1000 for at, _ in got]
    assert arrivals[-1] - arrivals[0] >= 200  # written 300 ms apart: not buffered to the end
    ttfb = outcome.timings().ttfb
    assert ttfb is not None and ttfb < arrivals[-1] - 250
    assert outcome.timings().total >= arrivals[-1]


def test_the_whole_attempt_deadline_covers_the_body(engine: Engine) -> None:
    steps = [(0.0, b"data: 1\n\n"), (5.0, b"never")]
    with agent_server(scripted(steps)) as (server, _):
        began = time.perf_counter()
        outcome, got = collect(
            engine, RequestSpec("POST", server.url + "/", body=b"{}", timeout=0.4)
        )
        waited = time.perf_counter() - began
    assert [data for _, data in got] == [b"data: 1\n\n"]
    assert outcome.error is ErrorKind.TIMEOUT
    assert 0.35 <= waited < 2.0 and 350 <= outcome.timings().total < 2000


def test_the_total_bound_and_a_hang_up_mid_body_end_the_iteration_without_raising(
    engine: Engine,
) -> None:
    steps = [(0.0, b"x" * 1000)] * 5
    with agent_server(scripted(steps)) as (server, _):
        outcome, got = collect(
            engine, RequestSpec("POST", server.url + "/", body=b"{}", max_body=2500)
        )
    assert outcome.error is ErrorKind.TOO_LARGE and sum(len(d) for _, d in got) <= 2500
    with agent_server(scripted([(0.0, b"data: 1\n")], finish=False)) as (server, _):
        outcome, got = collect(engine, RequestSpec("POST", server.url + "/", body=b"{}"))
    assert outcome.error in (ErrorKind.RESET, ErrorKind.BAD_RESPONSE)
    assert [d for _, d in got] == [b"data: 1\n"]


def test_no_head_is_an_error_before_iteration(engine: Engine) -> None:
    with refused_port() as url:
        outcome, got = collect(engine, RequestSpec("POST", url + "/", body=b"{}"))
    assert (outcome.status, outcome.error, got) == (None, ErrorKind.CONNECT, [])


def test_events_split_anywhere_in_the_network_reads() -> None:
    events = (
        sse(status("TASK_STATE_WORKING")).replace(b"\n", b"\r\n")
        + sse(chunk("Hel", False))
        + sse(chunk("lo", True)).replace(b"\n", b"\r")
        + sse(status("TASK_STATE_COMPLETED"))
    )
    steps = [(0.01, events[i : i + 7]) for i in range(0, len(events), 7)]
    with agent_server(scripted(steps)) as (server, _):
        reply, chunks = stream_reply(a2a_agent(server.url))
    assert reply.ok, reply.message
    assert (reply.text, reply.state, chunks) == ("Hello", "completed", ["Hel", "lo"])
    assert reply.stream is not None and reply.stream.events == 4


def test_a_stream_that_ends_before_the_task_does_is_bad_response() -> None:
    steps = [(0.0, sse(status("TASK_STATE_WORKING"))), (0.0, sse(chunk("x", False)))]
    with agent_server(scripted(steps)) as (server, _):
        reply, _ = stream_reply(a2a_agent(server.url))
    assert reply.error is ErrorKind.BAD_RESPONSE and reply.state == "working"
    assert reply.message == "stream ended before the task finished (last state: working)"
    assert reply.stream is not None and reply.stream.first_artifact_ms is not None


def test_a_stream_ending_failed_is_task_failed() -> None:
    steps = [
        (0.0, sse(status("TASK_STATE_WORKING"))),
        (0.05, sse(status("TASK_STATE_FAILED", "GPU on fire"))),
    ]
    with agent_server(scripted(steps)) as (server, _):
        reply, _ = stream_reply(a2a_agent(server.url))
    assert (reply.error, reply.message) == (ErrorKind.TASK_FAILED, "task failed: GPU on fire")
    assert reply.is_failure and reply.stream is not None and reply.stream.total_ms is not None


def test_a_jsonrpc_error_instead_of_a_stream_is_rpc_error() -> None:
    body = b'{"jsonrpc": "2.0", "id": "1", "error": {"code": -32004, "message": "no streaming"}}'
    with agent_server(whole(body)) as (server, _):
        reply, _ = stream_reply(a2a_agent(server.url))
    assert (reply.status, reply.error) == (200, ErrorKind.RPC_ERROR)
    assert "no streaming" in (reply.message or "")


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n", "deeper than 128"),
        (b"data: {not json\n\n", "bad stream event"),
        (sse({"unknown": {}}), "neither a Task"),
        (
            b"data: " + json.dumps({"jsonrpc": "2.0", "error": {"code": 1}}).encode() + b"\n\n",
            "JSON-RPC error 1",
        ),
    ],
)
def test_hostile_events_end_the_stream_cleanly(payload: bytes, words: str) -> None:
    with agent_server(scripted([(0.0, payload)])) as (server, _):
        reply, _ = stream_reply(a2a_agent(server.url))
    assert reply.error in (ErrorKind.BAD_RESPONSE, ErrorKind.RPC_ERROR)
    assert words in (reply.message or "")


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_a_100k_deep_card_and_reply_are_bad_response_never_a_recursion_error() -> None:
    with agent_server(whole(DEEP), card=lambda url: DEEP) as (server, _):
        card = asyncio.run(_discover(a2a_agent(server.url)))
    assert card.error is ErrorKind.BAD_RESPONSE
    assert "nested deeper than 128 levels" in (card.message or "")
    with agent_server(whole(DEEP)) as (server, _):
        reply = asyncio.run(_unary(a2a_agent(server.url)))
    assert reply.card is not None  # the card was fine: the reply is what was refused
    assert reply.error is ErrorKind.BAD_RESPONSE
    assert "nested deeper than 128 levels" in (reply.message or "")


async def _discover(agent: Agent) -> Reply:
    async with HttpxTransport() as transport:
        return await ProtocolClient(transport).discover(agent)


async def _unary(agent: Agent) -> Reply:
    async with HttpxTransport() as transport:
        return await ProtocolClient(transport).send_message(agent, "x")


def run_latcli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCLI_")}
    env.update(LATCLI_STATE=str(tmp_path / "state.db"), NO_COLOR="1", COLUMNS="120")
    cmd = [sys.executable, "-m", "latcli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_probe_and_send_against_deep_json_exit_1_without_a_traceback(tmp_path: Path) -> None:
    with agent_server(whole(DEEP), card=lambda url: DEEP) as (server, _):
        inv = tmp_path / "agents.yaml"
        inv.write_text(
            f"version: 1\nagents:\n  - {{id: deep, type: d, url: '{server.url}', protocol: a2a}}\n",
            encoding="utf-8",
        )
        probe = run_latcli(tmp_path, "probe", "-i", str(inv), "--json")
        send = run_latcli(tmp_path, "send", "-i", str(inv), "d", "hi")
    assert probe.returncode == 1 and "Traceback" not in probe.stderr
    (row,) = json.loads(probe.stdout)["agents"]
    assert row["error"]["kind"] == "bad_response" and "deeper than 128" in row["error"]["message"]
    assert send.returncode == 1 and "Traceback" not in send.stderr


def test_a_card_naming_another_origin_is_refused_and_the_token_stays_home() -> None:
    answer = whole(
        b'{"jsonrpc": "2.0", "id": "1", "result": {"message": {"parts": [{"text": "from B"}]}}}'
    )
    with (
        agent_server(answer) as (other, other_seen),
        agent_server(answer, card=pointing_at(other.url)) as (home, home_seen),
    ):
        agent = a2a_agent(home.url, headers={"Authorization": TOKEN})
        refused = asyncio.run(_unary(agent))
        assert refused.error is ErrorKind.BAD_RESPONSE
        assert other.url in (refused.message or "") and home.url in (refused.message or "")
        assert "allow_origins" in (refused.message or "")
        assert other_seen == []  # nothing at all reached the other port
        assert home_seen and all(h.get("authorization") == TOKEN for h in home_seen)

        allowed = a2a_agent(
            home.url,
            headers={"Authorization": TOKEN},
            a2a=A2AConfig(allow_origins=(other.url,)),
        )
        reply = asyncio.run(_unary(allowed))
        assert reply.ok and reply.text == "from B"
        assert [h.get("authorization") for h in other_seen] == [TOKEN]  # allowed: it goes


def test_the_same_server_under_another_host_name_is_another_origin() -> None:
    with agent_server(whole(b"{}")) as (other, other_seen):
        renamed = other.url.replace("127.0.0.1", "localhost")
        with agent_server(whole(b"{}"), card=pointing_at(renamed)) as (home, _):
            reply = asyncio.run(_unary(a2a_agent(home.url, headers={"Authorization": TOKEN})))
    assert reply.error is ErrorKind.BAD_RESPONSE and "localhost" in (reply.message or "")
    assert other_seen == []


def test_probe_says_in_one_line_that_a_grpc_only_agent_is_not_spoken(tmp_path: Path) -> None:
    def grpc_card(url: str) -> bytes:
        interface = {"url": url, "protocolBinding": "GRPC", "protocolVersion": "1.0"}
        return json.dumps({"name": "g", "supportedInterfaces": [interface]}).encode()

    with agent_server(whole(b"{}"), card=grpc_card) as (server, _):
        inv = tmp_path / "agents.yaml"
        inv.write_text(
            f"version: 1\nagents:\n  - {{id: g, type: g, url: '{server.url}', protocol: a2a}}\n",
            encoding="utf-8",
        )
        human = run_latcli(tmp_path, "probe", "-i", str(inv))
        machine = run_latcli(tmp_path, "probe", "-i", str(inv), "--json")
    line = "the agent card offers only GRPC; latcli speaks JSON-RPC and HTTP+JSON"
    assert human.returncode == 1 and "Traceback" not in human.stderr
    assert line in " ".join((human.stdout + human.stderr).split())
    (row,) = json.loads(machine.stdout)["agents"]
    assert row["error"] == {"kind": "bad_response", "message": line}
