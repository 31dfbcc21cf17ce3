"""Plain-HTTP and A2A (0.3 / 1.0) request shapes, reply parsing and failure rules (DESIGN §2, §4).

The pure functions here build :class:`RequestSpec` values and read :class:`Outcome` values;
:class:`ProtocolClient` is the only part that awaits a transport.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import msgspec

from latcli.errors import ErrorKind
from latcli.inventory import Agent
from latcli.transport.base import Outcome, RequestSpec, Timings, Transport

A2AVersion = Literal["0.3", "1.0"]
CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
_JSON = {"content-type": "application/json", "accept": "application/json"}
# Kinds that say nothing about the agent's health (DESIGN §4: not failures).
_NOT_FAILURES = {ErrorKind.HTTP_4XX, ErrorKind.BREAKER_OPEN}


@dataclass(frozen=True)
class Card:
    """The parts of an A2A agent card latcli uses."""

    version: A2AVersion
    name: str
    rpc_url: str
    description: str | None = None
    skills: tuple[str, ...] = ()

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "url": self.rpc_url,
            "skills": list(self.skills),
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

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def latency_ms(self) -> float:
        return self.timings.total

    @property
    def is_failure(self) -> bool:
        """Counts against the agent (breaker, success rate): DESIGN §4's list, 429 included."""
        if self.error is None:
            return False
        return self.error not in _NOT_FAILURES or self.status == 429


# ---- classification -------------------------------------------------------------------------


def status_error(status: int) -> tuple[ErrorKind, str] | None:
    """HTTP status -> error, or None for 2xx. Redirects are not followed, so 3xx is a bad reply."""
    if 200 <= status < 300:
        return None
    if status >= 500:
        return ErrorKind.HTTP_5XX, f"HTTP {status}"
    if status >= 400:
        return ErrorKind.HTTP_4XX, f"HTTP {status}"
    return ErrorKind.BAD_RESPONSE, f"HTTP {status} (redirects are not followed)"


_decode = msgspec.json.Decoder().decode


def loads(data: bytes | str) -> Any:
    """JSON to Python values: msgspec's C decoder (10x json's), json's for what it refuses
    (NaN, Infinity, integers past 64 bits), so the two accept the same documents."""
    try:
        return _decode(data)
    except msgspec.DecodeError:
        return json.loads(data)


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
    except (ValueError, UnicodeDecodeError):
        reason = f"reply is not JSON ({outcome.body[:40]!r})"
        return None, _fail(outcome, ErrorKind.BAD_RESPONSE, reason)


def _transport_or_status(outcome: Outcome) -> Reply | None:
    """The failure already decided by the transport or the status line, if any."""
    if outcome.error is not None:
        return Reply(outcome.status, outcome.timings, outcome.error, outcome.message)
    assert outcome.status is not None
    bad = status_error(outcome.status)
    return _fail(outcome, *bad) if bad else None


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


def read_card(outcome: Outcome, base_url: str) -> Reply:
    """An agent card GET: the health check and discovery of A2A agents."""
    body, failed = _json_reply(outcome)
    if failed:
        return failed
    try:
        card = parse_card(body, base_url)
    except ValueError as exc:
        return _fail(outcome, ErrorKind.BAD_RESPONSE, str(exc))
    return Reply(outcome.status, outcome.timings, card=card)


def parse_card(doc: Any, base_url: str) -> Card:
    """Read a spec 1.0 card (``supportedInterfaces``) or a 0.3 one (``url``). Raises ValueError."""
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        raise ValueError("agent card has no name")
    skills = tuple(
        str(s.get("name") or s.get("id")) for s in doc.get("skills") or [] if isinstance(s, dict)
    )
    desc = doc.get("description") if isinstance(doc.get("description"), str) else None
    jsonrpc_1 = _jsonrpc_interface(doc.get("supportedInterfaces"), "1.0")
    if jsonrpc_1 is not None:
        return Card("1.0", doc["name"], jsonrpc_1 or base_url, desc, skills)
    url = doc.get("url")
    return Card("0.3", doc["name"], url if isinstance(url, str) and url else base_url, desc, skills)


def _jsonrpc_interface(interfaces: Any, version: str) -> str | None:
    """The URL of a JSON-RPC interface of ``version`` ('' when it has none), or None if absent."""
    if not isinstance(interfaces, list):
        return None
    for item in interfaces:
        if not isinstance(item, dict):
            continue
        binding = str(item.get("protocolBinding") or item.get("transport") or "JSONRPC").upper()
        if binding == "JSONRPC" and str(item.get("protocolVersion", "")).startswith(version):
            return str(item.get("url") or "")
    return None


def read_a2a_reply(outcome: Outcome) -> Reply:
    """A JSON-RPC answer. An ``error`` member is a failure even with HTTP 200 (DESIGN §2)."""
    body, failed = _json_reply(outcome)
    if failed:
        return failed
    if not isinstance(body, dict) or body.get("jsonrpc") != "2.0":
        return _fail(outcome, ErrorKind.BAD_RESPONSE, "reply is not a JSON-RPC 2.0 response")
    if "error" in body:
        return _fail(outcome, ErrorKind.RPC_ERROR, _rpc_error_text(body["error"]))
    text = a2a_result_text(body.get("result"))
    if text is None:
        return _fail(
            outcome, ErrorKind.BAD_RESPONSE, "JSON-RPC result is neither a Message nor a Task"
        )
    return Reply(outcome.status, outcome.timings, text=text)


def _rpc_error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return "JSON-RPC error"
    code, message = error.get("code"), error.get("message", "")
    hint = " (A2A version mismatch?)" if code in (-32009, -32601) else ""
    return f"JSON-RPC error {code}: {message}{hint}"


def a2a_result_text(result: Any) -> str | None:
    """Text of a Message or a Task, in 1.0 (``{"message":..}``/``{"task":..}``) or 0.3 form."""
    if not isinstance(result, dict):
        return None
    for wrapper in ("message", "task"):
        if isinstance(result.get(wrapper), dict) and "kind" not in result:
            result = result[wrapper]
            break
    if "parts" in result:
        return _parts_text(result["parts"])
    texts = [
        _parts_text(a.get("parts")) for a in result.get("artifacts") or [] if isinstance(a, dict)
    ]
    status_message = (result.get("status") or {}).get("message")
    if isinstance(status_message, dict):
        texts.append(_parts_text(status_message.get("parts")))
    found = [t for t in texts if t]
    if found or "status" in result or "id" in result:
        return "\n".join(found)
    return None


def _parts_text(parts: Any) -> str:
    if not isinstance(parts, list):
        return ""
    return "".join(str(p["text"]) for p in parts if isinstance(p, dict) and "text" in p)


# ---- requests ---------------------------------------------------------------------------------


def _spec(
    agent: Agent,
    method: str,
    url: str,
    timeout: float,
    body: bytes | None = None,
    extra: Mapping[str, str] | None = None,
) -> RequestSpec:
    headers = {**agent.headers, **(extra or {})}
    return RequestSpec(method, url, headers, body, timeout, min(agent.connect_timeout, timeout))


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


def a2a_message_request(agent: Agent, card: Card, text: str, message_id: str) -> RequestSpec:
    """``SendMessage`` + ``A2A-Version: 1.0`` for 1.0 cards, else 0.3's ``message/send``."""
    if card.version == "1.0":
        message: dict[str, Any] = {
            "role": "ROLE_USER",
            "messageId": message_id,
            "parts": [{"text": text}],
        }
        method, extra = "SendMessage", {**_JSON, "A2A-Version": "1.0"}
    else:
        message = {
            "kind": "message",
            "role": "user",
            "messageId": message_id,
            "parts": [{"kind": "text", "text": text}],
        }
        method, extra = "message/send", dict(_JSON)
    envelope = {
        "jsonrpc": "2.0",
        "id": message_id,
        "method": method,
        "params": {"message": message},
    }
    return _spec(agent, "POST", card.rpc_url, agent.timeout, json.dumps(envelope).encode(), extra)


def new_message_id() -> str:
    return str(uuid.uuid4())


# ---- the client -------------------------------------------------------------------------------


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
            reply = read_card(outcome, agent.url + "/")
            if reply.card is not None:
                self._cards[agent.id] = reply.card
                return reply
            if outcome.status != 404:
                return reply
        return reply

    async def send_message(self, agent: Agent, text: str, message_id: str | None = None) -> Reply:
        """Send one message. A retry on another replica should pass the same ``message_id``."""
        if agent.protocol == "http":
            outcome = await self.transport.send(agent.id, http_message_request(agent, text))
            return read_http_reply(outcome)
        card = self._cards.get(agent.id)
        if card is None:
            found = await self.discover(agent)
            if found.card is None:
                return found
            card = found.card
        spec = a2a_message_request(agent, card, text, message_id or new_message_id())
        reply = read_a2a_reply(await self.transport.send(agent.id, spec))
        return replace(reply, card=card)
