"""What one bench request is: the coroutine function that sends one request of the plan's
endpoint to its target (built once per run; the request itself is built once where it can be).

For URL and agent targets the request is sent straight on the transport; a type target goes
through the Router (strategy and breakers) per request; a ``--targets`` mix takes its lines in
turn.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from urllib.parse import urlsplit

from latcli.config.model import Agent
from latcli.core.errors import ErrorKind
from latcli.engines.bench.answer import NO_AGENT, Answer, Sender, unexpected
from latcli.engines.bench.stream import stream_sender, streamed
from latcli.engines.bench.targets import Target
from latcli.reports.bench_model import BenchPlan
from latcli.transport.base import Outcome, RequestSpec, Transport
from latcli.transport.guard import guarded
from latcli.transport.protocols import ProtocolClient
from latcli.transport.replies import Reply, read_a2a_reply, read_card, read_health, read_http_reply
from latcli.transport.requests import (
    a2a_message_request,
    card_request,
    health_request,
    http_message_request,
    new_message_id,
)


async def make_sender(
    plan: BenchPlan, target: Target, transport: Transport, router: object | None
) -> Sender:
    """The coroutine function sending one request of ``plan.endpoint`` to ``target``."""
    if target.kind == "type":
        from latcli.routing.router import Router

        assert isinstance(router, Router)
        return _routed_sender(plan, target.name, router)
    if target.kind == "mix":
        return _mix_sender(target, transport)
    agent = target.agents[0]
    if plan.endpoint == "stream":
        return await stream_sender(agent, plan.message, transport)
    if plan.endpoint == "message":
        return await _message_sender(agent, plan.message, transport)
    if plan.endpoint == "health" and agent.protocol == "http":
        return _fixed_sender(agent.id, health_request(agent), read_health, transport)
    # discovery, and health of an A2A agent: the card GET, read as a card
    read = partial(read_card, base_url=agent.url + "/")
    return _fixed_sender(agent.id, card_request(agent), read, transport)


def _mix_sender(target: Target, transport: Transport) -> Sender:
    """The --targets lines in turn (vegeta's round robin); each request is reported under its
    line (``METHOD URL``, made unique by its line number) and pooled by origin."""
    names = [line.name for line in target.mix]
    turns = []
    for line, agent in zip(target.mix, target.agents, strict=True):
        name = line.name if names.count(line.name) == 1 else f"{line.name} (line {line.line})"
        headers = {**agent.headers, **line.headers}
        spec = RequestSpec(line.method, line.url, headers, line.body, agent.timeout,
                           min(agent.connect_timeout, agent.timeout))  # fmt: skip
        parts = urlsplit(line.url)
        turns.append((name, f"{parts.scheme}://{parts.netloc}", spec))
    cycle = itertools.cycle(turns)
    send = transport.send

    async def one() -> Answer:
        name, key, spec = next(cycle)
        reply = read_health(await send(key, spec))
        return name, reply.error, reply.status, None

    return one


def _fixed_sender(
    key: str, spec: RequestSpec, read: Callable[[Outcome], Reply], transport: Transport
) -> Sender:
    send = transport.send

    async def one() -> Answer:
        try:
            reply = read(await send(key, spec))
        except Exception as exc:  # see unexpected
            return key, unexpected(exc, key), None, None
        return key, reply.error, reply.status, None

    return one


async def _message_sender(agent: Agent, text: str, transport: Transport) -> Sender:
    if agent.protocol == "http":
        return _fixed_sender(
            agent.id, http_message_request(agent, text), read_http_reply, transport
        )
    client = ProtocolClient(transport)
    found = await guarded(client.discover(agent), agent.id)
    card = found.card
    if card is None:  # no card now: every message rediscovers, and fails as discovery does

        async def rediscover() -> Answer:
            reply = await guarded(client.send_message(agent, text), agent.id)
            return agent.id, reply.error, reply.status, None

        return rediscover

    async def one() -> Answer:
        spec = a2a_message_request(agent, card, text, new_message_id())
        try:
            reply = read_a2a_reply(await transport.send(agent.id, spec), card.binding)
        except Exception as exc:  # see unexpected
            return agent.id, unexpected(exc, agent.id), None, None
        return agent.id, reply.error, reply.status, None

    return one


def _routed_sender(plan: BenchPlan, type_: str, router: object) -> Sender:
    """Type targets go through the Router (DESIGN §3).

    ``message``: ``router.send`` (strategy, breakers, failover); the request is the whole routed
    call and belongs to the agent that answered (or was tried last). ``health``: the replica
    the strategy picks now, checked with ``router.check`` (feeds EWMA and breaker);
    ``discovery``: the picked replica's card GET; ``stream``: ``router.stream`` (the strategy's
    choice, breakers, EWMA; no failover). When every breaker is open a health or
    discovery request is not sent and counts as ``breaker_open``.
    """
    from latcli.routing.router import Router

    assert isinstance(router, Router)
    text = plan.message

    async def message() -> Answer:
        routed = await router.send(type_, text)
        last = routed.attempts[-1] if routed.attempts else None
        status = last.status if last is not None else None
        if routed.ok:
            return routed.agent or NO_AGENT, None, status, None
        if last is None:
            return NO_AGENT, ErrorKind.BREAKER_OPEN, None, None
        return last.agent, ErrorKind(last.outcome), status, None

    async def health() -> Answer:
        agent = router.pick(type_)
        if agent is None:
            return NO_AGENT, ErrorKind.BREAKER_OPEN, None, None
        if plan.endpoint == "discovery":
            reply = await guarded(router.client.discover(agent), agent.id)
        else:
            reply = await router.check(agent.id)
        return agent.id, reply.error, reply.status, None

    async def stream() -> Answer:
        sent = await router.stream(type_, text)
        if sent is None:
            return NO_AGENT, ErrorKind.BREAKER_OPEN, None, None
        return streamed(*sent)

    if plan.endpoint == "stream":
        return stream
    return message if plan.endpoint == "message" else health
