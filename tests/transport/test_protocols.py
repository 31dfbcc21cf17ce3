"""Request shapes and reply classification for plain HTTP and A2A 0.3 / 1.0 (DESIGN §2, §4)."""

from __future__ import annotations

import json

import pytest

from latcli.config.model import Agent
from latcli.core.errors import ErrorKind
from latcli.transport.base import Outcome, Timings
from latcli.transport.replies import (
    Card,
    a2a_result_text,
    parse_card,
    read_a2a_reply,
    read_card,
    read_health,
    read_http_reply,
    status_error,
)
from latcli.transport.requests import a2a_message_request, health_request, http_message_request

AGENT = Agent(id="w1", type="weather", url="http://127.0.0.1:9", headers={"Authorization": "t"})
A2A = Agent(id="c1", type="calendar", url="http://127.0.0.1:9", protocol="a2a")


def outcome(body: object, status: int = 200) -> Outcome:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Outcome(status, raw, Timings(total=12.5))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (204, None),
        (302, ErrorKind.BAD_RESPONSE),
        (404, ErrorKind.HTTP_4XX),
        (429, ErrorKind.RATE_LIMITED),
        (500, ErrorKind.HTTP_5XX),
        (503, ErrorKind.HTTP_5XX),
    ],
)
def test_status_classes(status: int, kind: ErrorKind | None) -> None:
    got = status_error(status)
    assert (got[0] if got else None) == kind


@pytest.mark.parametrize(
    ("status", "failure"), [(200, False), (404, False), (400, False), (429, False), (500, True)]
)
def test_what_counts_against_an_agent(status: int, failure: bool) -> None:
    assert read_health(outcome({}, status)).is_failure is failure


def test_transport_errors_are_failures_but_breaker_open_is_not() -> None:
    for kind in (ErrorKind.TIMEOUT, ErrorKind.RESET, ErrorKind.CONNECT, ErrorKind.TOO_LARGE):
        reply = read_health(Outcome(None, b"", Timings(total=1), kind, "x"))
        assert not reply.ok and reply.is_failure and reply.error is kind
    closed = read_health(Outcome(None, b"", Timings(), ErrorKind.BREAKER_OPEN, "open"))
    assert not closed.is_failure


def test_health_request_uses_the_health_path_and_the_card_for_a2a() -> None:
    assert health_request(AGENT).url == "http://127.0.0.1:9/health"
    assert health_request(A2A).url == "http://127.0.0.1:9/.well-known/agent-card.json"
    assert health_request(AGENT).timeout == AGENT.health.timeout
    assert health_request(AGENT).headers["Authorization"] == "t"


def test_http_message_and_reply_text() -> None:
    spec = http_message_request(AGENT, "will it rain?")
    assert (spec.method, spec.url) == ("POST", "http://127.0.0.1:9/message/send")
    assert json.loads(spec.body or b"") == {"message": "will it rain?"}
    assert read_http_reply(outcome({"reply": "yes", "text": "no"})).text == "yes"
    assert read_http_reply(outcome({"text": "t"})).text == "t"
    assert read_http_reply(outcome({"other": 1})).text == '{"other": 1}'


def test_http_reply_that_is_not_json_is_bad_response() -> None:
    reply = read_http_reply(outcome(b"<html>oops</html>"))
    assert reply.error is ErrorKind.BAD_RESPONSE and reply.is_failure
    assert "not JSON" in (reply.message or "")


CARD_10 = {
    "name": "cal",
    "description": "calendar",
    "supportedInterfaces": [
        {"url": "http://127.0.0.1:9/rpc", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
    ],
    "skills": [{"id": "s1", "name": "book"}],
}
CARD_03 = {"name": "cal", "protocolVersion": "0.3.0", "url": "http://127.0.0.1:9/", "skills": []}


BASE = "http://127.0.0.1:9/"


def test_card_versions() -> None:
    one = parse_card(CARD_10, BASE)
    assert (one.version, one.rpc_url, one.skills) == ("1.0", "http://127.0.0.1:9/rpc", ("book",))
    old = parse_card(CARD_03, BASE)
    assert (old.version, old.rpc_url) == ("0.3", "http://127.0.0.1:9/")
    grpc_only = {
        "name": "g",
        "supportedInterfaces": [{"protocolBinding": "GRPC", "protocolVersion": "1.0"}],
    }
    with pytest.raises(ValueError, match="offers only GRPC; latcli speaks JSON-RPC and HTTP"):
        parse_card(grpc_only, BASE)
    with pytest.raises(ValueError, match="no name"):
        parse_card({"skills": []}, BASE)
    assert read_card(outcome(b"nope"), BASE).error is ErrorKind.BAD_RESPONSE


def test_a2a_requests_follow_the_card_version() -> None:
    one = a2a_message_request(A2A, parse_card(CARD_10, BASE), "hi", "m-1")
    env = json.loads(one.body or b"")
    assert one.headers["A2A-Version"] == "1.0" and one.url == "http://127.0.0.1:9/rpc"
    assert env["method"] == "SendMessage"
    assert env["params"]["message"] == {
        "role": "ROLE_USER",
        "messageId": "m-1",
        "parts": [{"text": "hi"}],
    }
    old = a2a_message_request(A2A, Card("0.3", "cal", "http://h/"), "hi", "m-1")
    env = json.loads(old.body or b"")
    assert "A2A-Version" not in old.headers and env["method"] == "message/send"
    assert env["params"]["message"]["parts"] == [{"kind": "text", "text": "hi"}]
    assert env["params"]["message"]["messageId"] == "m-1"


def test_jsonrpc_error_with_http_200_is_a_failure() -> None:
    body = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "boom"}}
    reply = read_a2a_reply(outcome(body))
    assert reply.status == 200 and reply.error is ErrorKind.RPC_ERROR and reply.is_failure
    mismatch = read_a2a_reply(
        outcome({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "no method"}})
    )
    assert "version mismatch" in (mismatch.message or "")


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ({"message": {"role": "ROLE_AGENT", "parts": [{"text": "one"}]}}, "one"),
        ({"kind": "message", "parts": [{"kind": "text", "text": "old"}]}, "old"),
        ({"task": {"id": "t", "artifacts": [{"parts": [{"text": "art"}]}]}}, "art"),
        ({"kind": "task", "id": "t", "status": {"message": {"parts": [{"text": "st"}]}}}, "st"),
        ({"kind": "task", "id": "t", "status": {"state": "working"}}, ""),
        ({"unrelated": 1}, None),
        ("string", None),
    ],
)
def test_reply_text_from_message_or_task(result: object, text: str | None) -> None:
    assert a2a_result_text(result) == text


def test_a2a_reply_envelope_checks() -> None:
    assert read_a2a_reply(outcome({"result": {}})).error is ErrorKind.BAD_RESPONSE
    odd = read_a2a_reply(outcome({"jsonrpc": "2.0", "id": 1, "result": {"x": 1}}))
    assert odd.error is ErrorKind.BAD_RESPONSE
    good = {"jsonrpc": "2.0", "id": 1, "result": {"message": {"parts": [{"text": "ok"}]}}}
    assert read_a2a_reply(outcome(good)).text == "ok"
