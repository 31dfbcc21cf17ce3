"""A routed request's body: read up to MAX_BODY, then its ``{"message": TEXT}`` parsed.

Every refusal is a :class:`BadRequest` that says in one line what is wrong.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from latcli.transport.replies import loads

MAX_BODY = 1 << 20  # 1 MiB of request body; the agents' own reply cap is the same


class BadRequest(Exception):
    """A request the gateway refuses: ``status``, an error ``kind`` and a one-line reason."""

    def __init__(self, status: int, reason: str, kind: str = "bad_request") -> None:
        super().__init__(reason)
        self.status = status
        self.kind = kind


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The request body, refused (413) past MAX_BODY whether declared or streamed."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            raise BadRequest(413, f"body over {MAX_BODY} bytes", "too_large")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest(413, f"body over {MAX_BODY} bytes", "too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_message(raw: bytes) -> str:
    """The ``message`` of a ``{"message": TEXT}`` body; BadRequest says what is wrong."""
    if not raw.strip():
        raise BadRequest(400, 'empty body: expected JSON {"message": TEXT}')
    try:
        doc = loads(raw)
    except RecursionError:  # json's fallback on what msgspec refuses as too deep
        raise BadRequest(400, "body is not valid JSON: nested too deep") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise BadRequest(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest(400, f'expected a JSON object {{"message": TEXT}}, got {_kind(doc)}')
    if "message" not in doc:
        raise BadRequest(400, 'missing "message": expected {"message": TEXT}')
    text = doc["message"]
    if not isinstance(text, str):
        raise BadRequest(400, f'"message" must be a string, got {_kind(text)}')
    return text


def _kind(value: object) -> str:
    """JSON's name for a parsed value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


__all__ = ["MAX_BODY", "BadRequest", "parse_message", "read_body"]
