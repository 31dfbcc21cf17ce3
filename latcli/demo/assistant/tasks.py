"""One assistant task: its record as GetTask shows it (the wire shapes of a2a-sdk 1.3.0) with the
streams listening to it, and the run that walks its plan against the clock."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from latcli.demo.agent import Slots
from latcli.demo.assistant.schedule import Chunk, Plan, timeline
from latcli.demo.assistant.wire import SETTLED, STATE, Event


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class TaskRecord:
    """One task's state as GetTask shows it, and the streams listening to its events."""

    id: str
    context_id: str
    history: list[dict[str, Any]]  # the user's messages
    text: str  # the last one's text
    arrived: float  # time.monotonic() it came in: the schedule counts from here
    state: str = "submitted"
    timestamp: str | None = None
    status_message: str | None = None
    chunks: list[str] = field(default_factory=list)
    artifact_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    listeners: list[asyncio.Queue[Event]] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    runner: asyncio.Task[None] | None = None

    def as_task(self, history_length: int | None = None) -> dict[str, Any]:
        task: dict[str, Any] = {"id": self.id, "contextId": self.context_id}
        task["status"] = self._status()
        if self.chunks:  # the SDK's task store keeps each appended chunk as its own part
            parts = [{"text": c} for c in self.chunks]
            task["artifacts"] = [{"artifactId": self.artifact_id, "name": "answer", "parts": parts}]
        if history_length is None or history_length > 0:
            task["history"] = self.history[-history_length:] if history_length else self.history
        return task

    def _status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"state": STATE[self.state]}
        if self.status_message is not None:
            status["message"] = {
                "messageId": str(uuid.uuid4()),
                "contextId": self.context_id,
                "taskId": self.id,
                "role": "ROLE_AGENT",
                "parts": [{"text": self.status_message}],
            }
        if self.timestamp is not None:
            status["timestamp"] = self.timestamp
        return status

    def set_state(self, state: str, message: str | None = None) -> None:
        """Move to ``state`` and tell every listener (a statusUpdate event)."""
        self.state, self.status_message, self.timestamp = state, message, _now_iso()
        self.started.set()
        ids = {"taskId": self.id, "contextId": self.context_id}
        self._publish({"statusUpdate": {**ids, "status": self._status()}})
        if state in SETTLED:
            self.settled.set()

    def add_chunk(self, chunk: Chunk) -> None:
        self.chunks.append(chunk.text)
        artifact = {
            "artifactId": self.artifact_id,
            "name": "answer",
            "parts": [{"text": chunk.text}],
        }
        update: dict[str, Any] = {"taskId": self.id, "contextId": self.context_id}
        update["artifact"] = artifact
        if chunk.index > 0:
            update["append"] = True
        if chunk.last:
            update["lastChunk"] = True
        self._publish({"artifactUpdate": update})

    def _publish(self, event: Event) -> None:
        for queue in self.listeners:
            queue.put_nowait(event)


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


async def run_task(record: TaskRecord, plan: Plan, start: float) -> None:
    """Walk the plan's timeline against the clock, each step at its deadline from ``start``."""
    record.set_state("working")
    for step in timeline(plan):
        await _sleep_until(start + step.at)
        if isinstance(step, Chunk):
            record.add_chunk(step)
        else:
            record.set_state(step.state, step.message)


async def run_in_slot(record: TaskRecord, plan: Plan, slots: Slots) -> None:
    """:func:`run_task` once a slot is free, counting from the slot's start: a queued task stays
    ``submitted`` and its wait adds to its time to first token, as on a saturated model server.
    """
    start = await slots.acquire()
    try:
        await run_task(record, plan, start)
    finally:
        slots.release(start, min(time.monotonic(), start + timeline(plan)[-1].at))
