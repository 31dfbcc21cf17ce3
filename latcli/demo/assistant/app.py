"""The demo assistant agent: its tasks, the handlers of both A2A bindings (JSON-RPC and
HTTP+JSON), the admin endpoints, and the ASGI app that routes them."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from latcli.demo.agent import Slots
from latcli.demo.assistant.behaviour import AssistantState, Behaviour, apply_fault
from latcli.demo.assistant.schedule import plan_task
from latcli.demo.assistant.tasks import TaskRecord, run_in_slot, run_task
from latcli.demo.assistant.wire import (
    CARD_PATHS,
    SETTLED_ON_THE_WIRE,
    TERMINAL,
    A2aError,
    Event,
    card,
    check_version,
    internal_error,
    invalid_params,
    invalid_request,
    method_not_found,
    not_cancelable,
    parse_error,
    read_history_length,
    read_message,
    read_task_id,
    rest_error,
    rest_result,
    rpc_error,
    rpc_result,
    sse,
    task_not_found,
)

Handler = Callable[[Request], Awaitable[Response]]
MAX_TASKS = 10_000  # tasks kept for GetTask; the oldest settled ones go first


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
        message, text, immediate = read_message(params)
        if self.state.rng.random() < self.state.behaviour.errors:
            raise internal_error("injected")
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
            raise task_not_found()
        if record.state != "input-required":
            raise invalid_params(f"Task {record.id} is {record.state}: it takes no message")
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
            run = run_task(record, plan, record.arrived)
        else:
            run = run_in_slot(record, plan, self.slots)
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
                if status.get("state") in SETTLED_ON_THE_WIRE:
                    return
        finally:
            record.listeners.remove(queue)

    def get(self, task_id: str, history_length: int | None) -> dict[str, Any]:
        record = self.tasks.get(task_id)
        if record is None:
            raise task_not_found()
        return record.as_task(history_length)

    def cancel(self, task_id: str) -> dict[str, Any]:
        record = self.tasks.get(task_id)
        if record is None:
            raise task_not_found()
        if record.state in TERMINAL:
            raise not_cancelable()
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
                raise parse_error(str(exc)) from None
            if not isinstance(call, dict) or call.get("jsonrpc") != "2.0":
                raise invalid_request("not a JSON-RPC 2.0 request")
            rpc_id, method, params = call.get("id"), call.get("method"), call.get("params")
            if not isinstance(method, str):
                raise invalid_request("method must be text")
            check_version(request)
            if method in ("SendMessage", "SendStreamingMessage") and (
                limited := self.rate_limited()
            ):
                return limited
            if method == "SendStreamingMessage":
                return self._rpc_stream(rpc_id, params)
            return rpc_result(rpc_id, await self._rpc_unary(method, params))
        except A2aError as exc:
            return rpc_error(rpc_id, exc)

    async def _rpc_unary(self, method: str, params: object) -> dict[str, Any]:
        if method == "SendMessage":
            return {"task": await self.send(params)}
        if method == "GetTask":
            length = params.get("historyLength") if isinstance(params, dict) else None
            return self.get(read_task_id(params), read_history_length(length))
        if method == "CancelTask":
            return self.cancel(read_task_id(params))
        raise method_not_found()

    def _rpc_stream(self, rpc_id: object, params: object) -> Response:
        record, _ = self.create(params)  # errors before the stream starts: one JSON reply
        events = self.stream(record)

        def wrap(event: Event) -> dict[str, Any]:
            return {"jsonrpc": "2.0", "id": rpc_id, "result": event}

        return sse(events, wrap)

    # -- HTTP+JSON binding -----------------------------------------------------------

    async def rest_send(self, request: Request) -> Response:
        try:
            params = await self._rest_params(request)
            if limited := self.rate_limited():
                return limited
            return rest_result({"task": await self.send(params)})
        except A2aError as exc:
            return rest_error(exc)

    async def rest_stream(self, request: Request) -> Response:
        try:
            params = await self._rest_params(request)
            if limited := self.rate_limited():
                return limited
            record, _ = self.create(params)  # a bad message is an HTTP 400, not a broken stream
            return sse(self.stream(record), lambda event: event)
        except A2aError as exc:
            return rest_error(exc)

    async def rest_get(self, request: Request) -> Response:
        try:
            check_version(request)
            length = read_history_length(request.query_params.get("historyLength"))
            return rest_result(self.get(request.path_params["id"], length))
        except A2aError as exc:
            return rest_error(exc)

    async def rest_cancel(self, request: Request) -> Response:
        try:
            check_version(request)
            return rest_result(self.cancel(request.path_params["id"]))
        except A2aError as exc:
            return rest_error(exc)

    async def _rest_params(self, request: Request) -> object:
        check_version(request)
        try:
            return json.loads(await request.body())
        except ValueError as exc:
            raise parse_error(f"Failed to load JSON: {exc}") from None

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
