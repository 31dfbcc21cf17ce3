"""The plan of one assistant task, pure: its think time and outcome drawn up front, then each
chunk's and the settle's offset, so the runner only sleeps to each deadline and scheduling lag
never accumulates across chunks."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Literal

from latcli.demo.assistant.behaviour import Behaviour

Outcome = Literal["completed", "failed", "input-required"]

FAILED_TEXT = "model overloaded"
QUESTION_TEXT = "Which one do you mean? Please say more."
_WORDS = (
    "the", "answer", "depends", "on", "what", "you", "measure", "first", "so", "let", "us",
    "look", "at", "latency", "throughput", "and", "errors", "under", "steady", "load", "then",
    "compare", "tail", "with", "median", "before", "deciding", "whether", "more", "replicas",
    "or", "a", "faster", "model", "would", "help", "most", "here",
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """What one task will do: think ``ttft`` seconds, then ``outcome``."""

    outcome: Outcome
    ttft: float
    gap: float  # seconds between chunks: chunk_tokens / tokens_per_s
    chunks: tuple[str, ...]  # the answer, in the order it is streamed (completed only)


@dataclass(frozen=True)
class Chunk:
    at: float  # seconds after the task started
    index: int
    text: str
    last: bool


@dataclass(frozen=True)
class Settle:
    at: float
    state: Outcome
    message: str | None  # the status message (failed, input-required)


Step = Chunk | Settle


def answer_tokens(agent_id: str, text: str, count: int) -> list[str]:
    """The answer to ``text`` as ``count`` tokens; the same text gets the same answer."""
    words = random.Random(zlib.crc32(text.encode()))
    tokens = [f"{agent_id}:"] + [words.choice(_WORDS) for _ in range(count - 1)]
    return [t + ("" if i == count - 1 else " ") for i, t in enumerate(tokens)]


def plan_task(behaviour: Behaviour, rng: random.Random, agent_id: str, text: str) -> Plan:
    """Draw one task's think time and outcome from ``rng``; the answer depends on ``text``."""
    ttft = behaviour.ttft.sample(rng)
    draw = rng.random()
    gap = behaviour.chunk_tokens / behaviour.tokens_per_s
    if draw < behaviour.fail_tasks:
        return Plan("failed", ttft, gap, ())
    if draw < behaviour.fail_tasks + behaviour.input_required:
        return Plan("input-required", ttft, gap, ())
    tokens = answer_tokens(agent_id, text, behaviour.answer_tokens)
    size = behaviour.chunk_tokens
    chunks = tuple("".join(tokens[i : i + size]) for i in range(0, len(tokens), size))
    return Plan("completed", ttft, gap, chunks)


def timeline(plan: Plan) -> list[Step]:
    """The task's steps with their offsets: chunk k at ttft + k * gap, then the settle."""
    if plan.outcome == "failed":
        return [Settle(plan.ttft, "failed", FAILED_TEXT)]
    if plan.outcome == "input-required":
        return [Settle(plan.ttft, "input-required", QUESTION_TEXT)]
    last = len(plan.chunks) - 1
    steps: list[Step] = [
        Chunk(plan.ttft + k * plan.gap, k, text, k == last) for k, text in enumerate(plan.chunks)
    ]
    steps.append(Settle(plan.ttft + last * plan.gap, "completed", None))
    return steps
