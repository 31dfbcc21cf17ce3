"""latcli/core/units.py: the one module every number a human reads, or types, goes through.

Table-driven cases for the edges, and properties for what must hold for every value: three
significant digits that read back within rounding, a rate below 100 % never shown as ``100%``.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from latcli.core.units import (
    format_duration,
    format_ms,
    format_ms_value,
    format_number,
    format_percent,
    format_rate,
    parse_duration,
    parse_percent,
    plural,
)

# -- one formatting module ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0.952, "952 µs"),
        (24.06, "24.1 ms"),
        (1514.0, "1.51 s"),
        (9.996, "10.0 ms"),  # rounding moves the digits, never past three
        (999.6, "1.00 s"),  # nor past the unit
        (0.9996, "1.00 ms"),
        (241.0, "241 ms"),
        (1_234_000.0, "1,234 s"),
        (0.0, "0 ms"),
        (None, "-"),
    ],
)
def test_durations_have_three_significant_digits_and_a_unit(ms: float | None, text: str) -> None:
    assert format_ms(ms) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250 ms"), (2.0, "2 s"), (1.5, "1.5 s"), (30.0, "30 s")]
)
def test_set_durations_have_no_padding_zeros(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("fraction", "text"),
    [
        (0.0, "0%"),
        (1.0, "100%"),
        (0.6, "60%"),
        (0.78571, "78.6%"),
        (0.0525, "5.25%"),
        (0.0005, "0.05%"),
        (0.9995, "99.95%"),
        (0.99996, "99.996%"),  # rounded down, to the first digit that is not a 9: never 100%
        (0.999995, "99.9995%"),
    ],
)
def test_percentages_one_style(fraction: float, text: str) -> None:
    assert format_percent(fraction) == text


def test_rates_counts_and_bare_numbers() -> None:
    assert format_rate(2403.6) == "2,403.6 req/s"
    assert format_rate(9.523) == "9.52 req/s"
    assert plural(1, "request") == "1 request" and plural(2403, "request") == "2,403 requests"
    assert plural(0, "replica") == "0 replicas"
    assert [format_ms_value(v) for v in (0.952, 17.64, 1514.2)] == ["0.952", "17.6", "1,514"]


def test_error_rates_take_a_percentage_or_a_fraction_where_asked() -> None:
    assert parse_percent("50%") == parse_percent("0.5", bare=True) == 0.5
    with pytest.raises(ValueError, match="try 50%"):
        parse_percent("0.5")  # an SLA keeps "0.1" ambiguous: 10 % or 0.1 %?
    with pytest.raises(ValueError, match="0-100%"):
        parse_percent("1.5", bare=True)


# -- parsing what users type -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("250 ms", 0.25),
        ("5s", 5.0),
        ("5", 5.0),  # a bare number is seconds
        ("1.5m", 90.0),
        ("2h", 7200.0),
        ("300us", 0.0003),
        ("300µs", 0.0003),
        (".5s", 0.5),
        (" 2s ", 2.0),
        (3, 3.0),
        (0.5, 0.5),
    ],
)
def test_durations_parse_to_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "fast", "5 sec", "-1s", "1e3ms", "5s5", "ms", True, -2])
def test_bad_durations_are_value_errors_that_show_the_input(text: str | float) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "fraction"), [("0%", 0.0), ("100%", 1.0), ("0.1%", 0.001), (" 12.5 % ", 0.125)]
)
def test_percentages_parse_to_fractions(text: str, fraction: float) -> None:
    assert parse_percent(text) == pytest.approx(fraction)


@pytest.mark.parametrize("value", ["101%", "-1%", "half", True, 1.5, -0.1])
def test_bad_percentages_are_value_errors(value: str | float) -> None:
    with pytest.raises(ValueError):
        parse_percent(value, bare=True)


# -- properties --------------------------------------------------------------------------------

_MS = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
_SCALE_MS = {"µs": 1e-3, "ms": 1.0, "s": 1e3}


@given(_MS)
def test_a_formatted_duration_reads_back_within_its_rounding(ms: float) -> None:
    number, unit = format_ms(ms).split(" ")
    value = float(number.replace(",", "")) * _SCALE_MS[unit]
    assert value == pytest.approx(ms, rel=5e-3, abs=5e-4)
    digits = number.replace(",", "").replace(".", "").lstrip("0")
    assert len(digits) <= 3 or unit == "s"  # three significant digits, seconds keep them all


@given(st.floats(min_value=0.0, max_value=1.0, allow_nan=False))
def test_a_rate_below_one_never_reads_100_percent(fraction: float) -> None:
    text = format_percent(fraction)
    assert text.endswith("%")
    assert (text == "100%") == (round(fraction * 100.0, 9) >= 100.0)
    assert float(text[:-1]) <= fraction * 100.0 + 0.5  # rounding never inflates by a whole unit


@given(st.integers(min_value=0, max_value=10**9))
def test_whole_numbers_keep_every_digit(n: int) -> None:
    assert format_number(n).replace(",", "") == str(n)


@given(st.floats(min_value=0.0, max_value=1e7, allow_nan=False))
def test_rates_keep_at_least_three_significant_digits(rps: float) -> None:
    text = format_rate(rps)
    assert text.endswith(" req/s")
    assert float(text.split(" ")[0].replace(",", "")) == pytest.approx(rps, rel=5e-3, abs=5e-3)


def test_negative_and_missing_values() -> None:
    assert format_ms(-24.06) == "-24.1 ms"
    assert format_ms(math.nan) == "-" and format_percent(None) == "-"
    assert format_ms_value(-0.5) == "-0.500"
