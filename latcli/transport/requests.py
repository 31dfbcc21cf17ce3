"""The requests latcli sends agents, built as values (sans-I/O): health, card, plain http
messages, A2A messages in both versions and bindings, GetTask and CancelTask."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from latcli.config.model import Agent
from latcli.transport.a2a import bindings
from latcli.transport.base import (
    DEFAULT_MAX_BODY,
    RequestSpec,
)
from latcli.transport.replies import CARD_PATHS, Card

_JSON = {"content-type": "application/json", "accept": "application/json"}


def _spec(
    agent: Agent,
    method: str,
    url: str,
    timeout: float,
    body: bytes | None = None,
    extra: Mapping[str, str] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> RequestSpec:
    # Inventory headers (tokens) go only to the agent's own origin or one it allows (DESIGN §7).
    own = bindings.same_origin(url, agent.url, agent.a2a.allow_origins)
    headers = {**(agent.headers if own else {}), **(extra or {})}
    connect = min(agent.connect_timeout, timeout)
    return RequestSpec(method, url, headers, body, timeout, connect, max_body)


def health_request(agent: Agent) -> RequestSpec:
    """The health check: ``GET {url}{health.path}`` (the method and body as shaped on the
    command line), or the card GET for A2A agents."""
    if agent.protocol == "a2a":
        return _spec(agent, "GET", agent.url + CARD_PATHS[0], agent.health.timeout)
    health = agent.health
    url = agent.url + health.path
    return _spec(agent, health.method, url, health.timeout, health.body)


def card_request(agent: Agent, path: str = CARD_PATHS[0]) -> RequestSpec:
    return _spec(agent, "GET", agent.url + path, agent.health.timeout)


def http_message_request(agent: Agent, text: str) -> RequestSpec:
    body = msgspec.json.encode({"message": text})
    return _spec(agent, "POST", agent.url + "/message/send", agent.timeout, body, _JSON)


# (binding, version, call) -> JSON-RPC method or HTTP+JSON path (DESIGN §2; 0.3 REST is /v1).
_CALLS: dict[tuple[str, str, str], str] = {
    ("jsonrpc", "1.0", "send"): "SendMessage",
    ("jsonrpc", "1.0", "stream"): "SendStreamingMessage",
    ("jsonrpc", "1.0", "get"): "GetTask",
    ("jsonrpc", "0.3", "send"): "message/send",
    ("jsonrpc", "0.3", "stream"): "message/stream",
    ("jsonrpc", "0.3", "get"): "tasks/get",
    ("http+json", "1.0", "send"): "/message:send",
    ("http+json", "1.0", "stream"): "/message:stream",
    ("http+json", "1.0", "get"): "/tasks/",
    ("http+json", "0.3", "send"): "/v1/message:send",
    ("http+json", "0.3", "stream"): "/v1/message:stream",
    ("http+json", "0.3", "get"): "/v1/tasks/",
    ("jsonrpc", "1.0", "cancel"): "CancelTask",
    ("jsonrpc", "0.3", "cancel"): "tasks/cancel",
    ("http+json", "1.0", "cancel"): "/tasks/",  # + quoted id + ":cancel"
    ("http+json", "0.3", "cancel"): "/v1/tasks/",
}

_SSE = {"accept": "text/event-stream"}

# A streamed answer is bounded in total by this, each event by the SSE decoder's 1 MiB: a 10k
# token answer sent one token per event (~350 bytes each, as a2a-sdk writes them) is ~3.5 MB.
MAX_STREAM_BYTES = 16 << 20


def _user_message(card: Card, text: str, message_id: str) -> dict[str, Any]:
    if card.version == "1.0":
        return {"role": "ROLE_USER", "messageId": message_id, "parts": [{"text": text}]}
    if card.binding == "http+json":  # 0.3's protobuf JSON: a Message's parts are "content"
        return {"role": "ROLE_USER", "messageId": message_id, "content": [{"text": text}]}
    return {
        "kind": "message",
        "role": "user",
        "messageId": message_id,
        "parts": [{"kind": "text", "text": text}],
    }


def _headers(card: Card, stream: bool = False) -> dict[str, str]:
    version = {"A2A-Version": "1.0"} if card.version == "1.0" else {}
    return {**_JSON, **version, **(_SSE if stream else {})}


def _rpc_body(method: str, params: dict[str, Any], request_id: str) -> bytes:
    return msgspec.json.encode(
        {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    )


def a2a_message_request(
    agent: Agent, card: Card, text: str, message_id: str, *, stream: bool = False
) -> RequestSpec:
    """One message over the card's binding and version: JSON-RPC ``SendMessage`` (+ header
    ``A2A-Version: 1.0``) / ``message/send``, or ``POST /message:send``; ``stream`` asks for
    SSE (``SendStreamingMessage`` / ``message/stream`` / ``POST /message:stream``)."""
    call = _CALLS[(card.binding, card.version, "stream" if stream else "send")]
    params = {"message": _user_message(card, text, message_id)}
    if card.binding == "http+json":
        url, body = card.rpc_url.rstrip("/") + call, msgspec.json.encode(params)
    else:
        url, body = card.rpc_url, _rpc_body(call, params, message_id)
    cap = MAX_STREAM_BYTES if stream else DEFAULT_MAX_BODY
    return _spec(agent, "POST", url, agent.timeout, body, _headers(card, stream), cap)


def get_task_request(agent: Agent, card: Card, task_id: str, timeout: float) -> RequestSpec:
    """``GetTask`` / ``tasks/get`` / ``GET /tasks/{id}`` (the id is the agent's: quoted)."""
    call = _CALLS[(card.binding, card.version, "get")]
    if card.binding == "http+json":
        url = card.rpc_url.rstrip("/") + call + quote(task_id, safe="")
        return _spec(agent, "GET", url, timeout, None, _headers(card))
    body = _rpc_body(call, {"id": task_id}, new_message_id())
    return _spec(agent, "POST", card.rpc_url, timeout, body, _headers(card))


def cancel_task_request(agent: Agent, card: Card, task_id: str, timeout: float) -> RequestSpec:
    """``CancelTask`` / ``tasks/cancel`` / ``POST /tasks/{id}:cancel`` on the card's binding
    (a hedge's losing stream: closing it does not stop an a2a-sdk task; this does)."""
    call = _CALLS[(card.binding, card.version, "cancel")]
    if card.binding == "http+json":
        url = card.rpc_url.rstrip("/") + call + quote(task_id, safe="") + ":cancel"
        return _spec(agent, "POST", url, timeout, b"{}", _headers(card))
    body = _rpc_body(call, {"id": task_id}, new_message_id())
    return _spec(agent, "POST", card.rpc_url, timeout, body, _headers(card))


# A version 4 UUID's fixed bits (RFC 9562 4.1-4.2): version 0b0100, variant 0b10.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))

_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_message_id() -> str:
    """A random (version 4) UUID, as text. From ``random`` rather than ``uuid.uuid4()``: ids
    need to be unique, not secret, and bench makes one per message (a third of the cost; the
    generator is reseeded in forked workers)."""
    n = random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
