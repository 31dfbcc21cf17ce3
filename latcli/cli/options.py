"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
