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
import contextlib
import hmac
import ipaddress
import logging
import math
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latcli.config.model import Agent, Inventory
from latcli.core.errors import ExitCode, LatcliError
from latcli.engines import gctune
from latcli.engines.serve.limits import (
    CLIENT_GONE,
    MAX_TYPE_BYTES,
    RETRY_AFTER,
    TASK,
    LimitHit,
    Limits,
    protocol_class,
)
from latcli.engines.serve.stream import SSEOut, failure_frame, relay, wants_stream
from latcli.engines.serve.tasks import printable, supervise
from latcli.engines.watch.loop import Watch, tick_interval
from latcli.engines.watch.metrics import WatchMetrics
from latcli.reports.watch import WatchSnapshot
from latcli.reports.watch_json import watch_dict
from latcli.routing.router import Router, RouteResult
from latcli.transport.base import Transport
from latcli.transport.factory import Engine
from latcli.transport.protocols import loads

MAX_BODY = 1 << 20  # 1 MiB of request body; the agents' own reply cap is the same
# Connections to one agent. A bulkhead, not a throttle: by Little's law 500 req/s at 20 ms
# keep 10 busy, and a tail of 200 ms 100; the CLI commands' 8 would queue the gateway's calls.
AGENT_CONNECTIONS = 256
DRAIN = 10.0  # seconds in-flight requests get to finish after SIGTERM
# Routed calls on loopback take 1-100 ms, across a WAN up to seconds; timeouts are 2-5 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# An LLM's first token comes in 0.1-2 s, its answer in up to a minute.
STREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Outcomes whose series exist before the first one: alerts rate() them (deploy/prometheus).
ZERO_OUTCOMES = ("ok", "task_failed", "rate_limited")
LABELS = ("agent", "type")  # latcli.engines.watch.metrics' order
CANCEL_WAIT = 1.0  # seconds a shutdown waits for the A2A cancels of abandoned streams
Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """A request the gateway refuses: ``status``, an error ``kind`` and a one-line reason."""

    def __init__(self, status: int, reason: str, kind: str = "bad_request") -> None:
        super().__init__(reason)
        self.status = status
        self.kind = kind


# ---- state the endpoints share -----------------------------------------------------------------


class GatewayMetrics:
    """Watch's metric families plus the gateway's own, in one registry."""

    def __init__(
        self, watch_metrics: WatchMetrics | None = None, agents: Iterable[Agent] = ()
    ) -> None:
        self.watch = watch_metrics or WatchMetrics()
        r = self.watch.registry
        self.requests = Counter(
            "latcli_gateway_requests",
            "Routed requests by type and HTTP status answered.",
            ("type", "code"),
            registry=r,
        )
        self.latency = Histogram(
            "latcli_gateway_request_duration_seconds",
            "Time to answer a routed request, failovers included.",
            ("type",),
            buckets=BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "latcli_gateway_in_flight",
            "Routed requests being answered (their body read, or their call under way).",
            registry=r,
        )
        self.shed = Counter(
            "latcli_gateway_shed",
            "Requests and connections shed with 503 overloaded, by the limit that shed them.",
            ("limit",),
            registry=r,
        )
        self.refused = Counter(
            "latcli_gateway_refused",
            "Requests refused before routing: head too large, not received in time, malformed.",
            ("limit",),
            registry=r,
        )
        self.cut = Counter(
            "latcli_gateway_cut",
            "Routed calls cancelled: the client disconnected, or the drain ran out.",
            ("reason",),
            registry=r,
        )
        self.task_cancels = Counter(
            "latcli_gateway_task_cancels",
            "A2A tasks of abandoned streams (client gone, stream broken) cancelled, by outcome.",
            ("outcome",),
            registry=r,
        )
        self.restarts = Counter(
            "latcli_gateway_task_restarts",
            "Background tasks (the health checks) restarted after they died.",
            ("task",),
            registry=r,
        )
        self.attempts = Counter(
            "latcli_gateway_attempts",
            "Attempts of routed requests by agent and outcome (ok or an error kind: task_failed, "
            "rate_limited, timeout, ...); a request failed over makes several.",
            (*LABELS, "outcome"),
            registry=r,
        )
        self.first_artifact = Histogram(
            "latcli_gateway_stream_first_artifact_seconds",
            "Streamed routes: time to first token, from the request sent to the agent that "
            "answered to its first answer text (a unary answer: its whole reply).",
            LABELS,
            buckets=STREAM_BUCKETS,
            registry=r,
        )
        self.stream_total = Histogram(
            "latcli_gateway_stream_total_seconds",
            "Streamed routes: from the request sent to the agent that answered to its last event.",
            LABELS,
            buckets=STREAM_BUCKETS,
            registry=r,
        )
        # Zero series from the start: an alert on rate(shed) needs the series before the first shed.
        for limit in ("max_in_flight", "max_connections"):
            self.shed.labels(limit)
        for agent in agents:
            for outcome in ZERO_OUTCOMES:
                self.attempts.labels(agent.id, agent.type, outcome)
        self._counts: dict[tuple[str, int], Counter] = {}
        self._timings: dict[str, Histogram] = {}
        self._outcomes: dict[tuple[str, str, str], Counter] = {}
        self._phases: dict[tuple[str, str], tuple[Histogram, Histogram]] = {}

    def observe(self, type_: str, code: int, seconds: float) -> None:
        # The labelled children, looked up once: labels() takes a lock and builds a key each call.
        count = self._counts.get((type_, code))
        if count is None:
            count = self._counts[type_, code] = self.requests.labels(type_, str(code))
        timing = self._timings.get(type_)
        if timing is None:
            timing = self._timings[type_] = self.latency.labels(type_)
        count.inc()
        timing.observe(seconds)

    def attempted(self, type_: str, result: RouteResult) -> None:
        """One count per attempt of a routed request, by its agent and outcome."""
        for a in result.attempts:
            key = (a.agent, type_, a.outcome)
            count = self._outcomes.get(key)
            if count is None:
                count = self._outcomes[key] = self.attempts.labels(*key)
            count.inc()

    def streamed(self, type_: str, result: RouteResult, seconds: float) -> None:
        """A streamed route's count and time, its attempts, and the answering agent's phases."""
        self.observe(type_, 200 if result.ok else 503, seconds)
        self.attempted(type_, result)
        if not result.ok or result.agent is None or not result.attempts:
            return
        phases = result.stream
        whole = result.attempts[-1].latency_ms  # the answer's own attempt
        first = whole if phases is None else phases.first_artifact_ms
        total = whole if phases is None or phases.total_ms is None else phases.total_ms
        key = (result.agent, type_)
        pair = self._phases.get(key)
        if pair is None:
            pair = self._phases[key] = (
                self.first_artifact.labels(*key),
                self.stream_total.labels(*key),
            )
        if first is not None:
            pair[0].observe(first / 1000.0)
        pair[1].observe(total / 1000.0)

    def limit_hit(self, name: str) -> None:
        """One count per refusal of the protocol (:mod:`latcli.engines.serve.limits`)."""
        if name == "max_connections":
            self.shed.labels(name).inc()
        else:
            self.refused.labels(name).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.watch.registry)


@dataclass
class Gateway:
    """What the endpoints read and count: the router, the latest watch tick, the limits."""

    router: Router
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    limits: Limits = field(default_factory=Limits)
    token: str | None = None  # a client must send ``Authorization: Bearer TOKEN``
    latest: WatchSnapshot | None = None
    peek: Callable[[], WatchSnapshot] | None = None  # the watch's snapshot before its first tick
    in_flight: int = 0  # routed requests being answered (the --max-in-flight count)
    cut_by_drain: int = 0
    cancels: set[asyncio.Task[Any]] = field(default_factory=set)  # A2A cancels under way

    def __post_init__(self) -> None:
        self.types = frozenset(self.router.types)
        self._bearer = None if self.token is None else b"Bearer " + self.token.encode()

    def cancel_task(self, agent_id: str, task_id: str) -> None:
        """Cancel an abandoned stream's A2A task in the background (its answer nobody reads)."""
        agent = self.router.replica(agent_id).agent
        task = asyncio.ensure_future(self.router.client.cancel_task(agent, task_id))
        self.cancels.add(task)
        task.add_done_callback(self._cancelled)

    def _cancelled(self, task: asyncio.Task[Any]) -> None:
        self.cancels.discard(task)
        if not task.cancelled() and task.exception() is None:
            outcome = "ok" if task.result().ok else "failed"
        else:
            outcome = "failed"
        self.metrics.task_cancels.labels(outcome).inc()

    async def settle_cancels(self, most: float = CANCEL_WAIT) -> None:
        """Let the cancels under way reach their agents before the transport closes."""
        if self.cancels:
            await asyncio.wait(set(self.cancels), timeout=most)

    def sink(self, snapshot: WatchSnapshot) -> None:
        """Watch's sink: keep the tick for ``GET /agents`` and update the gauges."""
        self.latest = snapshot
        self.metrics.watch.update(snapshot)

    def authorized(self, scope: Scope) -> bool:
        """No token asked, or the request carries it (compared in constant time)."""
        if self._bearer is None:
            return True
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self._bearer)
        return False

    def agents_json(self) -> dict[str, Any]:
        """``GET /agents``: the latest tick (before the first, the agents as they stand); an
        agent not yet checked is ``unknown``, not ``down`` (that would be a guess)."""
        snapshot = self.latest or (self.peek() if self.peek is not None else None)
        if snapshot is None:
            return {"schema": "latcli.watch/v1", "agents": [], "picks": {}, "events": []}
        doc = watch_dict(snapshot)
        for row in doc["agents"]:
            if not row["checks"]:
                row["state"] = "unknown"
        return doc


# ---- the app -----------------------------------------------------------------------------------


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

    return app if access_log is None else _logged(app, access_log)


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
    sse = SSEOut(send) if wants_stream(scope) else None
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
            gateway.metrics.cut.labels("client_disconnect").inc()
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
        text = _message(await _body(scope, receive))
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


async def _body(scope: Scope, receive: Receive) -> bytes:
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


def _message(raw: bytes) -> str:
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


# ---- the access log (--access-log) -------------------------------------------------------------

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


def _logged(app: ASGIApp, write: Callable[[str], None]) -> ASGIApp:
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


# ---- one gateway run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeOptions:
    """What ``latcli serve`` was asked; None leaves the inventory's choice."""

    host: str = "127.0.0.1"
    port: int = 8000
    interval: float | None = None
    strategy: str | None = None
    drain: float = DRAIN
    engine: Engine = "raw"
    state: Path | None = None
    no_state: bool = False
    verify: bool | str = True  # TLS to the agents: default trust store, a CA file, or off
    limits: Limits = field(default_factory=Limits)
    token: str | None = None  # LATCLI_SERVE_TOKEN
    no_auth: bool = False  # serve beyond loopback without a token, knowingly
    access_log: bool = False


def client_token(opts: ServeOptions, warn: Callable[[str], None]) -> str | None:
    """The token clients must send, or None; LatcliError when the gateway must not start.

    Bound beyond loopback, a gateway without a token lets anyone on the network spend the
    agents' credentials: it needs ``LATCLI_SERVE_TOKEN`` or an explicit ``--no-auth``.
    """
    if opts.no_auth:
        if opts.token:
            warn("latcli serve: --no-auth: LATCLI_SERVE_TOKEN is set but not checked")
        return None
    if opts.token:
        return opts.token
    if is_loopback(opts.host) is False:
        raise LatcliError(
            f"--host {opts.host} is reachable beyond this machine and no client token is set: "
            "set LATCLI_SERVE_TOKEN (clients send Authorization: Bearer TOKEN) or pass --no-auth"
        )
    return None


def is_loopback(host: str) -> bool | None:
    """Every address ``host`` names is a loopback one (``localhost``, 127.0.0.0/8, ::1);
    None when it names none (bind() will say what is wrong with it)."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return None
    addresses = {str(info[4][0]) for info in found}
    return all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


class _Server(uvicorn.Server):
    """uvicorn, minus re-raising the signal after its graceful shutdown.

    uvicorn re-raises a captured SIGTERM once it has drained, which would end the process by
    the signal before the state is saved. Here the signal only starts the shutdown and is
    remembered, so :func:`run_serve` can finish its own clean-up and choose the exit code.
    """

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_started = on_started
        self.stopped_by: int | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self.on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        handled = (signal.SIGINT, signal.SIGTERM)
        for sig in handled:
            loop.add_signal_handler(sig, self._stop, sig)
        try:
            yield
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    def _stop(self, sig: int) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for in-flight requests
        self.should_exit = True
        if self.stopped_by is None:
            self.stopped_by = sig


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port); LatcliError when it cannot be."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise LatcliError(f"--host {host}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise LatcliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def gateway_transport(engine: Engine = "raw", verify: bool | str = True) -> Transport:
    """The gateway's client to the agents (transport/select.py's choice for "serve");
    AGENT_CONNECTIONS per agent."""
    from latcli.transport.factory import make_transport

    return make_transport(
        engine,
        use="serve",
        max_connections_per_key=AGENT_CONNECTIONS,
        phases=False,
        verify=verify,
    )


async def run_serve(
    inv: Inventory,
    agents: list[Agent],
    opts: ServeOptions,
    warn: Callable[[str], None],
    *,
    transport: Transport | None = None,
) -> ExitCode:
    """Serve until SIGTERM/SIGINT; the state is saved and everything closed after.

    Exit code: 0 after SIGTERM (an orderly stop), 130 after SIGINT (DESIGN §3: interrupted).
    """
    import os

    from latcli.routing.state import open_store

    token = client_token(opts, warn)
    store = open_store(opts.state, enabled=not opts.no_state, env=os.environ, warn=warn)
    own_transport = transport is None
    transport = transport or gateway_transport(opts.engine, opts.verify)
    metrics = GatewayMetrics(agents=agents)
    watch = Watch(
        agents,
        interval=tick_interval(agents, opts.interval),
        strategy=opts.strategy or inv.routing.strategy,
        routing=inv.routing,
        inventory=str(inv.path) if inv.path else "(ad-hoc agents)",
        transport=transport,
        store=store,
        on_check=metrics.watch.observe_check,
        fixed_interval=opts.interval is not None,
        canaries=False,  # the gateway routes; canaries are watch's (one model call per every)
    )
    gateway = Gateway(watch.router, metrics, opts.limits, token, peek=watch.peek)
    sock = bind(opts.host, opts.port)
    tuned: list[tuple[int, int, int]] = []

    def started() -> None:
        warn(f"latcli serve: {url_of(sock)} ({len(agents)} agents, {_types(agents)})")
        # Full collections walk every module object: tens of ms with the loop stopped (gctune).
        tuned.append(gctune.settle())

    server = _Server(_config(gateway, opts, warn), started)
    checks = asyncio.create_task(
        supervise(
            "health checks",
            lambda: watch.run(gateway.sink),
            warn,
            on_restart=metrics.restarts.labels("health_checks").inc,
        )
    )
    try:
        await server.serve(sockets=[sock])
        await _settle(server)
    finally:
        checks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checks
        await gateway.settle_cancels()
        await watch.aclose()
        if own_transport:
            await transport.aclose()
        sock.close()
        if tuned:
            gctune.restore(tuned[0])
    warn(_final_line(server.stopped_by, gateway.cut_by_drain, opts.drain))
    return ExitCode.INTERRUPTED if server.stopped_by == signal.SIGINT else ExitCode.OK


def _types(agents: list[Agent]) -> str:
    n = len({a.type for a in agents})
    return f"{n} type{'' if n == 1 else 's'}"


def _config(gateway: Gateway, opts: ServeOptions, warn: Callable[[str], None]) -> uvicorn.Config:
    """uvicorn with the limited httptools protocol (:mod:`latcli.engines.serve.limits`)."""
    access = warn if opts.access_log else None

    def on_limit(hit: LimitHit) -> None:
        gateway.metrics.limit_hit(hit.limit)
        if access is not None:
            access(refusal_line(hit))

    logging.getLogger("uvicorn.error").addFilter(_drain_line)
    return uvicorn.Config(
        make_app(gateway, access),
        http=protocol_class(opts.limits, on_limit),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=math.ceil(opts.drain),
        server_header=False,
        proxy_headers=False,  # the gateway reads no client address
    )


def _drain_line(record: logging.LogRecord) -> bool:
    """Drop uvicorn's "Cancel N running task(s)" line: the final line counts them instead."""
    return not record.getMessage().startswith("Cancel ")


async def _settle(server: uvicorn.Server, most: float = 2.0) -> None:
    """Let the requests uvicorn cut when the drain ran out send their 503 before the end."""
    tasks = set(server.server_state.tasks)
    if tasks:
        await asyncio.wait(tasks, timeout=most)


def _final_line(stopped_by: int | None, cut: int, drain: float) -> str:
    how = "interrupted" if stopped_by == signal.SIGINT else "stopped"
    if cut:
        calls = f"{cut} call{'' if cut == 1 else 's'}"
        return (
            f"latcli serve: {how}; the {drain:g}s drain ran out: {calls} cut "
            "(answered 503), state saved"
        )
    return f"latcli serve: {how}; in-flight requests drained, state saved"


__all__ = [
    "BadRequest",
    "Gateway",
    "GatewayMetrics",
    "ServeOptions",
    "access_line",
    "bind",
    "client_token",
    "is_loopback",
    "make_app",
    "run_serve",
]
