"""A2A task states in both spellings, and what each means to latcli (DESIGN §2).

1.0 spells states ``TASK_STATE_INPUT_REQUIRED``, 0.3 ``input-required``; latcli reports the
0.3 spelling. The table :data:`OUTCOMES` is the whole policy: a state is an answer, a failure
(kind ``task_failed``), an answer that stops early, or still pending (poll or keep reading).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class TaskOutcome(str, Enum):
    """What a task state means for the call that is waiting on it."""

    ANSWER = "answer"  # completed: the text is the reply
    FAILED = "failed"  # a failure of kind task_failed, the status message is the error text
    INTERRUPTED = "interrupted"  # an answer that stops early (the agent waits for the user)
    PENDING = "pending"  # not done: poll GetTask (unary) or keep reading (stream)


# The A2A spec's task states (0.3 spelling) -> outcome; "unknown" is a state an agent may send.
OUTCOMES: dict[str, TaskOutcome] = {
    "completed": TaskOutcome.ANSWER,
    "failed": TaskOutcome.FAILED,
    "rejected": TaskOutcome.FAILED,
    "canceled": TaskOutcome.FAILED,
    "input-required": TaskOutcome.INTERRUPTED,
    "auth-required": TaskOutcome.INTERRUPTED,
    "submitted": TaskOutcome.PENDING,
    "working": TaskOutcome.PENDING,
    "unknown": TaskOutcome.PENDING,
}
_ALIASES = {"cancelled": "canceled", "unspecified": "unknown"}


def normalize_state(raw: object) -> str | None:
    """``TASK_STATE_INPUT_REQUIRED`` / ``input-required`` -> ``input-required``; None if unknown.

    Only the spec's states are returned, so an agent cannot put arbitrary text in a report.
    """
    if not isinstance(raw, str):
        return None
    known = _SPELLED.get(raw)
    if known is not None:
        return known
    word = raw.strip().lower().removeprefix("task_state_").replace("_", "-")
    word = _ALIASES.get(word, word)
    return word if word in OUTCOMES else None


# The spellings agents send, read once per stream event: looked up instead of rewritten.
_SPELLED = {
    spelled: state
    for state in OUTCOMES
    for spelled in (state, "TASK_STATE_" + state.upper().replace("-", "_"))
}


def outcome_of(state: str | None) -> TaskOutcome:
    """The outcome of a normalised state; a task without a readable state is still pending."""
    return OUTCOMES.get(state or "unknown", TaskOutcome.PENDING)


@dataclass(frozen=True)
class TaskView:
    """What latcli reads from a Message or a Task result (either wire version).

    ``state`` is None for a Message (a direct answer); ``status_text`` is the text of the
    task's status message (the error text of a failed task, the question of input-required).
    """

    text: str
    state: str | None = None
    task_id: str | None = None
    status_text: str = ""

    @property
    def outcome(self) -> TaskOutcome:
        return TaskOutcome.ANSWER if self.state is None else outcome_of(self.state)

    def failure_text(self) -> str:
        """The error text of a failed task: ``task failed: model overloaded``."""
        detail = self.status_text or self.text
        return f"task {self.state}: {detail}" if detail else f"task {self.state}"


def unwrap(result: Any) -> Any:
    """1.0 wraps results (``{"task": ..}``, ``{"message": ..}``; 0.3's HTTP+JSON ``{"msg": ..}``);
    0.3's JSON-RPC tags them with ``kind``."""
    if isinstance(result, dict) and "kind" not in result:
        for wrapper in ("message", "msg", "task"):
            if isinstance(result.get(wrapper), dict):
                return result[wrapper]
    return result


def read_result(result: Any) -> TaskView | None:
    """A Message or Task result as a :class:`TaskView`; None if it is neither."""
    result = unwrap(result)
    if not isinstance(result, dict):
        return None
    if ("parts" in result or "content" in result) and "status" not in result:
        return TaskView(message_text(result))
    status = result.get("status")
    status = status if isinstance(status, dict) else {}
    if not status and "id" not in result and "artifacts" not in result:
        return None
    texts = [
        parts_text(a.get("parts")) for a in result.get("artifacts") or [] if isinstance(a, dict)
    ]
    status_text = message_text(status.get("message"))
    found = [t for t in texts if t]
    if not found and status_text:
        found.append(status_text)
    task_id = result.get("id")
    return TaskView(
        "\n".join(found),
        normalize_state(status.get("state")),  # a task without a readable state reads as done
        task_id if isinstance(task_id, str) else None,
        status_text,
    )


def message_text(message: Any) -> str:
    """The text of a Message, '' when it has none (0.3's HTTP+JSON calls its parts ``content``)."""
    if not isinstance(message, dict):
        return ""
    return parts_text(message.get("parts") if "parts" in message else message.get("content"))


def parts_text(parts: Any) -> str:
    """Text parts joined: ``{"text": ..}`` (1.0) and ``{"kind": "text", "text": ..}`` (0.3)."""
    if not isinstance(parts, list):
        return ""
    if len(parts) == 1:  # a streamed chunk's one part: no generator
        part = parts[0]
        return str(part["text"]) if isinstance(part, dict) and "text" in part else ""
    return "".join(str(p["text"]) for p in parts if isinstance(p, dict) and "text" in p)
