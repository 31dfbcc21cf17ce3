"""The A2A 1.0 wire of the demo assistant, as a2a-sdk 1.3.0 agents speak it (proto JSON names):
the card, the task states, the errors of both bindings, request readers, JSON-RPC and HTTP+JSON
replies and SSE streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
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
SETTLED_ON_THE_WIRE = frozenset(STATE[s] for s in SETTLED)

Event = dict[str, Any]  # one StreamResponse: {"task"|"statusUpdate"|"artifactUpdate": ...}


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


def parse_error(message: str) -> A2aError:
    return A2aError(-32700, 400, "INVALID_ARGUMENT", "INVALID_REQUEST", message)


def invalid_request(message: str) -> A2aError:
    return A2aError(-32600, 400, "INVALID_ARGUMENT", "INVALID_REQUEST", message)


def invalid_params(message: str) -> A2aError:
    return A2aError(-32602, 400, "INVALID_ARGUMENT", "INVALID_PARAMS", message)


def task_not_found() -> A2aError:
    return A2aError(-32001, 404, "NOT_FOUND", "TASK_NOT_FOUND", "Task not found")


def not_cancelable() -> A2aError:
    return A2aError(
        -32002, 400, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE", "Task cannot be canceled"
    )


def version_not_supported(got: str) -> A2aError:
    text = f"A2A version {got!r} is not supported by this handler. Expected version '1.0'."
    return A2aError(-32009, 400, "FAILED_PRECONDITION", "VERSION_NOT_SUPPORTED", text)


def internal_error(message: str) -> A2aError:
    return A2aError(-32603, 500, "INTERNAL", "INTERNAL_ERROR", message)


def method_not_found() -> A2aError:
    return A2aError(-32601, 404, "NOT_FOUND", "METHOD_NOT_FOUND", "Method not found")


def _is_v1(header: str | None) -> bool:
    """``1.0`` or ``1.0.x``: the patch part is ignored, as a2a-sdk does."""
    return header is not None and header.strip().split(".")[:2] == ["1", "0"]


def read_message(params: object) -> tuple[dict[str, Any], str, bool]:
    """The user message, its text and whether the client asked not to wait (returnImmediately)."""
    message = params.get("message") if isinstance(params, dict) else None
    parts = message.get("parts") if isinstance(message, dict) else None
    if not isinstance(message, dict) or not isinstance(parts, list):
        raise invalid_params("params.message needs a list of parts")
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    if not texts:
        raise invalid_params("params.message needs a text part")
    config = params.get("configuration") if isinstance(params, dict) else None
    immediate = isinstance(config, dict) and config.get("returnImmediately") is True
    return message, "\n".join(texts), immediate


def read_task_id(params: object) -> str:
    task_id = params.get("id") if isinstance(params, dict) else None
    if not isinstance(task_id, str) or not task_id:
        raise invalid_params("params.id must be a task id")
    return task_id


def read_history_length(value: object) -> int | None:
    if value is None:
        return None
    try:
        length = int(str(value))
    except ValueError:
        raise invalid_params(f"historyLength must be a whole number: {value!r}") from None
    return max(0, length)


def check_version(request: Request) -> None:
    if not _is_v1(request.headers.get("A2A-Version")):
        raise version_not_supported(request.headers.get("A2A-Version") or "0.3")


def sse(events: AsyncIterator[Event], wrap: Callable[[Event], dict[str, Any]]) -> Response:
    async def body() -> AsyncIterator[bytes]:
        async for event in events:
            yield b"data: " + json.dumps(wrap(event)).encode() + b"\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


def rpc_result(rpc_id: object, result: dict[str, Any]) -> Response:
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "result": result})


def rpc_error(rpc_id: object, exc: A2aError) -> Response:
    error = {"code": exc.code, "message": exc.message, "data": exc.details()}
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "error": error})


def rest_result(body: dict[str, Any]) -> Response:
    return JSONResponse(body, media_type=REST_MEDIA_TYPE)


def rest_error(exc: A2aError) -> Response:
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
