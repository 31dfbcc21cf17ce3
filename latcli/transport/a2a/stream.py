"""The phases of one streamed A2A message, read event by event (DESIGN §2 "Streaming").

Sans-I/O: :class:`StreamReader` takes each SSE event's JSON with its arrival instant and keeps
the task's state, its text (chunks with ``append`` joined in order) and the phases, each in ms
from ``started`` (the moment the request was sent): ``first_event``, ``working`` (first WORKING
status), ``first_artifact`` (first artifact chunk or message text: the time to first token),
``gap_max`` (longest wait between successive chunks) and ``total`` (the terminal event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from latcli.transport.a2a.lifecycle import (
    TaskOutcome,
    TaskView,
    message_text,
    normalize_state,
    outcome_of,
    parts_text,
    read_result,
)


@dataclass(frozen=True)
class StreamPhases:
    """Phases of one streamed message in ms (None: that phase did not happen)."""

    first_event_ms: float | None
    working_ms: float | None
    first_artifact_ms: float | None
    gap_ms_max: float | None
    total_ms: float | None
    events: int
    chunks: int

    def rounded(self) -> StreamPhases:
        """The same phases to the µs, as the JSON contracts write them."""

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return StreamPhases(
            ms(self.first_event_ms), ms(self.working_ms), ms(self.first_artifact_ms),
            ms(self.gap_ms_max), ms(self.total_ms), self.events, self.chunks,
        )  # fmt: skip

    def to_json(self) -> dict[str, float | int | None]:
        """The ``stream`` object of ``send --json`` (DESIGN §6)."""
        return {
            "first_event_ms": self.first_event_ms,
            "working_ms": self.working_ms,
            "first_artifact_ms": self.first_artifact_ms,
            "gap_ms_max": self.gap_ms_max,
            "events": self.events,
            "total_ms": self.total_ms,
        }


class StreamError(ValueError):
    """An event that is not an A2A stream response, or a JSON-RPC error inside the stream."""

    def __init__(self, message: str, rpc_error: bool = False) -> None:
        super().__init__(message)
        self.rpc_error = rpc_error


# 1.0 wraps each stream response in one of these keys; 0.3 tags it with ``kind``.
_KINDS_10 = {
    "task": "task",
    "message": "message",
    "msg": "message",  # 0.3 HTTP+JSON
    "statusUpdate": "status-update",
    "artifactUpdate": "artifact-update",
}
_KINDS_03 = frozenset(_KINDS_10.values())


def split_event(doc: Any, jsonrpc: bool) -> tuple[str, dict[str, Any]]:
    """``(kind, payload)`` of one event: JSON-RPC envelopes (``jsonrpc``) or bare HTTP+JSON.

    Raises :class:`StreamError` for an error envelope or an unknown shape.
    """
    if jsonrpc:
        if not isinstance(doc, dict) or doc.get("jsonrpc") != "2.0":
            raise StreamError("stream event is not a JSON-RPC 2.0 response")
        if "error" in doc:
            error = doc["error"] if isinstance(doc["error"], dict) else {}
            text = f"JSON-RPC error {error.get('code')}: {error.get('message', '')}"
            raise StreamError(text, rpc_error=True)
        doc = doc.get("result")
    if isinstance(doc, dict):
        if len(doc) == 1:  # 1.0: the one key names the kind (the loop below, without a loop)
            for key, value in doc.items():
                name = _KINDS_10.get(key)
                if name is not None and isinstance(value, dict):
                    return name, value
        kind = doc.get("kind")
        if isinstance(kind, str) and kind in _KINDS_03:
            return kind, doc
        for key, name in _KINDS_10.items():
            if isinstance(doc.get(key), dict):
                return name, doc[key]
    raise StreamError("stream event is neither a Task, a Message nor a task update")


class StreamReader:
    """One stream's state: feed :meth:`event` until :attr:`done`, then read the results."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.state: str | None = None
        self.status_text = ""
        self.task_id: str | None = None
        self.done = False
        self.events = 0
        # The latest event as parsed (what a relay re-serialises) and the answer text it added.
        self.kind = ""
        self.payload: dict[str, Any] = {}
        self.text = ""
        # artifactId -> its text pieces in arrival order (joined once, at the end: no O(n^2))
        self._artifacts: dict[str, list[str]] = {}
        self._message: str | None = None  # a Message answer ends the stream with its text
        self._first_event: float | None = None
        self._working: float | None = None
        self._first_chunk: float | None = None
        self._last_chunk: float | None = None
        self._gap_max: float | None = None
        self._chunks = 0
        self._end: float | None = None

    def event(self, at: float, kind: str, payload: dict[str, Any]) -> str:
        """Take one event (see :func:`split_event`); returns the text it adds ('' if none),
        also kept with the event in :attr:`kind`, :attr:`payload` and :attr:`text`."""
        self.kind, self.payload = kind, payload
        self.events += 1
        if self._first_event is None:
            self._first_event = at
        if self.task_id is None and kind in ("status-update", "artifact-update"):
            found = payload.get("taskId")  # the id a hedge's loser is cancelled by
            self.task_id = found if isinstance(found, str) and found else None
        if kind == "artifact-update":  # the most frequent first
            text = self._artifact(at, payload)
        elif kind == "message":
            self._message = message_text(payload)
            self._finish(at)
            text = self._chunk(at, self._message)
        elif kind == "task":
            text = self._task(at, payload)
        else:
            self._status(at, payload.get("status"))
            text = ""
        self.text = text
        return text

    def _task(self, at: float, payload: dict[str, Any]) -> str:
        """A Task snapshot: its artifacts replace what came before; an agent that streams only
        the finished Task gives its text here, which is then the first (and only) chunk."""
        view = read_result(payload)
        if view is None:
            return ""
        self.task_id = view.task_id or self.task_id
        for artifact in payload.get("artifacts") or []:
            if isinstance(artifact, dict):
                key = str(artifact.get("artifactId") or len(self._artifacts))
                self._artifacts[key] = [parts_text(artifact.get("parts"))]
        text = "\n".join(t for t in ("".join(p) for p in self._artifacts.values()) if t)
        self._status(at, payload.get("status"))
        return self._chunk(at, text) if text and self._chunks == 0 else ""

    def _status(self, at: float, status: Any) -> None:
        if not isinstance(status, dict):
            return
        state = normalize_state(status.get("state"))
        if state is None:
            return
        self.state = state
        if state == "working" and self._working is None:
            self._working = at
        self.status_text = message_text(status.get("message")) or self.status_text
        if outcome_of(state) is not TaskOutcome.PENDING:
            self._finish(at)

    def _artifact(self, at: float, payload: dict[str, Any]) -> str:
        artifact = payload.get("artifact")
        if not isinstance(artifact, dict):
            return ""
        key = str(artifact.get("artifactId") or "")
        text = parts_text(artifact.get("parts"))
        if payload.get("append") and key in self._artifacts:
            self._artifacts[key].append(text)
        else:
            self._artifacts[key] = [text]
        return self._chunk(at, text)

    def _chunk(self, at: float, text: str) -> str:
        self._chunks += 1
        if self._first_chunk is None:
            self._first_chunk = at
        last = self._last_chunk
        if last is not None:
            gap, longest = at - last, self._gap_max
            if longest is None or gap > longest:
                self._gap_max = gap
        self._last_chunk = at
        return text

    def _finish(self, at: float) -> None:
        self.done = True
        self._end = at

    @property
    def answered(self) -> bool:
        """The first piece of answer text has arrived (the first token: the answer commits)."""
        return self._chunks > 0

    def view(self) -> TaskView:
        """The answer so far: a Message's text, else the artifacts' texts (status text if none)."""
        if self._message is not None:
            return TaskView(self._message)
        found = [t for t in ("".join(pieces) for pieces in self._artifacts.values()) if t]
        text = "\n".join(found) if found else self.status_text
        return TaskView(text, self.state, self.task_id, self.status_text)

    def phases(self) -> StreamPhases:
        return StreamPhases(
            first_event_ms=self._ms(self._first_event),
            working_ms=self._ms(self._working),
            first_artifact_ms=self._ms(self._first_chunk),
            gap_ms_max=None if self._gap_max is None else self._gap_max * 1000.0,
            total_ms=self._ms(self._end),
            events=self.events,
            chunks=self._chunks,
        )

    def _ms(self, at: float | None) -> float | None:
        return None if at is None else (at - self.started) * 1000.0
