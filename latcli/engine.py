"""Wiring shared by the commands: one transport and protocol client per run."""

from __future__ import annotations

from collections.abc import Sequence

from latcli.inventory import Agent
from latcli.probe import ProbeReport, probe_agents
from latcli.protocols import ProtocolClient
from latcli.transport.httpx_transport import HttpxTransport


async def run_probe(agents: Sequence[Agent], count: int = 1) -> ProbeReport:
    """Probe ``agents`` over a fresh transport that is closed afterwards."""
    async with HttpxTransport() as transport:
        return await probe_agents(ProtocolClient(transport), agents, count)
