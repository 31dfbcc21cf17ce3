"""One small protocol every load engine implements, and its value types."""

from __future__ import annotations

import abc
import base64
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Protocol, TypeGuard, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from latcli.core.errors import ErrorKind

DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: replies past this are cut off as ``too_large``


@dataclass(frozen=True)
class RequestSpec:
    """What to send. ``timeout`` bounds the whole attempt, ``connect_timeout`` the TCP+TLS setup."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes | None = None
    timeout: float = 5.0
    connect_timeout: float = 1.0
    max_body: int = DEFAULT_MAX_BODY
    follow_redirects: bool = False


@dataclass(frozen=True)
class Timings:
    """Phase timings in ms; a phase that did not happen (reused connection, plain http) is None."""

    connect: float | None = None
    tls: float | None = None
    ttfb: float | None = None
    total: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """What came back. ``error`` is None when an HTTP response (any status) was read whole."""

    status: int | None
    body: bytes
    timings: Timings
    error: ErrorKind | None = None
    message: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


class Transport(Protocol):
    """Sends requests. ``key`` names the bulkhead (one small client per agent)."""

    async def send(self, key: str, spec: RequestSpec) -> Outcome: ...

    async def aclose(self) -> None: ...


# Takes one piece of a streamed body (its arrival instant, its bytes); True: stop reading.
Consumer = Callable[[float, bytes], bool]


class StreamingOutcome:
    """A response whose body is read as it arrives (SSE): the streaming seam's value.

    ``status``/``headers`` (names lowercased) are known once the head is in; iterating yields
    ``(perf_counter at arrival, bytes)`` per read. ``error``/``message`` say why the exchange
    failed: set before iteration when no head came (then the body is empty), or when the body
    broke off (reset, the attempt's deadline, more than ``spec.max_body`` bytes in total). The
    iterator never raises for network problems; it just ends. ``started`` is the
    perf_counter instant the attempt began (the zero of ``timings()``); ``sent`` the instant its
    request went out, after any wait for a connection, its connect and TLS (``started`` when
    the engine cannot tell): the zero of every stream phase, as DESIGN §2 has them ("each from
    the moment the request was sent"), so a phase is the agent's and not the client's queue.
    """

    def __init__(
        self,
        started: float,
        status: int | None,
        timings: Timings,
        headers: Mapping[str, str] | None = None,
        body: AsyncIterator[tuple[float, bytes]] | None = None,
        error: ErrorKind | None = None,
        message: str | None = None,
        sent: float | None = None,
    ) -> None:
        self.started = started
        self.sent = started if sent is None else sent
        self.status = status
        self.head_timings = timings
        self.headers: Mapping[str, str] = headers or {}
        self.error = error
        self.message = message
        self.ended: float | None = None  # perf_counter when the body ended (or broke off)
        # The engine's reader; it may be attached after construction (it reports into self).
        self.body = body

    def fail(self, kind: ErrorKind, message: str, at: float) -> None:
        """Record that the body broke off (engines call this from their body iterator)."""
        self.error, self.message, self.ended = kind, message, at

    def timings(self) -> Timings:
        """The head's phases; ``total`` runs from ``started`` to the end of the body (or now)."""
        end = self.ended if self.ended is not None else time.perf_counter()
        return replace(self.head_timings, total=(end - self.started) * 1000.0)

    def __aiter__(self) -> AsyncIterator[tuple[float, bytes]]:
        return self.body if self.body is not None else _empty()

    async def read_with(self, consume: Consumer) -> None:
        """Give each piece to ``consume(arrival, bytes)`` until it returns True (it has what it
        wanted) or the body ends; what ``consume`` raises is raised here.

        An engine may call ``consume`` from an event-loop callback instead of the awaiting task
        (the raw engine does: no task wake-up per piece), so it must not await or block.
        """
        async for at, data in self:
            if consume(at, data):
                return


async def _empty() -> AsyncIterator[tuple[float, bytes]]:
    return
    yield  # pragma: no cover - makes this an async generator


class StreamingTransport(Transport, Protocol):
    """A transport that can also deliver a body as it arrives (A2A streaming, DESIGN §2).

    ``stream(key, spec)`` is an async context manager giving a :class:`StreamingOutcome`;
    leaving it closes the response (an unread connection is dropped, never reused). The same
    bulkhead, error kinds and whole-attempt deadline (``spec.timeout``, head and body
    together) as ``send``; ``spec.max_body`` bounds the bytes of the whole stream.
    """

    def stream(
        self, key: str, spec: RequestSpec
    ) -> contextlib.AbstractAsyncContextManager[StreamingOutcome]: ...


def can_stream(transport: Transport) -> TypeGuard[StreamingTransport]:
    """Whether ``transport`` implements the streaming seam (engines add it one by one)."""
    return callable(getattr(transport, "stream", None))


_Self = TypeVar("_Self", bound="AsyncClosing")


class AsyncClosing(abc.ABC):
    """``async with`` for anything that has ``aclose()`` (the engines, the Router)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release what the object holds."""

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def read_capped(
    declared: int | None, chunks: AsyncIterator[bytes], cap: int
) -> tuple[bytes, str | None]:
    """``(body, None)``, or ``(b"", message)`` as soon as the body is known to exceed ``cap``:
    by its declared length, or while reading. Holds at most ``cap`` bytes plus the chunk in
    hand; the engine's stream stops pulling when left early, so the rest never reaches memory.
    """
    if declared is not None and declared > cap:
        return b"", f"content-length {declared} exceeds max_body {cap}"
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > cap:
            return b"", f"body exceeds max_body {cap} bytes"
        parts.append(chunk)
    return b"".join(parts), None


def userinfo_as_basic_auth(spec: RequestSpec) -> RequestSpec:
    """``spec`` with ``user:pass@`` taken out of its URL and sent as ``Authorization: Basic``.

    What every engine sends for a URL with credentials (httpx's rule): the userinfo never
    reaches the Host header or the request line, and a spec's own Authorization header wins.
    """
    if "@" not in spec.url:
        return spec
    parts = urlsplit(spec.url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return spec  # an "@" in the path or query
    headers = spec.headers
    if not any(name.lower() == "authorization" for name in headers):
        user, _, password = userinfo.partition(":")
        pair = f"{unquote(user)}:{unquote(password)}".encode()
        headers = {**headers, "Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    url = urlunsplit(parts._replace(netloc=host))
    return dataclasses.replace(spec, url=url, headers=headers)
