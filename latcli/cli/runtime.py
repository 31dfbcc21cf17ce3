"""Small helpers the commands share for turning option text into values."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from latcli.core.units import parse_duration

if TYPE_CHECKING:
    from latcli.config.model import Inventory
    from latcli.reports.watch import WatchSnapshot


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
    from latcli.config.loading import DEMO_INVENTORY

    try:
        return inv.path is not None and inv.path.resolve() == DEMO_INVENTORY.resolve()
    except OSError:
        return False


DEMO_HINT = "is `latcli demo` running? It starts these agents."


def with_demo_hint(snapshot: WatchSnapshot) -> WatchSnapshot:
    """``snapshot`` of the demo fleet, with :data:`DEMO_HINT` among its notes when every agent
    refuses connections (most likely the demo is not running)."""
    from dataclasses import replace

    refused = all(a.last_error == "connect" for a in snapshot.agents)
    if not snapshot.agents or not refused or DEMO_HINT in snapshot.notes:
        return snapshot
    return replace(snapshot, notes=(*snapshot.notes, DEMO_HINT))
