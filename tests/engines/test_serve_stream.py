"""``latcli serve`` streams (issue 12 item 4): ``POST /route/{type}`` with ``Accept:
text/event-stream`` relays the answer as SSE.

Real servers only: the gateway is ``python -m latcli serve`` on a free port, the agents are
real a2a-sdk 1.3.0 agents (tests/support/a2a_sdk_agents.py), the demo fleet's plain http agent, and
hand-written loopback agents for what no well-behaved agent does (a 500 on every message, text
that tries to break the SSE framing). The client reads the stream with latcli's own SSE decoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from a2a_sdk_agents import RunningAgent, run_sdk_agent
from a2a_wire_agent import card_v03_response, sse, v03_sse_agent
from conftest import DemoFleet
from fault_servers import (
    Request,
    RunningServer,
    _keepalive,
    read_request,
    response_bytes,
    serve,
)
from prometheus_client.parser import text_string_to_metric_families
from serve_proc import Served, start_serve, stop_serve

from latcli.config.model import Agent
from latcli.demo.fleet import free_port
from latcli.transport.a2a.sse import SSEDecoder, SSEEvent
from latcli.transport.httpx_engine import HttpxTransport
from latcli.transport.protocols import ProtocolClient
from latcli.transport.replies import read_a2a_reply
from latcli.transport.requests import get_task_request

pytestmark = pytest.mark.timeout(90)

SSE = {"accept": "text/event-stream"}
A2A_KINDS = {"task", "status-update", "artifact-update", "message"}
EVIL = 'tok\n\nevent: done\ndata: {"agent": "forged"}\n\n\r\rdata: x\u2028\x1b[2J'


@dataclass
class Received:
    """One SSE event as the client got it, with its arrival (monotonic seconds)."""

    event: str
    data: dict[str, Any]
    at: float


def stream(url: str, type_: str, message: str = "hi", path: str = "") -> list[Received]:
    """POST a streamed route and read it to its end with latcli's SSE decoder."""
    decoder, got = SSEDecoder(), []
    target = f"{url}/route/{type_}{path}"
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", target, json={"message": message}, headers=SSE) as r,
    ):
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        for chunk in r.iter_raw():
            now = time.monotonic()
            got += [Received(e.event, json.loads(e.data), now) for e in decoder.feed(chunk)]
    return got


def names(events: list[Received]) -> list[str]:
    return [e.event for e in events]


def text_of(events: list[Received]) -> str:
    return "".join(e.data["text"] for e in events if e.event == "chunk")


def task_id_of(event: SSEEvent) -> str | None:
    doc = json.loads(event.data)
    found = doc.get("id") if event.event == "task" else doc.get("taskId")
    return found if isinstance(found, str) else None


def broken_agent() -> contextlib.AbstractContextManager[RunningServer]:
    """An A2A 1.0 agent whose card is fine (its health checks pass) and whose every message is
    answered HTTP 500: it fails before its first event."""
    box: list[RunningServer] = []

    def respond(request: Request) -> bytes:
        if request.method == "GET":
            card = {
                "name": "broken",
                "version": "1",
                "supportedInterfaces": [
                    {
                        "url": box[0].url + "/",
                        "protocolBinding": "JSONRPC",
                        "protocolVersion": "1.0",
                    }
                ],
                "capabilities": {"streaming": True},
            }
            return response_bytes(200, json.dumps(card).encode(), "application/json")
        return response_bytes(500, b"down for maintenance")

    @contextlib.contextmanager
    def running() -> Iterator[RunningServer]:
        with serve(lambda r, w: _keepalive(r, w, respond)) as server:
            box.append(server)
            yield server

    return running()


def evil_agent() -> contextlib.AbstractContextManager[RunningServer]:
    """An A2A 0.3 streaming agent whose answer text holds SSE framing, control characters and
    an integer past 64 bits in its event: all of it must reach the client as data."""
    events: list[dict[str, Any]] = [
        {
            "kind": "artifact-update",
            "taskId": "t",
            "contextId": "c",
            "artifact": {"artifactId": "a", "parts": [{"kind": "text", "text": EVIL}]},
            "metadata": {"huge": 2**70},
        },
        {
            "kind": "status-update",
            "taskId": "t",
            "contextId": "c",
            "status": {"state": "completed"},
            "final": True,
        },
    ]
    return v03_sse_agent("evil", events)


@dataclass
class CancellableAgent:
    """An A2A 0.3 streaming agent (see :func:`cancellable_agent`) and the task ids it was
    asked to cancel."""

    server: RunningServer
    cancelled: list[str]


# One streamed answer: the JSON-RPC request and the writer, from the status line on; the
# connection closes after it.
Answer = Callable[[dict[str, Any], asyncio.StreamWriter], Awaitable[None]]


@contextlib.contextmanager
def cancellable_agent(name: str, answer: Answer) -> Iterator[CancellableAgent]:
    """An A2A 0.3 agent: its card, ``tasks/cancel`` (recorded, answered ``canceled``), and
    every message streamed by ``answer``."""
    box: list[RunningServer] = []
    cancelled: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            if request.method == "GET":
                writer.write(card_v03_response(box[0].url, name))
                continue
            doc = json.loads(request.body)
            if doc["method"] == "tasks/cancel":
                cancelled.append(doc["params"]["id"])
                task = {"kind": "task", "id": doc["params"]["id"], "contextId": "c",
                        "status": {"state": "canceled"}}  # fmt: skip
                body = json.dumps({"jsonrpc": "2.0", "id": doc["id"], "result": task}).encode()
                writer.write(response_bytes(200, body, "application/json"))
                continue
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"connection: close\r\n\r\n")  # fmt: skip
            await answer(doc, writer)
            writer.close()
            return

    with serve(handle) as server:
        box.append(server)
        yield CancellableAgent(server, cancelled)


async def _break_off(doc: dict[str, Any], writer: asyncio.StreamWriter) -> None:
    """Task ``t-broken``: working, then the connection closes mid-answer (no terminal state)."""
    working = {"kind": "status-update", "taskId": "t-broken", "contextId": "c",
               "status": {"state": "working"}, "final": False}  # fmt: skip
    writer.write(sse(working, doc["id"]))
    await writer.drain()
    await asyncio.sleep(0.1)


FLOOD_EVENTS, FLOOD_TEXT = 128, 64 * 1024  # 8 MiB of answer, as fast as the socket takes it


async def _flood(doc: dict[str, Any], writer: asyncio.StreamWriter) -> None:
    """Task ``t-flood``: 8 MiB of answer at once, then completed."""
    for i in range(FLOOD_EVENTS):
        part = {"kind": "text", "text": "x" * FLOOD_TEXT}
        event = {"kind": "artifact-update", "taskId": "t-flood", "contextId": "c",
                 "artifact": {"artifactId": "a", "parts": [part]}, "append": i > 0}  # fmt: skip
        writer.write(sse(event, doc["id"]))
        await writer.drain()
    end = {"kind": "status-update", "taskId": "t-flood", "contextId": "c",
           "status": {"state": "completed"}, "final": True}  # fmt: skip
    writer.write(sse(end, doc["id"]))
    await writer.drain()


@dataclass
class Fleet:
    fast: RunningAgent  # 100 ms of thought, then 5 chunks 50 ms apart
    slow: RunningAgent  # 1.5 s of thought, then 3 chunks 300 ms apart
    breaking: CancellableAgent  # its stream breaks off after the first event
    flood: CancellableAgent  # 8 MiB of answer at once
    inventory: Path


@pytest.fixture(scope="module")
def fleet(demo_fleet: DemoFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with contextlib.ExitStack() as stack:
        fast = stack.enter_context(
            run_sdk_agent("stream", "--think-ms", "100", "--chunks", "5", "--gap-ms", "50")
        )
        slow = stack.enter_context(
            run_sdk_agent("stream", "--think-ms", "1500", "--chunks", "3", "--gap-ms", "300")
        )
        bad = stack.enter_context(run_sdk_agent("fail", "--think-ms", "50"))
        broken = stack.enter_context(broken_agent())
        evil = stack.enter_context(evil_agent())
        breaking = stack.enter_context(cancellable_agent("breaking", _break_off))
        flood = stack.enter_context(cancellable_agent("flood", _flood))
        a2a = [
            ("llm-1", "llm", fast.url),
            ("slow-1", "slow", slow.url),
            ("bad-1", "bad", bad.url),
            ("broken-1", "mixed", broken.url),
            ("llm-2", "mixed", fast.url),
            ("evil-1", "evil", evil.url),
            ("breaking-1", "breaking", breaking.server.url),
            ("flood-1", "flood", flood.server.url),
        ]
        agents: list[dict[str, Any]] = [
            {"id": i, "type": t, "url": u, "protocol": "a2a"} for i, t, u in a2a
        ]
        agents.append(
            {"id": "weather-1", "type": "weather", "url": demo_fleet.agent("weather-1").url}
        )
        agents.append({"id": "ghost-1", "type": "ghost", "url": f"http://127.0.0.1:{free_port()}"})
        doc = {
            "version": 1,
            "defaults": {"timeout": "10s", "health": {"interval": "1s"}},
            "routing": {"strategy": "round_robin", "retries": 1, "retry_budget": "100%"},
            "agents": agents,
        }
        path = tmp_path_factory.mktemp("serve-stream") / "agents.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        yield Fleet(fast, slow, breaking, flood, path)


@pytest.fixture(scope="module")
def gateway(fleet: Fleet) -> Iterator[Served]:
    # Idle and read timeouts far below the slow agent's 1.5 s of silence: neither may cut it.
    served = start_serve(
        fleet.inventory, "--no-state", "--idle-timeout", "0.4s", "--read-timeout", "0.4s"
    )
    try:
        yield served
    finally:
        stop_serve(served)


def metrics(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url + "/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


# ---- the event vocabulary --------------------------------------------------------------------


def test_an_a2a_stream_is_relayed_event_by_event_as_it_arrives(
    gateway: Served, fleet: Fleet
) -> None:
    events = stream(gateway.url, "llm")
    assert names(events)[0] == "route"
    assert events[0].data == {"agent": "llm-1", "type": "llm", "url": fleet.fast.url}
    assert names(events)[-1] == "done"
    relayed = [e for e in events[1:-1] if e.event in A2A_KINDS]
    # every agent event is there, in order: the task, working, five chunks, completed
    assert [e.event for e in relayed] == ["task", "status-update", *["artifact-update"] * 5,
                                          "status-update"]  # fmt: skip
    assert relayed[-1].data["status"]["state"] == "TASK_STATE_COMPLETED"
    assert text_of(events) == "tok0 tok1 tok2 tok3 tok4"
    chunks = [e for e in events if e.event == "chunk"]
    assert len(chunks) == 5
    # relayed as they came, not when the answer was done: the chunks are ~50 ms apart
    assert events[-1].at - chunks[0].at > 0.15
    done = events[-1].data
    assert done["agent"] == "llm-1" and done["state"] == "completed"
    assert done["reply"] == "tok0 tok1 tok2 tok3 tok4"
    assert done["stream"]["first_artifact_ms"] >= 100 and done["stream"]["events"] == 8
    assert done["stream"]["total_ms"] >= done["stream"]["first_artifact_ms"] + 150
    assert done["latency_ms"] >= done["stream"]["total_ms"] * 0.9
    assert [(a["agent"], a["outcome"]) for a in done["attempts"]] == [("llm-1", "ok")]


def test_an_agent_that_does_not_stream_gives_one_chunk_with_its_whole_reply(
    gateway: Served, demo_fleet: DemoFleet
) -> None:
    events = stream(gateway.url, "weather", "rain?")
    assert names(events) == ["route", "chunk", "done"]
    assert events[0].data["agent"] == "weather-1"
    assert "rain?" in events[1].data["text"]
    done = events[2].data
    assert done["reply"] == events[1].data["text"]
    assert done["state"] is None and done["stream"] is None


def test_a_failed_task_ends_with_an_error_event_of_kind_task_failed(gateway: Served) -> None:
    events = stream(gateway.url, "bad")
    assert names(events)[0] == "route" and names(events)[-1] == "error"
    assert "done" not in names(events)
    end = events[-1].data
    assert end["error"]["kind"] == "task_failed"
    assert "model overloaded" in end["error"]["message"]
    assert end["state"] == "failed"
    assert [(a["agent"], a["outcome"]) for a in end["attempts"]] == [("bad-1", "task_failed")]


def test_a_replica_failing_before_its_first_event_is_failed_over(gateway: Served) -> None:
    """round_robin alternates broken-1 and llm-2: broken-1's 500 comes before any event, so
    the request moves on, and the client sees only llm-2's answer, named by the route event."""
    runs = [stream(gateway.url, "mixed") for _ in range(4)]
    for events in runs:
        assert names(events)[0] == "route" and events[0].data["agent"] == "llm-2"
        assert names(events)[-1] == "done" and text_of(events) == "tok0 tok1 tok2 tok3 tok4"
    tried = [[(a["agent"], a["outcome"]) for a in e[-1].data["attempts"]] for e in runs]
    assert [("broken-1", "http_5xx"), ("llm-2", "ok")] in tried


def test_the_message_send_alias_streams_too(gateway: Served) -> None:
    events = stream(gateway.url, "llm", path="/message/send")
    assert names(events)[0] == "route" and names(events)[-1] == "done"
    assert text_of(events) == "tok0 tok1 tok2 tok3 tok4"


def test_no_replica_answering_ends_with_an_error_event_and_no_route(gateway: Served) -> None:
    events = stream(gateway.url, "ghost")
    assert names(events) == ["error"]
    end = events[0].data
    assert end["error"]["kind"] in {"connect", "breaker_open"} and end["error"]["message"]
    assert all(a["agent"] == "ghost-1" for a in end["attempts"])


def test_agent_text_cannot_break_the_framing(gateway: Served) -> None:
    events = stream(gateway.url, "evil")
    assert names(events) == ["route", "artifact-update", "chunk", "status-update", "done"]
    assert events[2].data["text"] == EVIL  # exactly, as data
    assert events[1].data["metadata"]["huge"] == 2**70
    assert events[-1].data["agent"] == "evil-1"


def test_without_the_accept_header_the_answer_is_json_as_before(gateway: Served) -> None:
    r = httpx.post(gateway.url + "/route/llm", json={"message": "hi"}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert (body["agent"], body["reply"]) == ("llm-1", "tok0 tok1 tok2 tok3 tok4")


@pytest.mark.parametrize(
    ("path", "content", "status", "kind"),
    [
        ("/route/nope", b'{"message": "hi"}', 404, "not_found"),
        ("/route/llm", b"{not json", 400, "bad_request"),
        ("/route/llm", b'{"message": 1}', 400, "bad_request"),
    ],
)
def test_refusals_before_routing_stay_json_with_their_status(
    gateway: Served, path: str, content: bytes, status: int, kind: str
) -> None:
    r = httpx.post(gateway.url + path, content=content, headers=SSE, timeout=10)
    assert r.status_code == status
    assert r.json()["error"]["kind"] == kind


def test_idle_and_read_timeouts_do_not_cut_a_long_stream(gateway: Served) -> None:
    """slow-1 is silent for 1.5 s after its first events; the gateway's timeouts are 0.4 s."""
    events = stream(gateway.url, "slow")
    assert names(events)[-1] == "done"
    assert text_of(events) == "tok0 tok1 tok2"
    assert events[-1].at - events[0].at > 1.5


# ---- a client that hangs up ------------------------------------------------------------------


async def task_state(agent_url: str, task_id: str) -> str | None:
    agent = Agent(id="probe", type="t", url=agent_url, protocol="a2a", timeout=5.0)
    async with HttpxTransport() as transport:
        client = ProtocolClient(transport)
        assert (await client.discover(agent)).card is not None
        card = client.cached_card(agent)
        assert card is not None
        spec = get_task_request(agent, card, task_id, 5.0)
        return read_a2a_reply(await transport.send(agent.id, spec), card.binding).state


def until(state: str, agent_url: str, task_id: str, seconds: float = 5.0) -> str | None:
    deadline = time.monotonic() + seconds
    seen = None
    while time.monotonic() < deadline:
        seen = asyncio.run(task_state(agent_url, task_id))
        if seen == state:
            break
        time.sleep(0.05)
    return seen


def first_task_id(url: str, type_: str, client: httpx.Client) -> tuple[str, Iterator[bytes]]:
    """Open a streamed route on ``client`` and read until an event names the task; the rest
    of the body too, unread (the caller keeps it: dropped, it closes the connection)."""
    request = client.build_request(
        "POST", f"{url}/route/{type_}", json={"message": "hi"}, headers=SSE
    )
    body = client.send(request, stream=True).iter_raw()
    decoder = SSEDecoder()
    for chunk in body:
        for event in decoder.feed(chunk):
            found = task_id_of(event) if event.event in A2A_KINDS else None
            if found:
                return found, body
    raise AssertionError("the stream ended before naming its task")


def test_a_client_that_hangs_up_closes_the_stream_and_cancels_the_task(
    gateway: Served, fleet: Fleet
) -> None:
    before = metrics(gateway.url)
    client = httpx.Client(timeout=10)
    task_id, rest = first_task_id(gateway.url, "slow", client)
    assert asyncio.run(task_state(fleet.slow.url, task_id)) == "working"
    del rest
    client.close()  # hang up while the agent still thinks (1.5 s)
    assert until("canceled", fleet.slow.url, task_id) == "canceled"  # the agent saw the cancel
    deadline = time.monotonic() + 5
    while True:
        after = metrics(gateway.url)
        cancels = sample(after, "latcli_gateway_task_cancels_total", outcome="ok")
        if cancels > sample(before, "latcli_gateway_task_cancels_total", outcome="ok"):
            break
        assert time.monotonic() < deadline, "no cancel counted"
        time.sleep(0.05)
    cut = "latcli_gateway_cut_total"
    assert (
        sample(after, cut, reason="client_disconnect")
        == sample(before, cut, reason="client_disconnect") + 1
    )
    assert sample(after, "latcli_gateway_in_flight") == 0


def test_a_stream_that_breaks_off_ends_with_an_error_event_and_its_task_is_cancelled(
    gateway: Served, fleet: Fleet
) -> None:
    events = stream(gateway.url, "breaking")
    assert names(events) == ["route", "status-update", "error"]
    assert events[-1].data["error"]["kind"] in {"reset", "bad_response"}
    assert events[-1].data["state"] == "working"
    deadline = time.monotonic() + 5
    while "t-broken" not in fleet.breaking.cancelled:
        assert time.monotonic() < deadline, "the broken-off task was not cancelled"
        time.sleep(0.05)


# ---- limits and shutdown -----------------------------------------------------------------


def test_a_stream_holds_its_in_flight_slot_until_it_ends(fleet: Fleet) -> None:
    served = start_serve(fleet.inventory, "--no-state", "--max-in-flight", "1")
    try:
        with httpx.Client(timeout=10) as holder:
            # a stream under way, past its first event
            _, rest = first_task_id(served.url, "slow", holder)
            shed = httpx.post(served.url + "/route/llm", json={"message": "hi"}, headers=SSE)
            assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
            assert shed.json()["error"]["kind"] == "overloaded"
            del rest
        # the holder hung up: its slot comes back
        deadline = time.monotonic() + 5
        while sample(metrics(served.url), "latcli_gateway_in_flight") != 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert names(stream(served.url, "llm"))[-1] == "done"
    finally:
        stop_serve(served)


def test_a_client_that_falls_too_far_behind_is_cut_and_its_task_cancelled(fleet: Fleet) -> None:
    # The agent streams 8 MiB at once; the client asks and reads nothing (a 4 KiB receive
    # buffer): past 256 KiB waiting in the gateway, the client is cut, not the gateway's memory.
    served = start_serve(fleet.inventory, "--no-state", "--max-stream-queue", "256KiB")
    try:
        host, port = httpx.URL(served.url).host, httpx.URL(served.url).port
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, port))
        body = b'{"message": "hi"}'
        sock.sendall(b"POST /route/flood HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n"
                     b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                     % (len(body), body))  # fmt: skip
        deadline = time.monotonic() + 20
        while sample(metrics(served.url), "latcli_gateway_cut_total", reason="slow_client") < 1:
            assert time.monotonic() < deadline, "the slow client was never cut"
            time.sleep(0.1)
        got = 0
        sock.settimeout(5)  # what was sent before the cut, then a reset or an end (no timeout)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                got += len(chunk)
        sock.close()
        assert got < FLOOD_EVENTS * FLOOD_TEXT  # it never got the whole answer
        while "t-flood" not in fleet.flood.cancelled:
            assert time.monotonic() < deadline, "the flooding task was not cancelled"
            time.sleep(0.05)
        after = metrics(served.url)
        assert sample(after, "latcli_gateway_in_flight") == 0
        assert sample(after, "latcli_gateway_cut_total", reason="client_disconnect") == 0
        # the gateway goes on: a client that reads gets its whole answer
        events = stream(served.url, "llm")
        assert names(events)[-1] == "done" and text_of(events)
    finally:
        stop_serve(served)


def test_a_stream_cut_by_the_drain_ends_with_an_error_event_and_cancels_its_task(
    fleet: Fleet,
) -> None:
    served = start_serve(fleet.inventory, "--no-state", "--drain", "0.3s")
    try:
        decoder, got = SSEDecoder(), []
        with httpx.Client(timeout=10) as client:
            request = client.build_request(
                "POST", f"{served.url}/route/slow", json={"message": "hi"}, headers=SSE
            )
            response = client.send(request, stream=True)
            task_id = None
            for chunk in response.iter_raw():
                for event in decoder.feed(chunk):
                    got.append(event)
                    if task_id is None and event.event in A2A_KINDS:
                        task_id = task_id_of(event)
                        if task_id:
                            served.proc.send_signal(signal.SIGTERM)
        assert task_id is not None
        assert got[-1].event == "error"
        assert json.loads(got[-1].data)["error"]["kind"] == "unavailable"
        assert until("canceled", fleet.slow.url, task_id) == "canceled"
        assert served.proc.wait(15) == 0
    finally:
        stop_serve(served)


# ---- /metrics ----------------------------------------------------------------------------------


def test_metrics_count_streams_phases_and_outcomes(gateway: Served) -> None:
    stream(gateway.url, "llm")
    stream(gateway.url, "bad")
    stream(gateway.url, "weather")
    found = metrics(gateway.url)
    first = "latcli_gateway_stream_first_artifact_seconds"
    total = "latcli_gateway_stream_total_seconds"
    for agent, type_ in (("llm-1", "llm"), ("weather-1", "weather")):
        assert sample(found, first + "_count", agent=agent, type=type_) >= 1
        assert sample(found, total + "_count", agent=agent, type=type_) >= 1
    # a first token at ~100 ms, an answer at ~300 ms: in those buckets, not below
    llm = {"agent": "llm-1", "type": "llm"}
    assert sample(found, first + "_bucket", **llm, le="0.05") == 0
    assert sample(found, first + "_bucket", **llm, le="0.25") >= 1
    assert sample(found, total + "_bucket", **llm, le="0.25") == 0
    attempts = "latcli_gateway_attempts_total"
    assert sample(found, attempts, agent="bad-1", type="bad", outcome="task_failed") >= 1
    # zero series from the start, for alerts
    assert (
        attempts,
        frozenset({"agent": "llm-1", "type": "llm", "outcome": "rate_limited"}.items()),
    ) in found
    assert sample(found, "latcli_gateway_requests_total", type="bad", code="503") >= 1
    assert sample(found, "latcli_gateway_requests_total", type="llm", code="200") >= 1
