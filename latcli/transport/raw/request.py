"""Requests as bytes: a spec's URL split and its head encoded once, and response headers as a
mapping."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from latcli.core.version import __version__
from latcli.transport.base import (
    RequestSpec,
    userinfo_as_basic_auth,
)
from latcli.transport.raw.errors import _BadURL

_SPEC_CACHE = 64  # encoded specs kept; bench sends one spec millions of times

_BODY_HEADERS = frozenset({"content-length", "content-type", "transfer-encoding"})

_DEFAULT_PORTS = {"http": 80, "https": 443}

_SAFE_HEADERS = (
    ("user-agent", f"latcli/{__version__}"),
    # As in the other engines: bodies are capped while read, so no inflating.
    ("accept-encoding", "identity"),
)


class _Prepared:
    """A spec's URL split and its request encoded, once per spec object."""

    __slots__ = ("data", "head_only", "host", "origin", "port", "secure", "spec")

    def __init__(self, spec: RequestSpec, url: str) -> None:
        self.spec = spec  # keeps id(spec) from being reused while cached
        self.origin, netloc, target = _split(url)
        scheme, self.host, self.port = self.origin
        self.secure = scheme == "https"
        self.head_only = spec.method.upper() == "HEAD"
        self.data = _encode(userinfo_as_basic_auth(spec), target, netloc)

    @staticmethod
    def origin_of(url: str) -> tuple[str, str, int]:
        """``(scheme, host, port)`` of an http(s) URL; anything else is a ``_BadURL``."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise _BadURL(f"unsupported URL scheme {parts.scheme!r} in {url[:100]!r}")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise _BadURL(f"invalid port in {url[:100]!r}") from None
        if not parts.hostname:
            raise _BadURL(f"no host in {url[:100]!r}")
        return scheme, parts.hostname, port


@functools.lru_cache(maxsize=4096)
def _split(url: str) -> tuple[tuple[str, str, int], str, str]:
    """``(origin, Host header, request target)`` of a URL, parsed once per URL: a routed
    message is a new spec each time (its body differs) to one of a few URLs."""
    parts = urlsplit(url)
    scheme, host, port = origin = _Prepared.origin_of(url)
    netloc = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return origin, netloc, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _encode(spec: RequestSpec, target: str, netloc: str) -> bytes:
    """The request head (and body): spec headers win over ours, names as the caller spelled them."""
    body = spec.body
    length = None if body is None else len(body)
    head = _head(spec.method, target, netloc, tuple(spec.headers.items()), length)
    return head + body if body else head


@functools.lru_cache(maxsize=_SPEC_CACHE)  # a new spec per message, one head for them all
def _head(
    method: str,
    target: str,
    netloc: str,
    headers: tuple[tuple[str, str], ...],
    length: int | None,
) -> bytes:
    """The request line and headers, up to and with the blank line; ``length``: the body's."""
    given = {name.lower() for name, _ in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"host: {netloc}")
    lines.extend(f"{name}: {value}" for name, value in _SAFE_HEADERS if name not in given)
    if "content-length" not in given and "transfer-encoding" not in given:
        if length is not None:
            lines.append(f"content-length: {length}")
        elif method.upper() in ("POST", "PUT", "PATCH"):
            lines.append("content-length: 0")
    lines.extend(f"{name}: {value}" for name, value in headers)
    if any("\r" in line or "\n" in line for line in lines):
        raise ValueError("newline or carriage return in the request line or a header")
    head = "\r\n".join(lines)
    try:
        data = head.encode("latin-1")
    except UnicodeEncodeError:
        data = head.encode("utf-8")
    return data + b"\r\n\r\n"


class _Headers(Mapping[str, str]):
    """Response headers decoded from the reader's raw pairs on first read (bench reads none).

    Names lowercased; repeated headers joined with ", " as httpx's ``items()`` does.
    """

    __slots__ = ("_parsed", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._parsed: dict[str, str] | None = None

    def as_dict(self) -> dict[str, str]:
        """The headers as a plain dict (names lowercased)."""
        return self._dict()

    def _dict(self) -> dict[str, str]:
        parsed = self._parsed
        if parsed is None:
            parsed = self._parsed = {}
            for raw_name, raw_value in self._raw:
                name = raw_name.decode("latin-1").lower()
                value = raw_value.decode("latin-1").strip()
                parsed[name] = f"{parsed[name]}, {value}" if name in parsed else value
        return parsed

    def __getitem__(self, name: str) -> str:
        return self._dict()[name]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._dict().get(name, default)  # Mapping.get's try/except, one call less

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __repr__(self) -> str:
        return f"_Headers({self._dict()!r})"
