"""Semantic checks: a value the schema let through -> the dataclass value, or a problem.

One check per field name (a name means the same thing wherever it appears): durations and
percentages parsed, URLs, names, headers, regexes and enumerations checked. :func:`build`
makes a model dataclass from a converted section.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET

from latcli.config.file_keys import keys_of
from latcli.config.model import (
    A2A_BINDINGS,
    DEMO_APPS,
    EWMA_SIGNALS,
    PROTOCOLS,
    STRATEGIES,
)
from latcli.config.problems import KeyPath, Report
from latcli.config.urls import host_of, http_url, port_of
from latcli.core.distribution import parse_distribution
from latcli.core.units import parse_duration, parse_percent

T = TypeVar("T")
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
Check = Callable[[Any, KeyPath, Report], Any]


def _duration(value: float | str, path: KeyPath, report: Report) -> float | None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        report.add(path, str(exc))
        return None
    if seconds <= 0:
        report.add(path, "must be greater than 0")
        return None
    return seconds


def _percent(value: float | str, path: KeyPath, report: Report) -> float | None:
    try:
        return parse_percent(value)
    except ValueError as exc:
        report.add(path, str(exc))
        return None


def _one_of(choices: Sequence[str]) -> Check:
    def check(value: str, path: KeyPath, report: Report) -> str | None:
        if value in choices:
            return value
        report.add(path, f"must be one of {', '.join(choices)} (got {value!r})")
        return None

    return check


def _name(value: str, path: KeyPath, report: Report) -> str | None:
    if _NAME.fullmatch(value):
        return value
    report.add(path, f"must be letters, digits, '.', '_' or '-' (got {value!r})")
    return None


def _url(value: str, path: KeyPath, report: Report) -> str | None:
    parts = http_url(value)
    if parts is None:
        report.add(path, "not an http(s) URL")
        return None
    if parts.query or parts.fragment:
        report.add(path, "a base URL takes no ?query or #fragment")
        return None
    return value.rstrip("/")


def _health_path(value: str, path: KeyPath, report: Report) -> str | None:
    if value.startswith("/"):
        return value
    report.add(path, f"must start with '/' (got {value!r})")
    return None


def _headers(value: dict[str, str], path: KeyPath, report: Report) -> dict[str, str]:
    # Names and values are checked here because httpx would reject them later with a
    # message that may quote the value, which is a secret.
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            report.add((*path, name), "not a valid header name")
        if "\r" in text or "\n" in text:
            report.add((*path, name), "header value contains a line break")
        elif not _HEADER_VALUE.fullmatch(text):
            # RFC 9110 field values are visible ASCII, space and tab (obs-text is obsolete and
            # every engine encodes headers as ASCII); the value is a secret: never quoted
            report.add((*path, name), "header value has a non-ASCII or control character")
    return dict(value)


def _latency(value: str, path: KeyPath, report: Report) -> str | None:
    try:
        parse_distribution(value)
    except ValueError as exc:
        report.add(path, str(exc))
        return None
    return value


def _regex(value: str, path: KeyPath, report: Report) -> re.Pattern[str] | None:
    """Compiled once, here: a bad pattern is an inventory problem, not a failed canary."""
    try:
        return re.compile(value)
    except re.error as exc:
        report.add(path, f"not a regular expression: {exc}")
        return None


def _binding(value: str, path: KeyPath, report: Report) -> str | None:
    if value in A2A_BINDINGS:
        return value
    close = difflib.get_close_matches(value.lower(), A2A_BINDINGS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    hint = "; latcli does not speak gRPC" if value.lower() == "grpc" else hint
    report.add(path, f"must be one of {', '.join(A2A_BINDINGS)} (got {value!r}{hint})")
    return None


def _origins(value: list[str], path: KeyPath, report: Report) -> tuple[str, ...] | None:
    """Each entry an origin, kept as ``scheme://host:port`` (default port filled in)."""
    origins: list[str] = []
    for i, text in enumerate(value):
        parts = http_url(text)
        if parts is None or parts.path.strip("/") or parts.query or parts.fragment:
            report.add((*path, i), f"not an origin like https://host:443 (got {text!r})")
            continue
        origins.append(f"{parts.scheme}://{host_of(parts)}:{port_of(parts)}")
    return tuple(origins) if len(origins) == len(value) else None


def _a2a_version(value: str | float, path: KeyPath, report: Report) -> str | None:
    # YAML reads an unquoted 1.0 as a float; accept it as the version text.
    text = f"{value:.1f}" if isinstance(value, float) else value
    if text in ("0.3", "1.0"):
        return text
    report.add(path, f"must be '0.3' or '1.0' (got {text!r})")
    return None


# Keyed by field name: a name means the same thing wherever it appears.
_CHECKS: dict[str, Check] = {
    **dict.fromkeys(
        (
            "timeout",
            "connect_timeout",
            "interval",
            "window",
            "open_for",
            "open_max",
            "decay",
            "every",
        ),
        _duration,
    ),
    **dict.fromkeys(("failure_rate", "retry_budget", "errors"), _percent),
    "protocol": _one_of(PROTOCOLS),
    "strategy": _one_of(STRATEGIES),
    "id": _name,
    "type": _name,
    "url": _url,
    "path": _health_path,
    "headers": _headers,
    "latency": _latency,
    "a2a_version": _a2a_version,
    "binding": _binding,
    "allow_origins": _origins,
    "signal": _one_of(EWMA_SIGNALS),
    "expect": _regex,
}
_CHECKS.update(  # the demo assistant's keys
    {
        "app": _one_of(DEMO_APPS),
        "ttft": _latency,
        "fail_tasks": _percent,
        "input_required": _percent,
        "rate_limited": _duration,
    }
)


def build(kind: type[T], raw: msgspec.Struct, path: KeyPath, report: Report) -> T:
    """A ``kind`` dataclass from the fields ``raw`` sets; unset or bad ones keep the default."""
    return kind(**checked_values(kind, raw, path, report))


def checked_values(
    kind: type[Any], raw: msgspec.Struct, path: KeyPath, report: Report
) -> dict[str, Any]:
    """The checked values for a ``kind`` dataclass of the fields ``raw`` sets (bad ones
    reported, left out)."""
    keys = keys_of(kind)
    values: dict[str, Any] = {}
    for name, value in msgspec.structs.asdict(raw).items():
        if value is UNSET:
            continue
        if isinstance(value, msgspec.Struct):
            nested = keys[name].nested
            assert nested is not None  # a section's value is a Struct only for a nested key
            values[name] = build(nested, value, (*path, name), report)
            continue
        check = _CHECKS.get(name)
        checked = check(value, (*path, name), report) if check else value
        if checked is not None:
            values[name] = checked
    return values
