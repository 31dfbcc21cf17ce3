"""``latcli serve --access-log``: one line per request on stderr, nginx-like."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latcli.engines.serve.limits import LimitHit
from latcli.engines.serve.tasks import printable

_SHOWN_PATH = 200  # characters of a path an access line shows


def access_line(scope: Scope, status: int, ms: float) -> str:
    """``TIME CLIENT METHOD PATH STATUS MS AGENT``; 499 when the client left unanswered (nginx).

    The path is the one sent (%-encoded), escaped and cut; the query is left out (it may
    carry secrets).
    """
    raw = scope.get("raw_path")  # as sent, still %-encoded: one field, as nginx logs it
    path = raw.decode("latin-1") if raw is not None else scope.get("path", "")
    shown = printable(path[:_SHOWN_PATH])
    if len(path) > _SHOWN_PATH:
        shown += f"…({len(path.encode())} bytes)"
    client = scope.get("client")
    who = f"{client[0]}:{client[1]}" if client else "-"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    agent = scope.get("latcli.agent") or "-"
    return f"{stamp}Z {who} {scope.get('method', '-')} {shown} {status or 499} {ms:.1f}ms {agent}"


def refusal_line(hit: LimitHit) -> str:
    """An access line for what the protocol refused before any app saw it; the limit last."""
    who = f"{hit.client[0]}:{hit.client[1]}" if hit.client else "-"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    return f"{stamp}Z {who} - - {hit.status} - - {hit.limit}"


def logged(app: ASGIApp, write: Callable[[str], None]) -> ASGIApp:
    async def logged(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 0

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, sent)
        finally:
            write(access_line(scope, status, (time.perf_counter() - started) * 1000.0))

    return logged


__all__ = ["access_line", "logged", "refusal_line"]
