"""The plan of one demo assistant task (latcli.demo.assistant.schedule): pure, no socket."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from latcli.core.distribution import parse_distribution
from latcli.demo.assistant.behaviour import Behaviour
from latcli.demo.assistant.schedule import Chunk, Settle, answer_tokens, plan_task, timeline


def test_timeline_streams_the_answer_in_chunks_at_its_rate() -> None:
    behaviour = Behaviour(parse_distribution("300ms"), tokens_per_s=100, chunk_tokens=5)
    plan = plan_task(replace(behaviour, answer_tokens=12), random.Random(1), "a", "hi")
    steps = timeline(plan)
    chunks = [s for s in steps if isinstance(s, Chunk)]
    assert [c.at for c in chunks] == pytest.approx([0.3, 0.35, 0.4])
    assert "".join(c.text for c in chunks) == "".join(answer_tokens("a", "hi", 12))
    assert [c.last for c in chunks] == [False, False, True]
    assert steps[-1] == Settle(pytest.approx(0.4), "completed", None)


def test_answer_depends_on_the_text_only() -> None:
    assert answer_tokens("a", "hello", 9) == answer_tokens("a", "hello", 9)
    assert answer_tokens("a", "hello", 9) != answer_tokens("a", "bye", 9)
    assert answer_tokens("a", "x", 1) == ["a:"]


@pytest.mark.parametrize(("fail", "ask"), [(0.1, 0.0), (0.3, 0.05), (0.0, 1.0)])
def test_outcome_shares_follow_the_settings(fail: float, ask: float) -> None:
    behaviour = Behaviour(fail_tasks=fail, input_required=ask)
    rng = random.Random(5)
    outcomes = [plan_task(behaviour, rng, "a", "q").outcome for _ in range(4000)]
    assert outcomes.count("failed") / 4000 == pytest.approx(fail, abs=0.02)
    assert outcomes.count("input-required") / 4000 == pytest.approx(ask, abs=0.02)


def test_a_failed_task_fails_after_its_think_time_without_output() -> None:
    plan = plan_task(
        Behaviour(parse_distribution("250ms"), fail_tasks=1.0), random.Random(), "a", "q"
    )
    assert timeline(plan) == [Settle(0.25, "failed", "model overloaded")]


def test_same_seed_same_tasks() -> None:
    behaviour = Behaviour(fail_tasks=0.2)
    plans = [[plan_task(behaviour, random.Random(9), "a", "q") for _ in range(3)] for _ in "ab"]
    assert plans[0] == plans[1]
