"""The shape of agents.yaml: one msgspec Struct per section, also the JSON Schema.

A model dataclass's section is derived from its fields, each of which carries its file form
(:mod:`latcli.config.file_keys`), so a key is declared once; the SLA sections and the top level
have no dataclass and are written out here.

:func:`convert` checks a mapping against its section and turns msgspec's first error into a
``key.path: message`` problem (plus every sibling unknown key, with a did-you-mean); the
semantic checks (units, URLs, names) are :mod:`latcli.config.checks`'.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from typing import Annotated, Any, TypeVar, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from latcli.config.file_keys import FileKey, keys_of
from latcli.config.model import (
    A2AConfig,
    Agent,
    CanaryConfig,
    DemoConfig,
    EwmaConfig,
    HealthConfig,
    RoutingConfig,
)
from latcli.config.problems import KeyPath, Report, unknown_key
from latcli.core.breaker import BreakerConfig


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


# Section names and docs as the JSON Schema shows them (the canary's keeps the indent its old
# class docstring had, so `latcli schema` prints what it did); the keys come from the fields.
_DOCS: dict[type[Any], tuple[str, str]] = {
    CanaryConfig: (
        "CanarySection",
        "A real message watch sends on its own schedule; a failed task, a timeout or an answer\n"
        "    that does not match `expect` is a failed check.",
    ),
    HealthConfig: (
        "HealthSection",
        "Health check: GET {url}{path} (a2a agents: the agent-card GET).",
    ),
    BreakerConfig: ("BreakerSection", "Circuit breaker per agent (DESIGN §4)."),
    EwmaConfig: ("EwmaSection", "Peak EWMA latency with time decay tau."),
    DemoConfig: ("DemoSection", "How `latcli demo` simulates this agent."),
    A2AConfig: (
        "A2ASection",
        "A2A agents: the binding to use and the origins their card may point at.",
    ),
    RoutingConfig: ("RoutingSection", "How `send` and `bench TYPE` pick a replica."),
}
_SECTIONS: dict[type[Any], type[msgspec.Struct]] = {}


def _struct_field(name: str, spec: FileKey, required: bool) -> tuple[Any, ...]:
    shape = spec.shape if spec.nested is None else section_of(spec.nested)
    if required:
        return (name, shape)
    return (
        name,
        shape | UnsetType | None if spec.nullable else shape | UnsetType,
        UNSET,
    )


def _derive(
    name: str,
    doc: str,
    specs: dict[str, FileKey],
    required: frozenset[str] = frozenset(),
    base: type[msgspec.Struct] = _Section,
) -> type[msgspec.Struct]:
    struct = msgspec.defstruct(
        name,
        [_struct_field(k, spec, k in required) for k, spec in specs.items()],
        bases=(base,),
        kw_only=True,
        module=__name__,
    )
    struct.__doc__ = doc
    return struct


def section_of(kind: type[Any]) -> type[msgspec.Struct]:
    """The section a model dataclass is written as (made once, from its fields)."""
    if kind not in _SECTIONS:
        name, doc = _DOCS[kind]
        _SECTIONS[kind] = _derive(name, doc, keys_of(kind))
    return _SECTIONS[kind]


def _agent_sections() -> tuple[type[msgspec.Struct], type[msgspec.Struct]]:
    """``defaults`` takes an agent's keys but its id, type, url and demo; an agent takes all."""
    specs = keys_of(Agent)
    shared = {k: s for k, s in specs.items() if not s.per_agent}
    own = {k: s for k, s in specs.items() if s.per_agent}
    defaults = _derive(
        "DefaultsSection", "Settings every agent takes unless it sets them itself.", shared
    )
    no_default = frozenset(
        f.name for f in fields(Agent) if f.default is MISSING and f.default_factory is MISSING
    )
    entry = _derive("AgentEntry", "One agent replica.", own, no_default, defaults)
    return defaults, entry


CanarySection = section_of(CanaryConfig)
HealthSection = section_of(HealthConfig)
BreakerSection = section_of(BreakerConfig)
EwmaSection = section_of(EwmaConfig)
DemoSection = section_of(DemoConfig)
A2ASection = section_of(A2AConfig)
RoutingSection = section_of(RoutingConfig)
DefaultsSection, AgentEntry = _agent_sections()


class StreamSlaSection(_Section):
    """`bench --endpoint stream` targets per phase, e.g. first_artifact: `p95 < 1s`."""

    first_event: str | UnsetType = UNSET
    first_artifact: str | UnsetType = UNSET
    gap: str | UnsetType = UNSET
    total: str | UnsetType = UNSET


class CanarySlaSection(StreamSlaSection):
    """`watch` targets on canary phases, e.g. first_artifact: `p95 < 1s`."""


class SlaSection(_Section):
    """SLA targets as expressions, e.g. `p99 < 100ms`, `>= 99.9%`."""

    health: str | UnsetType = UNSET
    discovery: str | UnsetType = UNSET
    message: str | UnsetType = UNSET
    coordination: str | UnsetType = UNSET
    availability: str | UnsetType = UNSET
    error_rate: str | UnsetType = UNSET
    stream: StreamSlaSection | UnsetType = UNSET
    canary: CanarySlaSection | UnsetType = UNSET


InventoryFile = msgspec.defstruct(
    "InventoryFile",
    [
        ("version", Annotated[int, Meta(description="Format version; must be 1.")]),
        ("agents", Annotated[list[AgentEntry], Meta(min_length=1)]),  # type: ignore[valid-type]
        ("defaults", DefaultsSection | UnsetType, UNSET),
        ("routing", RoutingSection | UnsetType, UNSET),
        ("sla", SlaSection | UnsetType, UNSET),
    ],
    bases=(_Section,),
    kw_only=True,
    module=__name__,
)
InventoryFile.__doc__ = "latcli inventory (agents.yaml)."


_SUBSECTIONS: dict[str, type[msgspec.Struct]] = {
    "defaults": DefaultsSection,
    "routing": RoutingSection,
    "sla": SlaSection,
    "health": HealthSection,
    "breaker": BreakerSection,
    "ewma": EwmaSection,
    "demo": DemoSection,
    "a2a": A2ASection,
    "stream": StreamSlaSection,
    "canary": CanarySection,
}


def inventory_json_schema() -> dict[str, object]:
    """The JSON Schema (draft 2020-12) of agents.yaml, for ``latcli schema``."""
    schema: dict[str, object] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "latcli inventory (agents.yaml)",
        "description": "Agents latcli probes, watches, benchmarks and routes to. "
        "Every string value supports ${VAR} and ${VAR:-default}.",
    }
    schema.update(msgspec.json.schema(InventoryFile))
    return schema


# --- converting a mapping to its section, msgspec's errors as problems ----------

T = TypeVar("T")

_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "array": "a list",
    "object": "a mapping",
    "object | null": "a mapping or null",
    "float | str": "a number or a string",
    "str | float": "a string or a number",
}
_MSGSPEC_PATH = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")


def convert(value: object, kind: type[T], path: KeyPath, report: Report) -> T | None:
    """``value`` converted to ``kind``; None (and one problem reported) when it does not fit."""
    try:
        # Not strict: "${PORT}"-expanded text such as "3" must still fill an int field.
        return msgspec.convert(value, kind, strict=False)
    except msgspec.ValidationError as exc:
        where, message = _translate(str(exc), path, kind)
        report.add(where, message)
        if message.startswith("unknown key"):
            _more_unknown_keys(value, kind, path, where, report)
        return None


def _more_unknown_keys(
    value: object, kind: object, base: KeyPath, found: KeyPath, report: Report
) -> None:
    """msgspec stops at the first unknown key of a mapping: report its siblings too."""
    inner = found[len(base) : -1]
    mapping: object = value
    for part in inner:
        try:
            mapping = mapping[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return
    if not isinstance(mapping, dict):
        return
    known = keys_at(kind, inner)
    for key in mapping:
        if str(key) not in known and str(key) != found[-1]:
            report.add((*base, *inner, str(key)), unknown_key(str(key), known))


def _translate(text: str, base: KeyPath, kind: object) -> tuple[KeyPath, str]:
    """msgspec's ``Expected `str`, got `int` - at `$.url``` -> ``(base + ("url",), message)``.

    msgspec messages name types, never values, so header secrets cannot leak through them.
    """
    message, _, where = text.partition(" - at `")
    is_key = where.startswith("key` in `")
    inner = _parse_msgspec_path(where.removeprefix("key` in `").rstrip("`"))
    path = base + inner
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", message)
    if unknown:
        key = unknown.group(1)
        return (*path, key), unknown_key(key, keys_at(kind, inner))
    missing = re.fullmatch(r"Object missing required field `(.*)`", message)
    if missing:
        return path, f"missing required key '{missing.group(1)}'"
    if is_key:
        return path, "keys must be strings"
    words = re.sub(r"`([^`]*)`", lambda m: _TYPE_WORDS.get(m.group(1), m.group(1)), message)
    return path, words[:1].lower() + words[1:]


def keys_at(kind: object, inner: KeyPath) -> list[str]:
    """The keys the Struct at ``inner`` (a path inside ``kind``) accepts."""
    for part in inner:
        if isinstance(part, str):
            kind = _field_struct(kind, part) or _SUBSECTIONS.get(part, kind)
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return [f.encode_name for f in msgspec.structs.fields(kind)]
    return []


def _field_struct(kind: object, name: str) -> type[msgspec.Struct] | None:
    """The Struct field ``name`` of ``kind`` holds (``canary`` is one section under ``health``
    and another under ``sla``); None when ``kind`` has no such field."""
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        for f in msgspec.structs.fields(kind):
            if f.encode_name == name:
                return _struct_in(f.type)
    return None


def _struct_in(annotation: object) -> type[msgspec.Struct] | None:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    for arg in get_args(annotation):
        found = _struct_in(arg)
        if found is not None:
            return found
    return None


def _parse_msgspec_path(text: str) -> KeyPath:
    parts: list[str | int] = []
    for m in _MSGSPEC_PATH.finditer(text):
        if m.group(1) is not None:
            parts.append(m.group(1))
        elif m.group(2) is not None:
            parts.append(int(m.group(2)))
    return tuple(parts)
