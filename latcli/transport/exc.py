"""Small helpers every engine's one ``classify()`` uses to read an exception."""

from __future__ import annotations

import errno
import os
import re
import ssl
from collections.abc import Iterator


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts, outermost first, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def first(found: list[BaseException], *types: type[BaseException]) -> BaseException | None:
    """The outermost exception of ``types`` in a :func:`chain` list, if any."""
    return next((e for e in found if isinstance(e, types)), None)


# What users read instead of "[Errno 111] Connect call failed ('127.0.0.1', 8001)": the address
# is already on the line (the agent's URL), the errno means nothing to most people.
_PLAIN = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "broken pipe (connection closed by peer)",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}
_ERRNO = re.compile(r"\[Errno (-?\d+)\]")


def text(exc: BaseException) -> str:
    """A short one-line description of ``exc`` in plain words (``connection refused``); its
    class name if it has no text."""
    # An SSLError is an OSError whose errno is OpenSSL's, not the system's: its text says more.
    if _system_error(exc):
        assert isinstance(exc, OSError) and exc.errno is not None
        return _errno_words(exc.errno, exc.strerror)
    words = " ".join(str(exc).split())
    # asyncio joins the failures of every address tried: "Multiple exceptions: [Errno 111] ..."
    codes = [int(code) for code in _ERRNO.findall(words)]
    if codes:
        code = errno.ECONNREFUSED if errno.ECONNREFUSED in codes else codes[0]
        return _errno_words(code, None)
    return words[:200] if words else type(exc).__name__


def _system_error(exc: BaseException) -> bool:
    if not isinstance(exc, OSError) or isinstance(exc, ssl.SSLError):
        return False
    return exc.errno in _PLAIN or (exc.errno is not None and bool(exc.strerror))


def _errno_words(code: int, strerror: str | None) -> str:
    if code in _PLAIN:
        return _PLAIN[code]
    return strerror or os.strerror(code) or f"error {code}"
