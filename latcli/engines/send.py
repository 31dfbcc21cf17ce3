"""Wiring shared by the commands: one transport and protocol client per run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from latcli.config.model import Agent, Inventory
from latcli.engines.probe import probe_agents
from latcli.reports.probe import ProbeReport
from latcli.transport.factory import Engine, make_transport
from latcli.transport.protocols import ProtocolClient
from latcli.transport.stream_reply import OnChunk

if TYPE_CHECKING:
    from latcli.routing.results import FanOut


async def run_probe(
    agents: Sequence[Agent],
    count: int = 1,
    engine: Engine = "auto",
    verify: bool | str = True,
    message: str | None = None,
) -> ProbeReport:
    """Probe ``agents`` over a fresh transport that is closed afterwards (``message``: also
    send each one that real message)."""
    transport = make_transport(engine, len(agents), use="probe", verify=verify)
    try:
        return await probe_agents(ProtocolClient(transport), agents, count, message=message)
    finally:
        await transport.aclose()


async def run_send(
    inv: Inventory,
    types: Sequence[str],
    message: str,
    strategy: str | None,
    retries: int | None,
    timeout: float | None,
    hedge: bool,
    state_path: Path | None,
    no_state: bool,
    verify: bool | str = True,
    *,
    stream: bool = False,
    on_chunk: OnChunk | None = None,
) -> FanOut:
    """One ``latcli send``: a router over the inventory, state loaded before and saved after.

    ``stream``: streamed where the agent can; ``on_chunk`` sees a lone type's answer arrive."""
    import os
    import sys

    from latcli.routing.router import Router
    from latcli.routing.state_sqlite import open_store

    def warn(text: str) -> None:
        print(text, file=sys.stderr)

    store = open_store(state_path, enabled=not no_state, env=os.environ, warn=warn)
    transport = make_transport("auto", use="send", verify=verify)
    try:
        async with Router(
            inv, strategy=strategy, retries=retries, hedge=hedge, state=store, transport=transport
        ) as router:
            for t in types:
                router.replicas(t)
            return await router.fan_out(
                types, message, timeout=timeout, stream=stream, on_chunk=on_chunk
            )
    finally:
        await transport.aclose()


def send_targets(inv: Inventory, selectors: Sequence[str]) -> tuple[Inventory, list[str]]:
    """What ``latcli send`` routes to: an inventory and the routing keys in it.

    Types route as they are. An agent id or a URL (of an inventory agent, or an ad-hoc one)
    routes to that agent alone: its copy in the returned inventory carries the selector as its
    type, so the router and the reply lines name it as the user did. Raises LatcliError for an
    unknown name or an agent asked for twice.
    """
    from dataclasses import replace

    from latcli.config.selection import select_agents
    from latcli.core.errors import LatcliError

    types = {a.type for a in inv.agents}
    if all(s in types for s in selectors):
        return inv, list(selectors)
    chosen: dict[str, Agent] = {}
    for selector in selectors:
        for agent in select_agents(inv, [selector]):
            if agent.id in chosen:
                raise LatcliError(f"{agent.id} is asked for twice (by {selector!r} and before)")
            chosen[agent.id] = agent if selector in types else replace(agent, type=selector)
    return replace(inv, agents=tuple(chosen.values())), list(selectors)
