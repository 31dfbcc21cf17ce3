"""The shape of agents.yaml: one msgspec Struct per section, also the JSON Schema.

:func:`convert` checks a mapping against its section and turns msgspec's first error into a
``key.path: message`` problem (plus every sibling unknown key, with a did-you-mean); the
semantic checks (units, URLs, names) are :mod:`latcli.config.checks`'.
"""

from __future__ import annotations

import re
from typing import Annotated, TypeVar, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from latcli.config.model import A2A_BINDINGS, DEMO_APPS, EWMA_SIGNALS, PROTOCOLS, STRATEGIES
from latcli.config.problems import KeyPath, Report, unknown_key

Duration = Annotated[
    float | str,
    Meta(description="A duration: 250ms, 5s, 1m, or a number of seconds."),
]
Percent = Annotated[
    float | str,
    Meta(description="A percentage: 50%, or a fraction between 0 and 1."),
]
AtLeastOne = Annotated[int, Meta(ge=1)]
Name = Annotated[str, Meta(description="Letters, digits, '.', '_' and '-'.")]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class CanarySection(_Section):
    """A real message watch sends on its own schedule; a failed task, a timeout or an answer
    that does not match `expect` is a failed check."""

    message: (
        Annotated[str, Meta(min_length=1, description="The text sent (default: ping).")] | UnsetType
    ) = UNSET
    every: (
        Annotated[float | str, Meta(description="Time between canaries, e.g. 30s (default).")]
        | UnsetType
    ) = UNSET
    expect: (
        Annotated[str, Meta(description="A regular expression the answer's text must contain.")]
        | UnsetType
    ) = UNSET
    timeout: (
        Annotated[
            float | str, Meta(description="Whole canary; default: the agent's message timeout.")
        ]
        | UnsetType
    ) = UNSET


class HealthSection(_Section):
    """Health check: GET {url}{path} (a2a agents: the agent-card GET)."""

    path: str | UnsetType = UNSET
    interval: Duration | UnsetType = UNSET
    timeout: Duration | UnsetType = UNSET
    rise: (
        Annotated[AtLeastOne, Meta(description="Good checks in a row before watch says up.")]
        | UnsetType
    ) = UNSET
    fall: (
        Annotated[AtLeastOne, Meta(description="Bad checks in a row before watch says down.")]
        | UnsetType
    ) = UNSET
    canary: CanarySection | UnsetType | None = UNSET  # null: no canary (overrides defaults)


class BreakerSection(_Section):
    """Circuit breaker per agent (DESIGN §4)."""

    failures: AtLeastOne | UnsetType = UNSET
    failure_rate: Percent | UnsetType = UNSET
    window: Duration | UnsetType = UNSET
    min_calls: AtLeastOne | UnsetType = UNSET
    open_for: Duration | UnsetType = UNSET
    open_max: Duration | UnsetType = UNSET
    half_open_probes: AtLeastOne | UnsetType = UNSET


class EwmaSection(_Section):
    """Peak EWMA latency with time decay tau."""

    decay: Duration | UnsetType = UNSET
    signal: (
        Annotated[
            str,
            Meta(
                description="What a message teaches the EWMA: first_artifact (time to first "
                "token) or total; default: first_artifact for streamed sends, total otherwise.",
                extra_json_schema={"enum": list(EWMA_SIGNALS)},
            ),
        ]
        | UnsetType
    ) = UNSET


class DemoSection(_Section):
    """How `latcli demo` simulates this agent."""

    latency: (
        Annotated[str, Meta(description="fixed 20ms | normal 20ms 5ms | lognormal 20ms 0.6")]
        | UnsetType
    ) = UNSET
    errors: Percent | UnsetType = UNSET
    a2a_version: (
        Annotated[str | float, Meta(description='A2A spec version: "0.3" or "1.0".')] | UnsetType
    ) = UNSET
    concurrency_limit: (
        Annotated[AtLeastOne, Meta(description="Messages served at once; the rest queue.")]
        | UnsetType
    ) = UNSET
    app: (
        Annotated[
            str,
            Meta(
                description="agent (default) or assistant: an LLM-like A2A 1.0 agent",
                extra_json_schema={"enum": list(DEMO_APPS)},
            ),
        ]
        | UnsetType
    ) = UNSET
    ttft: (
        Annotated[str, Meta(description="Assistant's time to first token: lognormal 400ms 0.5")]
        | UnsetType
    ) = UNSET
    tokens_per_s: Annotated[float, Meta(gt=0)] | UnsetType = UNSET
    chunk_tokens: (
        Annotated[AtLeastOne, Meta(description="Tokens per streamed chunk.")] | UnsetType
    ) = UNSET
    answer_tokens: AtLeastOne | UnsetType = UNSET
    fail_tasks: Percent | UnsetType = UNSET
    input_required: Percent | UnsetType = UNSET
    rate_limited: (
        Annotated[float | str, Meta(description="Answer HTTP 429 for this long from start.")]
        | UnsetType
    ) = UNSET
    seed: int | UnsetType = UNSET


class A2ASection(_Section):
    """A2A agents: the binding to use and the origins their card may point at."""

    binding: (
        Annotated[
            str,
            Meta(
                description="jsonrpc or http+json; default: from the card, JSON-RPC preferred.",
                extra_json_schema={"enum": list(A2A_BINDINGS)},
            ),
        ]
        | UnsetType
    ) = UNSET
    allow_origins: (
        Annotated[
            list[str],
            Meta(
                description="Other origins (https://host:443) the card may name; headers go there."
            ),
        ]
        | UnsetType
    ) = UNSET


class DefaultsSection(_Section):
    """Settings every agent takes unless it sets them itself."""

    protocol: Annotated[str, Meta(extra_json_schema={"enum": list(PROTOCOLS)})] | UnsetType = UNSET
    weight: Annotated[float, Meta(ge=0)] | UnsetType = UNSET
    timeout: Duration | UnsetType = UNSET
    connect_timeout: Duration | UnsetType = UNSET
    health: HealthSection | UnsetType = UNSET
    headers: (
        Annotated[
            dict[str, str], Meta(description="Sent with every request; values support ${VAR}.")
        ]
        | UnsetType
    ) = UNSET
    breaker: BreakerSection | UnsetType = UNSET
    ewma: EwmaSection | UnsetType = UNSET
    a2a: A2ASection | UnsetType = UNSET


class AgentEntry(DefaultsSection, kw_only=True):
    """One agent replica."""

    id: Name
    type: Name
    url: Annotated[str, Meta(description="http(s)://host[:port][/path]")]
    demo: DemoSection | UnsetType = UNSET


class RoutingSection(_Section):
    """How `send` and `bench TYPE` pick a replica."""

    strategy: Annotated[str, Meta(extra_json_schema={"enum": list(STRATEGIES)})] | UnsetType = UNSET
    retries: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    retry_budget: Percent | UnsetType = UNSET


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


class InventoryFile(_Section):
    """latcli inventory (agents.yaml)."""

    version: Annotated[int, Meta(description="Format version; must be 1.")]
    agents: Annotated[list[AgentEntry], Meta(min_length=1)]
    defaults: DefaultsSection | UnsetType = UNSET
    routing: RoutingSection | UnsetType = UNSET
    sla: SlaSection | UnsetType = UNSET


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
