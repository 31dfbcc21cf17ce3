"""The engine behind ``latcli probe``: health, phase timings and A2A discovery of many agents."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from latcli.config.model import Agent
from latcli.reports.probe import MessageCheck, ProbeReport, ProbeResult
from latcli.transport.guard import guarded
from latcli.transport.protocols import ProtocolClient
from latcli.transport.replies import Reply

MAX_CONCURRENT = 128  # checks in flight at once; see probe_agents


async def probe_agents(
    client: ProtocolClient,
    agents: Sequence[Agent],
    count: int = 1,
    max_concurrent: int = MAX_CONCURRENT,
    message: str | None = None,
) -> ProbeReport:
    """Probe every agent concurrently, ``count`` sequential checks each (then ``message``
    sent once to each agent whose checks passed).

    At most ``max_concurrent`` agents are probed at once: one event loop spends ~1 ms of CPU
    per check, so 1,000 checks started together would all finish together, each measuring
    the whole batch (and timing out). Bounded, each check's time is its own.
    """
    gate = asyncio.Semaphore(max_concurrent)

    async def one(agent: Agent) -> ProbeResult:
        async with gate:
            return await probe_one(client, agent, count, message)

    results = await asyncio.gather(*(one(a) for a in agents))
    return ProbeReport(tuple(results))


async def probe_one(
    client: ProtocolClient, agent: Agent, count: int = 1, message: str | None = None
) -> ProbeResult:
    """``count`` health checks (the card GET for A2A agents), then ``message`` if given and
    they passed. Healthy only if every check passed and the message was answered (a failed
    task or a timeout is not an answer; ``input-required`` is)."""
    replies: list[Reply] = [await guarded(client.health(agent), agent.id) for _ in range(count)]
    answered = [r for r in replies if r.status is not None or r.ok]
    failed = [r for r in replies if not r.ok]
    last = failed[-1] if failed else replies[-1]
    card = next((r.card for r in replies if r.card is not None), None)
    answer = None
    if message is not None and not failed:
        answer = MessageCheck.of(await guarded(client.stream_message(agent, message), agent.id))
    broken = answer if answer is not None and not answer.ok else None
    return ProbeResult(
        agent=agent,
        healthy=not failed and broken is None,
        status=last.status,
        timings=last.timings,
        samples=tuple(r.latency_ms for r in answered),
        checks=count,
        failures=len(failed),
        discovery_ms=next((r.latency_ms for r in replies if r.card is not None), None),
        card=card,
        error=broken.error if broken else last.error,
        message=broken.message if broken else last.message,
        answer=answer,
    )
