"""The demo assistant: an LLM-like A2A 1.0 agent, started as the fleet starts it (a real
subprocess on a free loopback port) and driven by a2a-sdk 1.3.0's own client, so a wire shape
the SDK would not accept fails here; timings are checked against the agent's own schedule.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import A2AClientError, Client, ClientConfig, create_client
from a2a.types import a2a_pb2
from a2a.utils.errors import InvalidParamsError, TaskNotCancelableError, TaskNotFoundError

from latcli.cli.app import main
from latcli.config.model import Agent, DemoConfig
from latcli.demo.assistant.schedule import answer_tokens
from latcli.demo.control import get_fault, set_fault
from latcli.demo.fleet import Fleet, free_port

pytestmark = pytest.mark.timeout(60)

ID = "assistant-t"
V1 = {"A2A-Version": "1.0"}
JSONRPC, HTTP_JSON = "JSONRPC", "HTTP+JSON"
# Every test starts from this behaviour: quick, and nothing fails unless the test says so.
BASE: dict[str, Any] = {
    "ttft": "20ms",
    "tokens_per_s": 500,
    "chunk_tokens": 5,
    "answer_tokens": 12,
    "fail_tasks": 0,
    "input_required": 0,
    "errors": 0,
    "rate_limited": False,
    "down": False,
    "seed": 11,
    "concurrency_limit": 0,
    "latency": "1ms",
}
S = a2a_pb2.TaskState


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    demo = DemoConfig(app="assistant", ttft="20ms", fail_tasks=0.5)
    agent = Agent(ID, "assistant", "http://127.0.0.1:1", protocol="a2a", demo=demo)
    with Fleet([agent], {ID: free_port()}, seed=3) as fleet:
        yield fleet.urls[ID]


@pytest.fixture(autouse=True)
def _base(request: pytest.FixtureRequest) -> None:
    if "url" in request.fixturenames:
        _fault(request.getfixturevalue("url"), **BASE)


def _fault(url: str, **change: Any) -> dict[str, object]:
    return asyncio.run(set_fault(url, latency=None, errors=None, down=None, extra=change))


def _message(text: str) -> a2a_pb2.Message:
    parts = [a2a_pb2.Part(text=text)]
    return a2a_pb2.Message(role=a2a_pb2.ROLE_USER, message_id=str(uuid.uuid4()), parts=parts)


async def _client(
    http: httpx.AsyncClient,
    url: str,
    binding: str,
    *,
    streaming: bool = True,
    polling: bool = False,
) -> Client:
    config = ClientConfig(
        httpx_client=http,
        streaming=streaming,
        polling=polling,
        supported_protocol_bindings=[binding],
    )
    return await create_client(url, config)


async def _sdk_send(url: str, text: str, binding: str, **config: bool) -> list[Any]:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        sdk = await _client(http, url, binding, **config)
        request = a2a_pb2.SendMessageRequest(message=_message(text))
        return [ev async for ev in sdk.send_message(request)]


def _answer(text: str, tokens: int = BASE["answer_tokens"]) -> str:
    return "".join(answer_tokens(ID, text, tokens))


# -- the a2a-sdk client against the agent ------------------------------------------------


@pytest.mark.parametrize("binding", [JSONRPC, HTTP_JSON])
def test_sdk_client_streams_a_task_to_completion(url: str, binding: str) -> None:
    events = asyncio.run(_sdk_send(url, "how fast?", binding))
    kinds = [ev.WhichOneof("payload") for ev in events]
    assert kinds == ["task", "status_update", *["artifact_update"] * 3, "status_update"]
    assert events[0].task.status.state == S.TASK_STATE_SUBMITTED
    assert events[1].status_update.status.state == S.TASK_STATE_WORKING
    chunks = [ev.artifact_update for ev in events[2:5]]
    assert [(c.append, c.last_chunk) for c in chunks] == [
        (False, False),
        (True, False),
        (True, True),
    ]
    assert "".join(c.artifact.parts[0].text for c in chunks) == _answer("how fast?")
    assert events[-1].status_update.status.state == S.TASK_STATE_COMPLETED
    assert {ev.status_update.task_id for ev in (events[1], events[-1])} == {events[0].task.id}


@pytest.mark.parametrize("binding", [JSONRPC, HTTP_JSON])
def test_sdk_unary_send_waits_for_the_task_and_get_task_agrees(url: str, binding: str) -> None:
    async def run() -> tuple[a2a_pb2.Task, a2a_pb2.Task]:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            sdk = await _client(http, url, binding, streaming=False)
            request = a2a_pb2.SendMessageRequest(message=_message("unary"))
            [event] = [ev async for ev in sdk.send_message(request)]
            got = await sdk.get_task(a2a_pb2.GetTaskRequest(id=event.task.id))
            return event.task, got

    task, got = asyncio.run(run())
    assert task.status.state == got.status.state == S.TASK_STATE_COMPLETED
    for t in (task, got):
        assert "".join(p.text for p in t.artifacts[0].parts) == _answer("unary")
    assert got.history[0].parts[0].text == "unary"


@pytest.mark.parametrize("binding", [JSONRPC, HTTP_JSON])
def test_non_blocking_send_answers_working_and_the_client_polls(url: str, binding: str) -> None:
    _fault(url, ttft="300ms")

    async def run() -> tuple[a2a_pb2.Task, list[int]]:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            sdk = await _client(http, url, binding, streaming=False, polling=True)
            request = a2a_pb2.SendMessageRequest(message=_message("later"))
            [event] = [ev async for ev in sdk.send_message(request)]
            states = []
            for _ in range(100):
                task = await sdk.get_task(a2a_pb2.GetTaskRequest(id=event.task.id))
                states.append(task.status.state)
                if task.status.state == S.TASK_STATE_COMPLETED:
                    break
                await asyncio.sleep(0.02)
            return event.task, states

    first, states = asyncio.run(run())
    assert first.status.state == S.TASK_STATE_WORKING and not first.artifacts
    assert states[0] == S.TASK_STATE_WORKING and states[-1] == S.TASK_STATE_COMPLETED


@pytest.mark.parametrize("binding", [JSONRPC, HTTP_JSON])
def test_cancel_stops_a_task_and_a_second_cancel_is_refused(url: str, binding: str) -> None:
    _fault(url, ttft="5s")

    async def run() -> tuple[float, a2a_pb2.Task, a2a_pb2.Task]:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            sdk = await _client(http, url, binding, streaming=False, polling=True)
            request = a2a_pb2.SendMessageRequest(message=_message("never mind"))
            [event] = [ev async for ev in sdk.send_message(request)]
            start = time.monotonic()
            canceled = await sdk.cancel_task(a2a_pb2.CancelTaskRequest(id=event.task.id))
            took = time.monotonic() - start
            got = await sdk.get_task(a2a_pb2.GetTaskRequest(id=event.task.id))
            with pytest.raises(TaskNotCancelableError):
                await sdk.cancel_task(a2a_pb2.CancelTaskRequest(id=event.task.id))
            with pytest.raises(TaskNotFoundError):
                await sdk.get_task(a2a_pb2.GetTaskRequest(id="no-such-task"))
            return took, canceled, got

    took, canceled, got = asyncio.run(run())
    assert took < 1.0
    assert canceled.status.state == got.status.state == S.TASK_STATE_CANCELED


def test_cancel_ends_a_stream_with_canceled(url: str) -> None:
    _fault(url, ttft="5s")

    async def run() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            async for event in _raw_stream(http, url, "stop me"):
                events.append(event)
                if "statusUpdate" in event and len(events) == 2:
                    task_id = events[0]["task"]["id"]
                    body = {"jsonrpc": "2.0", "id": 2, "method": "CancelTask"}
                    reply = await http.post(
                        url, json={**body, "params": {"id": task_id}}, headers=V1
                    )
                    assert reply.json()["result"]["status"]["state"] == "TASK_STATE_CANCELED"
        return events

    events = asyncio.run(run())
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_CANCELED"


@pytest.mark.parametrize("binding", [JSONRPC, HTTP_JSON])
def test_failed_task_carries_model_overloaded(url: str, binding: str) -> None:
    _fault(url, fail_tasks="100%")
    events = asyncio.run(_sdk_send(url, "anything", binding))
    status = events[-1].status_update.status
    assert status.state == S.TASK_STATE_FAILED
    assert status.message.parts[0].text == "model overloaded"
    assert not any(ev.HasField("artifact_update") for ev in events)


def test_input_required_stops_the_stream_with_a_question(url: str) -> None:
    _fault(url, input_required=1.0)
    events = asyncio.run(_sdk_send(url, "book it", JSONRPC))
    status = events[-1].status_update.status
    assert status.state == S.TASK_STATE_INPUT_REQUIRED
    assert status.message.role == a2a_pb2.ROLE_AGENT and "?" in status.message.parts[0].text


@pytest.mark.parametrize("binding", [JSONRPC, HTTP_JSON])
def test_an_answer_to_input_required_resumes_the_task(url: str, binding: str) -> None:
    _fault(url, input_required=1.0)

    async def run() -> tuple[list[Any], a2a_pb2.Task]:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            sdk = await _client(http, url, binding)
            first = [
                ev
                async for ev in sdk.send_message(
                    a2a_pb2.SendMessageRequest(message=_message("book it"))
                )
            ]
            task_id = first[0].task.id
            answer = _message("the dentist")
            answer.task_id = task_id
            second = [
                ev async for ev in sdk.send_message(a2a_pb2.SendMessageRequest(message=answer))
            ]
            got = await sdk.get_task(a2a_pb2.GetTaskRequest(id=task_id))
            with pytest.raises(InvalidParamsError):  # a completed task takes no more messages
                [ev async for ev in sdk.send_message(a2a_pb2.SendMessageRequest(message=answer))]
            answer.task_id = "no-such-task"
            with pytest.raises(TaskNotFoundError):
                [ev async for ev in sdk.send_message(a2a_pb2.SendMessageRequest(message=answer))]
            return first + second, got

    events, got = asyncio.run(run())
    assert events[-1].status_update.status.state == S.TASK_STATE_COMPLETED
    assert {ev.status_update.task_id for ev in events if ev.HasField("status_update")} == {got.id}
    assert [m.parts[0].text for m in got.history] == ["book it", "the dentist"]
    assert "".join(p.text for p in got.artifacts[0].parts) == _answer("the dentist")


def test_failed_share_over_many_tasks_is_near_the_setting(url: str) -> None:
    _fault(url, ttft="1ms", answer_tokens=1, fail_tasks="25%")

    async def run() -> list[str]:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            replies = [await _rpc(http, url, "SendMessage", _params(f"q{i}")) for i in range(300)]
        return [r["result"]["task"]["status"]["state"] for r in replies]

    states = asyncio.run(run())
    assert set(states) == {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED"}
    assert states.count("TASK_STATE_FAILED") / 300 == pytest.approx(0.25, abs=0.08)


# -- the schedule, measured on the wire --------------------------------------------------


async def _raw_stream(
    http: httpx.AsyncClient, url: str, text: str
) -> AsyncIterator[dict[str, Any]]:
    import json

    body = {"jsonrpc": "2.0", "id": "s", "method": "SendStreamingMessage", "params": _params(text)}
    async with http.stream("POST", url, json=body, headers=V1) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                assert event["jsonrpc"] == "2.0" and event["id"] == "s"
                yield event["result"]


async def _timed_stream(url: str, text: str) -> list[tuple[float, dict[str, Any]]]:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        await http.get(url + "/.well-known/agent-card.json")  # connected before the clock starts
        start = time.monotonic()
        return [(time.monotonic() - start, ev) async for ev in _raw_stream(http, url, text)]


def _artifact_times(events: list[tuple[float, dict[str, Any]]]) -> list[float]:
    return [t for t, ev in events if "artifactUpdate" in ev]


def test_schedule_first_artifact_after_ttft_then_chunks_at_the_token_rate(url: str) -> None:
    _fault(url, ttft="300ms", tokens_per_s=100, chunk_tokens=5, answer_tokens=25)  # gap 50 ms
    events = asyncio.run(_timed_stream(url, "schedule"))
    times = _artifact_times(events)
    assert len(times) == 5
    assert 0.295 <= times[0] <= 0.45  # never early; late only by the box's scheduling
    mean_gap = (times[-1] - times[0]) / 4
    assert mean_gap == pytest.approx(0.05, abs=0.02)
    assert events[-1][0] - times[-1] < 0.05  # completed right after the last chunk


def test_fault_changes_take_effect_at_run_time(url: str) -> None:
    _fault(url, ttft="50ms")
    fast = _artifact_times(asyncio.run(_timed_stream(url, "a")))[0]
    state = _fault(url, ttft="lognormal 400ms 0.01", tokens_per_s=30)
    assert state["ttft"] == "lognormal 400ms 0.01" and state["tokens_per_s"] == 30
    slow = _artifact_times(asyncio.run(_timed_stream(url, "a")))[0]
    assert fast < 0.2 and 0.38 <= slow <= 0.6


def test_concurrency_limit_queues_tasks_as_submitted_until_a_slot_is_free(url: str) -> None:
    _fault(url, ttft="200ms", answer_tokens=1, concurrency_limit=1)

    async def run() -> list[list[tuple[float, dict[str, Any]]]]:
        return list(await asyncio.gather(*(_timed_stream(url, f"q{i}") for i in range(3))))

    try:
        streams = asyncio.run(run())
        load = httpx.get(url + "/admin/load", trust_env=False).json()
    finally:
        _fault(url, concurrency_limit=0)
    firsts = sorted(_artifact_times(events)[0] for events in streams)
    # One at a time, 200 ms each: the second waits for the first, the third for both.
    assert firsts[0] == pytest.approx(0.2, abs=0.1)
    assert firsts[1] - firsts[0] == pytest.approx(0.2, abs=0.06)
    assert firsts[2] - firsts[1] == pytest.approx(0.2, abs=0.06)
    working = sorted(t for events in streams for t, ev in events if _state(ev) == "WORKING")
    assert working[1] > 0.15 and working[2] > 0.35  # queued tasks stay submitted
    assert load["served"] == 3 and load["peak_in_service"] == 1
    assert load["mean_service_ms"] == pytest.approx(200, abs=5)


def test_a_queued_task_answers_submitted_at_once_and_can_be_cancelled(url: str) -> None:
    _fault(url, ttft="5s", concurrency_limit=1)

    async def run() -> tuple[list[str], dict[str, Any], float]:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            later = {**_params("x"), "configuration": {"returnImmediately": True}}
            start = time.monotonic()
            replies = [await _rpc(http, url, "SendMessage", later) for _ in range(2)]
            took = time.monotonic() - start
            tasks = [r["result"]["task"] for r in replies]
            for task in tasks:
                await _rpc(http, url, "CancelTask", {"id": task["id"]})
            load = (await http.get(url + "/admin/load")).json()
            return [t["status"]["state"] for t in tasks], load, took

    try:
        states, load, took = asyncio.run(run())
    finally:
        _fault(url, concurrency_limit=0)
    assert states == ["TASK_STATE_WORKING", "TASK_STATE_SUBMITTED"] and took < 1.0
    assert load["in_service"] == 0 and load["queued"] == 0


def test_same_seed_same_outcomes_on_the_wire_whatever_the_health_checks(url: str) -> None:
    def outcomes(checks: int) -> list[str]:
        _fault(url, ttft="1ms", answer_tokens=1, fail_tasks=0.4, input_required=0.2, seed=42)
        _fault(url, latency="normal 1ms 0.5ms")  # card GETs draw a latency each
        with httpx.Client(trust_env=False, timeout=5) as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": _params("s")}
            replies = []
            for _ in range(30):
                for _ in range(checks):
                    http.get(url + "/.well-known/agent-card.json")
                replies.append(http.post(url, json=body, headers=V1).json())
        return [r["result"]["task"]["status"]["state"] for r in replies]

    first = outcomes(checks=0)
    assert len(set(first)) == 3 and outcomes(checks=2) == first


def _state(event: dict[str, Any]) -> str | None:
    state = event.get("statusUpdate", {}).get("status", {}).get("state")
    return None if state is None else str(state).removeprefix("TASK_STATE_")


# -- rate limits, errors, availability ----------------------------------------------------


def _params(text: str) -> dict[str, Any]:
    msg = {"role": "ROLE_USER", "messageId": str(uuid.uuid4()), "parts": [{"text": text}]}
    return {"message": msg}


async def _rpc(http: httpx.AsyncClient, url: str, method: str, params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = await http.post(url, json=body, headers=V1)
    assert reply.status_code == 200
    doc: dict[str, Any] = reply.json()
    return doc


def test_rate_limited_answers_429_with_retry_after_then_recovers(url: str) -> None:
    def run() -> None:
        with httpx.Client(trust_env=False, timeout=5) as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": _params("hi")}
            ok = http.post(url, json=body, headers=V1).json()["result"]["task"]
            state = _fault(url, rate_limited="3s")
            assert 2.5 < float(str(state["rate_limited"])) <= 3
            for target, payload in ((url, body), (url + "/message:send", _params("hi"))):
                limited = http.post(target, json=payload, headers=V1)
                assert limited.status_code == 429
                assert limited.headers["Retry-After"] in ("2", "3")
            # Tasks in flight can still be read and cancelled; the card (health) stays up.
            get = {"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": ok["id"]}}
            assert "result" in http.post(url, json=get, headers=V1).json()
            assert http.get(url + "/.well-known/agent-card.json").status_code == 200
            _fault(url, rate_limited="off")
            assert http.post(url, json=body, headers=V1).status_code == 200
            _fault(url, rate_limited="300ms")
            assert http.post(url, json=body, headers=V1).status_code == 429
            time.sleep(0.35)
            assert http.post(url, json=body, headers=V1).status_code == 200

    run()


def test_sdk_client_sees_the_429(url: str) -> None:
    _fault(url, rate_limited="on")
    with pytest.raises(A2AClientError, match="429"):
        asyncio.run(_sdk_send(url, "hi", JSONRPC))
    assert asyncio.run(get_fault(url))["rate_limited"] is True


@pytest.mark.parametrize(
    ("method", "params", "headers", "code"),
    [
        ("SendMessage", _params("x"), {}, -32009),  # no A2A-Version: taken as 0.3
        ("message/send", _params("x"), V1, -32601),
        ("SendMessage", {"message": {"parts": []}}, V1, -32602),
        ("GetTask", {"id": "nope"}, V1, -32001),
        ("CancelTask", {}, V1, -32602),
    ],
)
def test_rpc_errors_are_http_200_with_the_sdk_codes(
    url: str, method: str, params: Any, headers: dict[str, str], code: int
) -> None:
    body = {"jsonrpc": "2.0", "id": 5, "method": method, "params": params}
    reply = httpx.post(url, json=body, headers=headers, trust_env=False)
    assert reply.status_code == 200
    assert reply.json()["id"] == 5 and reply.json()["error"]["code"] == code


def test_garbage_is_a_parse_error_and_rest_errors_have_http_statuses(url: str) -> None:
    with httpx.Client(trust_env=False, timeout=5) as http:
        assert http.post(url, content=b"{", headers=V1).json()["error"]["code"] == -32700
        assert http.get(url + "/tasks/nope", headers=V1).status_code == 404
        assert http.get(url + "/tasks/nope").status_code == 400  # no version header
        bad = http.post(url + "/message:stream", json={"message": {}}, headers=V1)
        assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_injected_errors_and_down(url: str) -> None:
    _fault(url, errors=1.0)
    with httpx.Client(trust_env=False, timeout=5) as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": _params("x")}
        assert http.post(url, json=body, headers=V1).json()["error"]["code"] == -32603
        assert http.post(url + "/message:send", json=_params("x"), headers=V1).status_code == 500
        _fault(url, errors=0, down=True)
        assert http.get(url + "/.well-known/agent-card.json").status_code == 503
        _fault(url, down=False)
        assert http.get(url + "/.well-known/agent-card.json").status_code == 200


def test_card_offers_both_bindings_and_streaming(url: str) -> None:
    from google.protobuf.json_format import ParseDict

    doc = httpx.get(url + "/.well-known/agent-card.json", trust_env=False).json()
    card = ParseDict(doc, a2a_pb2.AgentCard())  # the SDK's own type: an unknown field fails
    assert card.capabilities.streaming
    assert {(i.protocol_binding, i.protocol_version) for i in card.supported_interfaces} == {
        (JSONRPC, "1.0"),
        (HTTP_JSON, "1.0"),
    }


# -- the fleet and the CLI -------------------------------------------------------------------


def test_fleet_starts_it_with_the_inventory_behaviour(url: str) -> None:
    # The fixture's DemoConfig said fail_tasks 50%; the autouse reset changed it since.
    state = asyncio.run(get_fault(url))
    assert state["app"] == "assistant" and state["fail_tasks"] == 0


def test_demo_fault_cli_changes_an_assistant(url: str, tmp_path: Path) -> None:
    inventory = tmp_path / "agents.yaml"
    inventory.write_text(
        f'version: 1\nagents:\n  - {{id: {ID}, type: assistant, url: "{url}", protocol: a2a}}\n'
    )
    args = ["demo", "fault", ID, "-i", str(inventory)]
    extra = ["--ttft", "lognormal 400ms 0.5", "--tokens-per-s", "30", "--fail-tasks", "10%"]
    assert main([*args, *extra]) == 0
    state = asyncio.run(get_fault(url))
    assert (state["ttft"], state["tokens_per_s"], state["fail_tasks"]) == (
        "lognormal 400ms 0.5",
        30,
        0.1,
    )
    assert main([*args, "--fail-tasks", "0.2", "--rate-limited", "20s"]) == 0
    state = asyncio.run(get_fault(url))
    assert state["fail_tasks"] == 0.2 and 19 < float(str(state["rate_limited"])) <= 20
    assert main([*args, "--rate-limited", "off", "--input-required", "5%"]) == 0
    assert asyncio.run(get_fault(url))["rate_limited"] is False
    assert main([*args, "--fail-tasks", "lots"]) == 2
    assert main([*args, "--ttft", "whenever"]) == 2


def test_assistant_without_a2a_protocol_is_refused() -> None:
    from latcli.core.errors import LatcliError

    demo = DemoConfig(app="assistant")
    agent = Agent("x", "assistant", f"http://127.0.0.1:{free_port()}", demo=demo)
    with pytest.raises(LatcliError, match="needs protocol: a2a"):
        Fleet([agent]).start()


# -- the inventory's demo: keys ---------------------------------------------------------------


def test_inventory_reads_the_assistant_keys(tmp_path: Path) -> None:
    from latcli.config.loading import load_inventory

    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\nagents:\n"
        '  - {id: a, type: assistant, url: "http://127.0.0.1:9", protocol: a2a,\n'
        '     demo: {app: assistant, ttft: "lognormal 300ms 0.4", tokens_per_s: 20,\n'
        "            chunk_tokens: 2, answer_tokens: 9, fail_tasks: 10%, input_required: 0.05,\n"
        "            rate_limited: 30s, seed: 4}}\n"
    )
    [agent] = load_inventory(path, {}).agents
    assert agent.demo == DemoConfig(
        app="assistant",
        ttft="lognormal 300ms 0.4",
        tokens_per_s=20,
        chunk_tokens=2,
        answer_tokens=9,
        fail_tasks=0.1,
        input_required=0.05,
        rate_limited=30.0,
        seed=4,
    )


def test_inventory_names_bad_assistant_keys_by_line(tmp_path: Path) -> None:
    from latcli.config.loading import load_inventory
    from latcli.config.problems import InventoryError

    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\nagents:\n"
        '  - id: a\n    type: assistant\n    url: "http://127.0.0.1:9"\n'
        '    demo: {app: robot, ttft: "whenever then", fail_tasks: 150%}\n'
    )
    with pytest.raises(InventoryError) as info:
        load_inventory(path, {})
    text = str(info.value)
    assert "agents.yaml:6 agents[0].demo.app: must be one of agent, assistant" in text
    assert "agents[0].demo.ttft: not a latency distribution" in text
    assert "agents[0].demo.fail_tasks: percentage out of range" in text
