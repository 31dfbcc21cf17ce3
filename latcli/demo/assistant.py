"""Demo ``assistant`` agents: A2A 1.0 agents that behave like LLM-backed ones.

Every message becomes a Task with a lifecycle, answered on the wire a2a-sdk 1.3.0 agents
speak (JSON-RPC ``SendMessage`` / ``SendStreamingMessage`` / ``GetTask`` / ``CancelTask`` at
``POST /``, and HTTP+JSON ``POST /message:send``, ``POST /message:stream``, ``GET /tasks/{id}``,
``POST /tasks/{id}:cancel``). A task thinks for a ``ttft`` draw, then streams its answer as
artifact chunks of ``chunk_tokens`` tokens at ``tokens_per_s``, and completes; a share of
tasks fail ("model overloaded") or stop at ``input-required`` after the think time (a message
carrying that task's id answers it and the task goes on). ``concurrency_limit`` caps the tasks
generating at once, the rest wait as ``submitted`` (a model server's batch: a stream capacity
known by construction; ``GET /admin/load`` counts). ``rate_limited`` answers new messages
HTTP 429 with ``Retry-After`` for a while (card GETs, ``GetTask`` and ``CancelTask`` still work,
so tasks in flight can be finished or cancelled).

Everything is switchable at run time through ``POST /admin/fault`` (the keys of
:data:`FAULT_KEYS`), as on the other demo agents. The plan of a task is drawn up front by the
pure :func:`plan_task` and :func:`timeline`; the app only sleeps to each step's deadline, so
scheduling lag never accumulates across chunks.

Run one with ``python -m latcli.demo.assistant --id assistant-1 --port 8006``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from latcli.core.distribution import Distribution, parse_distribution
from latcli.core.units import parse_duration, parse_percent
from latcli.demo.agent import Slots

if TYPE_CHECKING:
    from latcli.config.model import DemoConfig

Handler = Callable[[Request], Awaitable[Response]]
Outcome = Literal["completed", "failed", "input-required"]

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
MAX_TASKS = 10_000  # tasks kept for GetTask; the oldest settled ones go first
RETRY_AFTER_UNTIL_LIFTED = 5  # seconds announced while rate_limited is switched on (true)
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}  # as sse-starlette
REST_MEDIA_TYPE = "application/a2a+json"  # a2a-sdk's HTTP+JSON replies

# 1.0 state names (the proto enum's JSON spelling), keyed by latcli's 0.3 spelling.
STATE = {
    "submitted": "TASK_STATE_SUBMITTED",
    "working": "TASK_STATE_WORKING",
    "completed": "TASK_STATE_COMPLETED",
    "failed": "TASK_STATE_FAILED",
    "canceled": "TASK_STATE_CANCELED",
    "input-required": "TASK_STATE_INPUT_REQUIRED",
}
TERMINAL = frozenset({"completed", "failed", "canceled"})
SETTLED = TERMINAL | {"input-required"}  # a unary call or a stream stops here
_SETTLED_ON_THE_WIRE = frozenset(STATE[s] for s in SETTLED)

FAILED_TEXT = "model overloaded"
QUESTION_TEXT = "Which one do you mean? Please say more."
_WORDS = (
    "the", "answer", "depends", "on", "what", "you", "measure", "first", "so", "let", "us",
    "look", "at", "latency", "throughput", "and", "errors", "under", "steady", "load", "then",
    "compare", "tail", "with", "median", "before", "deciding", "whether", "more", "replicas",
    "or", "a", "faster", "model", "would", "help", "most", "here",
)  # fmt: skip


class A2aError(Exception):
    """An A2A error; each binding spells it its own way (JSON-RPC code or HTTP status)."""

    def __init__(self, code: int, http_status: int, status: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.http_status, self.status = code, http_status, status
        self.reason, self.message = reason, message

    def details(self) -> list[dict[str, Any]]:
        """The google.rpc.ErrorInfo a2a-sdk's clients map back to an error class by reason."""
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": self.reason}
        return [{**info, "domain": "a2a-protocol.org", "metadata": {}}]


def _parse_error(message: str) -> A2aError:
    return A2aError(-32700, 400, "INVALID_ARGUMENT", "INVALID_REQUEST", message)


def _invalid_request(message: str) -> A2aError:
    return A2aError(-32600, 400, "INVALID_ARGUMENT", "INVALID_REQUEST", message)


def _invalid_params(message: str) -> A2aError:
    return A2aError(-32602, 400, "INVALID_ARGUMENT", "INVALID_PARAMS", message)


def _task_not_found() -> A2aError:
    return A2aError(-32001, 404, "NOT_FOUND", "TASK_NOT_FOUND", "Task not found")


def _not_cancelable() -> A2aError:
    return A2aError(
        -32002, 400, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE", "Task cannot be canceled"
    )


def _version_not_supported(got: str) -> A2aError:
    text = f"A2A version {got!r} is not supported by this handler. Expected version '1.0'."
    return A2aError(-32009, 400, "FAILED_PRECONDITION", "VERSION_NOT_SUPPORTED", text)


# -- behaviour: what agents.yaml and /admin/fault set ------------------------------


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


# -- the plan of one task (pure) ----------------------------------------------------


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


# -- tasks: the wire shapes of a2a-sdk 1.3.0 (proto JSON names) ---------------------


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


Event = dict[str, Any]  # one StreamResponse: {"task"|"statusUpdate"|"artifactUpdate": ...}


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


async def _run(record: TaskRecord, plan: Plan, start: float) -> None:
    """Walk the plan's timeline against the clock, each step at its deadline from ``start``."""
    record.set_state("working")
    for step in timeline(plan):
        await _sleep_until(start + step.at)
        if isinstance(step, Chunk):
            record.add_chunk(step)
        else:
            record.set_state(step.state, step.message)


async def _run_in_slot(record: TaskRecord, plan: Plan, slots: Slots) -> None:
    """:func:`_run` once a slot is free, counting from the slot's start: a queued task stays
    ``submitted`` and its wait adds to its time to first token, as on a saturated model server.
    """
    start = await slots.acquire()
    try:
        await _run(record, plan, start)
    finally:
        slots.release(start, min(time.monotonic(), start + timeline(plan)[-1].at))


# -- the agent ------------------------------------------------------------------------


def _is_v1(header: str | None) -> bool:
    """``1.0`` or ``1.0.x``: the patch part is ignored, as a2a-sdk does."""
    return header is not None and header.strip().split(".")[:2] == ["1", "0"]


def _message(params: object) -> tuple[dict[str, Any], str, bool]:
    """The user message, its text and whether the client asked not to wait (returnImmediately)."""
    message = params.get("message") if isinstance(params, dict) else None
    parts = message.get("parts") if isinstance(message, dict) else None
    if not isinstance(message, dict) or not isinstance(parts, list):
        raise _invalid_params("params.message needs a list of parts")
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    if not texts:
        raise _invalid_params("params.message needs a text part")
    config = params.get("configuration") if isinstance(params, dict) else None
    immediate = isinstance(config, dict) and config.get("returnImmediately") is True
    return message, "\n".join(texts), immediate


def _task_id(params: object) -> str:
    task_id = params.get("id") if isinstance(params, dict) else None
    if not isinstance(task_id, str) or not task_id:
        raise _invalid_params("params.id must be a task id")
    return task_id


def _history_length(value: object) -> int | None:
    if value is None:
        return None
    try:
        length = int(str(value))
    except ValueError:
        raise _invalid_params(f"historyLength must be a whole number: {value!r}") from None
    return max(0, length)


class Assistant:
    """The tasks of one assistant agent and the handlers of both bindings."""

    def __init__(self, agent_id: str, state: AssistantState) -> None:
        self.id = agent_id
        self.state = state
        self.tasks: OrderedDict[str, TaskRecord] = OrderedDict()
        self.slots = Slots(state.concurrency_limit)

    # -- tasks, binding-free -------------------------------------------------------

    def create(self, params: object) -> tuple[TaskRecord, bool]:
        """A new task for ``params.message``, not started yet; and whether not to wait."""
        arrived = time.monotonic()
        message, text, immediate = _message(params)
        if self.state.rng.random() < self.state.behaviour.errors:
            raise A2aError(-32603, 500, "INTERNAL", "INTERNAL_ERROR", "injected")
        if message.get("taskId") is not None:
            return self._resume(message, text, arrived), immediate
        task_id = str(uuid.uuid4())
        context_id = message.get("contextId")
        if not isinstance(context_id, str) or not context_id:
            context_id = str(uuid.uuid4())
        history = [{**message, "contextId": context_id, "taskId": task_id}]
        record = TaskRecord(task_id, context_id, history, text, arrived)
        self._keep(record)
        return record, immediate

    def _resume(self, message: dict[str, Any], text: str, arrived: float) -> TaskRecord:
        """The user's answer to a task at ``input-required``: the task goes on (a2a-sdk's
        multi-turn); any other task id is refused as the SDK refuses it."""
        record = self.tasks.get(str(message["taskId"]))
        if record is None:
            raise _task_not_found()
        if record.state != "input-required":
            raise _invalid_params(f"Task {record.id} is {record.state}: it takes no message")
        record.history.append({**message, "contextId": record.context_id})
        record.text, record.arrived, record.state = text, arrived, "submitted"
        record.started, record.settled = asyncio.Event(), asyncio.Event()
        return record

    def start(self, record: TaskRecord) -> None:
        behaviour = self.state.behaviour
        if len(record.history) > 1:  # it was answered once: it does not ask again
            behaviour = replace(behaviour, input_required=0.0)
        plan = plan_task(behaviour, self.state.rng, self.id, record.text)
        if self.slots.limit is None:
            run = _run(record, plan, record.arrived)
        else:
            run = _run_in_slot(record, plan, self.slots)
        record.runner = asyncio.create_task(run)

    async def send(self, params: object) -> dict[str, Any]:
        """SendMessage: the task once settled, or when asked not to wait, once working (or at
        once, ``submitted``, when it has to queue for a slot)."""
        record, immediate = self.create(params)
        queues = self.slots.limit is not None and (
            self.slots.busy >= self.slots.limit or bool(self.slots.waiters)
        )
        self.start(record)
        if not (immediate and queues):
            await (record.started if immediate else record.settled).wait()
        return record.as_task()

    async def stream(self, record: TaskRecord) -> AsyncIterator[Event]:
        """SendStreamingMessage of a created task: the task, its updates, the settled state.

        The task runs on when the client leaves (as a2a-sdk's tasks do); CancelTask stops it.
        """
        queue: asyncio.Queue[Event] = asyncio.Queue()
        record.listeners.append(queue)
        try:
            yield {"task": record.as_task()}
            self.start(record)
            while True:
                event = await queue.get()
                yield event
                status = event.get("statusUpdate", {}).get("status", {})
                if status.get("state") in _SETTLED_ON_THE_WIRE:
                    return
        finally:
            record.listeners.remove(queue)

    def get(self, task_id: str, history_length: int | None) -> dict[str, Any]:
        record = self.tasks.get(task_id)
        if record is None:
            raise _task_not_found()
        return record.as_task(history_length)

    def cancel(self, task_id: str) -> dict[str, Any]:
        record = self.tasks.get(task_id)
        if record is None:
            raise _task_not_found()
        if record.state in TERMINAL:
            raise _not_cancelable()
        if record.runner is not None:
            record.runner.cancel()
        record.set_state("canceled")
        return record.as_task()

    def _keep(self, record: TaskRecord) -> None:
        self.tasks[record.id] = record
        if len(self.tasks) > MAX_TASKS:
            for old in [t for t in self.tasks.values() if t.state in TERMINAL]:
                del self.tasks[old.id]
                if len(self.tasks) <= MAX_TASKS // 2:
                    break

    def rate_limited(self) -> Response | None:
        """HTTP 429 with Retry-After while the rate limit is on, else None."""
        wait = self.state.retry_after(time.monotonic())
        if wait is None:
            return None
        body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "rate limited"}}
        return JSONResponse(body, status_code=429, headers={"Retry-After": str(wait)})

    # -- JSON-RPC binding ------------------------------------------------------------

    async def jsonrpc(self, request: Request) -> Response:
        """JSON-RPC 2.0 at ``POST /``: every A2A outcome, errors included, is HTTP 200."""
        rpc_id: object = None
        try:
            try:
                call = json.loads(await request.body())
            except ValueError as exc:
                raise _parse_error(str(exc)) from None
            if not isinstance(call, dict) or call.get("jsonrpc") != "2.0":
                raise _invalid_request("not a JSON-RPC 2.0 request")
            rpc_id, method, params = call.get("id"), call.get("method"), call.get("params")
            if not isinstance(method, str):
                raise _invalid_request("method must be text")
            if not _is_v1(request.headers.get("A2A-Version")):
                raise _version_not_supported(request.headers.get("A2A-Version") or "0.3")
            if method in ("SendMessage", "SendStreamingMessage") and (
                limited := self.rate_limited()
            ):
                return limited
            if method == "SendStreamingMessage":
                return self._rpc_stream(rpc_id, params)
            return _rpc_result(rpc_id, await self._rpc_unary(method, params))
        except A2aError as exc:
            return _rpc_error(rpc_id, exc)

    async def _rpc_unary(self, method: str, params: object) -> dict[str, Any]:
        if method == "SendMessage":
            return {"task": await self.send(params)}
        if method == "GetTask":
            length = params.get("historyLength") if isinstance(params, dict) else None
            return self.get(_task_id(params), _history_length(length))
        if method == "CancelTask":
            return self.cancel(_task_id(params))
        raise A2aError(-32601, 404, "NOT_FOUND", "METHOD_NOT_FOUND", "Method not found")

    def _rpc_stream(self, rpc_id: object, params: object) -> Response:
        record, _ = self.create(params)  # errors before the stream starts: one JSON reply
        events = self.stream(record)

        def wrap(event: Event) -> dict[str, Any]:
            return {"jsonrpc": "2.0", "id": rpc_id, "result": event}

        return _sse(events, wrap)

    # -- HTTP+JSON binding -----------------------------------------------------------

    async def rest_send(self, request: Request) -> Response:
        try:
            params = await self._rest_params(request)
            if limited := self.rate_limited():
                return limited
            return _rest_result({"task": await self.send(params)})
        except A2aError as exc:
            return _rest_error(exc)

    async def rest_stream(self, request: Request) -> Response:
        try:
            params = await self._rest_params(request)
            if limited := self.rate_limited():
                return limited
            record, _ = self.create(params)  # a bad message is an HTTP 400, not a broken stream
            return _sse(self.stream(record), lambda event: event)
        except A2aError as exc:
            return _rest_error(exc)

    async def rest_get(self, request: Request) -> Response:
        try:
            _check_version(request)
            length = _history_length(request.query_params.get("historyLength"))
            return _rest_result(self.get(request.path_params["id"], length))
        except A2aError as exc:
            return _rest_error(exc)

    async def rest_cancel(self, request: Request) -> Response:
        try:
            _check_version(request)
            return _rest_result(self.cancel(request.path_params["id"]))
        except A2aError as exc:
            return _rest_error(exc)

    async def _rest_params(self, request: Request) -> object:
        _check_version(request)
        try:
            return json.loads(await request.body())
        except ValueError as exc:
            raise _parse_error(f"Failed to load JSON: {exc}") from None

    # -- card, faults ----------------------------------------------------------------

    async def card(self, request: Request) -> Response:
        await asyncio.sleep(self.state.behaviour.latency.sample(self.state.card_rng))
        return JSONResponse(card(self.id, str(request.base_url).rstrip("/")))

    async def get_load(self, request: Request) -> Response:
        return JSONResponse({"agent": self.id, **self.slots.as_json()})

    async def get_fault(self, request: Request) -> Response:
        return JSONResponse(self.state.as_json(self.id, time.monotonic()))

    async def set_fault(self, request: Request) -> Response:
        try:
            change = json.loads(await request.body())
            if not isinstance(change, dict):
                raise ValueError("expected a JSON object")
            apply_fault(self.state, change, time.monotonic())
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if change.get("concurrency_limit") is not None:
            self.slots.set_limit(self.state.concurrency_limit)
        return JSONResponse(self.state.as_json(self.id, time.monotonic()))

    def guarded(self, handler: Handler) -> Handler:
        """``handler``, except that a downed agent answers 503 at once."""

        async def guarded_handler(request: Request) -> Response:
            if self.state.down:
                return JSONResponse({"error": "down"}, status_code=503)
            return await handler(request)

        return guarded_handler


def _check_version(request: Request) -> None:
    if not _is_v1(request.headers.get("A2A-Version")):
        raise _version_not_supported(request.headers.get("A2A-Version") or "0.3")


def _sse(events: AsyncIterator[Event], wrap: Callable[[Event], dict[str, Any]]) -> Response:
    async def body() -> AsyncIterator[bytes]:
        async for event in events:
            yield b"data: " + json.dumps(wrap(event)).encode() + b"\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


def _rpc_result(rpc_id: object, result: dict[str, Any]) -> Response:
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "result": result})


def _rpc_error(rpc_id: object, exc: A2aError) -> Response:
    error = {"code": exc.code, "message": exc.message, "data": exc.details()}
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "error": error})


def _rest_result(body: dict[str, Any]) -> Response:
    return JSONResponse(body, media_type=REST_MEDIA_TYPE)


def _rest_error(exc: A2aError) -> Response:
    error = {"code": exc.http_status, "status": exc.status, "message": exc.message}
    error["details"] = exc.details()
    return JSONResponse({"error": error}, status_code=exc.http_status)


def card(agent_id: str, base_url: str) -> dict[str, Any]:
    """An A2A 1.0 AgentCard offering JSON-RPC and HTTP+JSON, streaming."""
    interfaces = [
        {"url": base_url, "protocolBinding": binding, "protocolVersion": "1.0"}
        for binding in ("JSONRPC", "HTTP+JSON")
    ]
    return {
        "name": agent_id,
        "description": f"latcli demo assistant {agent_id}: an LLM-like A2A 1.0 agent",
        "supportedInterfaces": interfaces,
        "version": "1.0.0",
        "capabilities": {"streaming": True, "pushNotifications": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {
                "id": "answer",
                "name": "Answer",
                "description": "Thinks, then streams an answer token by token.",
                "tags": ["demo", "llm"],
                "examples": ["summarise the fleet's latency"],
            }
        ],
    }


def make_app(
    agent_id: str, fault: Mapping[str, Any] | None = None, seed: int | None = None
) -> Starlette:
    """The assistant's ASGI app; ``fault`` is its starting behaviour (the /admin/fault keys).

    Raises ValueError on a bad ``fault``.
    """
    state = AssistantState(Behaviour(), random.Random(seed), card_rng=random.Random(seed))
    apply_fault(state, fault or {}, time.monotonic())
    agent = Assistant(agent_id, state)
    g = agent.guarded
    routes = [Route(path, g(agent.card), methods=["GET"]) for path in CARD_PATHS]
    routes += [
        Route("/", g(agent.jsonrpc), methods=["POST"]),
        Route("/message:send", g(agent.rest_send), methods=["POST"]),
        Route("/message:stream", g(agent.rest_stream), methods=["POST"]),
        Route("/tasks/{id}:cancel", g(agent.rest_cancel), methods=["POST"]),
        Route("/tasks/{id}", g(agent.rest_get), methods=["GET"]),
        Route("/admin/fault", agent.get_fault, methods=["GET"]),
        Route("/admin/fault", agent.set_fault, methods=["POST"]),
        Route("/admin/load", agent.get_load, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def starting_fault(demo: DemoConfig) -> dict[str, Any]:
    """An inventory ``demo:`` section as the assistant's starting /admin/fault change."""
    fault: dict[str, Any] = {
        "ttft": demo.ttft,
        "tokens_per_s": demo.tokens_per_s,
        "chunk_tokens": demo.chunk_tokens,
        "answer_tokens": demo.answer_tokens,
        "fail_tasks": demo.fail_tasks,
        "input_required": demo.input_required,
        "errors": demo.errors,
        "latency": demo.latency,
    }
    if demo.rate_limited > 0:
        fault["rate_limited"] = demo.rate_limited
    if demo.concurrency_limit is not None:
        fault["concurrency_limit"] = demo.concurrency_limit
    return fault


def command(
    agent_id: str, host: str, port: int, demo: DemoConfig, seed: int | None, parent: int
) -> list[str]:
    """The command line the fleet launcher runs for one assistant; ``seed`` wins over
    ``demo.seed``."""
    import sys

    fault = json.dumps(starting_fault(demo))
    cmd = [sys.executable, "-m", "latcli.demo.assistant", "--id", agent_id]
    cmd += ["--host", host, "--port", str(port), "--fault", fault, "--parent-pid", str(parent)]
    seed = demo.seed if seed is None else seed
    if seed is not None:
        cmd += ["--seed", str(seed)]
    return cmd


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m latcli.demo.assistant", description=__doc__)
    p.add_argument("--id", required=True, help="agent id, used in answers and the card")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--fault",
        type=json.loads,
        default={},
        help='starting behaviour as JSON, the /admin/fault keys: {"ttft": "lognormal 400ms 0.5"}',
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--parent-pid", type=int, default=None, help="exit when this process dies")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve one assistant until SIGTERM/SIGINT. Logs only warnings; nothing per request."""
    import uvicorn

    from latcli.demo.agent import _exit_with_parent  # the fleet's children all die with it

    args = _parse_args(argv)
    try:
        app = make_app(args.id, args.fault, args.seed)
    except ValueError as exc:
        raise SystemExit(f"latcli.demo.assistant: bad --fault: {exc}") from None
    if args.parent_pid is not None:
        _exit_with_parent(args.parent_pid)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
