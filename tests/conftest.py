"""Shared fixtures: one demo fleet per test session, on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from latcli.config.loading import load_inventory
from latcli.config.model import Agent
from latcli.demo.control import get_fault, set_fault
from latcli.demo.fleet import DEMO_INVENTORY, Fleet, free_port


@dataclass(frozen=True)
class DemoFleet:
    """The running demo fleet and an inventory file that points at its ports.

    ``agents`` are loaded from ``inventory_path``, so their URLs are the real ones.
    Tests that change an agent's faults must put them back: use :meth:`faulted`.
    """

    inventory_path: Path
    fleet: Fleet
    agents: tuple[Agent, ...]

    def agent(self, agent_id: str) -> Agent:
        return next(a for a in self.agents if a.id == agent_id)

    @contextlib.contextmanager
    def faulted(self, agent_id: str, **change: Any) -> Iterator[Agent]:
        """Apply ``change`` (latency=, errors=, down=) to one agent for the block, then undo it."""
        url = self.agent(agent_id).url
        before = asyncio.run(get_fault(url))
        args: dict[str, Any] = {"latency": None, "errors": None, "down": None, **change}
        asyncio.run(set_fault(url, **args))
        try:
            yield self.agent(agent_id)
        finally:
            asyncio.run(
                set_fault(
                    url,
                    latency=str(before["latency"]),
                    errors=float(str(before["errors"])),
                    down=bool(before["down"]),
                )
            )


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: problems name ``agents.yaml``; nothing is found by accident."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_inventory(path: Path, ports: dict[str, int]) -> Path:
    """The demo inventory with each agent's URL moved to ``ports[id]``."""
    doc = yaml.safe_load(DEMO_INVENTORY.read_text(encoding="utf-8"))
    for entry in doc["agents"]:
        entry["url"] = f"http://127.0.0.1:{ports[entry['id']]}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def demo_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoFleet]:
    """weather-1/2 (http), calendar-1 (A2A 1.0), calendar-2 (A2A 0.3), flaky-1 (http, 20 %)."""
    demo_agents = load_inventory(DEMO_INVENTORY, {}).agents
    ports = {a.id: free_port() for a in demo_agents}
    path = write_inventory(tmp_path_factory.mktemp("demo-fleet") / "agents.yaml", ports)
    agents = load_inventory(path, {}).agents
    with Fleet(agents, seed=7) as fleet:
        yield DemoFleet(path, fleet, agents)


@pytest.fixture(scope="session", autouse=True)
def bench_json_round_trips(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the session: every bench JSON file a test made round-trips through BenchReport
    (tests/support/bench_round_trip.py); a failure is an error at the last test's teardown."""
    yield
    from bench_round_trip import check_tree

    _, problems = check_tree(tmp_path_factory.getbasetemp())
    assert not problems, "bench JSON that does not round-trip:\n" + "\n".join(problems)
