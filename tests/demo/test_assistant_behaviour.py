"""The demo assistant's behaviour and fault keys (latcli.demo.assistant.behaviour): pure, no
socket; the same keys on the wire are tested in test_demo_assistant.py."""

from __future__ import annotations

import random
from typing import Any

import pytest

from latcli.demo.assistant.behaviour import (
    AssistantState,
    Behaviour,
    apply_fault,
    parse_rate_limit,
    parse_share,
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ttft": "sometime soon"}, "not a latency distribution"),
        ({"tokens_per_s": 0}, "tokens_per_s must be more than 0"),
        ({"chunk_tokens": 0}, "chunk_tokens must be a whole number"),
        ({"answer_tokens": "ten"}, "answer_tokens must be a whole number"),
        ({"fail_tasks": "lots"}, "not a share"),
        ({"fail_tasks": 0.7, "input_required": 0.5}, "more than 100%"),
        ({"rate_limited": "forever"}, "not a duration"),
        ({"down": "yes"}, "down must be true or false"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"concurrency": 2}, "unknown fault keys"),
        ({"concurrency_limit": -1}, "concurrency_limit must be a whole number"),
        ({"ttft": "50ms", "fail_tasks": 2}, "out of range"),  # the good key is not applied
    ],
)
def test_apply_fault_validates_before_changing(change: dict[str, Any], message: str) -> None:
    state = AssistantState(Behaviour(), random.Random(0))
    before = state.behaviour
    with pytest.raises(ValueError, match=message):
        apply_fault(state, change, now=0.0)
    assert state.behaviour == before and not state.down


def test_rate_limit_counts_down_and_lifts() -> None:
    state = AssistantState(Behaviour(), random.Random(0))
    apply_fault(state, {"rate_limited": "10s"}, now=100.0)
    assert state.retry_after(100.0) == 10
    assert state.retry_after(109.2) == 1
    assert state.retry_after(110.0) is None
    apply_fault(state, {"rate_limited": True}, now=100.0)
    assert state.retry_after(1e9) == 5
    apply_fault(state, {"rate_limited": "off"}, now=100.0)
    assert state.retry_after(100.0) is None


@pytest.mark.parametrize("text", ["10%", "0.1", 0.1])
def test_shares_take_percent_and_fraction(text: object) -> None:
    assert parse_share(text) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("text", "want"), [("30s", 30.0), ("on", True), ("off", False), ("0s", False), (True, True)]
)
def test_parse_rate_limit(text: object, want: object) -> None:
    assert parse_rate_limit(text) == want
