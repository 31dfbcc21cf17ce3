"""The llhttp response reader alone against the bytes.find parser it replaced, same run.

Parses one response per iteration (a reused reader, as on a keep-alive connection):
  small    a 2-byte keep-alive reply with 3 headers (what bench and health checks read)
  chunked  a 3-chunk reply with an extension and a trailer
Prints µs per response for each parser and the ratio new/old (lower is faster).
Usage: uv run python scripts/bench_reader.py [--n 50000] [--repeat 25]
"""

from __future__ import annotations

import argparse
import time

from latcli.transport.raw.reader import ResponseReader, State

SMALL = (
    b"HTTP/1.1 200 OK\r\ndate: Thu, 03 Dec 2026 12:00:00 GMT\r\n"
    b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
)
CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nx-trailer: t\r\n\r\n"
)


# ---- the baseline: raw_transport's parser before the reader (commit b1e810d), I/O removed ----


class _OldBad(Exception):
    pass


def _has(lower_head: bytes, name: bytes, token: bytes) -> bool:
    at = lower_head.find(name)
    while at >= 0:
        end = lower_head.find(b"\r\n", at + 2)
        if token in lower_head[at + len(name) : end if end >= 0 else len(lower_head)]:
            return True
        at = lower_head.find(name, at + 2) if end >= 0 else -1
    return False


class OldParser:
    """The old ``_Connection`` parsing path (``_feed_head``, sized and chunked bodies)."""

    def __init__(self) -> None:
        self.status, self.head, self.body = 0, b"", b""
        self.reusable = False
        self._buf = b""
        self._state = 4
        self._cap = 1 << 20
        self._head_only = False
        self._left = 0
        self._chunk_step = 0
        self._parts: list[bytes] = []
        self._size = 0
        self._keep = True
        self.headers_at = 0.0

    def start(self) -> None:
        self.reusable = False
        self.status, self.headers_at = 0, 0.0
        self._state, self._buf = 0, b""

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state == 0:
            self._feed_head(self._buf + data if self._buf else data)
        elif state == 1:
            self._feed_sized(data)
        elif state == 2:
            self._feed_chunked(self._buf + data if self._buf else data)
        elif state == 3:
            self._add(data)

    def _feed_head(self, data: bytes) -> None:
        if data[:5] != b"HTTP/"[: len(data)]:
            raise _OldBad("no status line")
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self._buf = data
            return
        self._buf = b""
        head, rest = data[:end], data[end + 4 :]
        code = head[9:12]
        valid = head[:7] == b"HTTP/1." and head[8:9] == b" " and code.isdigit()
        if not valid or head[12:13] not in (b" ", b"\r", b""):
            raise _OldBad("invalid status line")
        status = int(code)
        if 100 <= status < 200 and status != 101:
            if rest:
                self._feed_head(rest)
            return
        self.headers_at = time.perf_counter()
        self.status, self.head = status, head
        lower = head.lower()
        if head[5:8] == b"1.1":
            self._keep = b"close" not in lower or not _has(lower, b"\r\nconnection:", b"close")
        else:
            self._keep = _has(lower, b"\r\nconnection:", b"keep-alive")
        if self._head_only or status in (204, 304) or status < 200:
            self._finish(b"", rest)
            return
        if b"\r\ntransfer-encoding:" in lower and _has(
            lower, b"\r\ntransfer-encoding:", b"chunked"
        ):
            self._state, self._left, self._parts, self._size = 2, 0, [], 0
            self._chunk_step = 0
            self._feed_chunked(rest)
            return
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:
            self._state, self._left, self._parts, self._size = 3, 0, [], 0
            if rest:
                self._add(rest)
            return
        stop = lower.find(b"\r\n", at + 17)
        length = lower[at + 17 : stop if stop >= 0 else end].strip()
        if not length.isdigit():
            raise _OldBad("invalid content-length")
        size = int(length)
        if len(rest) >= size:
            self._finish(rest[:size] if len(rest) > size else rest, rest[size:])
        else:
            self._state, self._left, self._parts, self._size = 1, size, [], 0
            self._feed_sized(rest)

    def _feed_sized(self, data: bytes) -> None:
        if len(data) >= self._left:
            left = self._left
            self._parts.append(data[:left])
            self._finish(b"".join(self._parts), data[left:])
        elif data:
            self._parts.append(data)
            self._left -= len(data)

    def _add(self, data: bytes) -> None:
        self._size += len(data)
        self._parts.append(data)

    def _feed_chunked(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while self._state == 2:
            step = self._chunk_step
            if step == 1:
                take = min(self._left, end - pos)
                if take == 0:
                    break
                self._add(data[pos : pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    self._chunk_step = 2
                continue
            if step == 2:
                if end - pos < 2:
                    break
                if data[pos : pos + 2] != b"\r\n":
                    raise _OldBad("chunk data not followed by CRLF")
                pos += 2
                self._chunk_step = 0
                continue
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                break
            line = data[pos:eol]
            pos = eol + 2
            if step == 3:
                if not line:
                    self._finish(b"".join(self._parts), data[pos:])
                    return
                continue
            size = int(line.split(b";", 1)[0].strip(), 16)
            self._left, self._chunk_step = size, 1 if size else 3
        if self._state == 2:
            self._buf = data[pos:] if pos < end else b""

    def _finish(self, body: bytes, rest: bytes = b"") -> None:
        self._state = 4
        self.body = body
        self._parts = []
        self.reusable = self._keep and not rest


# ---- timing ----------------------------------------------------------------------------------


def old_loop(raw: bytes, n: int) -> float:
    parser = OldParser()
    began = time.perf_counter()
    body = b""
    for _ in range(n):  # what the engine did per response: start, feed, take the body
        parser.start()
        parser.data_received(raw)
        body, parser.body = parser.body, b""
    elapsed = time.perf_counter() - began
    assert parser.reusable and body
    return elapsed


def new_loop(raw: bytes, n: int) -> float:
    reader = ResponseReader()
    body = b""
    began = time.perf_counter()
    for _ in range(n):  # what the engine does per response: expect, feed, take the body
        reader.expect(1 << 20)
        reader.feed(raw)
        body = reader.take_body()
    elapsed = time.perf_counter() - began
    assert reader.state is State.DONE and reader.reusable and body
    return elapsed


def best_us(raw: bytes, n: int, repeat: int) -> tuple[float, float]:
    """Best µs per response of the old and the new parser, runs interleaved (a noisy machine
    slows both alike)."""
    old, new = [], []
    for _ in range(repeat):
        old.append(old_loop(raw, n))
        new.append(new_loop(raw, n))
    return min(old) / n * 1e6, min(new) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=25)
    args = parser.parse_args()
    print(f"µs per response, best of {args.repeat} x {args.n:,} (lower is better)")
    for name, raw in (("small", SMALL), ("chunked", CHUNKED)):
        old, new = best_us(raw, args.n, args.repeat)
        print(
            f"  {name:8} bytes.find {old:6.2f}   llhttp reader {new:6.2f}   new/old {new / old:.2f}"
        )


if __name__ == "__main__":
    main()
