"""The fast engine's response reader: HTTP/1.x framing by llhttp, sans I/O (h11's readers' shape).

The connection feeds it the bytes it receives and reads its :class:`State` back; llhttp
(``httptools.HttpResponseParser``, the parser of Node.js) decides what is a valid response,
so what a strict parser rejects never reaches the engine as an answer. What llhttp cannot
know is decided here: a response to HEAD has no body whatever its headers say, a body
without a length ends when the connection closes, bytes past a response poison the
connection, a body is capped while read, and interim 1xx heads are skipped in a loop.

One reader serves one connection, response after response. Body bytes go to ``on_body``
as they arrive when one is given (at construction or by :meth:`ResponseReader.sink_to`: a
streaming consumer), else they are kept for :meth:`ResponseReader.take_body`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import httptools

MAX_HEAD = 64 * 1024  # status line and headers of one response; larger is not a sane reply


class State(enum.IntEnum):
    """Where the reader is in the response it was told to expect."""

    # IntEnum: hashed in C (Enum's __hash__ is Python), and the table below is read per move.
    IDLE = 0  # no response due: any byte is one nobody asked for
    HEAD = 1  # status line and headers (interim 1xx heads loop here)
    BODY = 2  # a body framed by Content-Length or chunked coding
    UNTIL_CLOSE = 3  # a body delimited by the connection's close
    DONE = 4  # the response is whole
    TOO_LARGE = 5  # the body passed the cap: reading stopped (terminal)
    FAILED = 6  # not a valid response, or cut short: reading stopped (terminal)


# Every legal move; anything else is a bug in this module, raised as such.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.HEAD, State.FAILED}),
    State.HEAD: frozenset(
        {State.BODY, State.UNTIL_CLOSE, State.DONE, State.TOO_LARGE, State.FAILED}
    ),
    State.BODY: frozenset({State.DONE, State.TOO_LARGE, State.FAILED}),
    State.UNTIL_CLOSE: frozenset({State.DONE, State.TOO_LARGE, State.FAILED}),
    State.DONE: frozenset({State.HEAD, State.FAILED}),
    State.TOO_LARGE: frozenset(),
    State.FAILED: frozenset(),
}
# The table as bit masks, read on the hot path (one index and one AND per move).
_MASKS = tuple(sum(1 << target for target in TRANSITIONS[state]) for state in State)
_IDLE, _HEAD, _BODY, _UNTIL_CLOSE, _DONE, _TOO_LARGE, _FAILED = State
_READING = (1 << _HEAD) | (1 << _BODY) | (1 << _UNTIL_CLOSE)
if not _MASKS[_IDLE] & _MASKS[_DONE] & (1 << _HEAD):  # expect() moves without a lookup
    raise ImportError("TRANSITIONS must allow IDLE -> HEAD and DONE -> HEAD")


class ReaderBug(RuntimeError):
    """An illegal transition: this module's error, never the peer's."""


class _Stop(Exception):
    """Raised inside a parser callback to make llhttp stop where it is."""


class ResponseReader:
    """Reads the responses of one HTTP/1.x connection, one :meth:`expect` at a time.

    After :meth:`feed` returns :attr:`State.DONE`: ``status``, ``headers`` (raw
    ``(name, value)`` pairs in arrival order), :meth:`take_body` and ``reusable`` (another
    request may follow on this connection) describe the response. :attr:`State.FAILED`
    leaves the reason in ``error``; :attr:`State.TOO_LARGE` in ``too_large``.
    """

    __slots__ = (
        "_cap",
        "_declared",
        "_fresh",
        "_head_bytes",
        "_head_only",
        "_interim",
        "_on_body",
        "_parser",
        "_parts",
        "_pending",
        "_size",
        "error",
        "headers",
        "keep_alive",
        "leftover",
        "state",
        "status",
        "too_large",
    )

    def __init__(self, on_body: Callable[[bytes], None] | None = None) -> None:
        self._on_body = on_body
        self._parser = httptools.HttpResponseParser(self)
        self._fresh = True  # the parser is between messages (false after HEAD: it awaits a body)
        self.state = _IDLE
        self._cap = self._size = self._head_bytes = self.status = 0
        self._declared = -1  # the final head's Content-Length, once seen
        self._head_only = self._interim = self.keep_alive = self.leftover = False
        self._pending: list[tuple[bytes, bytes]] = []
        self._parts: list[bytes] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.error: str | None = None
        self.too_large: str | None = None

    # -- driven by the connection

    def expect(self, cap: int, head_only: bool = False) -> None:
        """A request was written: read its response, with a body of at most ``cap`` bytes.

        Legal on a new reader or after a :attr:`reusable` response.
        """
        state = self.state
        if state is not _IDLE and (state is not _DONE or not self.keep_alive or self.leftover):
            raise ReaderBug(f"expect() in state {state.name}, not a reusable one")
        self.state = _HEAD  # IDLE/DONE -> HEAD, legal in TRANSITIONS (checked at import)
        if not self._fresh:
            self._parser = httptools.HttpResponseParser(self)
            self._fresh = True
        # What a reusable response can have left set: the rest only ends a connection.
        self._cap, self._head_only = cap, head_only
        if self._parts:  # a body nobody took
            self._parts = []
        self._size = self._head_bytes = self.status = 0

    def feed(self, data: bytes) -> State:
        """Bytes from the peer; the state after them."""
        if not _READING >> self.state & 1:
            # Nobody asked for these: the stream is out of step. Empty lines excepted, which
            # llhttp skips between responses anyway (as RFC 9112 2.2 has servers do).
            if data.strip(b"\r\n"):
                self.leftover = True
                self._fail("bytes received with no request outstanding")
            return self.state
        try:
            if self._head_only:
                self._feed_lines(data)
            else:
                self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # 101 with its head complete: not HTTP/1.1 past it
            self._fresh = False
            if self.state is _HEAD and self.status == 101:
                self._move(_DONE)
        except httptools.HttpParserError as exc:
            self._fresh = False
            self._parser_stopped(exc)
        except Exception as exc:  # whatever it is, the peer's bytes caused it
            self._fresh = False
            self._fail(f"{type(exc).__name__}: {exc}")
        state = self.state
        if state is not _HEAD:
            return state
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD:
            self._fail(f"response head over {MAX_HEAD} bytes")
        return self.state

    def feed_eof(self) -> State:
        """The peer closed the connection: ends a body delimited by close, fails a partial one."""
        if self.state is _UNTIL_CLOSE:
            self._move(_DONE)
        elif _READING >> self.state & 1:
            self._move(_FAILED)
            self.error = "server disconnected before the response was complete"
        return self.state

    def sink_to(self, on_body: Callable[[bytes], None] | None) -> None:
        """Hand the body pieces of the responses from now on to ``on_body`` as they arrive
        (a streaming send on a pooled connection), or keep them again (None)."""
        self._on_body = on_body

    def take_body(self) -> bytes:
        """The body read so far, handed over once (empty when ``on_body`` took it)."""
        parts = self._parts
        if not parts:
            return b""
        self._parts = []
        return parts[0] if len(parts) == 1 else b"".join(parts)

    @property
    def reusable(self) -> bool:
        """Whether another request may follow: a whole response, kept alive, nothing after it."""
        return self.state is _DONE and self.keep_alive and not self.leftover

    # -- internals

    def _move(self, new: State) -> None:
        if not _MASKS[self.state] >> new & 1:
            raise ReaderBug(f"illegal reader transition {self.state.name} -> {new.name}")
        self.state = new

    def _fail(self, message: str) -> None:
        if _MASKS[self.state] >> _FAILED & 1:
            self._move(_FAILED)
            self.error = message

    def _parser_stopped(self, exc: httptools.HttpParserError) -> None:
        """llhttp stopped: a callback asked it to, or the bytes are invalid."""
        if self.state is _DONE:  # past the response: garbage or a pipelined extra
            self.leftover = True
        elif _READING >> self.state & 1:
            cause = exc.__context__  # what a callback raised, if one did
            reason = cause if cause is not None and not isinstance(cause, _Stop) else exc
            self._fail(" ".join(str(reason).split()) or type(reason).__name__)

    def _feed_lines(self, data: bytes) -> None:
        """HEAD's response, a line at a time: llhttp would wait for the body the headers
        announce, so the reader stops it at the end of the final head, to the byte."""
        start, end = 0, len(data)
        while start < end:
            stop = data.find(b"\n", start)
            stop = end if stop < 0 else stop + 1
            self._parser.feed_data(data[start:stop])
            start = stop
            if self.state is not _HEAD:
                self.leftover = start < end
                return

    # -- llhttp callbacks (httptools calls only those defined)

    def on_message_begin(self) -> None:
        if self.state is not _HEAD:  # a second response nobody asked for
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        self._pending.append((name, value))  # trailers too: dropped at the message's end
        if len(name) == 14 and name.lower() == b"content-length" and self.state is _HEAD:
            self._declared = int(value)  # llhttp checked it: digits, one value, no overflow

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        declared = self._declared
        if declared >= 0:
            self._declared = -1
        if status < 200 and status >= 100 and status != 101:
            self._pending = []  # interim: llhttp ends it with no body; the final head follows
            self._interim = True
            return
        self.status, self.headers, self._pending = status, self._pending, []
        keep = self.keep_alive = status != 101 and parser.should_keep_alive()
        if self._head_only:
            self._fresh = False  # llhttp now expects the body the headers announce
            self._move(_DONE)
        elif status == 204 or status == 304 or status == 101:
            pass  # no body: llhttp completes the message itself
        elif declared > self._cap:
            self.too_large = f"content-length {declared} exceeds max_body {self._cap}"
            self._move(_TOO_LARGE)
            raise _Stop
        elif keep or declared >= 0 or _chunked(self.headers):
            # llhttp keeps alive no response whose body ends with the connection.
            # _move, inlined on the per-response path: the same table, one call less.
            if not _MASKS[self.state] >> _BODY & 1:
                self._move(_BODY)  # raises
            self.state = _BODY
        else:
            self._move(_UNTIL_CLOSE)

    def on_body(self, body: bytes) -> None:
        size = self._size = self._size + len(body)
        if size > self._cap:
            self.too_large = f"body exceeds max_body {self._cap} bytes"
            self._move(_TOO_LARGE)
            raise _Stop
        if self._on_body is None:
            self._parts.append(body)
        else:
            self._on_body(body)

    def on_message_complete(self) -> None:
        if self._pending:  # trailers: not the next response's headers
            self._pending = []
        if self._interim:
            self._interim = False
        elif self.state is not _DONE:
            if not _MASKS[self.state] >> _DONE & 1:  # _move, inlined as above
                self._move(_DONE)  # raises
            self.state = _DONE


def _chunked(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether chunked is the final transfer coding (else a response's body ends at close)."""
    coding = b""
    for name, value in headers:
        if len(name) == 17 and name.lower() == b"transfer-encoding":
            coding = value
    return coding.rstrip().lower().endswith(b"chunked")
