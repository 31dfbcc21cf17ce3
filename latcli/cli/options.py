"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from latcli.transport.select import Engine

InventoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        "-i",
        help="Inventory file. Default: $LATCLI_INVENTORY, else ./agents.yaml, else the demo fleet.",
        show_default=False,
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
