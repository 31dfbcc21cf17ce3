"""The engine behind ``latcli probe``: health, phase timings and A2A discovery of many agents."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from latcli.errors import ErrorKind
from latcli.guard import guarded
from latcli.inventory import Agent
from latcli.protocols import Card, ProtocolClient, Reply
from latcli.transport.base import Timings


@dataclass(frozen=True)
class ProbeResult:
    """One agent's probe. Latencies are ms; ``samples`` holds every check's total time."""

    agent: Agent
    healthy: bool
    status: int | None
    timings: Timings
    samples: tuple[float, ...]
    checks: int
    failures: int
    discovery_ms: float | None = None
    card: Card | None = None
    error: ErrorKind | None = None
    message: str | None = None

    @property
    def latency_ms(self) -> float | None:
        """The median check time; None when no check got an answer."""
        return statistics.median(self.samples) if self.samples else None

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile of the check times (exact for the small counts probe takes)."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        rank = max(1, -(-len(ordered) * p // 100))
        return ordered[int(rank) - 1]


@dataclass(frozen=True)
class ProbeReport:
    results: tuple[ProbeResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.healthy for r in self.results)


MAX_CONCURRENT = 128  # checks in flight at once; see probe_agents


async def probe_agents(
    client: ProtocolClient,
    agents: Sequence[Agent],
    count: int = 1,
    max_concurrent: int = MAX_CONCURRENT,
) -> ProbeReport:
    """Probe every agent concurrently, ``count`` sequential checks each.

    At most ``max_concurrent`` agents are probed at once: one event loop spends ~1 ms of CPU
    per check, so 1,000 checks started together would all finish together, each measuring
    the whole batch (and timing out). Bounded, each check's time is its own.
    """
    gate = asyncio.Semaphore(max_concurrent)

    async def one(agent: Agent) -> ProbeResult:
        async with gate:
            return await probe_one(client, agent, count)

    results = await asyncio.gather(*(one(a) for a in agents))
    return ProbeReport(tuple(results))


async def probe_one(client: ProtocolClient, agent: Agent, count: int = 1) -> ProbeResult:
    """``count`` health checks (the card GET for A2A agents). Healthy only if every check passed."""
    replies: list[Reply] = [await guarded(client.health(agent), agent.id) for _ in range(count)]
    answered = [r for r in replies if r.status is not None or r.ok]
    failed = [r for r in replies if not r.ok]
    last = failed[-1] if failed else replies[-1]
    card = next((r.card for r in replies if r.card is not None), None)
    return ProbeResult(
        agent=agent,
        healthy=not failed,
        status=last.status,
        timings=last.timings,
        samples=tuple(r.latency_ms for r in answered),
        checks=count,
        failures=len(failed),
        discovery_ms=next((r.latency_ms for r in replies if r.card is not None), None),
        card=card,
        error=last.error,
        message=last.message,
    )
