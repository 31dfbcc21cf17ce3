"""``bench --endpoint stream``: who can be benched (A2A agents whose card says
``capabilities.streaming``), and one streamed message per request with its phases."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from latcli.config.model import Agent
from latcli.core.errors import LatcliError
from latcli.engines.bench.answer import Answer, Sender, unexpected
from latcli.engines.bench.targets import Target
from latcli.transport.base import Transport, can_stream
from latcli.transport.guard import guarded
from latcli.transport.protocols import ProtocolClient
from latcli.transport.replies import Reply
from latcli.transport.requests import a2a_message_request, new_message_id
from latcli.transport.stream_reply import read_stream


def streaming_target(target: Target) -> Target:
    """A URL benched with ``--endpoint stream`` is an A2A agent (its card at the URL's root)."""
    if target.kind != "url":
        return target
    return replace(target, agents=tuple(replace(a, protocol="a2a") for a in target.agents))


def stream_refusal(target: Target, verify: bool | str = True) -> str | None:
    """Why ``target`` cannot take ``--endpoint stream`` (a usage error), or None.

    A plain-HTTP agent, a ``--targets`` mix, or a card that does not say
    ``capabilities.streaming`` is refused before any load; an agent whose card cannot be read
    now is not: its run fails as discovery does, and the report says so.
    """
    if target.kind == "mix":
        return "--endpoint stream sends A2A messages; a --targets file has its own requests"
    plain = [a.id for a in target.agents if a.protocol != "a2a"]
    if plain:
        return f"--endpoint stream needs A2A agents; {', '.join(plain)} speaks plain HTTP"
    return asyncio.run(_non_streaming(target.agents, verify))


async def _non_streaming(agents: tuple[Agent, ...], verify: bool | str) -> str | None:
    from latcli.transport.factory import make_transport

    transport = make_transport("auto", use="bench", max_connections_per_key=1, verify=verify)
    try:
        client = ProtocolClient(transport)
        found = await asyncio.gather(*(guarded(client.discover(a), a.id) for a in agents))
    finally:
        await transport.aclose()
    refused = [a.id for a, r in zip(agents, found, strict=True) if r.card and not r.card.streaming]
    if len(agents) == 1 and agents[0].adhoc and found[0].card is None:  # a URL: nothing else
        return f"{agents[0].url}: no A2A agent card ({found[0].message or found[0].error})"
    if refused:
        return (
            f"{', '.join(refused)}: the agent card does not say capabilities.streaming "
            "(bench it with --endpoint message)"
        )
    return None


async def stream_sender(agent: Agent, text: str, transport: Transport) -> Sender:
    """A streamed message per request (the card read once, as for ``message``): the phases
    of each answered stream travel with its answer."""
    client = ProtocolClient(transport)
    found = await guarded(client.discover(agent), agent.id)
    card = found.card
    if card is None:  # no card now: every message rediscovers, and fails as discovery does

        async def rediscover() -> Answer:
            return streamed(agent.id, await guarded(client.stream_message(agent, text), agent.id))

        return rediscover
    if not can_stream(transport):  # every engine streams today; a new one must say so
        raise LatcliError(f"the {type(transport).__name__} engine cannot stream")
    stream = transport.stream

    async def one() -> Answer:
        spec = a2a_message_request(agent, card, text, new_message_id(), stream=True)
        try:
            async with stream(agent.id, spec) as outcome:
                reply = await read_stream(outcome, card)
        except Exception as exc:  # see unexpected
            return agent.id, unexpected(exc, agent.id), None, None
        return streamed(agent.id, reply)

    return one


def streamed(agent_id: str, reply: Reply) -> Answer:
    """An answered stream's phases in :data:`~latcli.reports.bench_model.PHASES` order."""
    s = reply.stream
    if reply.error is not None or s is None:
        return agent_id, reply.error, reply.status, None
    return (
        agent_id,
        None,
        reply.status,
        (s.first_event_ms, s.first_artifact_ms, s.gap_ms_max, s.total_ms),
    )
