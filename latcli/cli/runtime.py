"""Small helpers the commands share for turning option text into values."""

from __future__ import annotations

import typer

from latcli.units import parse_duration


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
