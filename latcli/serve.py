"""The engine behind ``latcli serve``: an HTTP gateway over the Router (starlette + uvicorn).

The gateway runs a :class:`~latcli.watch.Watch` in the background, so routed messages use the
very router whose EWMA, windows and breakers the health checks feed, and ``GET /agents``
answers with the latest tick in watch's JSON. Endpoints:

* ``POST /route/{type}`` ``{"message": TEXT}`` → 200 ``{"agent","reply","latency_ms",
  "attempts"}``; 400 bad body, 404 unknown type, 503 no replica answered; errors are JSON
  ``{"error": REASON, ...}``, never a trace. ``POST /route/{type}/message/send`` is the same
  route spelled as a plain http agent's message endpoint, so ``http://gw/route/weather`` is
  itself an agent (``latcli bench URL --endpoint message``, an inventory entry).
* ``GET /agents`` the latest watch tick (``latcli.watch/v1``), ``GET /metrics`` Prometheus,
  ``GET /health`` ``{"status": "ok"}``.

SIGTERM or SIGINT stops accepting, lets in-flight requests finish (at most ``drain``
seconds), stops the checks and saves the routing state.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
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
from starlette.types import ASGIApp, Receive, Scope, Send

from latcli.errors import ExitCode, LatcliError
from latcli.inventory import Agent, Inventory
from latcli.metrics import WatchMetrics
from latcli.protocols import loads
from latcli.render.watch_json import watch_dict
from latcli.router import Router, RouteResult
from latcli.transport.base import Transport
from latcli.transport.select import Engine
from latcli.watch import Watch, tick_interval
from latcli.watch_model import WatchSnapshot

MAX_BODY = 1 << 20  # 1 MiB of request body; the agents' own reply cap is the same
# Connections to one agent. A bulkhead, not a throttle: by Little's law 500 req/s at 20 ms
# keep 10 busy, and a tail of 200 ms 100; the CLI commands' 8 would queue the gateway's calls.
AGENT_CONNECTIONS = 256
DRAIN = 10.0  # seconds in-flight requests get to finish after SIGTERM
# Routed calls on loopback take 1-100 ms, across a WAN up to seconds; timeouts are 2-5 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """A request the gateway refuses: ``status`` and a one-line reason for the JSON body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


# ---- state the endpoints share -----------------------------------------------------------------


class GatewayMetrics:
    """Watch's metric families plus the gateway's own, in one registry."""

    def __init__(self, watch_metrics: WatchMetrics | None = None) -> None:
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
            "latcli_gateway_in_flight", "Routed requests being answered.", registry=r
        )
        self._counts: dict[tuple[str, int], Counter] = {}
        self._timings: dict[str, Histogram] = {}

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

    def exposition(self) -> bytes:
        return generate_latest(self.watch.registry)


class Gateway:
    """What the endpoints read: the router, the latest watch tick and the metrics."""

    def __init__(self, router: Router, metrics: GatewayMetrics | None = None) -> None:
        self.router = router
        self.metrics = metrics or GatewayMetrics()
        self.types = frozenset(router.types)
        self.latest: WatchSnapshot | None = None

    def sink(self, snapshot: WatchSnapshot) -> None:
        """Watch's sink: keep the tick for ``GET /agents`` and update the gauges."""
        self.latest = snapshot
        self.metrics.watch.update(snapshot)


# ---- the app -----------------------------------------------------------------------------------


def make_app(gateway: Gateway) -> ASGIApp:
    """The gateway's ASGI app over ``gateway``; no lifecycle of its own (see :func:`run_serve`).

    ``POST /route/{type}`` is the hot path and is served in plain ASGI: starlette's middleware,
    route matching, Request and JSONResponse cost ~0.2 ms a call, a fifth of the gateway's CPU
    per routed request. Everything else (and the 405 for a GET on a route) is starlette's.
    """
    site = _starlette_app(gateway)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            type_ = _route_type(scope["path"])
            if type_ is not None:
                await _route(gateway, type_, scope, receive, send)
                return
        await site(scope, receive, send)

    return app


def _starlette_app(gateway: Gateway) -> Starlette:
    async def not_here(request: Request) -> Response:  # POSTs never get here (see make_app)
        raise HTTPException(405)

    async def agents(request: Request) -> Response:
        snapshot = gateway.latest
        if snapshot is None:
            return _error(503, "no health snapshot yet: the first tick is still to come")
        return JSONResponse(watch_dict(snapshot))

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
    """One routed message: 200 with the reply, 503 when no replica answered, 4xx refusals."""
    try:
        if type_ not in gateway.types:
            status, body = 404, {"error": f"unknown type {type_!r}", "types": sorted(gateway.types)}
        else:
            text = _message(await _body(scope, receive))
            status, body = await _routed(gateway, type_, text)
    except BadRequest as exc:
        status, body = exc.status, {"error": str(exc)}
    except ClientDisconnect:
        return  # nobody to answer
    except Exception as exc:  # the one place nothing gets past: one line, a JSON 500
        print(f"latcli serve: POST {scope['path']}: {type(exc).__name__}: {exc}", file=sys.stderr)
        status, body = 500, {"error": "internal error"}
    await _send_json(send, status, body)


async def _routed(gateway: Gateway, type_: str, text: str) -> tuple[int, dict[str, Any]]:
    started = time.perf_counter()
    gateway.metrics.in_flight.inc()
    try:
        result = await gateway.router.send(type_, text)
    finally:
        gateway.metrics.in_flight.dec()
    code = 200 if result.ok else 503
    gateway.metrics.observe(type_, code, time.perf_counter() - started)
    return code, _route_body(result)


async def _body(scope: Scope, receive: Receive) -> bytes:
    """The request body, refused (413) past MAX_BODY whether declared or streamed."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            raise BadRequest(413, f"body over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest(413, f"body over {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, body: Mapping[str, Any]) -> None:
    data = msgspec.json.encode(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
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
        return {"error": result.error or "no replica answered", "attempts": attempts}
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


def _error(status: int, reason: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": reason, **extra}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no such path) and 405 (wrong method), as JSON."""
    assert isinstance(exc, HTTPException)
    reason = {404: f"no such endpoint: {request.url.path}"}.get(exc.status_code, exc.detail)
    return JSONResponse({"error": reason}, status_code=exc.status_code, headers=exc.headers)


def _guarded(handler: Handler) -> Handler:
    """Refusals become their JSON answer; anything unexpected a 500 and one line on stderr.

    Starlette's ServerErrorMiddleware would re-raise for the server to log a traceback; the
    gateway's callers get ``{"error": "internal error"}`` and the operator one line instead.
    """

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except BadRequest as exc:
            return _error(exc.status, str(exc))
        except ClientDisconnect:
            return _error(400, "client disconnected")
        except Exception as exc:  # the one place nothing gets past
            where = f"{request.method} {request.url.path}"
            print(f"latcli serve: {where}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return _error(500, "internal error")

    return guarded


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
    """The gateway's client to the agents; ``raw`` unless asked (``auto`` too).

    Measured CPU per routed call on the 2-core dev box (Router.send to a demo agent): raw
    253 µs, aiohttp 415 µs; adding little to each call is the gateway's point. Whatever the
    engine, AGENT_CONNECTIONS per agent, and aiohttp without phase tracing (only totals are
    used).
    """
    from latcli.transport.select import make_transport

    chosen: Engine = "raw" if engine == "auto" else engine
    return make_transport(
        chosen, max_connections_per_key=AGENT_CONNECTIONS, phases=False, verify=verify
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

    from latcli.state import NullStore, StateStore, default_state_path

    path = opts.state or default_state_path(os.environ)
    store = NullStore() if opts.no_state else StateStore(path, warn=warn)
    own_transport = transport is None
    transport = transport or gateway_transport(opts.engine, opts.verify)
    metrics = GatewayMetrics()
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
    )
    gateway = Gateway(watch.router, metrics)
    sock = bind(opts.host, opts.port)
    config = uvicorn.Config(
        make_app(gateway),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=math.ceil(opts.drain),
        server_header=False,
        proxy_headers=False,  # the gateway reads no client address
    )
    types = len({a.type for a in agents})
    server = _Server(
        config, lambda: warn(f"latcli serve: {url_of(sock)} ({len(agents)} agents, {types} types)")
    )
    checks = asyncio.create_task(watch.run(gateway.sink))
    checks.add_done_callback(lambda _: setattr(server, "should_exit", True))
    try:
        await server.serve(sockets=[sock])
        if checks.done() and not checks.cancelled() and checks.exception() is not None:
            raise checks.exception()  # type: ignore[misc]
    finally:
        checks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checks
        await watch.aclose()
        if own_transport:
            await transport.aclose()
        sock.close()
    if server.stopped_by == signal.SIGINT:
        warn("latcli serve: interrupted; in-flight requests drained, state saved")
        return ExitCode.INTERRUPTED
    warn("latcli serve: stopped; in-flight requests drained, state saved")
    return ExitCode.OK


__all__ = [
    "BadRequest",
    "Gateway",
    "GatewayMetrics",
    "ServeOptions",
    "bind",
    "make_app",
    "run_serve",
]
