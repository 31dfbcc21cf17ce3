"""Selection: agents by id, type or URL in inventory order; ad-hoc agents from URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from latcli.config.loading import load_inventory
from latcli.config.model import Agent, Inventory
from latcli.config.selection import adhoc_agent, select_agents
from latcli.core.errors import ExitCode, LatcliError

SECRET = "s3cr3t-t0ken-value"

FLEET = """\
version: 1
defaults: {timeout: 3s, headers: {Authorization: "Bearer ${TOKEN}"}}
agents:
  - {id: weather-1, type: weather, url: "http://127.0.0.1:8001"}
  - {id: calendar-1, type: calendar, url: "http://127.0.0.1:8003", protocol: a2a}
  - {id: weather-2, type: weather, url: "http://127.0.0.1:8002"}
"""


@pytest.fixture
def fleet(tmp_path: Path) -> Inventory:
    path = tmp_path / "agents.yaml"
    path.write_text(FLEET, encoding="utf-8")
    return load_inventory(path, {"TOKEN": SECRET})


def ids(agents: list[Agent]) -> list[str]:
    return [a.id for a in agents]


@pytest.mark.parametrize(
    ("selectors", "type_filter", "expected"),
    [
        ([], None, ["weather-1", "calendar-1", "weather-2"]),
        (["weather-2"], None, ["weather-2"]),
        (["weather"], None, ["weather-1", "weather-2"]),
        (["weather-2", "calendar", "weather"], None, ["weather-1", "calendar-1", "weather-2"]),
        (["HTTP://127.0.0.1:8003/"], None, ["calendar-1"]),
        ([], "calendar", ["calendar-1"]),
        (["weather-1", "calendar-1"], "weather", ["weather-1"]),
        (
            ["http://10.0.0.9:9000", "weather-1", "http://10.0.0.9:9000/"],
            None,
            ["weather-1", "10.0.0.9:9000"],
        ),
    ],
)
def test_selection_keeps_inventory_order_without_duplicates(
    fleet: Inventory, selectors: list[str], type_filter: str | None, expected: list[str]
) -> None:
    assert ids(select_agents(fleet, selectors, type_filter)) == expected


def test_unknown_selector_lists_what_exists(fleet: Inventory) -> None:
    with pytest.raises(LatcliError) as info:
        select_agents(fleet, ["wether"])
    assert str(info.value) == (
        "unknown agent or type 'wether' "
        "(agents: weather-1, calendar-1, weather-2; types: weather, calendar)"
    )
    assert info.value.exit_code == ExitCode.USAGE


def test_unknown_type_filter(fleet: Inventory) -> None:
    with pytest.raises(LatcliError, match=r"^unknown type 'x' \(types: weather, calendar\)$"):
        select_agents(fleet, [], "x")


def test_adhoc_agent_takes_the_inventory_defaults(fleet: Inventory) -> None:
    (agent,) = select_agents(fleet, ["http://localhost:9000/"])
    assert (agent.id, agent.type, agent.url, agent.protocol) == (
        "localhost:9000",
        "adhoc",
        "http://localhost:9000",
        "http",
    )
    assert agent.adhoc and agent.timeout == 3.0
    assert dict(agent.headers) == {"Authorization": f"Bearer {SECRET}"}


@pytest.mark.parametrize(
    ("url", "expected_id"),
    [
        ("http://h", "h:80"),
        ("https://H.example", "h.example:443"),
        ("http://[::1]:8001", "[::1]:8001"),
        ("http://h:8001/agent/", "h:8001/agent"),
        ("http://h:8001/x?q=1", "h:8001/x?q=1"),  # a query is kept (issue 15)
    ],
)
def test_adhoc_agent_ids(url: str, expected_id: str) -> None:
    agent = adhoc_agent(url)
    assert agent.id == expected_id
    assert agent.timeout == Agent("", "", "").timeout  # no inventory: plain defaults


@pytest.mark.parametrize("url", ["ftp://h:1", "http://", "http://h:notaport", "http://h:1/#frag"])
def test_adhoc_bad_url_is_a_usage_error(url: str) -> None:
    with pytest.raises(LatcliError) as info:
        adhoc_agent(url)
    assert info.value.exit_code == ExitCode.USAGE
    assert str(info.value).startswith("not an http(s) URL: ")
    assert "\n" not in str(info.value)


def test_no_inventory_anywhere_still_allows_adhoc_urls() -> None:
    empty = Inventory(path=None, agents=())
    assert ids(select_agents(empty, ["http://h:1"])) == ["h:1"]
    with pytest.raises(LatcliError, match=r"\(agents: none; types: none\)"):
        select_agents(empty, ["weather"])
