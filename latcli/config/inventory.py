"""agents.yaml -> frozen dataclasses (DESIGN §1).

Loading is one parse and three checks: PyYAML composes the node tree (every
node knows its line), msgspec Structs check the shape, then semantic checks
(units, URLs, ids, enumerations) build the frozen dataclasses. Every problem is
collected and raised once as :class:`InventoryError`, one
``FILE:LINE key.path: message`` line per problem. Header values are secrets:
no message ever contains one.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import SplitResult, urlsplit

import msgspec
import yaml
from msgspec import UNSET, Meta, UnsetType

from latcli.core.distribution import parse_distribution
from latcli.core.errors import LatcliError
from latcli.core.redact import redact_url
from latcli.core.units import parse_duration, parse_percent

Protocol = Literal["http", "a2a"]
PROTOCOLS: tuple[str, ...] = ("http", "a2a")
DEMO_APPS: tuple[str, ...] = ("agent", "assistant")
STRATEGIES: tuple[str, ...] = ("p2c", "fastest", "round_robin", "least_loaded", "weighted")
A2ABinding = Literal["jsonrpc", "http+json"]
A2A_BINDINGS: tuple[A2ABinding, ...] = ("jsonrpc", "http+json")
EwmaSignal = Literal["first_artifact", "total"]
EWMA_SIGNALS: tuple[EwmaSignal, ...] = ("first_artifact", "total")
ENV_VAR = "LATCLI_INVENTORY"
DEMO_INVENTORY = Path(__file__).parent.parent / "demo" / "agents.yaml"


@dataclass(frozen=True)
class HealthConfig:
    path: str = "/health"  # may carry a ?query (an ad-hoc URL's)
    interval: float = 5.0  # seconds
    timeout: float = 1.0  # seconds
    method: str = "GET"  # -m/--method on the command line
    body: bytes | None = field(default=None, repr=False)  # --body / --body-file
    # HAProxy's defaults (`rise 2 fall 3`): watch calls an agent up after 2 good checks in a
    # row and down after 3 bad ones, so one lost packet does not flap it.
    rise: int = 2
    fall: int = 3


@dataclass(frozen=True)
class BreakerConfig:
    failures: int = 5
    failure_rate: float = 0.5  # fraction
    window: float = 30.0  # seconds
    min_calls: int = 10
    open_for: float = 5.0  # seconds
    open_max: float = 60.0  # seconds
    half_open_probes: int = 1


@dataclass(frozen=True)
class EwmaConfig:
    decay: float = 10.0  # seconds (tau)
    # What a message's sample is: None = first_artifact (time to first token) for a streamed
    # send, total otherwise (LiteLLM's latency routing does the same for streaming).
    signal: EwmaSignal | None = None


@dataclass(frozen=True)
class RoutingConfig:
    strategy: str = "p2c"
    retries: int = 1
    retry_budget: float = 0.2  # fraction


@dataclass(frozen=True)
class DemoConfig:
    """How ``latcli demo`` simulates this agent (ignored by every other command)."""

    latency: str = "fixed 5ms"  # parsed by latcli.core.distribution.parse_distribution
    errors: float = 0.0  # fraction of requests that fail
    a2a_version: Literal["0.3", "1.0"] = "1.0"  # only for protocol a2a
    # At most this many messages in service at once, the rest queued: capacity is known by
    # construction (concurrency_limit / latency), what `latcli capacity` is checked against.
    concurrency_limit: int | None = None
    # `app: assistant` runs latcli.demo.assistant, an LLM-like A2A 1.0 agent; the keys
    # below are its behaviour (the other demo agents ignore them).
    app: Literal["agent", "assistant"] = "agent"
    ttft: str = "lognormal 400ms 0.5"  # think time before the first token (a distribution)
    tokens_per_s: float = 50.0
    chunk_tokens: int = 5  # tokens per streamed artifact chunk
    answer_tokens: int = 40
    fail_tasks: float = 0.0  # share of tasks that end failed ("model overloaded")
    input_required: float = 0.0  # share of tasks that stop at input-required
    rate_limited: float = 0.0  # seconds of HTTP 429 + Retry-After from start
    seed: int | None = None  # the assistant's random source, unless `latcli demo` gives one


@dataclass(frozen=True)
class A2AConfig:
    """How latcli talks to an A2A agent beyond what its card says (DESIGN §2, §7)."""

    binding: A2ABinding | None = None  # None: chosen from the card (JSON-RPC preferred)
    # Origins (``scheme://host:port``) besides the agent's own that its card may point at;
    # the inventory's headers go there too.
    allow_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class Agent:
    id: str
    type: str
    url: str  # no trailing slash
    protocol: Protocol = "http"
    weight: float = 1.0
    timeout: float = 5.0
    connect_timeout: float = 1.0
    health: HealthConfig = field(default_factory=HealthConfig)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    ewma: EwmaConfig = field(default_factory=EwmaConfig)
    demo: DemoConfig | None = None
    adhoc: bool = False  # made from a URL on the command line
    a2a: A2AConfig = field(default_factory=A2AConfig)

    def shown_headers(self) -> dict[str, str]:
        """Headers as they may be printed: every value is ``***``."""
        return {k: "***" for k in self.headers}


@dataclass(frozen=True)
class Inventory:
    """A loaded inventory.

    ``defaults`` is the file's ``defaults`` section applied to an :class:`Agent`
    whose id, type and url are empty: the template :func:`adhoc_agent` copies
    settings from. None means "no inventory file" (plain Agent defaults apply).
    """

    path: Path | None
    agents: tuple[Agent, ...]
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    sla: Mapping[str, str] = field(default_factory=dict)  # name -> expression text
    defaults: Agent | None = None


# --- problems -----------------------------------------------------------------

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an inventory file; ``str()`` is the line the user sees."""

    file: str
    line: int | None  # 1-based; None when the problem has no place in the file
    path: str  # ``agents[2].url``; empty for the whole file
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InventoryError(LatcliError):
    """A bad inventory: ``str()`` has one line per problem; exit code 2."""

    prefixed = False  # each line starts with FILE:LINE

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems: tuple[Problem, ...] = tuple(problems)


def format_path(path: KeyPath) -> str:
    """``("agents", 2, "url")`` -> ``agents[2].url``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class _Report:
    """Problems found so far in one file, each located through the key-path -> line map."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[Problem] = []

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, else of its nearest ancestor that has one."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def add(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(self.file, self.line(path), format_path(path), message))

    def add_at(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, "", message))

    def raise_if_any(self) -> None:
        # Sorted by line so the output reads top to bottom like the file.
        if self.problems:
            raise InventoryError(sorted(self.problems, key=lambda p: p.line or 0))


# --- the file's shape (msgspec Structs; also the JSON Schema) ------------------

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


class SlaSection(_Section):
    """SLA targets as expressions, e.g. `p99 < 100ms`, `>= 99.9%`."""

    health: str | UnsetType = UNSET
    discovery: str | UnsetType = UNSET
    message: str | UnsetType = UNSET
    coordination: str | UnsetType = UNSET
    availability: str | UnsetType = UNSET
    error_rate: str | UnsetType = UNSET
    stream: StreamSlaSection | UnsetType = UNSET


SLA_NAMES: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(SlaSection))


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


# --- finding and reading the file ---------------------------------------------


def find_inventory(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    """The inventory to load: ``path``, else ``$LATCLI_INVENTORY``, else ``./agents.yaml``,
    else the embedded demo fleet; None when none of these exists.

    An explicitly named file (argument or environment) that is missing raises InventoryError.
    """
    named = path if path is not None else env.get(ENV_VAR) or None
    if named is not None:
        return _existing(Path(named))
    local = Path("agents.yaml")
    if local.is_file():
        return local
    return DEMO_INVENTORY if DEMO_INVENTORY.is_file() else None


def _existing(path: Path) -> Path:
    if path.is_file():
        return path
    message = "is a directory, not a file" if path.is_dir() else "file not found"
    raise InventoryError([Problem(str(path), None, "", message)])


def _read(path: Path, report: _Report) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        report.add_at(None, "not UTF-8 text")
    except OSError as exc:
        report.add_at(None, f"cannot read: {exc.strerror or exc}")
    return None


def _parse_yaml(text: str, report: _Report) -> object:
    """The document as plain Python data, filling ``report.lines``; None on YAML errors."""
    # libyaml's parser when present: ~10x faster on a 1,000-agent inventory, same marks.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        bomb = _alias_bomb(node) if "&" in text else None  # no anchor, no alias
        if bomb is not None:
            report.add_at(
                bomb.start_mark.line + 1,
                f"YAML aliases here expand past {ALIAS_BUDGET:,} nodes (an alias bomb?);"
                " write the values out",
            )
            return None
        _record_lines(node, (), report, set(), set())
        return loader.construct_document(node)
    except RecursionError:
        report.add_at(None, "invalid YAML: nested too deeply")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        report.add_at(mark.line + 1 if mark else None, f"invalid YAML: {exc.problem}")
    except yaml.YAMLError as exc:
        report.add_at(None, f"invalid YAML: {exc}")
    finally:
        loader.dispose()
    return None


# Nodes that aliases (and merge keys) may add to the document beyond those written: a
# 1,000-agent inventory merging a defaults anchor into each agent adds ~20,000; a 400-byte
# "billion laughs" adds 9^9. Past this, loading would take minutes and gigabytes.
ALIAS_BUDGET = 100_000


def _node_children(node: yaml.Node) -> list[yaml.Node]:
    """Every node ``node`` holds: items, or keys and values (merge keys included)."""
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _alias_bomb(root: yaml.Node) -> yaml.Node | None:
    """The node where aliases multiply the document past :data:`ALIAS_BUDGET` nodes, or None.

    Sizes are counted on the composed graph (an alias is a shared node), once per distinct
    node and without recursion, so the check costs O(nodes written) whatever they expand to.
    """
    size: dict[int, int] = {}
    children: dict[int, list[yaml.Node]] = {}
    stack = [root]
    while stack:
        node = stack[-1]
        kids = children.get(id(node))
        if kids is None:  # first visit: its collections go on the stack, scalars count 1
            kids = children[id(node)] = _node_children(node)
            for c in kids:
                if isinstance(c, yaml.ScalarNode):
                    size[id(c)] = 1
                elif id(c) not in children:
                    stack.append(c)
            continue
        stack.pop()  # its children are sized (a recursive alias, reported later, counts 0)
        size.setdefault(id(node), 1 + sum(size.get(id(c), 0) for c in kids))
    if size[id(root)] - len(size) <= ALIAS_BUDGET:
        return None
    node = root  # go down the heaviest branch to where the multiplying happens
    while True:
        heaviest = max(children.get(id(node), ()), key=lambda c: size.get(id(c), 0), default=None)
        if heaviest is None or size.get(id(heaviest), 0) <= ALIAS_BUDGET:
            return node
        node = heaviest


def _record_lines(
    node: yaml.Node, path: KeyPath, report: _Report, seen: set[int], stack: set[int]
) -> None:
    """Map every key path to its line; report duplicate keys; refuse recursive aliases."""
    if id(node) in stack:
        raise yaml.composer.ComposerError(None, None, "recursive alias", node.start_mark)
    report.lines.setdefault(path, node.start_mark.line + 1)
    # An alias re-uses a node: walk it once, so its other uses take the alias's line.
    if id(node) in seen:
        return
    seen.add(id(node))
    stack.add(id(node))
    for key, child in _children(node, path, report):
        report.lines.setdefault((*path, key), child.start_mark.line + 1)
        _record_lines(child, (*path, key), report, seen, stack)
    stack.discard(id(node))


def _children(node: yaml.Node, path: KeyPath, report: _Report) -> list[tuple[str | int, Any]]:
    """A node's (key, child) pairs; a repeated key is reported (PyYAML keeps the last)."""
    if isinstance(node, yaml.SequenceNode):
        return list(enumerate(node.value))
    if not isinstance(node, yaml.MappingNode):
        return []
    out: list[tuple[str | int, Any]] = []
    first: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key == "<<":  # a merge key: its keys land in this mapping when constructed
            continue
        line = key_node.start_mark.line + 1
        if key in first:
            message = f"duplicate key '{key}' (first at line {first[key]})"
            report.problems.append(Problem(report.file, line, format_path((*path, key)), message))
        first.setdefault(key, line)
        out.append((key, value_node))
    return out


# --- ${VAR} expansion -----------------------------------------------------------

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_BAD_VAR = re.compile(r"\$\{(?![A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})")


def _expand(value: object, path: KeyPath, env: Mapping[str, str], report: _Report) -> object:
    """``value`` with ``${VAR}`` / ``${VAR:-default}`` replaced in every string (not keys)."""
    if isinstance(value, str):
        return _expand_text(value, path, env, report)
    if isinstance(value, dict):
        return {k: _expand(v, (*path, str(k)), env, report) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*path, i), env, report) for i, v in enumerate(value)]
    return value


def _expand_text(text: str, path: KeyPath, env: Mapping[str, str], report: _Report) -> str:
    if _BAD_VAR.search(text):
        report.add(path, "malformed ${...} reference (use ${VAR} or ${VAR:-default})")

    def substitute(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        # Shell semantics of ':-': an empty variable also takes the default.
        if default is not None and not value:
            return default
        if value is None:
            report.add(path, f"undefined variable {name}")
            return ""
        return value

    return _VAR.sub(substitute, text)


# --- shape checks (msgspec) -----------------------------------------------------

T = TypeVar("T")

_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "array": "a list",
    "object": "a mapping",
    "float | str": "a number or a string",
    "str | float": "a string or a number",
}
_MSGSPEC_PATH = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")


def _convert(value: object, kind: type[T], path: KeyPath, report: _Report) -> T | None:
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
    value: object, kind: object, base: KeyPath, found: KeyPath, report: _Report
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
    known = _keys_at(kind, inner)
    for key in mapping:
        if str(key) not in known and str(key) != found[-1]:
            report.add((*base, *inner, str(key)), _unknown_key(str(key), known))


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
        return (*path, key), _unknown_key(key, _keys_at(kind, inner))
    missing = re.fullmatch(r"Object missing required field `(.*)`", message)
    if missing:
        return path, f"missing required key '{missing.group(1)}'"
    if is_key:
        return path, "keys must be strings"
    words = re.sub(r"`([^`]*)`", lambda m: _TYPE_WORDS.get(m.group(1), m.group(1)), message)
    return path, words[:1].lower() + words[1:]


def _keys_at(kind: object, inner: KeyPath) -> list[str]:
    """The keys the Struct at ``inner`` (a path inside ``kind``) accepts."""
    for part in inner:
        if isinstance(part, str):
            kind = _SUBSECTIONS.get(part, kind)
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return [f.encode_name for f in msgspec.structs.fields(kind)]
    return []


def _unknown_key(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    return f"unknown key (expected one of: {', '.join(known)})" if known else "unknown key"


def _parse_msgspec_path(text: str) -> KeyPath:
    parts: list[str | int] = []
    for m in _MSGSPEC_PATH.finditer(text):
        if m.group(1) is not None:
            parts.append(m.group(1))
        elif m.group(2) is not None:
            parts.append(int(m.group(2)))
    return tuple(parts)


# --- semantic checks: raw value -> dataclass value ------------------------------

_NAME = re.compile(r"[A-Za-z0-9._-]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
Check = Callable[[Any, KeyPath, _Report], Any]


def _duration(value: float | str, path: KeyPath, report: _Report) -> float | None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        report.add(path, str(exc))
        return None
    if seconds <= 0:
        report.add(path, "must be greater than 0")
        return None
    return seconds


def _percent(value: float | str, path: KeyPath, report: _Report) -> float | None:
    try:
        return parse_percent(value)
    except ValueError as exc:
        report.add(path, str(exc))
        return None


def _one_of(choices: Sequence[str]) -> Check:
    def check(value: str, path: KeyPath, report: _Report) -> str | None:
        if value in choices:
            return value
        report.add(path, f"must be one of {', '.join(choices)} (got {value!r})")
        return None

    return check


def _name(value: str, path: KeyPath, report: _Report) -> str | None:
    if _NAME.fullmatch(value):
        return value
    report.add(path, f"must be letters, digits, '.', '_' or '-' (got {value!r})")
    return None


def _url(value: str, path: KeyPath, report: _Report) -> str | None:
    parts = http_url(value)
    if parts is None:
        report.add(path, "not an http(s) URL")
        return None
    if parts.query or parts.fragment:
        report.add(path, "a base URL takes no ?query or #fragment")
        return None
    return value.rstrip("/")


def http_url(text: str) -> SplitResult | None:
    """``text`` split as an http(s) URL with a host and a valid port, else None."""
    if not text or not text.isprintable() or any(c.isspace() for c in text):
        return None  # spaces, tabs, line breaks, ESC and other controls never belong in a URL
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts


def _health_path(value: str, path: KeyPath, report: _Report) -> str | None:
    if value.startswith("/"):
        return value
    report.add(path, f"must start with '/' (got {value!r})")
    return None


def _headers(value: dict[str, str], path: KeyPath, report: _Report) -> dict[str, str]:
    # Names and values are checked here because httpx would reject them later with a
    # message that may quote the value, which is a secret.
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            report.add((*path, name), "not a valid header name")
        if "\r" in text or "\n" in text:
            report.add((*path, name), "header value contains a line break")
        elif not _HEADER_VALUE.fullmatch(text):
            # RFC 9110 field values are visible ASCII, space and tab (obs-text is obsolete and
            # every engine encodes headers as ASCII); the value is a secret: never quoted
            report.add((*path, name), "header value has a non-ASCII or control character")
    return dict(value)


def _latency(value: str, path: KeyPath, report: _Report) -> str | None:
    try:
        parse_distribution(value)
    except ValueError as exc:
        report.add(path, str(exc))
        return None
    return value


def _binding(value: str, path: KeyPath, report: _Report) -> str | None:
    if value in A2A_BINDINGS:
        return value
    close = difflib.get_close_matches(value.lower(), A2A_BINDINGS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    hint = "; latcli does not speak gRPC" if value.lower() == "grpc" else hint
    report.add(path, f"must be one of {', '.join(A2A_BINDINGS)} (got {value!r}{hint})")
    return None


def _origins(value: list[str], path: KeyPath, report: _Report) -> tuple[str, ...] | None:
    """Each entry an origin, kept as ``scheme://host:port`` (default port filled in)."""
    origins: list[str] = []
    for i, text in enumerate(value):
        parts = http_url(text)
        if parts is None or parts.path.strip("/") or parts.query or parts.fragment:
            report.add((*path, i), f"not an origin like https://host:443 (got {text!r})")
            continue
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        origins.append(f"{parts.scheme}://{host}:{parts.port or _DEFAULT_PORT[parts.scheme]}")
    return tuple(origins) if len(origins) == len(value) else None


_DEFAULT_PORT = {"http": 80, "https": 443}


def _a2a_version(value: str | float, path: KeyPath, report: _Report) -> str | None:
    # YAML reads an unquoted 1.0 as a float; accept it as the version text.
    text = f"{value:.1f}" if isinstance(value, float) else value
    if text in ("0.3", "1.0"):
        return text
    report.add(path, f"must be '0.3' or '1.0' (got {text!r})")
    return None


# Keyed by field name: a name means the same thing wherever it appears.
_CHECKS: dict[str, Check] = {
    **dict.fromkeys(
        ("timeout", "connect_timeout", "interval", "window", "open_for", "open_max", "decay"),
        _duration,
    ),
    **dict.fromkeys(("failure_rate", "retry_budget", "errors"), _percent),
    "protocol": _one_of(PROTOCOLS),
    "strategy": _one_of(STRATEGIES),
    "id": _name,
    "type": _name,
    "url": _url,
    "path": _health_path,
    "headers": _headers,
    "latency": _latency,
    "a2a_version": _a2a_version,
    "binding": _binding,
    "allow_origins": _origins,
    "signal": _one_of(EWMA_SIGNALS),
}
_CHECKS.update(  # the demo assistant's keys
    {
        "app": _one_of(DEMO_APPS),
        "ttft": _latency,
        "fail_tasks": _percent,
        "input_required": _percent,
        "rate_limited": _duration,
    }
)
_NESTED: dict[str, type[Any]] = {
    "health": HealthConfig,
    "breaker": BreakerConfig,
    "ewma": EwmaConfig,
    "demo": DemoConfig,
    "a2a": A2AConfig,
}


def _build(kind: type[T], raw: msgspec.Struct, path: KeyPath, report: _Report) -> T:
    """A ``kind`` dataclass from the fields ``raw`` sets; unset or bad ones keep the default."""
    return kind(**_values(raw, path, report))


def _values(raw: msgspec.Struct, path: KeyPath, report: _Report) -> dict[str, Any]:
    """The checked dataclass values of the fields ``raw`` sets (bad ones reported, left out)."""
    values: dict[str, Any] = {}
    for name, value in msgspec.structs.asdict(raw).items():
        if value is UNSET:
            continue
        if isinstance(value, msgspec.Struct):
            values[name] = _build(_NESTED[name], value, (*path, name), report)
            continue
        check = _CHECKS.get(name)
        checked = check(value, (*path, name), report) if check else value
        if checked is not None:
            values[name] = checked
    return values


# --- the whole file -------------------------------------------------------------

_MERGED = ("health", "breaker", "ewma", "a2a")
_BLANK = Agent("", "", "")


def load_inventory(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Inventory:
    """Find (see :func:`find_inventory`), parse and check the inventory.

    Raises InventoryError listing every problem found. With no file anywhere, returns an
    inventory without agents, so that ad-hoc URLs still work. ``env`` defaults to os.environ.
    """
    env = os.environ if env is None else env
    found = find_inventory(path, env)
    if found is None:
        return Inventory(path=None, agents=(), defaults=_BLANK)
    report = _Report(str(found))
    text = _read(found, report)
    data = _parse_yaml(text, report) if text is not None else None
    report.raise_if_any()
    inventory = _inventory(found, data, env, report)
    report.raise_if_any()
    return inventory


def _inventory(found: Path, data: object, env: Mapping[str, str], report: _Report) -> Inventory:
    if not isinstance(data, dict):
        got = "the file is empty" if data is None else f"got {_kind(data)}"
        report.add((), f"top level must be a mapping with 'version' and 'agents' ({got})")
        return Inventory(found, ())
    data = _expand(data, (), env, report)
    assert isinstance(data, dict)
    _check_top_keys(data, report)
    defaults, raw_defaults = _defaults(data.get("defaults"), report)
    return Inventory(
        path=found,
        agents=_agents(data, raw_defaults, report),
        routing=_routing(data.get("routing"), report),
        sla=_sla(data.get("sla"), report),
        defaults=defaults,
    )


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else f"a {type(value).__name__}"


def _check_top_keys(data: dict[Any, Any], report: _Report) -> None:
    known = _keys_at(InventoryFile, ())
    for key in data:
        if key not in known:
            report.add((str(key),), _unknown_key(str(key), list(known)))
    if "version" not in data:
        report.add((), "missing required key 'version'")
        return
    version = _convert(data["version"], int, ("version",), report)
    if version is not None and version != 1:
        report.add(("version",), f"unsupported version {version} (this latcli reads version 1)")


def _defaults(raw: object, report: _Report) -> tuple[Agent | None, dict[Any, Any]]:
    """The defaults applied to a blank agent, and the raw mapping to merge into agents.

    A section with problems is reported here once and then not merged into any agent.
    """
    if raw is None:  # absent, or `defaults:` with nothing under it
        return _BLANK, {}
    before = len(report.problems)
    section = _convert(raw, DefaultsSection, ("defaults",), report)
    values = None if section is None else _values(section, ("defaults",), report)
    template = None if values is None else replace(_BLANK, **values)
    if template is None or len(report.problems) != before or not isinstance(raw, dict):
        return None, {}
    return template, raw


def _routing(raw: object, report: _Report) -> RoutingConfig:
    section = None if raw is None else _convert(raw, RoutingSection, ("routing",), report)
    return (
        RoutingConfig() if section is None else _build(RoutingConfig, section, ("routing",), report)
    )


def _sla(raw: object, report: _Report) -> dict[str, str]:
    section = None if raw is None else _convert(raw, SlaSection, ("sla",), report)
    if section is None or not isinstance(raw, dict):
        return {}
    # The file's order, not the Struct's: `bench --sla` reports targets in inventory order.
    # The stream phases flatten to "stream.PHASE" keys (latcli.core.sla reads them back).
    flat: dict[str, str] = {}
    for name, text in raw.items():
        phases = text.items() if isinstance(text, dict) else [(None, text)]
        for phase, expr in phases:
            key, where = (name, ("sla", name)) if phase is None else (f"{name}.{phase}",
                          ("sla", name, phase))  # fmt: skip
            if not expr.strip():
                report.add(where, "empty expression")
            flat[key] = expr.strip()
    return flat


def _agents(data: dict[Any, Any], defaults: dict[Any, Any], report: _Report) -> tuple[Agent, ...]:
    """Each entry checked on its own, so several bad agents give several problems."""
    if "agents" not in data:
        report.add((), "missing required key 'agents'")
        return ()
    entries = data["agents"]
    if not entries:
        report.add(("agents",), "at least one agent is required")
        return ()
    if not isinstance(entries, list):
        report.add(("agents",), f"expected a list of agents, got {_kind(entries)}")
        return ()
    raws = [_raw_agent(entry, i, defaults, report) for i, entry in enumerate(entries)]
    _check_duplicates([None if raw is None else raw.id for raw in raws], report)
    agents = [_agent(raw, i, report) for i, raw in enumerate(raws) if raw is not None]
    return tuple(a for a in agents if a is not None)


def _raw_agent(
    entry: object, i: int, defaults: dict[Any, Any], report: _Report
) -> AgentEntry | None:
    if isinstance(entry, dict):
        entry = _merge(defaults, entry)
    return _convert(entry, AgentEntry, ("agents", i), report)


def _agent(raw: AgentEntry, i: int, report: _Report) -> Agent | None:
    """The checked agent; None when it has problems (a bad url leaves no value to use)."""
    before = len(report.problems)
    values = _values(raw, ("agents", i), report)
    return Agent(**values) if len(report.problems) == before else None


def _merge(defaults: dict[Any, Any], entry: dict[Any, Any]) -> dict[Any, Any]:
    """``entry`` over ``defaults``; health/breaker/ewma/headers merge key by key."""
    merged = {**defaults, **entry}
    for key in (*_MERGED, "headers"):
        base, own = defaults.get(key), entry.get(key)
        if isinstance(base, dict) and isinstance(own, dict):
            merged[key] = _merge_headers(base, own) if key == "headers" else {**base, **own}
    return merged


def _merge_headers(base: dict[Any, Any], own: dict[Any, Any]) -> dict[Any, Any]:
    # Header names are case-insensitive: an agent's `authorization` replaces `Authorization`.
    overridden = {str(k).lower() for k in own}
    return {**{k: v for k, v in base.items() if str(k).lower() not in overridden}, **own}


def _check_duplicates(ids: Sequence[str | None], report: _Report) -> None:
    first: dict[str, int] = {}
    for i, agent_id in enumerate(ids):
        if agent_id is None:
            continue
        if agent_id in first:
            line = report.line(("agents", first[agent_id], "id"))
            report.add(("agents", i, "id"), f"duplicate id '{agent_id}' (first at line {line})")
        else:
            first[agent_id] = i


# --- ad-hoc agents and selection -------------------------------------------------


def adhoc_agent(url: str, defaults: Agent | None = None) -> Agent:
    """An agent for a URL given on the command line.

    One rule in every command: a URL with a path (or a query) is requested as given
    (``http://h/health`` checks ``/health``, ``http://h/x?y=1`` checks ``/x?y=1``); a bare
    origin (``http://h:8001``) gets the health path. Messages go to ``{url}/message/send``.
    id is ``host:port`` (plus the path and query, if any), type ``adhoc``, protocol http; the
    other settings come from ``defaults`` (``Inventory.defaults``). A bad URL raises LatcliError.
    """
    parts = http_url(url)
    if parts is None or parts.fragment:
        shown = redact_url(url)
        raise LatcliError(f"not an http(s) URL: {shown!r} (try http://127.0.0.1:8001)")
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    base = defaults or _BLANK
    # As typed: a trailing "/" kept, "/" for an origin with a query; else the health path.
    typed = parts.path[len(path) :] if path else "/"
    rest = typed if parts.path not in ("", "/") or parts.query else base.health.path
    return replace(
        base,
        id=f"{host}:{port}{path}{query}",
        type="adhoc",
        url=f"{parts.scheme}://{parts.netloc}{path}",
        protocol="http",
        demo=None,
        adhoc=True,
        health=replace(base.health, path=rest + query),
    )


def select_agents(
    inv: Inventory, selectors: Sequence[str], type_filter: str | None = None
) -> list[Agent]:
    """The agents named by ``selectors`` (ids, types or URLs), in inventory order, then
    ad-hoc agents in the order given; no selector means every agent. No duplicates.

    ``type_filter`` keeps only agents of that type. Unknown names raise LatcliError.
    """
    picked: set[str] = set()
    extra: dict[str, Agent] = {}
    for selector in selectors:
        matches = _matches(inv, selector)
        if matches:
            picked.update(a.id for a in matches)
        elif "://" in selector:
            agent = adhoc_agent(selector, inv.defaults)
            extra.setdefault(agent.id, agent)
        else:
            hint = _as_url(selector)
            raise LatcliError(f"unknown agent or type {selector!r}{hint} ({_known(inv)})")
    chosen = [a for a in inv.agents if not selectors or a.id in picked] + list(extra.values())
    if type_filter is None:
        return chosen
    known = [*inv.agents, *chosen]
    if type_filter not in {a.type for a in known}:
        raise LatcliError(f"unknown type {type_filter!r} (types: {_types(known)})")
    return [a for a in chosen if a.type == type_filter]


def _matches(inv: Inventory, selector: str) -> list[Agent]:
    by_id = [a for a in inv.agents if a.id == selector]
    if by_id:
        return by_id
    by_type = [a for a in inv.agents if a.type == selector]
    if by_type or "://" not in selector:
        return by_type
    key = _url_key(selector)
    return [a for a in inv.agents if key is not None and _url_key(a.url) == key]


def _url_key(url: str) -> tuple[str, str, int, str, str] | None:
    """What makes two URLs the same agent: scheme, host, port (defaults filled in), path and
    query (a URL with a query is an ad-hoc request, never an inventory agent)."""
    parts = http_url(url)
    if parts is None:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (parts.scheme, parts.hostname or "", port, parts.path.rstrip("/"), parts.query)


_HOST_PORT = re.compile(
    r"^(localhost|[\w.-]*\.[\w.-]*|\[[0-9a-fA-F:]+\])(:\d{1,5})?(/\S*)?$|^[\w.-]+:\d{1,5}(/\S*)?$"
)


def _as_url(selector: str) -> str:
    """``: did you mean http://localhost:8001?`` for what looks like an address without scheme."""
    return f": did you mean http://{selector}?" if _HOST_PORT.match(selector) else ""


def _types(agents: Sequence[Agent]) -> str:
    return ", ".join(dict.fromkeys(a.type for a in agents)) or "none"


def _known(inv: Inventory) -> str:
    ids = ", ".join(a.id for a in inv.agents) or "none"
    return f"agents: {ids}; types: {_types(inv.agents)}"
