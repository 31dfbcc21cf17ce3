"""Durations, rates and percentages: parse user text, format for humans."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|m|h)?\s*$")
_SCALE = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*$")


def parse_duration(value: str | float | int) -> float:
    """``"250ms"`` -> 0.25 seconds. A bare number is seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return float(value)
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"not a duration (try 250ms, 5s, 1m): {value!r}")
    return float(m.group(1)) * _SCALE[m.group(2)]


def parse_percent(value: str | float | int) -> float:
    """``"50%"`` -> 0.5. A bare number in [0, 1] is taken as a fraction. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a percentage: {value!r}")
    if isinstance(value, int | float):
        fraction = float(value)
    else:
        m = _PERCENT.match(value)
        if not m:
            raise ValueError(f"not a percentage (try 50%): {value!r}")
        fraction = float(m.group(1)) / 100.0
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"percentage out of range 0-100%: {value!r}")
    return fraction


def format_ms(ms: float | None) -> str:
    """Milliseconds for a table cell: ``0.42 ms``, ``41 ms``, ``1.20 s``; ``-`` for None."""
    if ms is None:
        return "-"
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def format_duration(seconds: float) -> str:
    """Seconds as the shortest exact unit text: 0.25 -> ``250ms``, 5 -> ``5s``."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"
