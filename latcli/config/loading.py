"""Loading agents.yaml: find it, read it, expand ${VAR}, check it, merge the defaults.

Loading is one parse and three checks: the YAML reader maps every key path to its line
(:mod:`latcli.config.yaml_lines`), the sections check the shape (:mod:`latcli.config.schema`),
then semantic checks build the frozen dataclasses (:mod:`latcli.config.checks`). Every problem
is collected and raised once as :class:`~latcli.config.problems.InventoryError`, one
``FILE:LINE key.path: message`` line per problem. No message ever contains a header value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec

from latcli.config.checks import build, checked_values
from latcli.config.file_keys import keys_of
from latcli.config.model import BLANK_AGENT, Agent, Inventory, RoutingConfig
from latcli.config.problems import InventoryError, Problem, Report, unknown_key
from latcli.config.schema import (
    AgentEntry,
    DefaultsSection,
    InventoryFile,
    RoutingSection,
    SlaSection,
    convert,
    keys_at,
)
from latcli.config.variables import expand
from latcli.config.yaml_lines import parse_yaml

ENV_VAR = "LATCLI_INVENTORY"
DEMO_INVENTORY = Path(__file__).parent.parent / "demo" / "agents.yaml"

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


def _read(path: Path, report: Report) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        report.add_at(None, "not UTF-8 text")
    except OSError as exc:
        report.add_at(None, f"cannot read: {exc.strerror or exc}")
    return None


# --- the whole file -------------------------------------------------------------

# Sections an agent merges key by key over the defaults' (health, breaker, ewma, a2a); headers
# merge too, by lowercased name.
_MERGED = tuple(k for k, spec in keys_of(Agent).items() if spec.nested and not spec.per_agent)


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
        return Inventory(path=None, agents=(), defaults=BLANK_AGENT)
    report = Report(str(found))
    text = _read(found, report)
    data = parse_yaml(text, report) if text is not None else None
    report.raise_if_any()
    inventory = _inventory(found, data, env, report)
    report.raise_if_any()
    return inventory


def _inventory(found: Path, data: object, env: Mapping[str, str], report: Report) -> Inventory:
    if not isinstance(data, dict):
        got = "the file is empty" if data is None else f"got {_kind(data)}"
        report.add((), f"top level must be a mapping with 'version' and 'agents' ({got})")
        return Inventory(found, ())
    data = expand(data, (), env, report)
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


def _check_top_keys(data: dict[Any, Any], report: Report) -> None:
    known = keys_at(InventoryFile, ())
    for key in data:
        if key not in known:
            report.add((str(key),), unknown_key(str(key), list(known)))
    if "version" not in data:
        report.add((), "missing required key 'version'")
        return
    version = convert(data["version"], int, ("version",), report)
    if version is not None and version != 1:
        report.add(("version",), f"unsupported version {version} (this latcli reads version 1)")


def _defaults(raw: object, report: Report) -> tuple[Agent | None, dict[Any, Any]]:
    """The defaults applied to a blank agent, and the raw mapping to merge into agents.

    A section with problems is reported here once and then not merged into any agent.
    """
    if raw is None:  # absent, or `defaults:` with nothing under it
        return BLANK_AGENT, {}
    before = len(report.problems)
    section = convert(raw, DefaultsSection, ("defaults",), report)
    values = None if section is None else checked_values(Agent, section, ("defaults",), report)
    template = None if values is None else replace(BLANK_AGENT, **values)
    if template is None or len(report.problems) != before or not isinstance(raw, dict):
        return None, {}
    return template, raw


def _routing(raw: object, report: Report) -> RoutingConfig:
    section = None if raw is None else convert(raw, RoutingSection, ("routing",), report)
    return (
        RoutingConfig() if section is None else build(RoutingConfig, section, ("routing",), report)
    )


def _sla(raw: object, report: Report) -> dict[str, str]:
    section = None if raw is None else convert(raw, SlaSection, ("sla",), report)
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


def _agents(data: dict[Any, Any], defaults: dict[Any, Any], report: Report) -> tuple[Agent, ...]:
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
    _check_duplicates([_agent_id(raw) for raw in raws], report)
    agents = [_agent(raw, i, report) for i, raw in enumerate(raws) if raw is not None]
    return tuple(a for a in agents if a is not None)


def _raw_agent(
    entry: object, i: int, defaults: dict[Any, Any], report: Report
) -> msgspec.Struct | None:
    if isinstance(entry, dict):
        entry = _merge(defaults, entry)
    return convert(entry, AgentEntry, ("agents", i), report)


def _agent(raw: msgspec.Struct, i: int, report: Report) -> Agent | None:
    """The checked agent; None when it has problems (a bad url leaves no value to use)."""
    before = len(report.problems)
    values = checked_values(Agent, raw, ("agents", i), report)
    return Agent(**values) if len(report.problems) == before else None


def _agent_id(raw: msgspec.Struct | None) -> str | None:
    return None if raw is None else str(msgspec.structs.asdict(raw)["id"])


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


def _check_duplicates(ids: Sequence[str | None], report: Report) -> None:
    first: dict[str, int] = {}
    for i, agent_id in enumerate(ids):
        if agent_id is None:
            continue
        if agent_id in first:
            line = report.line(("agents", first[agent_id], "id"))
            report.add(("agents", i, "id"), f"duplicate id '{agent_id}' (first at line {line})")
        else:
            first[agent_id] = i
