"""agents.yaml loading: every problem as ``file:line path: message``, merging, ${VAR}, finding."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from inventory_files import problems, write

from latcli.config.loading import DEMO_INVENTORY, find_inventory, load_inventory
from latcli.config.problems import InventoryError, Problem

AGENT = '  - {id: w-1, type: weather, url: "http://127.0.0.1:8001"}\n'

SECRET = "s3cr3t-t0ken-value"

# One case per kind of problem: (name, file text, expected lines).
CASES = [
    (
        "yaml syntax",
        "version: 1\nagents: [\n  {id: a\n",
        [
            "agents.yaml:4: invalid YAML: did not find expected ',' or '}'"
            if yaml.__with_libyaml__  # the loader uses libyaml's parser when it is there
            else "agents.yaml:4: invalid YAML: expected ',' or '}', but got '<stream end>'"
        ],
    ),
    (
        "unknown top-level key",
        "version: 1\ncolour: red\nagents:\n" + AGENT,
        [
            "agents.yaml:2 colour: unknown key "
            "(expected one of: version, agents, defaults, routing, sla)"
        ],
    ),
    (
        "unknown key in defaults",
        "version: 1\ndefaults:\n  timeot: 5s\nagents:\n" + AGENT,
        ["agents.yaml:3 defaults.timeot: unknown key (did you mean 'timeout'?)"],
    ),
    (
        "unknown key in an agent",
        "version: 1\nagents:\n" + AGENT + '  - {id: w-2, type: t, url: "http://h:1", weigth: 2}\n',
        ["agents.yaml:4 agents[1].weigth: unknown key (did you mean 'weight'?)"],
    ),
    (
        "unknown key nested in an agent",
        "version: 1\nagents:\n  - id: a\n    type: t\n    url: http://h:1\n    health:\n"
        "      pth: /x\n",
        ["agents.yaml:7 agents[0].health.pth: unknown key (did you mean 'path'?)"],
    ),
    (
        "wrong type",
        "version: 1\nagents:\n  - id: a\n    type: t\n    url: http://h:1\n    weight: heavy\n",
        ["agents.yaml:6 agents[0].weight: expected a number, got a string"],
    ),
    (
        "agent not a mapping",
        "version: 1\nagents:\n  - just-a-string\n",
        ["agents.yaml:3 agents[0]: expected a mapping, got a string"],
    ),
    (
        "missing required key",
        "version: 1\nagents:\n  - {id: a, type: t}\n",
        ["agents.yaml:3 agents[0]: missing required key 'url'"],
    ),
    (
        "duplicate id",
        "version: 1\nagents:\n" + AGENT + '  - {id: w-2, type: t, url: "http://h:2"}\n' + AGENT,
        ["agents.yaml:5 agents[2].id: duplicate id 'w-1' (first at line 3)"],
    ),
    (
        "duplicate YAML key",
        "version: 1\nagents:\n  - id: a\n    id: b\n    type: t\n    url: http://h:1\n",
        ["agents.yaml:4 agents[0].id: duplicate key 'id' (first at line 3)"],
    ),
    (
        "bad URL",
        "version: 1\nagents:\n" + AGENT + '  - {id: w-2, type: t, url: "ftp://h:2"}\n',
        ["agents.yaml:4 agents[1].url: not an http(s) URL"],
    ),
    (
        "bad port",
        'version: 1\nagents:\n  - {id: a, type: t, url: "http://h:99999"}\n',
        ["agents.yaml:3 agents[0].url: not an http(s) URL"],
    ),
    (
        "undefined variable",
        "version: 1\ndefaults:\n  headers: {Authorization: 'Bearer ${WEATHER_TOKEN}'}\n"
        "agents:\n" + AGENT,
        ["agents.yaml:3 defaults.headers.Authorization: undefined variable WEATHER_TOKEN"],
    ),
    (
        "malformed variable",
        "version: 1\nagents:\n  - {id: a, type: t, url: 'http://h:1/${HOST'}\n",
        ["agents.yaml:3 agents[0].url: malformed ${...} reference (use ${VAR} or ${VAR:-default})"],
    ),
    (
        "bad duration",
        "version: 1\ndefaults:\n  timeout: 5 sec\nagents:\n" + AGENT,
        ["agents.yaml:3 defaults.timeout: not a duration (try 250ms, 5s, 1m): '5 sec'"],
    ),
    (
        "zero duration",
        "version: 1\ndefaults:\n  ewma: {decay: 0s}\nagents:\n" + AGENT,
        ["agents.yaml:3 defaults.ewma.decay: must be greater than 0"],
    ),
    (
        "bad percentage",
        "version: 1\ndefaults:\n  breaker: {failure_rate: 150%}\nagents:\n" + AGENT,
        ["agents.yaml:3 defaults.breaker.failure_rate: percentage out of range 0-100%: '150%'"],
    ),
    (
        "bad protocol",
        'version: 1\nagents:\n  - {id: a, type: t, url: "http://h:2", protocol: grpc}\n',
        ["agents.yaml:3 agents[0].protocol: must be one of http, a2a (got 'grpc')"],
    ),
    (
        "bad strategy",
        "version: 1\nrouting: {strategy: random}\nagents:\n" + AGENT,
        [
            "agents.yaml:2 routing.strategy: must be one of "
            "p2c, fastest, round_robin, least_loaded, weighted (got 'random')"
        ],
    ),
    (
        "negative retries",
        "version: 1\nrouting: {retries: -1}\nagents:\n" + AGENT,
        ["agents.yaml:2 routing.retries: expected an integer >= 0"],
    ),
    (
        "breaker int below 1",
        "version: 1\ndefaults: {breaker: {half_open_probes: 0}}\nagents:\n" + AGENT,
        ["agents.yaml:2 defaults.breaker.half_open_probes: expected an integer >= 1"],
    ),
    (
        "health fall below 1",
        "version: 1\ndefaults: {health: {fall: 0}}\nagents:\n" + AGENT,
        ["agents.yaml:2 defaults.health.fall: expected an integer >= 1"],
    ),
    (
        "bad version",
        "version: 2\nagents:\n" + AGENT,
        ["agents.yaml:1 version: unsupported version 2 (this latcli reads version 1)"],
    ),
    (
        "missing version",
        "agents:\n" + AGENT,
        ["agents.yaml:1: missing required key 'version'"],
    ),
    (
        "empty agents",
        "version: 1\nagents: []\n",
        ["agents.yaml:2 agents: at least one agent is required"],
    ),
    (
        "no agents key",
        "version: 1\n",
        ["agents.yaml:1: missing required key 'agents'"],
    ),
    (
        "top level not a mapping",
        "- a\n- b\n",
        ["agents.yaml:1: top level must be a mapping with 'version' and 'agents' (got a list)"],
    ),
    (
        "empty file",
        "",
        [
            "agents.yaml: top level must be a mapping with 'version' and 'agents' "
            "(the file is empty)"
        ],
    ),
    (
        "bad id and type",
        'version: 1\nagents:\n  - {id: "w 1", type: "", url: "http://h:2"}\n',
        [
            "agents.yaml:3 agents[0].id: must be letters, digits, '.', '_' or '-' (got 'w 1')",
            "agents.yaml:3 agents[0].type: must be letters, digits, '.', '_' or '-' (got '')",
        ],
    ),
    (
        "bad demo latency",
        "version: 1\nagents:\n"
        '  - {id: a, type: t, url: "http://h:2", demo: {latency: gamma 20ms}}\n',
        [
            "agents.yaml:3 agents[0].demo.latency: not a latency distribution "
            "(try '20ms', 'normal 20ms 5ms', 'lognormal 20ms 0.6'): 'gamma 20ms'"
        ],
    ),
    (
        "empty demo latency",
        'version: 1\nagents:\n  - {id: a, type: t, url: "http://h:2", demo: {latency: ""}}\n',
        [
            "agents.yaml:3 agents[0].demo.latency: empty latency distribution "
            "(try '20ms', 'normal 20ms 5ms')"
        ],
    ),
    (
        "bad demo a2a_version",
        'version: 1\nagents:\n  - {id: a, type: t, url: "http://h:2", demo: {a2a_version: 2.0}}\n',
        ["agents.yaml:3 agents[0].demo.a2a_version: must be '0.3' or '1.0' (got '2.0')"],
    ),
    (
        "unknown sla name",
        "version: 1\nsla:\n  latency: p99 < 1s\nagents:\n" + AGENT,
        [
            "agents.yaml:3 sla.latency: unknown key (expected one of: "
            "health, discovery, message, coordination, availability, error_rate, stream, canary)"
        ],
    ),
    (
        "unknown stream phase",
        "version: 1\nsla:\n  stream:\n    ttft: p95 < 1s\nagents:\n" + AGENT,
        [
            "agents.yaml:4 sla.stream.ttft: unknown key (expected one of: "
            "first_event, first_artifact, gap, total)"
        ],
    ),
    (
        "empty stream phase",
        "version: 1\nsla:\n  stream:\n    total: ' '\nagents:\n" + AGENT,
        ["agents.yaml:4 sla.stream.total: empty expression"],
    ),
    (
        "recursive alias",
        "version: 1\nx: &a [*a]\nagents: []\n",
        ["agents.yaml:2: invalid YAML: recursive alias"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_one_line_with_file_line_and_path(
    here: Path, text: str, expected: list[str]
) -> None:
    assert problems(text) == expected


def test_missing_file_names_the_file(here: Path) -> None:
    with pytest.raises(InventoryError) as info:
        load_inventory("nope.yaml", {})
    assert str(info.value) == "nope.yaml: file not found"
    assert info.value.problems == (Problem("nope.yaml", None, "", "file not found"),)


def test_missing_file_from_the_environment(here: Path) -> None:
    with pytest.raises(InventoryError, match=r"^gone\.yaml: file not found$"):
        load_inventory(None, {"LATCLI_INVENTORY": "gone.yaml"})


def test_unreadable_file(here: Path) -> None:
    Path("agents.yaml").write_bytes(b"version: 1\n\xff\xfe\n")
    with pytest.raises(InventoryError, match=r"^agents\.yaml: not UTF-8 text$"):
        load_inventory("agents.yaml", {})


def test_several_problems_are_reported_at_once_in_file_order(here: Path) -> None:
    text = (
        "version: 1\n"
        "routing: {strategy: random}\n"
        "agents:\n"
        '  - {id: a, type: t, url: "nope"}\n'
        '  - {id: b, type: t, url: "http://h:1", timeout: soon}\n'
        '  - {id: a, type: t, url: "http://h:2", protocol: grpc}\n'
    )
    assert problems(text) == [
        "agents.yaml:2 routing.strategy: must be one of "
        "p2c, fastest, round_robin, least_loaded, weighted (got 'random')",
        "agents.yaml:4 agents[0].url: not an http(s) URL",
        "agents.yaml:5 agents[1].timeout: not a duration (try 250ms, 5s, 1m): 'soon'",
        "agents.yaml:6 agents[2].id: duplicate id 'a' (first at line 4)",
        "agents.yaml:6 agents[2].protocol: must be one of http, a2a (got 'grpc')",
    ]


def test_a_bad_default_is_reported_once_not_once_per_agent(here: Path) -> None:
    text = "version: 1\ndefaults: {timeout: soon}\nagents:\n" + AGENT
    text += '  - {id: w-2, type: weather, url: "http://h:2"}\n'
    assert problems(text) == [
        "agents.yaml:2 defaults.timeout: not a duration (try 250ms, 5s, 1m): 'soon'"
    ]


DEFAULTS = """\
version: 1
defaults:
  protocol: a2a
  timeout: 250ms
  health: {path: /healthz, interval: 1m}
  headers: {Authorization: "Bearer ${TOKEN}", X-Team: "${TEAM:-ops}"}
  breaker: {failures: 3, failure_rate: 25%}
  ewma: {decay: 2.5}
routing: {strategy: fastest, retries: 0, retry_budget: 5%}
sla:
  message: p90 < 500ms
  health: " p99 < 100ms "
agents:
  - id: w-1
    type: weather
    url: "http://127.0.0.1:8001/"
  - id: w-2
    type: weather
    url: "https://${HOST:-example.com}"
    protocol: http
    timeout: 1
    health: {timeout: 2s}
    headers: {AUTHORIZATION: "Basic other", X-Extra: "1"}
    breaker: {failures: 9}
    demo: {latency: "lognormal 20ms 0.6", errors: 2%, a2a_version: 0.3}
"""


def test_defaults_merge_into_every_agent_key_by_key(here: Path) -> None:
    inv = load_inventory(write(DEFAULTS), {"TOKEN": SECRET})
    w1, w2 = inv.agents
    assert (w1.protocol, w1.timeout, w1.url) == ("a2a", 0.25, "http://127.0.0.1:8001")
    assert (w1.health.path, w1.health.interval, w1.health.timeout) == ("/healthz", 60.0, 1.0)
    assert (w1.breaker.failures, w1.breaker.failure_rate, w1.ewma.decay) == (3, 0.25, 2.5)
    assert dict(w1.headers) == {"Authorization": f"Bearer {SECRET}", "X-Team": "ops"}
    assert w1.demo is None and not w1.adhoc
    # Per-agent keys win; nested sections merge key by key; header names ignore case.
    assert (w2.protocol, w2.timeout, w2.url) == ("http", 1.0, "https://example.com")
    assert (w2.health.path, w2.health.interval, w2.health.timeout) == ("/healthz", 60.0, 2.0)
    assert (w2.breaker.failures, w2.breaker.failure_rate) == (9, 0.25)
    assert dict(w2.headers) == {"X-Team": "ops", "AUTHORIZATION": "Basic other", "X-Extra": "1"}
    assert w2.demo is not None
    assert (w2.demo.latency, w2.demo.errors, w2.demo.a2a_version) == (
        "lognormal 20ms 0.6",
        0.02,
        "0.3",
    )


def test_routing_sla_and_defaults_template(here: Path) -> None:
    inv = load_inventory(write(DEFAULTS), {"TOKEN": SECRET})
    assert (inv.routing.strategy, inv.routing.retries, inv.routing.retry_budget) == (
        "fastest",
        0,
        0.05,
    )
    assert list(inv.sla.items()) == [("message", "p90 < 500ms"), ("health", "p99 < 100ms")]
    assert inv.path == Path("agents.yaml")
    assert inv.defaults is not None
    assert (inv.defaults.id, inv.defaults.protocol, inv.defaults.timeout) == ("", "a2a", 0.25)


def test_variables_use_the_environment_and_defaults_only_when_unset_or_empty(here: Path) -> None:
    env = {"TOKEN": SECRET, "TEAM": "", "HOST": "api.example.org:8443"}
    w1, w2 = load_inventory(write(DEFAULTS), env).agents
    assert w1.headers["X-Team"] == "ops"  # ':-' takes the default for an empty variable too
    assert w2.url == "https://api.example.org:8443"


def test_environment_variables_fill_numbers(here: Path) -> None:
    text = 'version: 1\nagents:\n  - {id: a, type: t, url: "http://h:1", weight: "${W}"}\n'
    assert load_inventory(write(text), {"W": "2.5"}).agents[0].weight == 2.5


def test_yaml_anchors_and_merge_keys_work(here: Path) -> None:
    text = (
        "version: 1\n"
        "agents:\n"
        '  - &base {id: a, type: weather, url: "http://h:1", timeout: 2s}\n'
        '  - {<<: *base, id: b, url: "http://h:2"}\n'
    )
    a, b = load_inventory(write(text), {}).agents
    assert (b.id, b.type, b.url, b.timeout) == ("b", "weather", "http://h:2", 2.0)
    assert a.id == "a"


def test_find_order_explicit_then_environment_then_local_then_demo(here: Path) -> None:
    Path("mine.yaml").write_text("x", encoding="utf-8")
    Path("env.yaml").write_text("x", encoding="utf-8")
    env = {"LATCLI_INVENTORY": "env.yaml"}
    assert find_inventory("mine.yaml", env) == Path("mine.yaml")
    assert find_inventory(None, env) == Path("env.yaml")
    assert find_inventory(None, {}) == (DEMO_INVENTORY if DEMO_INVENTORY.is_file() else None)
    Path("agents.yaml").write_text("x", encoding="utf-8")
    assert find_inventory(None, {}) == Path("agents.yaml")


def test_a_directory_is_not_an_inventory(here: Path) -> None:
    Path("dir.yaml").mkdir()
    with pytest.raises(InventoryError, match=r"^dir\.yaml: is a directory, not a file$"):
        find_inventory("dir.yaml", {})


@pytest.mark.skipif(not DEMO_INVENTORY.is_file(), reason="demo fleet not written yet")
def test_the_embedded_demo_fleet_loads(here: Path) -> None:
    inv = load_inventory(None, {})
    assert inv.path == DEMO_INVENTORY
    assert inv.agents and all(a.demo is not None for a in inv.agents)


def test_header_values_never_appear_in_errors_or_reprs(here: Path) -> None:
    text = (
        "version: 1\n"
        f'defaults: {{headers: {{Authorization: "Bearer {SECRET}"}}}}\n'
        "agents:\n"
        f'  - {{id: a, type: t, url: "http://h:1", headers: {{X-Key: ["{SECRET}"]}}}}\n'
        f'  - {{id: b, type: t, url: "http://h:2", headers: {{X-Key: "{SECRET}\\n"}}}}\n'
        f'  - {{id: c, type: t, url: "http://h:3", headers: {{X-Key: "{SECRET}"}}}}\n'
        '  - {id: c, type: t, url: "nope"}\n'
    )
    lines = problems(text)
    assert lines == [
        "agents.yaml:4 agents[0].headers: expected a string, got a list",
        "agents.yaml:5 agents[1].headers.X-Key: header value contains a line break",
        "agents.yaml:7 agents[3].id: duplicate id 'c' (first at line 6)",
        "agents.yaml:7 agents[3].url: not an http(s) URL",
    ]
    fixed = text.replace(f'["{SECRET}"]', '"x"').replace(f"{SECRET}\\n", "x")
    fixed = fixed.replace('  - {id: c, type: t, url: "nope"}\n', "")
    inv = load_inventory(write(fixed), {})
    assert SECRET in inv.agents[2].headers["X-Key"]
    for shown in (repr(inv), repr(inv.agents), str(inv.agents[0]), repr(inv.defaults)):
        assert SECRET not in shown
    assert inv.agents[0].shown_headers() == {"Authorization": "***", "X-Key": "***"}


def test_health_rise_and_fall_merge_from_defaults(here: Path) -> None:
    # watch's hysteresis per agent: defaults give rise, the agent overrides fall.
    text = (
        "version: 1\ndefaults: {health: {rise: 4}}\nagents:\n"
        '  - {id: w-1, type: weather, url: "http://127.0.0.1:8001", health: {fall: 1}}\n'
        '  - {id: w-2, type: weather, url: "http://127.0.0.1:8002"}\n'
    )
    one, two = load_inventory(write(text), {}).agents
    assert (one.health.rise, one.health.fall) == (4, 1)
    assert (two.health.rise, two.health.fall) == (4, 3)
