"""One demo agent: a small Starlette app speaking the seed's http protocol or A2A 0.3 / 1.0.

Latency and errors are simulated from a :class:`Distribution` and an error
fraction, both switchable at run time through ``POST /admin/fault``.
Run one with ``python -m latcli.demo.agent --id weather-1 --port 8001``.

A fixed concurrency limit (``--concurrency-limit N``, or ``{"concurrency_limit": N}`` on
``/admin/fault``) makes an agent whose capacity is known by construction: at most N messages
are served at once, each taking its latency draw, the rest wait in a FIFO queue, so with a
fixed latency S the agent sustains exactly N / S req/s and beyond that its queue (and latency)
grows without bound, as a saturated server's does. The limit covers the message endpoints
only: health checks and card GETs bypass the queue (as a separate health listener would), so a
router's checks never take a slot from the load under test. ``GET /admin/load`` reports the
messages in service and queued, and since the limit was last set the peak in service, the
messages served and their mean time in a slot (the service time the event loop really gave).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from latcli.core.distribution import Distribution, parse_distribution
from latcli.core.units import parse_percent

A2aVersion = Literal["0.3", "1.0"]
DemoProtocol = Literal["http", "a2a"]
Handler = Callable[[Request], Awaitable[Response]]

# JSON-RPC 2.0 codes, plus A2A 1.0's VersionNotSupportedError (-32009).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
VERSION_NOT_SUPPORTED = -32009

# Health checks are cheap: a tenth of the message latency while the agent runs as simulated.
# A latency fault slows every endpoint, health included, so a user who slows an agent sees it
# slow in watch (which measures health checks).
HEALTH_LATENCY_FACTOR = 0.1
CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")

_ANSWERS = (
    "noted: {text}",
    "on it — {text}",
    "here is what I know about {text!r}",
    "done: {text}",
    "let me check {text!r}… all good",
)


@dataclass
class FaultState:
    """The agent's mutable behaviour; one instance per app, changed by ``/admin/fault``."""

    latency: Distribution
    errors: float
    down: bool = False
    concurrency_limit: int | None = None  # messages served at once; None: no limit
    rate_limit: int | None = None  # messages answer 429 + Retry-After: this many s; None: no
    baseline: Distribution | None = None  # the latency simulated at start (default: latency)

    def __post_init__(self) -> None:
        if self.baseline is None:
            self.baseline = self.latency

    @property
    def health_latency(self) -> Distribution:
        """What a health check (or card GET) takes: a tenth of the baseline, or the fault."""
        if self.latency == self.baseline:
            return self.latency.scaled(HEALTH_LATENCY_FACTOR)
        return self.latency

    def as_json(self, agent_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "agent": agent_id,
            "latency": str(self.latency),
            "health_latency": str(self.health_latency),
            "errors": self.errors,
            "down": self.down,
        }
        if self.concurrency_limit is not None:  # only limited agents show it: the shape stays
            doc["concurrency_limit"] = self.concurrency_limit
        if self.rate_limit is not None:
            doc["rate_limit"] = self.rate_limit
        return doc


@dataclass
class Slots:
    """At most ``limit`` holders at once, the others queued first come, first served.

    Service is timed by deadlines, not by wake-ups: a slot is free again at its holder's
    deadline (start + latency draw), and a queued request starts at that instant even when the
    event loop hands it over a little later. ``asyncio.sleep(0.020)`` takes ~21.5 ms on a busy
    box; timed by wake-ups, N=4 × 20 ms would serve ~185 req/s instead of 200. The lateness
    only delays replies, it never lowers capacity, so the capacity is N / latency exactly.

    Not an ``asyncio.Semaphore``: the limit changes at run time (``/admin/fault``), and the
    load counters are what ``GET /admin/load`` reports. Single event loop, no locks.
    """

    limit: int | None = None
    busy: int = 0
    peak: int = 0  # most holders at once since the limit was last set
    waiters: deque[asyncio.Future[float]] = field(default_factory=deque)
    served: int = 0  # releases since the limit was last set ...
    held_s: float = 0.0  # ... and the seconds their slots were held (start to deadline)

    async def acquire(self) -> float:
        """Wait for a slot; the ``time.monotonic()`` its service starts."""
        if self.waiters or not self._free():
            waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                return await waiter  # handed over already counted (see _wake)
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    start = waiter.result()  # handed over just as we were cancelled: pass it on
                    self.release(start, start, served=False)
                else:
                    self.waiters.remove(waiter)
                raise
        self._take()
        return time.monotonic()

    def release(self, start: float, end: float, *, served: bool = True) -> None:
        """Free a slot held from ``start``; it is free from ``end`` (the holder's deadline)."""
        self.busy -= 1
        if served:
            self.served += 1
            self.held_s += end - start
        self._wake(end)

    def set_limit(self, limit: int | None) -> None:
        self.limit = limit
        self.peak = self.busy
        self.served, self.held_s = 0, 0.0
        self._wake(time.monotonic())

    def _free(self) -> bool:
        return self.limit is None or self.busy < self.limit

    def _take(self) -> None:
        self.busy += 1
        self.peak = max(self.peak, self.busy)

    def _wake(self, at: float) -> None:
        """Hand free slots to the queue; service starts at ``at`` (they waited for it)."""
        while self.waiters and self._free():
            waiter = self.waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(at)

    def as_json(self) -> dict[str, Any]:
        mean = self.held_s / self.served * 1000.0 if self.served else None
        return {
            "concurrency_limit": self.limit,
            "in_service": self.busy,
            "queued": len(self.waiters),
            "peak_in_service": self.peak,
            "served": self.served,
            "mean_service_ms": None if mean is None else round(mean, 3),
        }


def answer(agent_id: str, text: str) -> str:
    """The deterministic reply to ``text``: same agent and text, same reply."""
    template = _ANSWERS[zlib.crc32(text.encode()) % len(_ANSWERS)]
    return f"{agent_id}: " + template.format(text=text)


class _Agent:
    """Request handlers sharing one fault state and one random source."""

    def __init__(
        self,
        agent_id: str,
        a2a_version: A2aVersion,
        state: FaultState,
        rng: random.Random,
    ) -> None:
        self.id = agent_id
        self.a2a_version = a2a_version
        self.state = state
        self.rng = rng
        self.slots = Slots(state.concurrency_limit)

    async def health_delay(self) -> None:
        await asyncio.sleep(self.state.health_latency.sample(self.rng))

    async def serve(self, request: Request) -> bool:
        """Wait for a slot and spend the latency draw in it; False: the client left meanwhile.

        A client that gave up while queued (its own timeout) is not served: its slot goes to
        the next in line, so the backlog of an overloaded step does not outlive its clients.
        """
        start = await self.slots.acquire()
        deadline, served = start, False
        try:
            if self.slots.limit is not None and await request.is_disconnected():
                return False
            deadline, served = start + self.state.latency.sample(self.rng), True
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        finally:
            self.slots.release(start, deadline, served=served)
        return True

    def should_fail(self) -> bool:
        return self.rng.random() < self.state.errors

    # -- the seed's http protocol -------------------------------------------------

    async def health(self, request: Request) -> Response:
        await self.health_delay()
        return JSONResponse({"status": "ok", "agent": self.id})

    async def http_send(self, request: Request) -> Response:
        text = await _message_text(request)
        if text is None:
            return JSONResponse({"error": 'expected JSON {"message": TEXT}'}, status_code=400)
        if not await self.serve(request):
            return _client_gone()
        if self.should_fail():
            return JSONResponse({"error": "injected"}, status_code=500)
        return JSONResponse({"agent": self.id, "reply": answer(self.id, text)})

    # -- A2A ----------------------------------------------------------------------

    async def card(self, request: Request) -> Response:
        await self.health_delay()
        base_url = str(request.base_url).rstrip("/")
        if self.a2a_version == "1.0":
            return JSONResponse(card_v1(self.id, base_url))
        return JSONResponse(card_v03(self.id, base_url))

    async def jsonrpc(self, request: Request) -> Response:
        """JSON-RPC over HTTP: every outcome, errors included, is HTTP 200 (A2A's way)."""
        try:
            call = json.loads(await request.body())
        except ValueError:
            return _rpc_error(None, PARSE_ERROR, "Invalid JSON payload")
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            return _rpc_error(None, INVALID_REQUEST, "Request payload validation error")
        rpc_id = call.get("id")
        expected = "SendMessage" if self.a2a_version == "1.0" else "message/send"
        if call["method"] != expected:
            return _rpc_error(rpc_id, METHOD_NOT_FOUND, f"Method not found: {call['method']}")
        if self.a2a_version == "1.0" and not _is_v1(request.headers.get("A2A-Version")):
            got = request.headers.get("A2A-Version") or "0.3 (no A2A-Version header)"
            return _rpc_error(rpc_id, VERSION_NOT_SUPPORTED, f"A2A version {got} not supported")
        text = _a2a_text(call.get("params"), self.a2a_version)
        if text is None:
            return _rpc_error(rpc_id, INVALID_PARAMS, "params.message needs a text part")
        if not await self.serve(request):
            return _client_gone()
        if self.should_fail():
            return _rpc_error(rpc_id, INTERNAL_ERROR, "injected")
        return _rpc_result(rpc_id, _a2a_reply(answer(self.id, text), self.a2a_version))

    # -- faults -------------------------------------------------------------------

    async def get_fault(self, request: Request) -> Response:
        return JSONResponse(self.state.as_json(self.id))

    async def set_fault(self, request: Request) -> Response:
        try:
            change = json.loads(await request.body())
            if not isinstance(change, dict):
                raise ValueError("expected a JSON object")
            apply_fault(self.state, change)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if "concurrency_limit" in change and change["concurrency_limit"] is not None:
            self.slots.set_limit(self.state.concurrency_limit)
        return JSONResponse(self.state.as_json(self.id))

    async def get_load(self, request: Request) -> Response:
        return JSONResponse({"agent": self.id, **self.slots.as_json()})

    def guarded(self, handler: Handler) -> Handler:
        """``handler``, except that a downed agent answers 503 at once, and a rate-limited
        one answers messages (POST) 429 with ``Retry-After`` at once."""

        async def guarded_handler(request: Request) -> Response:
            if self.state.down:
                return JSONResponse({"error": "down"}, status_code=503)
            if self.state.rate_limit is not None and request.method == "POST":
                after = {"retry-after": str(self.state.rate_limit)}
                return JSONResponse({"error": "rate limited"}, status_code=429, headers=after)
            return await handler(request)

        return guarded_handler


def apply_fault(state: FaultState, change: dict[str, Any]) -> None:
    """Apply ``{"latency", "errors", "down", "concurrency_limit", "rate_limit"}``; a missing or
    null key is left unchanged; ``concurrency_limit`` / ``rate_limit`` 0 lift the limit.

    Validates everything before changing anything. Raises ValueError.
    """
    unknown = set(change) - {"latency", "errors", "down", "concurrency_limit", "rate_limit"}
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}")
    latency, errors, down = change.get("latency"), change.get("errors"), change.get("down")
    limit = change.get("concurrency_limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"concurrency_limit must be a whole number >= 0 (0: none): {limit!r}")
    rate = change.get("rate_limit")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 0):
        raise ValueError(f"rate_limit must be whole seconds >= 0 (0: none): {rate!r}")
    if latency is not None and not isinstance(latency, str):
        raise ValueError(f"latency must be text like '300ms': {latency!r}")
    if errors is not None and (
        isinstance(errors, bool) or not isinstance(errors, str | int | float)
    ):
        raise ValueError(f"errors must be a fraction or text like '20%': {errors!r}")
    if down is not None and not isinstance(down, bool):
        raise ValueError(f"down must be true or false: {down!r}")
    new_latency = state.latency if latency is None else parse_distribution(latency)
    new_errors = state.errors if errors is None else parse_percent(errors)
    state.latency, state.errors = new_latency, new_errors
    if down is not None:
        state.down = down
    if limit is not None:
        state.concurrency_limit = limit or None
    if rate is not None:
        state.rate_limit = rate or None


def card_v1(agent_id: str, base_url: str) -> dict[str, Any]:
    """An A2A 1.0 AgentCard (proto JSON names, as a2a-sdk 1.x serves them)."""
    return {
        "name": agent_id,
        "description": f"latcli demo agent {agent_id} (A2A 1.0)",
        "supportedInterfaces": [
            {"url": base_url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "version": "1.0.0",
        "capabilities": {"streaming": False, "pushNotifications": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [_skill(agent_id)],
    }


def card_v03(agent_id: str, base_url: str) -> dict[str, Any]:
    """An A2A 0.3 AgentCard."""
    return {
        "protocolVersion": "0.3.0",
        "name": agent_id,
        "description": f"latcli demo agent {agent_id} (A2A 0.3)",
        "url": base_url,
        "preferredTransport": "JSONRPC",
        "version": "1.0.0",
        "capabilities": {"streaming": False, "pushNotifications": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [_skill(agent_id)],
    }


def _skill(agent_id: str) -> dict[str, Any]:
    return {
        "id": "answer",
        "name": "Answer",
        "description": "Answers any text message after a simulated delay.",
        "tags": ["demo"],
        "examples": ["what's up?"],
    }


def _is_v1(header: str | None) -> bool:
    """``1.0`` or ``1.0.x``: the patch part is ignored, as a2a-sdk does."""
    return header is not None and header.strip().split(".")[:2] == ["1", "0"]


async def _message_text(request: Request) -> str | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    text = body.get("message") if isinstance(body, dict) else None
    return text if isinstance(text, str) else None


def _a2a_text(params: object, version: A2aVersion) -> str | None:
    """The text of ``params.message``'s text parts, or None when there is none."""
    message = params.get("message") if isinstance(params, dict) else None
    parts = message.get("parts") if isinstance(message, dict) else None
    if not isinstance(parts, list):
        return None
    texts = [
        p["text"]
        for p in parts
        if isinstance(p, dict)
        and isinstance(p.get("text"), str)
        and (version == "1.0" or p.get("kind") == "text")
    ]
    return " ".join(texts) if texts else None


def _a2a_reply(text: str, version: A2aVersion) -> dict[str, Any]:
    """A Message result: 1.0 wraps it in the ``message`` member of SendMessageResponse."""
    message_id = str(uuid.uuid4())
    if version == "1.0":
        return {
            "message": {"role": "ROLE_AGENT", "messageId": message_id, "parts": [{"text": text}]}
        }
    return {
        "kind": "message",
        "role": "agent",
        "messageId": message_id,
        "parts": [{"kind": "text", "text": text}],
    }


def _client_gone() -> Response:
    """The answer to a client that already left (nginx's 499): nobody reads it."""
    return JSONResponse({"error": "client closed the request"}, status_code=499)


def _rpc_result(rpc_id: object, result: dict[str, Any]) -> Response:
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "result": result})


def _rpc_error(rpc_id: object, code: int, message: str) -> Response:
    error = {"code": code, "message": message}
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "error": error})


def make_app(
    agent_id: str,
    protocol: DemoProtocol,
    a2a_version: A2aVersion,
    latency: Distribution,
    errors: float,
    seed: int | None,
    concurrency_limit: int | None = None,
) -> Starlette:
    """The demo agent's ASGI app. ``seed`` makes latency and error draws repeatable;
    ``concurrency_limit`` caps the messages served at once (the rest queue)."""
    state = FaultState(latency, errors, concurrency_limit=concurrency_limit)
    agent = _Agent(agent_id, a2a_version, state, random.Random(seed))
    g = agent.guarded
    if protocol == "http":
        routes = [
            Route("/health", g(agent.health), methods=["GET"]),
            Route("/message/send", g(agent.http_send), methods=["POST"]),
        ]
    else:
        routes = [Route(path, g(agent.card), methods=["GET"]) for path in CARD_PATHS]
        routes.append(Route("/", g(agent.jsonrpc), methods=["POST"]))
    routes += [
        Route("/admin/fault", agent.get_fault, methods=["GET"]),
        Route("/admin/fault", agent.set_fault, methods=["POST"]),
        Route("/admin/load", agent.get_load, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def _exit_with_parent(parent_pid: int) -> None:
    """Stop this agent (SIGTERM to itself) once ``parent_pid`` is no longer its parent.

    The fleet's last line of defence: even a SIGKILLed launcher leaves no agent behind.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _fraction(text: str) -> float:
    """``0.02`` or ``2%`` -> 0.02 (argparse type). Raises ValueError."""
    try:
        return parse_percent(float(text))
    except ValueError:
        return parse_percent(text)


def _limit(text: str) -> int | None:
    """``4`` -> 4; ``0`` -> None (no limit). Raises ValueError (argparse type)."""
    value = int(text)
    if value < 0:
        raise ValueError(f"negative limit: {text!r}")
    return value or None


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m latcli.demo.agent", description=__doc__)
    p.add_argument("--id", required=True, help="agent id, used in replies and the card")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--protocol", choices=["http", "a2a"], default="http")
    p.add_argument("--a2a-version", choices=["0.3", "1.0"], default="1.0")
    p.add_argument("--latency", type=parse_distribution, default=parse_distribution("5ms"))
    p.add_argument("--errors", type=_fraction, default=0.0, help="e.g. 0.02 or 2%%")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--concurrency-limit",
        type=_limit,
        default=None,
        help="serve at most N messages at once, queue the rest (capacity N / latency)",
    )
    p.add_argument("--parent-pid", type=int, default=None, help="exit when this process dies")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve one agent until SIGTERM/SIGINT. Logs only warnings; nothing per request."""
    import uvicorn  # only the process that serves needs it

    args = _parse_args(argv)
    app = make_app(
        args.id,
        args.protocol,
        args.a2a_version,
        args.latency,
        args.errors,
        args.seed,
        args.concurrency_limit,
    )
    if args.parent_pid is not None:
        _exit_with_parent(args.parent_pid)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
