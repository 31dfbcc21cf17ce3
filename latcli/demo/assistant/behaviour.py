"""What the demo assistant does, as agents.yaml and ``POST /admin/fault`` set it: its
:class:`Behaviour`, the mutable :class:`AssistantState` and the fault keys that change them."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from latcli.core.distribution import Distribution, parse_distribution
from latcli.core.units import parse_duration, parse_percent

RETRY_AFTER_UNTIL_LIFTED = 5  # seconds announced while rate_limited is switched on (true)


@dataclass(frozen=True)
class Behaviour:
    """How the assistant answers. Durations in seconds, shares as fractions."""

    ttft: Distribution = field(default_factory=lambda: parse_distribution("lognormal 400ms 0.5"))
    tokens_per_s: float = 50.0
    chunk_tokens: int = 5
    answer_tokens: int = 40
    fail_tasks: float = 0.0  # tasks that end FAILED "model overloaded" after the think time
    input_required: float = 0.0  # tasks that stop at INPUT_REQUIRED after the think time
    errors: float = 0.0  # sends answered with a JSON-RPC error (HTTP+JSON: 500) at once
    latency: Distribution = field(default_factory=lambda: parse_distribution("1ms"))  # card GET


@dataclass
class AssistantState:
    """The mutable side: behaviour, availability, rate limit and the random source."""

    behaviour: Behaviour
    rng: random.Random
    down: bool = False
    rate_limited_until: float = 0.0  # time.monotonic(); math.inf: until switched off
    concurrency_limit: int | None = None  # tasks generating at once, the rest queued
    # Card GETs (health checks) draw from their own source: how often watch checks must not
    # change which tasks fail, or a seeded run would not repeat.
    card_rng: random.Random = field(default_factory=random.Random)

    def retry_after(self, now: float) -> int | None:
        """Seconds a client should wait, or None when not rate limited at ``now``."""
        if now >= self.rate_limited_until:
            return None
        if math.isinf(self.rate_limited_until):
            return RETRY_AFTER_UNTIL_LIFTED
        return max(1, math.ceil(self.rate_limited_until - now))

    def as_json(self, agent_id: str, now: float) -> dict[str, Any]:
        b = self.behaviour
        wait = self.retry_after(now)
        limited: bool | float = False
        if wait is not None:
            left = self.rate_limited_until - now
            limited = True if math.isinf(left) else round(left, 3)
        return {
            "agent": agent_id,
            "app": "assistant",
            "ttft": str(b.ttft),
            "tokens_per_s": b.tokens_per_s,
            "chunk_tokens": b.chunk_tokens,
            "answer_tokens": b.answer_tokens,
            "fail_tasks": b.fail_tasks,
            "input_required": b.input_required,
            "errors": b.errors,
            "latency": str(b.latency),
            "down": self.down,
            "rate_limited": limited,  # false, true (until lifted) or seconds left
            "concurrency_limit": self.concurrency_limit,
        }


FAULT_KEYS = frozenset(
    {
        "ttft",
        "tokens_per_s",
        "chunk_tokens",
        "answer_tokens",
        "fail_tasks",
        "input_required",
        "errors",
        "latency",
        "down",
        "rate_limited",
        "seed",
        "concurrency_limit",
    }
)


def apply_fault(state: AssistantState, change: Mapping[str, Any], now: float) -> None:
    """Apply a fault change (keys of :data:`FAULT_KEYS`; a missing or null key is unchanged).

    ``rate_limited`` is a duration (``"10s"``: HTTP 429 for ten seconds from ``now``), true
    (until switched off) or false / ``0``; ``seed`` restarts the random source;
    ``concurrency_limit`` caps the tasks generating at once (0: no cap).
    Validates everything before changing anything. Raises ValueError.
    """
    unknown = set(change) - FAULT_KEYS
    if unknown:
        raise ValueError(f"unknown fault keys for an assistant: {sorted(unknown)}")
    given = {k: v for k, v in change.items() if v is not None}
    behaviour = replace(state.behaviour, **_behaviour_values(given))
    down = given.get("down")
    if down is not None and not isinstance(down, bool):
        raise ValueError(f"down must be true or false: {down!r}")
    until = _rate_limit_until(given["rate_limited"], now) if "rate_limited" in given else None
    seed = given.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be a whole number: {seed!r}")
    limit = given.get("concurrency_limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"concurrency_limit must be a whole number >= 0 (0: none): {limit!r}")
    state.behaviour = behaviour
    if down is not None:
        state.down = down
    if until is not None:
        state.rate_limited_until = until
    if seed is not None:
        state.rng.seed(seed)
        state.card_rng.seed(seed)
    if limit is not None:
        state.concurrency_limit = limit or None


def _behaviour_values(given: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in ("ttft", "latency"):
        if key in given:
            values[key] = parse_distribution(_text(key, given[key]))
    if "tokens_per_s" in given:
        rate = _number("tokens_per_s", given["tokens_per_s"])
        if not rate > 0:
            raise ValueError(f"tokens_per_s must be more than 0: {rate!r}")
        values["tokens_per_s"] = rate
    for key in ("chunk_tokens", "answer_tokens"):
        if key in given:
            values[key] = _count(key, given[key])
    for key in ("fail_tasks", "input_required", "errors"):
        if key in given:
            values[key] = parse_share(given[key])
    if values.get("fail_tasks", 0.0) + values.get("input_required", 0.0) > 1.0:
        raise ValueError("fail_tasks + input_required is more than 100%")
    return values


def _text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text like 'lognormal 400ms 0.5': {value!r}")
    return value


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key} must be a number: {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{key} must be a number: {value!r}") from None


def _count(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a whole number >= 1: {value!r}")
    return value


def parse_share(value: object) -> float:
    """``0.1``, ``"0.1"`` or ``"10%"`` -> 0.1. Raises ValueError."""
    if isinstance(value, str) and not value.strip().endswith("%"):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"not a share (try 10% or 0.1): {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a share (try 10% or 0.1): {value!r}")
    return parse_percent(value)


def parse_rate_limit(value: object) -> bool | float:
    """``"30s"`` -> 30.0 seconds; ``"on"``/true -> True (until off); ``"off"``/false/0 -> False.

    Raises ValueError.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("on", "off"):
        return value.strip().lower() == "on"
    if isinstance(value, int | float | str):
        seconds = parse_duration(value)
        return seconds if seconds > 0 else False
    raise ValueError(f"rate_limited must be a duration like '30s', on or off: {value!r}")


def _rate_limit_until(value: object, now: float) -> float:
    """The monotonic time a rate limit given as ``value`` ends (0.0: lifted)."""
    limit = parse_rate_limit(value)
    if limit is True:
        return math.inf
    return 0.0 if limit is False else now + limit
