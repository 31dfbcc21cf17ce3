"""The file's sections: derived from the dataclass fields (each declared once), and the JSON
Schema `latcli schema` prints."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated, get_args, get_origin

import msgspec
import pytest

from latcli.config.checks import _CHECKS
from latcli.config.file_keys import BREAKER_KEYS, keys_of
from latcli.config.model import (
    A2AConfig,
    Agent,
    CanaryConfig,
    DemoConfig,
    EwmaConfig,
    HealthConfig,
    RoutingConfig,
)
from latcli.config.schema import (
    AgentEntry,
    DefaultsSection,
    HealthSection,
    inventory_json_schema,
    section_of,
)
from latcli.core.breaker import BreakerConfig

MODELS = (Agent, HealthConfig, CanaryConfig, EwmaConfig, DemoConfig, A2AConfig, RoutingConfig)
# Set on the command line or by latcli itself, never written in agents.yaml.
NOT_IN_FILE = {(Agent, "adhoc"), (HealthConfig, "method"), (HealthConfig, "body")}


def struct_keys(struct: type[msgspec.Struct]) -> list[str]:
    return [f.name for f in msgspec.structs.fields(struct)]


def test_breaker_keys_are_exactly_the_breaker_fields_in_order() -> None:
    # core cannot carry file forms; a new BreakerConfig field must get one here.
    assert list(BREAKER_KEYS) == [f.name for f in fields(BreakerConfig)]


@pytest.mark.parametrize("kind", MODELS, ids=lambda k: k.__name__)
def test_every_field_is_a_file_key_unless_listed(kind: type) -> None:
    # A new field must say how the file writes it (key/nested) or be listed as CLI-only.
    missing = {(kind, f.name) for f in fields(kind) if f.name not in keys_of(kind)}
    assert missing == {(k, n) for k, n in NOT_IN_FILE if k is kind}


@pytest.mark.parametrize("kind", (*MODELS[1:], BreakerConfig), ids=lambda k: k.__name__)
def test_a_section_takes_its_dataclass_keys_in_field_order(kind: type) -> None:
    assert struct_keys(section_of(kind)) == list(keys_of(kind))


def test_defaults_take_every_agent_key_but_the_per_agent_ones() -> None:
    assert struct_keys(HealthSection) == ["path", "interval", "timeout", "rise", "fall", "canary"]
    assert "id" not in struct_keys(DefaultsSection)
    assert "demo" not in struct_keys(DefaultsSection)
    assert struct_keys(AgentEntry) == [*struct_keys(DefaultsSection), "id", "type", "url", "demo"]
    required = [f.name for f in msgspec.structs.fields(AgentEntry) if f.required]
    assert required == ["id", "type", "url"]


def test_a_key_written_as_text_for_a_number_has_a_check() -> None:
    # `5s` or `50%` in a float field must be parsed by a check, never stored as text.
    textual = {
        name
        for kind in (*MODELS, BreakerConfig)
        for name, spec in keys_of(kind).items()
        if get_origin(spec.shape) is Annotated and get_args(spec.shape)[0] == float | str
    }
    assert textual >= {"timeout", "interval", "failure_rate", "every", "rate_limited"}
    assert textual - set(_CHECKS) == set()


def test_every_check_is_for_a_key_the_file_has() -> None:
    # Checks are keyed by name: a renamed field would silently lose its check.
    names = {name for kind in (*MODELS, BreakerConfig) for name in keys_of(kind)}
    assert set(_CHECKS) - names == set()


def test_schema_is_json_and_describes_agents() -> None:
    schema = json.loads(json.dumps(inventory_json_schema()))
    assert schema["title"] == "latcli inventory (agents.yaml)"
    defs = schema["$defs"]
    top = defs[schema["$ref"].rsplit("/", 1)[1]]
    assert set(top["required"]) == {"version", "agents"}
    agent = defs[top["properties"]["agents"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert {"id", "type", "url", "protocol", "timeout", "headers", "health", "demo"} <= set(
        agent["properties"]
    )
    assert set(agent["required"]) == {"id", "type", "url"}
    assert agent["additionalProperties"] is False
    assert agent["properties"]["protocol"]["enum"] == ["http", "a2a"]


def test_latcli_schema_command_prints_the_schema() -> None:
    script = Path(sys.executable).with_name("latcli")  # what `uv run latcli` runs
    done = subprocess.run(
        [str(script), "schema"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == inventory_json_schema()
