"""Durations, rates and percentages: parse user text, format for humans.

The formatting half is the one place every view and message takes its numbers from: three
significant digits, the unit after a space (``952 µs``, ``24.1 ms``, ``1.51 s``), thousands
separators (``2,403.6 req/s``), percentages as ``99.95%`` and plurals that agree.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|m|h)?\s*$")
_SCALE = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*$")
_FRACTION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*$")


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


def parse_percent(value: str | float | int, *, bare: bool = False) -> float:
    """``"50%"`` -> 0.5; a number in [0, 1] is a fraction, and so is text like ``"0.5"`` when
    ``bare`` (an SLA keeps ``"0.1"`` ambiguous: 10 % or 0.1 %?). Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a percentage: {value!r}")
    if isinstance(value, int | float):
        fraction = float(value)
    else:
        m = _PERCENT.match(value)
        if m:
            fraction = float(m.group(1)) / 100.0
        elif bare and _FRACTION.match(value):
            fraction = float(value)
        else:
            raise ValueError(f"not a percentage (try 50%{' or 0.5' if bare else ''}): {value!r}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"percentage out of range 0-100%: {value!r}")
    return fraction


# -- formatting: the one style of every number a human reads --------------------------------

_UNITS = ((1e-3, "µs"), (1.0, "ms"), (1e3, "s"))  # size of one unit in ms


def _sig3(x: float) -> str:
    """``x`` (>= 0, < 1000 after rounding) with three significant digits: 952, 24.1, 1.51."""
    if x >= 99.95:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 9.995 else f"{x:.2f}"


def format_ms(ms: float | None) -> str:
    """Milliseconds in the unit that reads best: ``952 µs``, ``24.1 ms``, ``1.51 s``; None: ``-``.

    Three significant digits; seconds past 999 keep every digit (``1,234 s``).
    """
    if ms is None or math.isnan(ms):
        return "-"
    if ms < 0:
        return "-" + format_ms(-ms)
    if ms == 0:
        return "0 ms"
    for size, unit in _UNITS:
        value = ms / size
        if value < 999.5 or unit == "s":
            return f"{_sig3(value)} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_seconds(seconds: float | None) -> str:
    """Seconds as :func:`format_ms` shows them: 0.25 -> ``250 ms``, 1.514 -> ``1.51 s``."""
    return format_ms(None if seconds is None else seconds * 1000.0)


def format_duration(seconds: float) -> str:
    """A set duration (an interval, a run length) without padding zeros: ``250 ms``, ``2 s``,
    ``1.5 s``; a measured one keeps three significant digits (2.995 -> ``3 s``)."""
    number, _, unit = format_seconds(seconds).partition(" ")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return f"{number} {unit}" if unit else number


def format_ms_value(ms: float) -> str:
    """Milliseconds as a bare number for a column headed ``ms``: 0.952, 24.1, 1,510."""
    if ms < 0:
        return "-" + format_ms_value(-ms)
    if ms >= 999.5:
        return f"{ms:,.0f}"
    return f"{ms:.3f}" if ms < 0.9995 else _sig3(ms)


def format_sig(value: float) -> str:
    """A measured quantity, three significant digits or more: 0.952, 24.1, 171, 1,510."""
    return format_ms_value(value)


def format_number(value: float) -> str:
    """A plain quantity: whole numbers as they are (``1,024``), others to three significant
    digits or more (``0.952``, ``24.1``, ``1,510``)."""
    if value == int(value):
        return f"{int(value):,}"
    return format_ms_value(value)


def format_rate(per_second: float, unit: str = "req/s") -> str:
    """A rate: ``2,403.6 req/s``, ``24.1 req/s``, ``9.52 req/s`` (three significant digits+)."""
    text = f"{per_second:,.1f}" if abs(per_second) >= 9.995 else f"{per_second:.2f}"
    return f"{text} {unit}" if unit else text


def format_percent(fraction: float | None) -> str:
    """A fraction as a percentage, three significant digits at most: ``78.6%``, ``5.25%``,
    ``0.05%``, ``60%`` (no padding zeros).

    Near 100 % it is rounded down and shows the first digit that is not a 9 (``99.95%``,
    ``99.987%`` -> ``99.98%``), so a rate that is not perfect never reads ``100%``.
    """
    if fraction is None or math.isnan(fraction):
        return "-"
    p = round(fraction * 100.0, 9)  # float fuzz: 0.999 * 100 is 99.89999...
    if p <= 0.0 or p >= 100.0:
        return f"{p:.0f}%"
    if p >= 99.0:
        decimals = max(2, -math.floor(math.log10(100.0 - p)))
        text = f"{math.floor(p * 10**decimals) / 10**decimals:.{decimals}f}"
    else:
        decimals = max(1, 2 - math.floor(math.log10(p)))
        text = f"{p:.{decimals}f}"
    return text.rstrip("0").rstrip(".") + "%"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 request``, ``2,403 requests`` (``nouns`` for irregular plurals)."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"
