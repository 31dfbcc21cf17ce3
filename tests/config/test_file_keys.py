"""Each inventory field is declared once, on its dataclass: the sections derived from them."""

from __future__ import annotations

from dataclasses import fields
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
from latcli.config.schema import AgentEntry, DefaultsSection, HealthSection, section_of
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
