"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from latcli.transport.select import Engine


def _note_demo_fleet(ctx: typer.Context, value: Path | None) -> Path | None:
    """Say on stderr (once) when no inventory is found and the built-in demo fleet stands in:
    run outside a project, `latcli probe` would otherwise report on agents the user never
    named. `latcli demo` itself is about that fleet: it says nothing."""
    import os
    import sys

    if value is None and ctx.info_name != "demo" and not ctx.meta.get("latcli.noted"):
        if _only_urls(ctx) or ctx.resilient_parsing:  # resilient: completing, not running
            return value
        from latcli.inventory import DEMO_INVENTORY, find_inventory

        if find_inventory(None, os.environ) == DEMO_INVENTORY:
            ctx.meta["latcli.noted"] = True
            print(
                "latcli: no agents.yaml here and no $LATCLI_INVENTORY: using the built-in demo"
                " fleet (`latcli demo` starts it; -i FILE names another)",
                file=sys.stderr,
            )
    return value


def _only_urls(ctx: typer.Context) -> bool:
    """True when the command names only URLs (``bench http://...``): no demo agent is used.

    An option left out is processed after every parameter the command line gave, so the
    targets are already in ``ctx.params`` when the inventory's callback runs.
    """
    named: list[str] = []
    for key in ("agents", "target", "targets"):
        value = ctx.params.get(key)
        items = value if isinstance(value, list | tuple) else [value] if value else []
        named += [part for item in items for part in str(item).split(",") if part.strip()]
    return bool(named) and all("://" in part for part in named)


def _complete_agents(incomplete: str) -> list[str]:
    """Shell completion of agent ids and types from the inventory the command would load."""
    import os

    from latcli.errors import LatcliError
    from latcli.inventory import load_inventory

    try:
        inv = load_inventory(None, os.environ)
    except LatcliError:
        return []
    names = [*dict.fromkeys(a.type for a in inv.agents), *(a.id for a in inv.agents)]
    return [n for n in names if n.startswith(incomplete)]


InventoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        "-i",
        help="Inventory file. Default: $LATCLI_INVENTORY, else ./agents.yaml, else the demo fleet.",
        show_default=False,
        callback=_note_demo_fleet,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Machine output on stdout (versioned by its 'schema' field).")
]
SelectorsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Agent ids, types or URLs (ad-hoc agents). Default: every agent.",
        show_default=False,
        autocompletion=_complete_agents,
    ),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="HTTP engine: auto (raw from 100 agents on, else httpx), httpx, aiohttp or raw.",
    ),
]


def check_engine(value: str) -> Engine:
    """``--engine`` text, checked against the engines there are (usage error otherwise)."""
    from latcli.transport.select import ENGINES

    for engine in ENGINES:
        if engine == value:
            return engine
    raise typer.BadParameter(f"choose one of: {', '.join(ENGINES)}", param_hint="--engine")


StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help="Routing state file. Default: $LATCLI_STATE, else $XDG_STATE_HOME/latcli/state.db,"
        " else ~/.local/state/latcli/state.db.",
        show_default=False,
    ),
]
NoStateOpt = Annotated[
    bool, typer.Option("--no-state", help="Neither read nor save routing state.")
]


# What may follow --sla as its value: an expression has a comparator; a word names the
# inventory's targets (all of them, or one endpoint's).
SLA_WORDS = frozenset({"inventory", "health", "discovery", "message", "coordination"})


def bare_sla(argv: list[str]) -> list[str]:
    """``--sla`` given without a value means ``--sla inventory`` (DESIGN §5).

    Click options take exactly one value, so a bare ``--sla`` (last, before another option,
    or before the TARGET) gets the word filled in here: a token is ``--sla``'s value only
    when it is an expression (it has ``<``, ``>`` or ``=``) or one of :data:`SLA_WORDS`.
    """
    out: list[str] = []
    for i, token in enumerate(argv):
        out.append(token)
        if token == "--":
            return out + argv[i + 1 :]
        if token == "--sla":
            following = argv[i + 1] if i + 1 < len(argv) else None
            if following is None or not _sla_value(following):
                out.append("inventory")
    return out


def _sla_value(token: str) -> bool:
    if token.startswith("-"):
        return False
    return any(c in token for c in "<>=") or token.strip().lower() in SLA_WORDS
