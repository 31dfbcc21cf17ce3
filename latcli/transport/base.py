"""One small protocol every load engine implements, and its value types."""

from __future__ import annotations

import abc
import base64
import dataclasses
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from latcli.errors import ErrorKind

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
