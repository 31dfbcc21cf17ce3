"""Plain-HTTP and A2A (0.3 / 1.0) request shapes, reply parsing and failure rules (DESIGN §2, §4).

The pure functions here build :class:`RequestSpec` values and read :class:`Outcome` values;
:class:`ProtocolClient` is the only part that awaits a transport.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from latcli.config.model import Agent
from latcli.core.errors import ErrorKind
from latcli.transport.a2a.lifecycle import TaskOutcome, outcome_of
from latcli.transport.base import (
    RequestSpec,
    Timings,
    Transport,
    can_stream,
)
from latcli.transport.replies import (
    CARD_PATHS,
    Card,
    Reply,
    read_a2a_reply,
    read_card,
    read_health,
    read_http_reply,
)
from latcli.transport.requests import (
    a2a_message_request,
    cancel_task_request,
    card_request,
    get_task_request,
    health_request,
    http_message_request,
    new_message_id,
)
from latcli.transport.stream_reply import OnChunk, OnEvent, read_stream

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
        if reply.ok and outcome_of(reply.state) is TaskOutcome.PENDING and reply.state is not None:
            reply = await self._poll(agent, card, reply, started)
        return replace(reply, card=card)

    async def _poll(self, agent: Agent, card: Card, first: Reply, started: float) -> Reply:
        """GetTask until the task leaves submitted/working or ``agent.timeout`` runs out."""
        deadline = started + agent.timeout
        delay, reply = _POLL_FIRST, first
        while outcome_of(reply.state) is TaskOutcome.PENDING:
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
