"""The engine behind ``latcli serve``: an HTTP gateway over the Router (starlette + uvicorn).

The gateway runs a :class:`~latcli.engines.watch.loop.Watch` in the background, so routed
messages use the very router whose EWMA, windows and breakers the health checks feed, and
``GET /agents`` answers with the latest tick in watch's JSON. Endpoints:

* ``POST /route/{type}`` ``{"message": TEXT}`` → 200 ``{"agent","reply","latency_ms",
  "attempts"}``; 400 bad body (or JSON nested too deep, or a type name over 256 bytes),
  404 unknown type, 413 body over 1 MiB, 503 no replica answered, 503 ``overloaded`` with
  ``Retry-After`` past ``--max-in-flight``. ``POST /route/{type}/message/send`` is the same
  route spelled as a plain http agent's message endpoint, so ``http://gw/route/weather`` is
  itself an agent (``latcli bench URL --endpoint message``, an inventory entry). With
  ``Accept: text/event-stream`` the answer is relayed as SSE as it arrives: the event
  vocabulary is :mod:`latcli.engines.serve.stream`'s.
* ``GET /agents`` the latest watch tick (``latcli.watch/v1``; agents not checked yet are
  ``unknown``), ``GET /metrics`` Prometheus, ``GET /health`` ``{"status": "ok"}``.

Every error is JSON ``{"error": {"kind": KIND, "message": TEXT}, ...}``, never a trace.
KIND is ``bad_request``, ``unauthorized``, ``not_found``, ``method_not_allowed``,
``too_large``, ``timeout`` (the request was not received in time), ``overloaded`` (shed),
``unavailable`` (shutting down), ``internal``, or the last attempt's error kind when no
replica answered. With ``LATCLI_SERVE_TOKEN`` set, every endpoint but ``/health`` wants
``Authorization: Bearer TOKEN``. The socket-level limits are :mod:`latcli.engines.serve.limits`'.

SIGTERM or SIGINT stops accepting, lets in-flight requests finish (at most ``drain``
seconds; past it they are answered 503 and counted), stops the checks and saves the
routing state. The health checks run under a supervisor: if they die they are restarted.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from latcli.engines.serve.access_log import logged
from latcli.engines.serve.gateway import Gateway
from latcli.engines.serve.limits import CLIENT_GONE, CUT, MAX_TYPE_BYTES, RETRY_AFTER, TASK
from latcli.engines.serve.request import BadRequest, parse_message, read_body
from latcli.engines.serve.stream import SSEOut, failure_frame, relay, wants_stream
from latcli.engines.serve.tasks import printable
from latcli.routing.results import RouteResult

Handler = Callable[[Request], Awaitable[Response]]


def make_app(gateway: Gateway, access_log: Callable[[str], None] | None = None) -> ASGIApp:
    """The gateway's ASGI app over ``gateway``; no lifecycle of its own (see :func:`run_serve`).

    ``POST /route/{type}`` is the hot path and is served in plain ASGI: starlette's middleware,
    route matching, Request and JSONResponse cost ~0.2 ms a call, a fifth of the gateway's CPU
    per routed request. Everything else (and the 405 for a GET on a route) is starlette's.
    ``access_log``, when given, is handed one line per request (:func:`access_line`).
    """
    site = _starlette_app(gateway)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if not (scope["path"] == "/health" or gateway.authorized(scope)):
            await _send_json(send, 401, _unauthorized(), [(b"www-authenticate", b"Bearer")])
            return
        if scope["method"] == "POST":
            type_ = _route_type(scope["path"])
            if type_ is not None:
                await _route(gateway, type_, scope, receive, send)
                return
        await site(scope, receive, send)

    return app if access_log is None else logged(app, access_log)


def _unauthorized() -> dict[str, Any]:
    message = "missing or wrong bearer token (Authorization: Bearer $LATCLI_SERVE_TOKEN)"
    return {"error": {"kind": "unauthorized", "message": message}}


def _starlette_app(gateway: Gateway) -> Starlette:
    async def not_here(request: Request) -> Response:  # POSTs never get here (see make_app)
        raise HTTPException(405)

    async def agents(request: Request) -> Response:
        return JSONResponse(gateway.agents_json())

    async def metrics(request: Request) -> Response:
        return Response(gateway.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/route/{type}", not_here, methods=["POST"]),
        Route("/route/{type}/message/send", not_here, methods=["POST"]),
        Route("/agents", _guarded(agents), methods=["GET"]),
        Route("/metrics", _guarded(metrics), methods=["GET"]),
        Route("/health", _guarded(health), methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


def _route_type(path: str) -> str | None:
    """TYPE of ``/route/TYPE`` or ``/route/TYPE/message/send`` (the bench-able alias)."""
    if not path.startswith("/route/"):
        return None
    rest = path[7:]
    if rest.endswith("/message/send"):
        rest = rest[:-13]
    return rest if rest and "/" not in rest else None


async def _route(gateway: Gateway, type_: str, scope: Scope, receive: Receive, send: Send) -> None:
    """One routed message: 200 with the reply, 503 when no replica answered, 4xx refusals;
    with ``Accept: text/event-stream``, past the refusals, the answer as SSE (serve_stream)."""
    extra: list[tuple[bytes, bytes]] = []
    scope[TASK] = asyncio.current_task()  # the protocol cancels it if the client hangs up
    sse = None
    if wants_stream(scope):
        sse = SSEOut(send, scope.get(CUT), gateway.limits.max_stream_queue)
    try:
        status, body = await _answer(gateway, type_, scope, receive, sse)
        if sse is not None and sse.started:
            return  # the stream ended itself
    except BadRequest as exc:
        status, body = exc.status, {"error": {"kind": exc.kind, "message": str(exc)}}
        if exc.kind == "overloaded":
            extra = [(b"retry-after", b"%d" % RETRY_AFTER)]
    except ClientDisconnect:
        gateway.metrics.cut.labels("client_disconnect").inc()
        return  # nobody to answer; the routed call, if any, was cancelled
    except asyncio.CancelledError:
        if scope.get(CLIENT_GONE):
            slow = sse is not None and sse.overflowed
            gateway.metrics.cut.labels("slow_client" if slow else "client_disconnect").inc()
            return  # cancelled by the protocol (serve_limits): nobody to answer
        # uvicorn cancels what is left when the drain runs out: answer, do not re-raise (a
        # re-raise becomes uvicorn's plain-text 500 and a traceback in the log).
        gateway.cut_by_drain += 1
        gateway.metrics.cut.labels("drain").inc()
        if sse is not None and sse.started:
            await sse.end(failure_frame("unavailable", _DRAINED))
            return
        status, body = 503, {"error": {"kind": "unavailable", "message": _DRAINED}}
        extra = [(b"connection", b"close")]
    except Exception as exc:  # the one place nothing gets past: one line, a JSON 500
        where = printable(f"POST {scope['path'][:200]}")
        print(
            f"latcli serve: {where}: {type(exc).__name__}: {printable(str(exc))}", file=sys.stderr
        )
        if sse is not None and sse.started:
            await sse.end(failure_frame("internal", "internal error"))
            return
        status, body = 500, {"error": {"kind": "internal", "message": "internal error"}}
    await _send_json(send, status, body, extra)


_DRAINED = "the gateway is shutting down and its drain time ran out before an answer"


async def _answer(
    gateway: Gateway, type_: str, scope: Scope, receive: Receive, sse: SSEOut | None = None
) -> tuple[int, dict[str, Any]]:
    """The checks in order of cost, then the routed call (relayed through ``sse`` when given:
    the body returned is then empty); refusals raise BadRequest."""
    if len(type_.encode()) > MAX_TYPE_BYTES:
        raise BadRequest(400, f"type name over {MAX_TYPE_BYTES} bytes")
    if type_ not in gateway.types:
        message = f"unknown type {type_!r}"
        error = {"kind": "not_found", "message": message}
        return 404, {"error": error, "types": sorted(gateway.types)}
    if gateway.in_flight >= gateway.limits.max_in_flight:
        gateway.metrics.shed.labels("max_in_flight").inc()
        limit = gateway.limits.max_in_flight
        raise BadRequest(503, f"{limit} requests in flight (--max-in-flight)", "overloaded")
    # The slot is taken before the body is read: slow bodies count against the limit too.
    gateway.in_flight += 1
    gateway.metrics.in_flight.inc()
    try:
        text = parse_message(await read_body(scope, receive))
        if sse is None:
            status, body, agent = await _routed(gateway, type_, text)
        else:
            status, agent = await relay(gateway, type_, text, sse)
            body = {}
    finally:
        gateway.in_flight -= 1
        gateway.metrics.in_flight.dec()
    scope["latcli.agent"] = agent  # for the access log
    return status, body


async def _routed(
    gateway: Gateway, type_: str, text: str
) -> tuple[int, dict[str, Any], str | None]:
    started = time.perf_counter()
    result = await gateway.router.send(type_, text)
    code = 200 if result.ok else 503
    gateway.metrics.observe(type_, code, time.perf_counter() - started)
    gateway.metrics.attempted(type_, result)
    return code, _route_body(result), result.agent


async def _send_json(
    send: Send,
    status: int,
    body: Mapping[str, Any],
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    data = msgspec.json.encode(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _route_body(result: RouteResult) -> dict[str, Any]:
    attempts = [
        {
            "agent": a.agent,
            "outcome": a.outcome,
            "status": a.status,
            "latency_ms": round(a.latency_ms, 3),
        }
        for a in result.attempts
    ]
    if not result.ok:
        kind = result.attempts[-1].outcome if result.attempts else "breaker_open"
        message = result.error or "no replica answered"
        return {"error": {"kind": kind, "message": message}, "attempts": attempts}
    return {
        "agent": result.agent,
        "reply": result.reply,
        "latency_ms": round(result.latency_ms, 3),
        "attempts": attempts,
    }


def _error(status: int, kind: str, reason: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"kind": kind, "message": reason}, **extra}, status_code=status)


_KINDS = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no such path) and 405 (wrong method), as JSON."""
    assert isinstance(exc, HTTPException)
    reason = {404: f"no such endpoint: {request.url.path}"}.get(exc.status_code, exc.detail)
    kind = _KINDS.get(exc.status_code, "bad_request")
    body = {"error": {"kind": kind, "message": reason}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _guarded(handler: Handler) -> Handler:
    """Refusals become their JSON answer; anything unexpected a 500 and one line on stderr.

    Starlette's ServerErrorMiddleware would re-raise for the server to log a traceback; the
    gateway's callers get ``{"error": {"kind": "internal", ...}}`` and the operator one line.
    """

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except BadRequest as exc:
            return _error(exc.status, exc.kind, str(exc))
        except ClientDisconnect:
            return _error(400, "bad_request", "client disconnected")
        except Exception as exc:  # the one place nothing gets past
            where = printable(f"{request.method} {request.url.path[:200]}")
            print(
                f"latcli serve: {where}: {type(exc).__name__}: {printable(str(exc))}",
                file=sys.stderr,
            )
            return _error(500, "internal", "internal error")

    return guarded


__all__ = ["make_app"]
