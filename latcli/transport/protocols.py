"""Plain-HTTP and A2A (0.3 / 1.0) request shapes, reply parsing and failure rules (DESIGN §2, §4).

The pure functions here build :class:`RequestSpec` values and read :class:`Outcome` values;
:class:`ProtocolClient` is the only part that awaits a transport.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from latcli.config.inventory import A2ABinding, A2AConfig, Agent
from latcli.core.errors import ErrorKind
from latcli.core.ratelimit import parse_retry_after
from latcli.transport.a2a import bindings
from latcli.transport.a2a.lifecycle import TaskView, Verdict, read_result, verdict_of
from latcli.transport.a2a.sse import SSEDecoder
from latcli.transport.a2a.stream import StreamError, StreamPhases, StreamReader, split_event
from latcli.transport.base import (
    DEFAULT_MAX_BODY,
    Outcome,
    RequestSpec,
    StreamingOutcome,
    Timings,
    Transport,
    can_stream,
)

A2AVersion = Literal["0.3", "1.0"]
CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
_JSON = {"content-type": "application/json", "accept": "application/json"}
# Kinds that say nothing about the agent's health (DESIGN §4: not failures). A rate-limited
# replica is set aside for its Retry-After instead (latcli.core.ratelimit), not counted as broken.
_NOT_FAILURES = {ErrorKind.HTTP_4XX, ErrorKind.BREAKER_OPEN, ErrorKind.RATE_LIMITED}


@dataclass(frozen=True)
class Card:
    """The parts of an A2A agent card latcli uses; ``rpc_url``/``binding``/``version`` are the
    interface chosen (:func:`latcli.transport.a2a.bindings.choose`), ``bindings`` all offered."""

    version: A2AVersion
    name: str
    rpc_url: str
    description: str | None = None
    skills: tuple[str, ...] = ()
    binding: A2ABinding = "jsonrpc"
    streaming: bool = False
    bindings: tuple[str, ...] = ()

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "url": self.rpc_url,
            "skills": list(self.skills),
            "binding": self.binding,
            "bindings": list(self.bindings or (self.binding,)),
            "streaming": self.streaming,
        }


@dataclass(frozen=True)
class Reply:
    """One attempt's verdict: ``error`` is None on success; ``text`` is the reply text if any."""

    status: int | None
    timings: Timings
    error: ErrorKind | None = None
    message: str | None = None
    text: str | None = None
    card: Card | None = field(default=None, compare=False)
    # A2A task state in the 0.3 spelling (``completed``, ``input-required``); None: not a task.
    state: str | None = None
    stream: StreamPhases | None = None  # phases of a streamed answer; None for a unary one
    task_id: str | None = field(default=None, compare=False, repr=False)
    # The agent's Retry-After header as sent (rate_limited replies): the router reads it with
    # its own wall clock (latcli.core.ratelimit.cooldown), since it may be an HTTP-date.
    retry_after: str | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def latency_ms(self) -> float:
        return self.timings.total

    @property
    def is_failure(self) -> bool:
        """Counts against the agent (breaker, success rate): DESIGN §4's list, except that a
        rate-limited answer (429, 503 + Retry-After) cools the replica instead (issue 12)."""
        return self.error is not None and self.error not in _NOT_FAILURES


# ---- classification -------------------------------------------------------------------------


def status_error(status: int, retry_after: str | None = None) -> tuple[ErrorKind, str] | None:
    """HTTP status -> error, or None for 2xx. Redirects are not followed, so 3xx is a bad reply.

    429, and 503 with a readable ``Retry-After``, are ``rate_limited`` (the agent says when to
    come back); a 503 without one is an outage (``http_5xx``).
    """
    if 200 <= status < 300:
        return None
    if status == 429 or (status == 503 and parse_retry_after(retry_after, 0.0) is not None):
        return ErrorKind.RATE_LIMITED, f"HTTP {status} (rate limited)"
    if status >= 500:
        return ErrorKind.HTTP_5XX, f"HTTP {status}"
    if status >= 400:
        return ErrorKind.HTTP_4XX, f"HTTP {status}"
    return ErrorKind.BAD_RESPONSE, f"HTTP {status} (redirects are not followed)"


_decode = msgspec.json.Decoder().decode
# Agent JSON deeper than this is refused (DESIGN §7): real cards and replies nest < 15 levels.
MAX_JSON_DEPTH = 128


class JSONTooDeep(ValueError):
    """A document nested deeper than :data:`MAX_JSON_DEPTH` (a ``bad_response``)."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def loads(data: bytes | str) -> Any:
    """JSON to Python values: msgspec's C decoder (10x json's), json's for what it refuses
    (NaN, Infinity, integers past 64 bits), so the two accept the same documents.

    Nesting is bounded: past :data:`MAX_JSON_DEPTH` levels raises :class:`JSONTooDeep` (a
    ValueError), never RecursionError (both decoders recurse and give up near 1,000 levels).
    """
    try:
        try:
            value = _decode(data)
        except msgspec.DecodeError:
            value = json.loads(data)
    except RecursionError:
        raise JSONTooDeep() from None
    # A valid document nested N deep has N openers and N closers: a short one cannot be deep.
    if len(data) > 2 * MAX_JSON_DEPTH and _may_nest_deeper(data):
        _check_depth(value)
    return value


def _may_nest_deeper(data: bytes | str) -> bool:
    # C-speed counting: a document with few brackets cannot be deep, so the walk is rare.
    if isinstance(data, str):
        return data.count("[") + data.count("{") > MAX_JSON_DEPTH
    return data.count(b"[") + data.count(b"{") > MAX_JSON_DEPTH


def _check_depth(value: Any) -> None:
    """Raise :class:`JSONTooDeep` past the bound: an iterative walk, so it cannot recurse."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                if depth >= MAX_JSON_DEPTH:
                    raise JSONTooDeep()
                stack.append((child, depth + 1))


def _fail(outcome: Outcome, kind: ErrorKind, message: str) -> Reply:
    return Reply(outcome.status, outcome.timings, kind, message)


def _json_reply(outcome: Outcome) -> tuple[Any, Reply | None]:
    """``(body as JSON, None)``, or ``(None, the failure)``: the transport's, the status
    line's, or a body that is not JSON."""
    failed = _transport_or_status(outcome)
    if failed:
        return None, failed
    try:
        return loads(outcome.body), None
    except JSONTooDeep as exc:
        return None, _fail(outcome, ErrorKind.BAD_RESPONSE, f"reply refused: {exc}")
    except (ValueError, UnicodeDecodeError):
        reason = f"reply is not JSON ({outcome.body[:40]!r})"
        return None, _fail(outcome, ErrorKind.BAD_RESPONSE, reason)


def _transport_or_status(outcome: Outcome) -> Reply | None:
    """The failure already decided by the transport or the status line, if any."""
    if outcome.error is not None:
        return Reply(outcome.status, outcome.timings, outcome.error, outcome.message)
    assert outcome.status is not None
    retry_after = outcome.headers.get("retry-after")
    bad = status_error(outcome.status, retry_after)
    if bad is None:
        return None
    if bad[0] is ErrorKind.RATE_LIMITED:
        return Reply(outcome.status, outcome.timings, *bad, retry_after=retry_after)
    return _fail(outcome, *bad)


def read_health(outcome: Outcome) -> Reply:
    """A health check passes on any 2xx; the body is not required to be JSON."""
    return _transport_or_status(outcome) or Reply(outcome.status, outcome.timings)


def read_http_reply(outcome: Outcome) -> Reply:
    """Plain agents answer JSON; text is taken from ``reply``, ``text`` or ``message``."""
    body, failed = _json_reply(outcome)
    if failed:
        return failed
    text = _first_text(body) if isinstance(body, dict) else None
    return Reply(
        outcome.status, outcome.timings, text=text if text is not None else json.dumps(body)
    )


def _first_text(body: Mapping[str, Any]) -> str | None:
    for key in ("reply", "text", "message"):
        value = body.get(key)
        if isinstance(value, str):
            return value
    return None


def read_card(outcome: Outcome, base_url: str, a2a: A2AConfig | None = None) -> Reply:
    """An agent card GET: the health check and discovery of A2A agents.

    ``base_url`` is the agent's own URL: relative card URLs resolve against it and the chosen
    interface must share its origin unless ``a2a.allow_origins`` lists the other one.
    """
    body, failed = _json_reply(outcome)
    if failed:
        return failed
    try:
        card = parse_card(body, base_url, a2a)
    except ValueError as exc:
        return _fail(outcome, ErrorKind.BAD_RESPONSE, str(exc))
    return Reply(outcome.status, outcome.timings, card=card)


def parse_card(doc: Any, base_url: str, a2a: A2AConfig | None = None) -> Card:
    """Read a spec 1.0 card (``supportedInterfaces``) or a 0.3 one (``url``,
    ``preferredTransport``, ``additionalInterfaces``). Raises ValueError (CardRefused)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        raise ValueError("agent card has no name")
    a2a = a2a or A2AConfig()
    skills = tuple(
        str(s.get("name") or s.get("id")) for s in doc.get("skills") or [] if isinstance(s, dict)
    )
    desc = doc.get("description") if isinstance(doc.get("description"), str) else None
    offered = bindings.interfaces(doc, base_url)
    chosen = bindings.choose(offered, a2a.binding, base_url, a2a.allow_origins)
    capabilities = doc.get("capabilities")
    streaming = isinstance(capabilities, dict) and capabilities.get("streaming") is True
    spoken = tuple(dict.fromkeys(i.binding for i in offered))
    binding: A2ABinding = "http+json" if chosen.binding == "http+json" else "jsonrpc"
    return Card(chosen.version, doc["name"], chosen.url, desc, skills, binding, streaming, spoken)


def read_a2a_reply(outcome: Outcome, binding: A2ABinding = "jsonrpc") -> Reply:
    """A Message or Task answer: in a JSON-RPC envelope (an ``error`` member is a failure even
    with HTTP 200, DESIGN §2), or bare over HTTP+JSON. Task states follow
    :mod:`latcli.transport.a2a.lifecycle`: failed/rejected/canceled are ``task_failed``."""
    body, failed = _json_reply(outcome)
    if failed:
        return _rest_error(failed, outcome) if binding == "http+json" else failed
    if binding == "jsonrpc":
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0":
            return _fail(outcome, ErrorKind.BAD_RESPONSE, "reply is not a JSON-RPC 2.0 response")
        if "error" in body:
            return _fail(outcome, ErrorKind.RPC_ERROR, _rpc_error_text(body["error"]))
        body = body.get("result")
    view = read_result(body)
    if view is None:
        return _fail(outcome, ErrorKind.BAD_RESPONSE, "reply is neither a Message nor a Task")
    return task_reply(outcome.status, outcome.timings, view)


def task_reply(
    status: int | None, timings: Timings, view: TaskView, stream: StreamPhases | None = None
) -> Reply:
    """The reply a task view stands for: an answer, or a ``task_failed`` failure."""
    if view.verdict is Verdict.FAILED:
        return Reply(
            status,
            timings,
            ErrorKind.TASK_FAILED,
            view.failure_text(),
            state=view.state,
            stream=stream,
            task_id=view.task_id,
        )
    return Reply(
        status, timings, text=view.text, state=view.state, stream=stream, task_id=view.task_id
    )


def _rest_error(failed: Reply, outcome: Outcome) -> Reply:
    """HTTP+JSON errors are HTTP statuses with a JSON body; keep its message for the user."""
    if outcome.error is not None or not outcome.body:
        return failed
    try:
        detail = _error_message(loads(outcome.body))
    except (ValueError, UnicodeDecodeError):
        return failed
    return replace(failed, message=f"{failed.message}: {detail[:200]}") if detail else failed


def _error_message(doc: Any) -> str | None:
    """``{"error": {"message": ..}}`` (google.rpc.Status style) or ``{"message": ..}``."""
    if not isinstance(doc, dict):
        return None
    inner = doc.get("error")
    message = (inner if isinstance(inner, dict) else doc).get("message")
    return message if isinstance(message, str) and message else None


def _rpc_error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return "JSON-RPC error"
    code, message = error.get("code"), error.get("message", "")
    hint = " (A2A version mismatch?)" if code in (-32009, -32601) else ""
    return f"JSON-RPC error {code}: {message}{hint}"


def a2a_result_text(result: Any) -> str | None:
    """Text of a Message or a Task, in 1.0 (``{"message":..}``/``{"task":..}``) or 0.3 form."""
    view = read_result(result)
    return None if view is None else view.text


# ---- requests ---------------------------------------------------------------------------------


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


# ---- reading a stream ------------------------------------------------------------------------

OnChunk = Callable[[str], None]
# Called after each event of a stream with its reader (task id so far, ``answered``): what a
# hedged streamed send watches (latcli.core.hedge). It runs inside the transport's read callback:
# it must not block (a relay queues its write, see latcli.engines.serve.stream).
OnEvent = Callable[[StreamReader], None]


async def read_stream(
    outcome: StreamingOutcome,
    card: Card,
    on_chunk: OnChunk | None = None,
    on_event: OnEvent | None = None,
) -> Reply:
    """Read an SSE answer event by event until its terminal (or interrupted) state.

    A non-SSE answer (a JSON-RPC error with HTTP 200, an agent that does not stream after all)
    is read whole as a unary reply. ``on_chunk`` gets each piece of answer text as it arrives.
    """
    if outcome.error is not None or outcome.status is None:
        return Reply(outcome.status, outcome.timings(), outcome.error, outcome.message)
    content_type = outcome.headers.get("content-type", "").lower()
    if not 200 <= outcome.status < 300 or not content_type.startswith("text/event-stream"):
        return await _read_whole(outcome, card)
    reader = StreamReader(outcome.started)
    feed = _EventFeed(reader, card.binding == "jsonrpc", on_chunk, on_event)
    await outcome.read_with(feed)
    failure = feed.failure
    if failure is None and not reader.done:
        failure = _broke_off(outcome) or (
            ErrorKind.BAD_RESPONSE,
            f"stream ended before the task finished (last state: {reader.state or 'none'})",
        )
    phases = reader.phases()
    head = outcome.head_timings
    if failure is not None:  # the task's id kept: a caller may cancel what it gave up on
        return Reply(
            outcome.status, outcome.timings(), *failure, state=reader.state, stream=phases,
            task_id=reader.task_id,
        )  # fmt: skip
    total = phases.total_ms if phases.total_ms is not None else outcome.timings().total
    timings = Timings(head.connect, head.tls, head.ttfb, total)
    return task_reply(outcome.status, timings, reader.view(), phases)


def _broke_off(outcome: StreamingOutcome) -> tuple[ErrorKind, str] | None:
    """The transport's reason the body ended early (reset, deadline, too large), if any."""
    if outcome.error is None:
        return None
    return outcome.error, outcome.message or str(outcome.error)


class _EventFeed:
    """The consumer of a stream's pieces (``StreamingOutcome.read_with``): SSE events to
    ``reader`` until it is done; ``failure`` is what stopped it early, if anything did."""

    __slots__ = ("decoder", "failure", "jsonrpc", "on_chunk", "on_event", "reader")

    def __init__(
        self,
        reader: StreamReader,
        jsonrpc: bool,
        on_chunk: OnChunk | None,
        on_event: OnEvent | None,
    ) -> None:
        self.decoder = SSEDecoder()
        self.reader, self.jsonrpc = reader, jsonrpc
        self.on_chunk, self.on_event = on_chunk, on_event
        self.failure: tuple[ErrorKind, str] | None = None

    def __call__(self, at: float, chunk: bytes) -> bool:
        reader = self.reader
        try:
            for event in self.decoder.feed(chunk):
                kind, payload = split_event(loads(event.data), self.jsonrpc)
                text = reader.event(at, kind, payload)
                if self.on_event is not None:  # first: a hedged send commits before relaying
                    self.on_event(reader)
                if text and self.on_chunk is not None:
                    self.on_chunk(text)
                if reader.done:
                    return True
        except StreamError as exc:
            kind_ = ErrorKind.RPC_ERROR if exc.rpc_error else ErrorKind.BAD_RESPONSE
            self.failure = kind_, str(exc)
            return True
        except (ValueError, UnicodeDecodeError) as exc:  # SSEError, JSONTooDeep, not JSON
            self.failure = ErrorKind.BAD_RESPONSE, f"bad stream event: {exc}"
            return True
        return False


async def _read_whole(outcome: StreamingOutcome, card: Card) -> Reply:
    parts: list[bytes] = []
    async for _, chunk in outcome:
        parts.append(chunk)
    whole = Outcome(
        outcome.status,
        b"".join(parts),
        outcome.timings(),
        outcome.error,
        outcome.message,
        outcome.headers,
    )
    return read_a2a_reply(whole, card.binding)


# ---- the client -------------------------------------------------------------------------------

_POLL_FIRST = 0.05  # s: GetTask backoff starts here, doubles, and is capped at _POLL_MAX
_POLL_MAX = 1.0
_POLL_FLOOR = 0.005  # s: less attempt time than this left is not worth one more GetTask


class ProtocolClient:
    """Health, discovery and messages for any agent over one :class:`Transport`.

    A2A cards are cached per agent id: the version decides the message shape.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._cards: dict[str, Card] = {}
        # RequestSpec is immutable: one health request per agent, built once (watch checks
        # 1,000 agents a second). Keyed by id; a different Agent under that id rebuilds it.
        self._health: dict[str, tuple[Agent, RequestSpec]] = {}

    def cached_card(self, agent: Agent) -> Card | None:
        return self._cards.get(agent.id)

    async def health(self, agent: Agent) -> Reply:
        """One health check. For A2A agents this is the card GET (and refreshes the cache)."""
        if agent.protocol == "a2a":
            return await self.discover(agent)
        cached = self._health.get(agent.id)
        if cached is None or cached[0] is not agent:
            cached = self._health[agent.id] = (agent, health_request(agent))
        return read_health(await self.transport.send(agent.id, cached[1]))

    async def discover(self, agent: Agent) -> Reply:
        """Fetch the agent card, falling back to the older well-known path on a 404."""
        reply = Reply(None, Timings())
        for path in CARD_PATHS:
            outcome = await self.transport.send(agent.id, card_request(agent, path))
            reply = read_card(outcome, agent.url + "/", agent.a2a)
            if reply.card is not None:
                self._cards[agent.id] = reply.card
                return reply
            if outcome.status != 404:
                return reply
        return reply

    async def _card(self, agent: Agent) -> Card | Reply:
        """The cached card, else a fresh discovery; the failed discovery's reply if none."""
        card = self._cards.get(agent.id)
        if card is not None:
            return card
        found = await self.discover(agent)
        return found if found.card is None else found.card

    async def send_message(self, agent: Agent, text: str, message_id: str | None = None) -> Reply:
        """Send one message. A retry on another replica should pass the same ``message_id``.

        A task answered ``submitted``/``working`` is polled with GetTask (backoff from 50 ms,
        doubling, capped at 1 s) until it ends or is interrupted, within ``agent.timeout``.
        """
        if agent.protocol == "http":
            outcome = await self.transport.send(agent.id, http_message_request(agent, text))
            return read_http_reply(outcome)
        card = await self._card(agent)
        if isinstance(card, Reply):
            return card
        started = time.perf_counter()
        spec = a2a_message_request(agent, card, text, message_id or new_message_id())
        reply = read_a2a_reply(await self.transport.send(agent.id, spec), card.binding)
        if reply.ok and verdict_of(reply.state) is Verdict.PENDING and reply.state is not None:
            reply = await self._poll(agent, card, reply, started)
        return replace(reply, card=card)

    async def _poll(self, agent: Agent, card: Card, first: Reply, started: float) -> Reply:
        """GetTask until the task leaves submitted/working or ``agent.timeout`` runs out."""
        deadline = started + agent.timeout
        delay, reply = _POLL_FIRST, first
        while verdict_of(reply.state) is Verdict.PENDING:
            if reply.task_id is None:
                reason = f"task answered {reply.state} without an id to poll"
                return _pending_failure(reply, started, ErrorKind.BAD_RESPONSE, reason)
            await asyncio.sleep(max(0.0, min(delay, deadline - time.perf_counter())))
            left = deadline - time.perf_counter()
            if left < _POLL_FLOOR:
                reason = f"task still {reply.state} after {agent.timeout:g}s"
                return _pending_failure(reply, started, ErrorKind.TIMEOUT, reason)
            spec = get_task_request(agent, card, reply.task_id, left)
            polled = read_a2a_reply(await self.transport.send(agent.id, spec), card.binding)
            if not polled.ok:
                return replace(polled, timings=_since(first.timings, started))
            reply = replace(polled, task_id=polled.task_id or reply.task_id)
            delay = min(delay * 2, _POLL_MAX)
        return replace(reply, timings=_since(first.timings, started))

    async def stream_message(
        self,
        agent: Agent,
        text: str,
        message_id: str | None = None,
        on_chunk: OnChunk | None = None,
        on_event: OnEvent | None = None,
    ) -> Reply:
        """Send one message and read the answer as a stream when the agent's card says
        ``capabilities.streaming`` (and the engine streams); else as :meth:`send_message`.

        The reply carries ``stream`` (phases) and ``state``; ``on_chunk`` is called with each
        piece of text as it arrives, ``on_event`` with the stream's reader after each event. A
        stream that ends in ``failed`` is ``task_failed``.
        """
        if agent.protocol == "http":
            return await self.send_message(agent, text, message_id)
        card = await self._card(agent)
        if isinstance(card, Reply):
            return card
        if not card.streaming or not can_stream(self.transport):
            reply = await self.send_message(agent, text, message_id)
            if on_chunk is not None and reply.ok and reply.text:
                on_chunk(reply.text)
            return reply
        spec = a2a_message_request(agent, card, text, message_id or new_message_id(), stream=True)
        async with self.transport.stream(agent.id, spec) as outcome:
            reply = await read_stream(outcome, card, on_chunk, on_event)
        return replace(reply, card=card)

    async def cancel_task(self, agent: Agent, task_id: str, timeout: float | None = None) -> Reply:
        """Ask ``agent`` to cancel task ``task_id``; ok when the agent says it is ``canceled``.

        Anything else (already finished, an error, unreachable) is the failed reply, for the
        caller to report; nothing is retried.
        """
        card = await self._card(agent)
        if isinstance(card, Reply):
            return card
        spec = cancel_task_request(agent, card, task_id, timeout or agent.timeout)
        reply = read_a2a_reply(await self.transport.send(agent.id, spec), card.binding)
        if reply.state == "canceled":
            return replace(reply, error=None, message=None, task_id=reply.task_id or task_id)
        if reply.ok:
            return replace(reply, error=ErrorKind.BAD_RESPONSE, message=f"task is {reply.state}")
        return reply


def _pending_failure(reply: Reply, started: float, kind: ErrorKind, reason: str) -> Reply:
    return Reply(reply.status, _since(reply.timings, started), kind, reason, state=reply.state)


def _since(first: Timings, started: float) -> Timings:
    """``first``'s phases with ``total`` from ``started`` to now (a polled task's whole time)."""
    return replace(first, total=(time.perf_counter() - started) * 1000.0)
