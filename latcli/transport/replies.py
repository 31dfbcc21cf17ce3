"""What an agent answered: the card, the reply and its verdict, read from an HTTP outcome
(sans-I/O, no socket needed), and untrusted JSON bounded in depth (DESIGN §7)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import msgspec

from latcli.config.model import A2ABinding, A2AConfig
from latcli.core.errors import ErrorKind
from latcli.core.ratelimit import parse_retry_after
from latcli.transport.a2a import bindings
from latcli.transport.a2a.lifecycle import TaskOutcome, TaskView, read_result
from latcli.transport.a2a.stream import StreamPhases
from latcli.transport.base import (
    Outcome,
    Timings,
)

A2AVersion = Literal["0.3", "1.0"]

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")

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
    if view.outcome is TaskOutcome.FAILED:
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
