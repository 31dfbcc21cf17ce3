"""The raw engine's own faults and :func:`classify`, the one place they become error kinds."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from typing import Literal

from latcli.core.errors import ErrorKind
from latcli.transport.exc import text as _text

_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})

WirePhase = Literal["pool", "connect", "tls", "exchange"]


class _Fault(Exception):
    """A failure this engine detects itself (as opposed to the OS or the ssl module)."""


class _BadResponse(_Fault):
    """The peer's bytes are not an HTTP/1.x response."""


class _Disconnected(_Fault):
    """The peer closed the connection before the response was complete."""


class _Deadline(_Fault):
    """The whole-attempt bound passed."""


class _PoolTimeout(_Fault):
    """The attempt's bound passed while waiting for a connection of the key."""


class _BadURL(_Fault):
    """A URL this engine cannot request (scheme, host)."""


class _PhaseError(_Fault):
    """An error of a later phase than the one the attempt was in (TLS inside ``_open``)."""

    def __init__(self, phase: WirePhase, error: BaseException) -> None:
        super().__init__(str(error))
        self.phase = phase
        self.error = error


def classify(exc: BaseException, phase: WirePhase = "exchange") -> tuple[ErrorKind, str]:
    """Map an exception raised in ``phase`` of an attempt to an error kind and a one-line message.

    The one translation boundary of this engine (STYLE habit 4). ``phase``: waiting for a
    connection of the key, TCP connect (DNS included), TLS handshake, or the exchange on an
    open connection.
    """
    if isinstance(exc, socket.gaierror):
        return ErrorKind.DNS, f"name resolution failed: {_text(exc)}"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ErrorKind.TLS, f"tls: {_text(exc)}"
    timed_out = isinstance(exc, TimeoutError | asyncio.TimeoutError)
    if phase == "connect":
        if timed_out:
            return ErrorKind.CONNECT, "connect timed out"
        return ErrorKind.CONNECT, f"connect failed: {_text(exc)}"
    if phase == "tls":
        return ErrorKind.TLS, "tls: handshake timed out" if timed_out else f"tls: {_text(exc)}"
    if isinstance(exc, _PoolTimeout):
        return ErrorKind.TIMEOUT, "timed out waiting for a free connection"
    if isinstance(exc, _Deadline) or timed_out:
        return ErrorKind.TIMEOUT, "attempt timed out"
    if isinstance(exc, _Disconnected | ConnectionResetError | BrokenPipeError):
        return ErrorKind.RESET, f"connection reset: {_text(exc)}"
    if isinstance(exc, ConnectionAbortedError) or getattr(exc, "errno", None) in _RESET_ERRNOS:
        return ErrorKind.RESET, f"connection reset: {_text(exc)}"
    if isinstance(exc, _BadResponse):
        return ErrorKind.BAD_RESPONSE, f"not a valid HTTP response: {_text(exc)}"
    if isinstance(exc, _BadURL):
        return ErrorKind.BAD_RESPONSE, f"cannot request: {_text(exc)}"
    return ErrorKind.BAD_RESPONSE, f"{type(exc).__name__}: {_text(exc)}"
