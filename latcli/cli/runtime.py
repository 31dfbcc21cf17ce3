"""Small helpers the commands share for turning option text into values."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from latcli.units import parse_duration

if TYPE_CHECKING:
    from latcli.inventory import Inventory


def parse_seconds(text: str | None, option: str) -> float | None:
    """A duration option (``3s``, ``250ms``) in seconds; bad text is a usage error (exit 2)."""
    if text is None:
        return None
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None
    if value <= 0:
        raise typer.BadParameter("must be more than zero", param_hint=option)
    return value


def is_demo_fleet(inv: Inventory) -> bool:
    """True when ``inv`` is the built-in demo fleet (also through the repository's symlink), so
    that a refused connection can ask whether `latcli demo` is running."""
    from latcli.inventory import DEMO_INVENTORY

    try:
        return inv.path is not None and inv.path.resolve() == DEMO_INVENTORY.resolve()
    except OSError:
        return False


DEMO_HINT = "is `latcli demo` running? It starts these agents."
