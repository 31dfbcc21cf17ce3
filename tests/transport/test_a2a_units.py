"""A2A as deployed, without a socket: task states, bindings, origins, requests, stream phases,
the JSON depth bound and the inventory's ``a2a`` section (DESIGN §2, §7)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from latcli.config.loading import load_inventory
from latcli.config.model import A2AConfig, Agent
from latcli.config.problems import InventoryError
from latcli.core.errors import ErrorKind
from latcli.transport.a2a.bindings import CardRefused, Interface, choose, origin, same_origin
from latcli.transport.a2a.lifecycle import OUTCOMES, TaskOutcome, normalize_state
from latcli.transport.a2a.stream import StreamError, StreamReader, split_event
from latcli.transport.base import DEFAULT_MAX_BODY, Outcome, Timings
from latcli.transport.replies import (
    MAX_JSON_DEPTH,
    Card,
    JSONTooDeep,
    loads,
    parse_card,
    read_a2a_reply,
    read_card,
)
from latcli.transport.requests import (
    MAX_STREAM_BYTES,
    a2a_message_request,
    get_task_request,
    new_message_id,
)

BASE = "http://127.0.0.1:9/"
AGENT = Agent(id="c1", type="cal", url="http://127.0.0.1:9", protocol="a2a", headers={"X-T": "s"})


def rpc(result: Any) -> Outcome:
    body = {"jsonrpc": "2.0", "id": "1", "result": result}
    return Outcome(200, json.dumps(body).encode(), Timings(total=3.0))


def task(state: str, text: str = "", artifacts: tuple[str, ...] = (), wrap: bool = True) -> Any:
    status: dict[str, Any] = {"state": state}
    if text:
        status["message"] = {"role": "ROLE_AGENT", "parts": [{"text": text}]}
    doc: dict[str, Any] = {"id": "t-1", "status": status}
    if artifacts:
        doc["artifacts"] = [{"artifactId": "a", "parts": [{"text": t} for t in artifacts]}]
    return {"task": doc} if wrap else {**doc, "kind": "task"}


# ---- task states ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("TASK_STATE_COMPLETED", "completed"),
        ("completed", "completed"),
        ("TASK_STATE_INPUT_REQUIRED", "input-required"),
        ("input-required", "input-required"),
        ("TASK_STATE_AUTH_REQUIRED", "auth-required"),
        ("TASK_STATE_CANCELED", "canceled"),
        ("cancelled", "canceled"),
        ("TASK_STATE_UNSPECIFIED", "unknown"),
        ("\\x1b]0;pwned\\x07", None),  # agent text never becomes a reported state
        (7, None),
    ],
)
def test_states_are_reported_in_the_03_spelling(raw: object, state: str | None) -> None:
    assert normalize_state(raw) == state


@pytest.mark.parametrize("wrap", [True, False], ids=["1.0", "0.3"])
@pytest.mark.parametrize(
    ("state", "ok", "verdict"),
    [
        ("completed", True, TaskOutcome.ANSWER),
        ("failed", False, TaskOutcome.FAILED),
        ("rejected", False, TaskOutcome.FAILED),
        ("canceled", False, TaskOutcome.FAILED),
        ("input-required", True, TaskOutcome.INTERRUPTED),
        ("auth-required", True, TaskOutcome.INTERRUPTED),
    ],
)
def test_unary_task_states(state: str, ok: bool, verdict: TaskOutcome, wrap: bool) -> None:
    raw = "TASK_STATE_" + state.upper().replace("-", "_") if wrap else state
    reply = read_a2a_reply(rpc(task(raw, "model overloaded", wrap=wrap)))
    assert OUTCOMES[state] is verdict
    assert (reply.ok, reply.state) == (ok, state)
    if not ok:
        assert reply.error is ErrorKind.TASK_FAILED and reply.is_failure
        assert reply.message == f"task {state}: model overloaded"
    else:
        assert reply.text == "model overloaded"  # the status message, as no artifact came


def test_a_completed_task_answers_with_its_artifacts_and_a_message_has_no_state() -> None:
    reply = read_a2a_reply(rpc(task("TASK_STATE_COMPLETED", "done", ("a", "b"))))
    assert (reply.text, reply.state, reply.task_id) == ("ab", "completed", "t-1")
    msg = read_a2a_reply(rpc({"message": {"parts": [{"text": "hi"}]}}))
    assert (msg.text, msg.state, msg.ok) == ("hi", None, True)


def test_http_json_binding_reads_bare_results_and_error_bodies() -> None:
    bare = Outcome(200, json.dumps(task("TASK_STATE_WORKING")).encode(), Timings())
    assert read_a2a_reply(bare, "http+json").state == "working"
    err = Outcome(404, b'{"error": {"code": 404, "message": "task not found"}}', Timings())
    reply = read_a2a_reply(err, "http+json")
    assert reply.error is ErrorKind.HTTP_4XX and reply.message == "HTTP 404: task not found"


# ---- bindings and origins ---------------------------------------------------------------


def card(*interfaces: tuple[str, str, str], **extra: Any) -> dict[str, Any]:
    listed = [{"url": u, "protocolBinding": b, "protocolVersion": v} for u, b, v in interfaces]
    return {"name": "c", "supportedInterfaces": listed, **extra}


@pytest.mark.parametrize(
    ("doc", "forced", "want"),
    [
        (
            card((BASE, "HTTP+JSON", "1.0"), (BASE + "rpc", "JSONRPC", "1.0")),
            None,
            ("jsonrpc", "1.0"),
        ),
        (
            card((BASE, "HTTP+JSON", "1.0"), (BASE + "rpc", "JSONRPC", "1.0")),
            "http+json",
            ("http+json", "1.0"),
        ),
        (card((BASE, "HTTP+JSON", "1.0")), None, ("http+json", "1.0")),
        (card((BASE, "JSONRPC", "0.3"), (BASE, "HTTP+JSON", "1.0")), None, ("http+json", "1.0")),
        (card((BASE, "GRPC", "1.0"), (BASE, "JSONRPC", "1.0")), None, ("jsonrpc", "1.0")),
        ({"name": "c", "url": BASE, "preferredTransport": "HTTP+JSON"}, None, ("http+json", "0.3")),
        (
            {
                "name": "c",
                "url": BASE,
                "preferredTransport": "GRPC",
                "additionalInterfaces": [{"url": BASE + "j", "transport": "JSONRPC"}],
            },
            None,
            ("jsonrpc", "0.3"),
        ),
        ({"name": "c"}, None, ("jsonrpc", "0.3")),
    ],
)
def test_binding_choice(doc: dict[str, Any], forced: Any, want: tuple[str, str]) -> None:
    got = parse_card(doc, BASE, A2AConfig(binding=forced))
    assert (got.binding, got.version) == want


def test_cards_latcli_cannot_use_say_why_in_one_line() -> None:
    grpc = card((BASE, "GRPC", "1.0"))
    with pytest.raises(CardRefused, match=r"^the agent card offers only GRPC; latcli speaks"):
        parse_card(grpc, BASE)
    rest = card((BASE, "HTTP+JSON", "1.0"))
    with pytest.raises(CardRefused, match="asks for binding jsonrpc but the card offers only http"):
        parse_card(rest, BASE, A2AConfig(binding="jsonrpc"))


def test_a_card_on_another_origin_is_refused_naming_both_unless_allowed() -> None:
    other = card(("http://127.0.0.1:10/rpc", "JSONRPC", "1.0"))
    reply = read_card(Outcome(200, json.dumps(other).encode(), Timings()), BASE)
    assert reply.error is ErrorKind.BAD_RESPONSE and reply.card is None
    assert "http://127.0.0.1:10" in (reply.message or "")
    assert "not the agent's origin http://127.0.0.1:9" in (reply.message or "")
    allowed = parse_card(other, BASE, A2AConfig(allow_origins=("http://127.0.0.1:10",)))
    assert allowed.rpc_url == "http://127.0.0.1:10/rpc"
    # scheme and port are part of the origin; a relative URL stays home
    for url in ("https://127.0.0.1:9/", "http://127.0.0.1:99/", "http://localhost:9/"):
        with pytest.raises(CardRefused):
            parse_card(card((url, "JSONRPC", "1.0")), BASE)
    assert parse_card(card(("/rpc", "JSONRPC", "1.0")), BASE).rpc_url == BASE + "rpc"


def test_origins() -> None:
    assert origin("https://h/x") == "https://h:443"
    assert origin("http://[::1]:8/") == "http://[::1]:8"
    assert origin("mailto:x") == "" and origin("http://h:99999/") == ""
    assert same_origin("http://h:80/a", "http://h")
    assert not same_origin("http://h:81/a", "http://h")
    assert same_origin("https://o:443/", "http://h", ["https://o"])
    assert choose([Interface(BASE, "jsonrpc", "1.0")]).url == BASE


def test_inventory_headers_go_only_to_the_agents_origin() -> None:
    home = Card("1.0", "c", BASE + "rpc")
    away = Card("1.0", "c", "http://127.0.0.1:10/rpc")
    assert a2a_message_request(AGENT, home, "hi", "m").headers["X-T"] == "s"
    assert "X-T" not in a2a_message_request(AGENT, away, "hi", "m").headers
    allowed = Agent(
        id="c1",
        type="cal",
        url="http://127.0.0.1:9",
        protocol="a2a",
        headers={"X-T": "s"},
        a2a=A2AConfig(allow_origins=("http://127.0.0.1:10",)),
    )
    assert a2a_message_request(allowed, away, "hi", "m").headers["X-T"] == "s"


# ---- requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("binding", "version", "stream", "url", "method"),
    [
        ("jsonrpc", "1.0", False, BASE, "SendMessage"),
        ("jsonrpc", "1.0", True, BASE, "SendStreamingMessage"),
        ("jsonrpc", "0.3", False, BASE, "message/send"),
        ("jsonrpc", "0.3", True, BASE, "message/stream"),
        ("http+json", "1.0", False, BASE + "message:send", None),
        ("http+json", "1.0", True, BASE + "message:stream", None),
        ("http+json", "0.3", True, BASE + "v1/message:stream", None),
    ],
)
def test_message_requests(
    binding: Any, version: Any, stream: bool, url: str, method: str | None
) -> None:
    spec = a2a_message_request(
        AGENT, Card(version, "c", BASE, binding=binding), "hi", "m-1", stream=stream
    )
    body = json.loads(spec.body or b"")
    assert (spec.method, spec.url) == ("POST", url)
    assert ("A2A-Version" in spec.headers) == (version == "1.0")
    assert (spec.headers.get("accept") == "text/event-stream") == stream
    assert spec.max_body == (MAX_STREAM_BYTES if stream else DEFAULT_MAX_BODY)
    params = body["params"] if method else body
    assert body.get("method") == method and params["message"]["messageId"] == "m-1"


def test_get_task_requests_quote_the_agents_task_id() -> None:
    rest = get_task_request(AGENT, Card("1.0", "c", BASE, binding="http+json"), "a/../b?c", 2.0)
    assert (rest.method, rest.url, rest.timeout) == ("GET", BASE + "tasks/a%2F..%2Fb%3Fc", 2.0)
    rpc_spec = get_task_request(AGENT, Card("0.3", "c", BASE), "t-1", 2.0)
    body = json.loads(rpc_spec.body or b"")
    assert (body["method"], body["params"]) == ("tasks/get", {"id": "t-1"})


# ---- stream phases ------------------------------------------------------------------------


def _events_10() -> list[tuple[float, Any]]:
    def art(text: str, append: bool, last: bool = False) -> dict[str, Any]:
        update = {"artifact": {"artifactId": "a", "parts": [{"text": text}]}, "append": append}
        return {"artifactUpdate": {**update, "lastChunk": last}}

    def status(state: str) -> dict[str, Any]:
        return {"statusUpdate": {"status": {"state": state}}}

    return [
        (0.010, {"task": {"id": "t", "status": {"state": "TASK_STATE_SUBMITTED"}}}),
        (0.011, status("TASK_STATE_WORKING")),
        (0.200, art("Hello", False)),
        (0.300, art(", ", True)),
        (0.450, art("world", True, True)),
        (0.460, status("TASK_STATE_COMPLETED")),
    ]


def test_stream_phases_and_appended_chunks() -> None:
    reader = StreamReader(started=0.0)
    chunks = []
    for at, doc in _events_10():
        kind, payload = split_event({"jsonrpc": "2.0", "id": 1, "result": doc}, jsonrpc=True)
        chunks.append(reader.event(at, kind, payload))
    assert reader.done and reader.view().text == "Hello, world"
    assert [c for c in chunks if c] == ["Hello", ", ", "world"]
    p = reader.phases()
    assert (p.first_event_ms, p.working_ms, p.first_artifact_ms) == pytest.approx((10, 11, 200))
    assert (p.gap_ms_max, p.total_ms, p.events, p.chunks) == pytest.approx((150, 460, 6, 3))


def test_a_chunk_without_append_replaces_its_artifact_and_03_kinds_are_read() -> None:
    reader = StreamReader(started=0.0)
    for doc in (
        {
            "kind": "artifact-update",
            "artifact": {"artifactId": "a", "parts": [{"kind": "text", "text": "x"}]},
        },
        {
            "kind": "artifact-update",
            "artifact": {"artifactId": "a", "parts": [{"kind": "text", "text": "y"}]},
        },
        {
            "kind": "status-update",
            "status": {"state": "failed", "message": {"parts": [{"text": "boom"}]}},
            "final": True,
        },
    ):
        reader.event(1.0, *split_event(doc, jsonrpc=False))
    assert reader.done and reader.state == "failed"
    assert reader.view().failure_text() == "task failed: boom"


def test_an_agent_that_streams_only_the_finished_task_gives_its_text_as_one_chunk() -> None:
    reader = StreamReader(started=0.0)
    done = {
        "task": {
            "id": "t",
            "status": {"state": "TASK_STATE_COMPLETED"},
            "artifacts": [{"artifactId": "a", "parts": [{"text": "all"}, {"text": " at once"}]}],
        }
    }
    assert reader.event(0.25, *split_event(done, jsonrpc=False)) == "all at once"
    assert reader.done and reader.view().text == "all at once"
    p = reader.phases()
    assert (p.first_artifact_ms, p.total_ms, p.chunks, p.gap_ms_max) == (250.0, 250.0, 1, None)


def test_stream_events_that_are_errors_or_unknown() -> None:
    with pytest.raises(StreamError) as err:
        split_event({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "x"}}, True)
    assert err.value.rpc_error
    with pytest.raises(StreamError):
        split_event({"jsonrpc": "2.0", "result": {"weird": {}}}, True)
    with pytest.raises(StreamError):
        split_event([1], False)


# ---- JSON depth ---------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 999, 1_001, 100_000])
def test_deep_json_is_refused_never_a_recursion_error(depth: int) -> None:
    with pytest.raises(JSONTooDeep):
        loads(b"[" * depth + b"]" * depth)
    with pytest.raises(JSONTooDeep):  # json's fallback path (NaN) too
        loads("[" * depth + "NaN" + "]" * depth)
    with pytest.raises(JSONTooDeep):
        loads(b'{"a":' * depth + b"1" + b"}" * depth)


def test_json_at_the_bound_and_wide_json_are_fine() -> None:
    assert loads(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    wide = json.dumps([[[i]] for i in range(10_000)])
    assert len(loads(wide)) == 10_000


def test_a_deep_reply_is_bad_response() -> None:
    reply = read_a2a_reply(Outcome(200, b"[" * 5000 + b"]" * 5000, Timings()))
    assert reply.error is ErrorKind.BAD_RESPONSE and "deeper than 128" in (reply.message or "")


# ---- the inventory's a2a section -----------------------------------------------------------


def test_inventory_a2a_section(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\n"
        "defaults:\n"
        "  a2a: {binding: http+json}\n"
        "agents:\n"
        "  - {id: a, type: t, url: 'http://127.0.0.1:1', protocol: a2a}\n"
        "  - {id: b, type: t, url: 'http://127.0.0.1:2', protocol: a2a,\n"
        "     a2a: {allow_origins: ['https://gw.example', 'http://[::1]:8080/']}}\n",
        encoding="utf-8",
    )
    a, b = load_inventory(path, {}).agents
    assert a.a2a == A2AConfig(binding="http+json")
    assert b.a2a == A2AConfig("http+json", ("https://gw.example:443", "http://[::1]:8080"))


def test_inventory_a2a_problems_name_the_line_and_suggest(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\n"
        "agents:\n"
        "  - {id: a, type: t, url: 'http://127.0.0.1:1', a2a: {binding: json-rpc}}\n"
        "  - {id: b, type: t, url: 'http://127.0.0.1:2', a2a: {alow_origins: []}}\n"
        "  - {id: c, type: t, url: 'http://127.0.0.1:3', a2a: {allow_origins: ['ftp://x', 'http://h/p']}}\n"
        "  - {id: d, type: t, url: 'http://127.0.0.1:4', a2a: {binding: grpc}}\n",
        encoding="utf-8",
    )
    with pytest.raises(InventoryError) as err:
        load_inventory(path, {})
    lines = [line.removeprefix(str(path)) for line in str(err.value).splitlines()]
    one_of = "must be one of jsonrpc, http+json"
    origin_like = "not an origin like https://host:443"
    assert lines == [
        f":3 agents[0].a2a.binding: {one_of} (got 'json-rpc'; did you mean 'jsonrpc'?)",
        ":4 agents[1].a2a.alow_origins: unknown key (did you mean 'allow_origins'?)",
        f":5 agents[2].a2a.allow_origins[0]: {origin_like} (got 'ftp://x')",
        f":5 agents[2].a2a.allow_origins[1]: {origin_like} (got 'http://h/p')",
        f":6 agents[3].a2a.binding: {one_of} (got 'grpc'; latcli does not speak gRPC)",
    ]


def test_the_schema_lists_the_a2a_section() -> None:
    from latcli.config.schema import inventory_json_schema

    text = json.dumps(inventory_json_schema())
    assert '"A2ASection"' in text and "allow_origins" in text and '"http+json"' in text


def test_message_ids_are_distinct_version_4_uuids() -> None:
    ids = [new_message_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
