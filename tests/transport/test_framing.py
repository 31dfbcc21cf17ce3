"""HTTP/1.x response framing: canned responses, two strict references, every engine.

Each case is bytes a server might send, with the verdicts of h11 and llhttp (httptools)
recorded beside it: ``(status, body)`` for a response they accept, ``REJECT`` for one they
refuse. ``test_recorded_verdicts_are_the_references`` recomputes both with the real libraries,
so the table cannot rot. Every case is then served by a real canned-bytes TCP server on
127.0.0.1 and sent over every engine, one connection per key: where both references agree,
the engine agrees (same status and body, or an error), and in every case the next request on
that key gets its own clean answer, never bytes left over from the case (no desync, no
leaked connection slot). ``parts[1:]`` are written only after that next request arrives:
the tail of a crafted response that a lenient parser would take as the next answer.

Run ``python tests/transport/test_framing.py`` to print the verdicts the libraries give today.
"""

from __future__ import annotations

import asyncio
from asyncio import StreamReader as Reader
from asyncio import StreamWriter as Writer
from collections.abc import Iterator
from dataclasses import dataclass

import fault_servers as fs
import h11
import httptools
import pytest

from latcli.core.errors import ErrorKind
from latcli.transport.base import Outcome, RequestSpec, Transport
from latcli.transport.httpx_engine import HttpxTransport
from latcli.transport.raw.transport import RawTransport

Verdict = tuple[int, bytes] | None  # (status, body) accepted, or None: rejected
REJECT: Verdict = None
ENGINES = [HttpxTransport, RawTransport]
NEXT = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext"
EVIL = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil"


def resp(*headers: str, body: bytes = b"", status: str = "HTTP/1.1 200 OK") -> bytes:
    lines = "".join(f"{header}\r\n" for header in headers)
    return f"{status}\r\n{lines}\r\n".encode("latin-1") + body


@dataclass(frozen=True)
class Case:
    name: str
    parts: tuple[bytes, ...]
    h11: Verdict
    llhttp: Verdict
    method: str = "GET"
    close: bool = False  # the server closes the connection after the first part

    @property
    def agreed(self) -> bool:
        return self.h11 == self.llhttp


def case(
    name: str,
    raw: bytes | tuple[bytes, ...],
    h11: Verdict,
    llhttp: Verdict,
    *,
    method: str = "GET",
    close: bool = False,
) -> Case:
    parts = raw if isinstance(raw, tuple) else (raw,)
    return Case(name, parts, h11, llhttp, method, close)


OK5 = (200, b"hello")
CL5 = "Content-Length: 5"
TE = "Transfer-Encoding: chunked"
CHUNKS = b"5\r\nhello\r\n0\r\n\r\n"
FLOOD = b"HTTP/1.1 100 Continue\r\n\r\n" * 5000

CASES: list[Case] = [
    # -- Content-Length
    case("cl_plain", resp(CL5, body=b"hello"), OK5, OK5),
    case("cl_zero", resp("Content-Length: 0"), (200, b""), (200, b"")),
    case("cl_leading_zeros", resp("Content-Length: 0005", body=b"hello"), OK5, OK5),
    case("cl_trailing_ows", resp("Content-Length: 5 \t", body=b"hello"), OK5, OK5),
    case("cl_tab_before_value", resp("Content-Length:\t5", body=b"hello"), OK5, OK5),
    case("cl_dup_equal", resp(CL5, CL5, body=b"hello"), OK5, REJECT),
    case("cl_dup_conflict", resp(CL5, "Content-Length: 6", body=b"hello!"), REJECT, REJECT),
    case("cl_list_equal", resp("Content-Length: 5, 5", body=b"hello"), OK5, REJECT),
    case("cl_list_conflict", resp("Content-Length: 5, 6", body=b"hello!"), REJECT, REJECT),
    case("cl_plus", resp("Content-Length: +5", body=b"hello"), REJECT, REJECT),
    case("cl_minus", resp("Content-Length: -5", body=b"hello"), REJECT, REJECT),
    case("cl_hex", resp("Content-Length: 0x5", body=b"hello"), REJECT, REJECT),
    case("cl_inner_space", resp("Content-Length: 5 5", body=b"hello"), REJECT, REJECT),
    case("cl_empty", resp("Content-Length: ", body=b"hello"), REJECT, REJECT),
    case("cl_space_before_colon", resp("Content-Length : 5", body=b"hello"), REJECT, REJECT),
    case("cl_5000_digits", resp("Content-Length: " + "9" * 5000), REJECT, REJECT),
    case("cl_2_pow_64", resp("Content-Length: 18446744073709551616"), REJECT, REJECT, close=True),
    case(
        "cl_body_cut_by_close",
        resp("Content-Length: 10", body=b"hello"),
        REJECT,
        REJECT,
        close=True,
    ),
    case("cl_pipelined_leftover", resp(CL5, body=b"hello") + EVIL, OK5, OK5),
    case("cl_garbage_after", resp(CL5, body=b"helloXYZ"), OK5, OK5),
    case("cl_crlf_after", resp(CL5, body=b"hello\r\n"), OK5, OK5),
    # -- Transfer-Encoding
    case("te_chunked", resp(TE, body=CHUNKS), OK5, OK5),
    case("te_chunked_upper", resp("Transfer-Encoding: CHUNKED", body=CHUNKS), OK5, OK5),
    case(
        "te_space_before_colon",
        resp("Transfer-Encoding : chunked", CL5, body=CHUNKS),
        REJECT,
        REJECT,
    ),
    case("te_and_cl", resp(TE, CL5, body=CHUNKS), OK5, REJECT),
    case("te_gzip_chunked", resp("Transfer-Encoding: gzip, chunked", body=CHUNKS), REJECT, OK5),
    case("te_chunked_twice", resp(TE, TE, body=CHUNKS), REJECT, OK5),
    case(
        "te_identity_close",
        resp("Transfer-Encoding: identity", body=b"hello"),
        REJECT,
        OK5,
        close=True,
    ),
    case("te_obs_fold", resp("Transfer-Encoding:", " chunked", body=CHUNKS), OK5, REJECT),
    case(
        "te_vertical_tab",
        resp("Transfer-Encoding: \x0bchunked", CL5, body=b"hello"),
        REJECT,
        REJECT,
    ),
    # -- chunk-size syntax
    case("chunk_0x5", resp(TE, body=b"0x5\r\nhello\r\n0\r\n\r\n"), REJECT, REJECT),
    case("chunk_plus", resp(TE, body=b"+5\r\nhello\r\n0\r\n\r\n"), REJECT, REJECT),
    case("chunk_underscore", resp(TE, body=b"0_5\r\nhello\r\n0\r\n\r\n"), REJECT, REJECT),
    case("chunk_leading_space", resp(TE, body=b" 5\r\nhello\r\n0\r\n\r\n"), REJECT, REJECT),
    case("chunk_minus_zero", resp(TE, body=b"-0\r\n\r\n"), REJECT, REJECT),
    case(
        "chunk_overflow", resp(TE, body=b"1" + b"0" * 17 + b"\r\nhello"), REJECT, REJECT, close=True
    ),
    case(
        "chunk_upper_hex",
        resp(TE, body=b"A\r\nhelloworld\r\n0\r\n\r\n"),
        (200, b"helloworld"),
        (200, b"helloworld"),
    ),
    case("chunk_leading_zeros", resp(TE, body=b"005\r\nhello\r\n0\r\n\r\n"), OK5, OK5),
    case("chunk_extension", resp(TE, body=b"5;name=value\r\nhello\r\n0\r\n\r\n"), OK5, OK5),
    case("chunk_extension_quoted", resp(TE, body=b'5;a="b c"\r\nhello\r\n0\r\n\r\n'), OK5, OK5),
    case("chunk_size_trailing_space", resp(TE, body=b"5 \r\nhello\r\n0\r\n\r\n"), OK5, REJECT),
    case("chunk_trailers", resp(TE, body=b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), OK5, OK5),
    case(
        "chunk_trailer_no_colon", resp(TE, body=b"5\r\nhello\r\n0\r\nbad\r\n\r\n"), REJECT, REJECT
    ),
    case("chunk_data_overrun", resp(TE, body=b"5\r\nhelloX\r\n0\r\n\r\n"), REJECT, REJECT),
    case("chunk_lf_only", resp(TE, body=b"5\nhello\n0\n\n"), REJECT, REJECT, close=True),
    case("chunk_cut_by_close", resp(TE, body=b"5\r\nhel"), REJECT, REJECT, close=True),
    case("chunk_no_last_chunk", resp(TE, body=b"5\r\nhello\r\n"), REJECT, REJECT, close=True),
    # -- header syntax
    case("obs_fold", resp(CL5, "X-A: a", " folded", body=b"hello"), OK5, REJECT),
    case(
        "obs_fold_location",
        resp("Content-Length: 0", "X-A: a", " Location: /evil", status="HTTP/1.1 302 Found"),
        (302, b""),
        REJECT,
    ),
    case("nul_in_value", resp(CL5, "X-A: a\x00b", body=b"hello"), REJECT, REJECT),
    case("bare_cr_in_value", resp(CL5, "X-A: a\rb", body=b"hello"), REJECT, REJECT),
    case("bare_lf_between_headers", resp(CL5 + "\nX-A: a", body=b"hello"), OK5, REJECT),
    case("ctl_in_value", resp(CL5, "X-A: a\x01b", body=b"hello"), OK5, REJECT),
    case("del_in_value", resp(CL5, "X-A: a\x7fb", body=b"hello"), OK5, REJECT),
    case("utf8_in_value", resp(CL5, "X-A: caf\xc3\xa9", body=b"hello"), OK5, OK5),
    case("header_without_colon", resp(CL5, "X-A", body=b"hello"), REJECT, REJECT),
    case("header_name_space", resp(CL5, "X A: b", body=b"hello"), REJECT, REJECT),
    case("header_name_trailing_space", resp(CL5, "X-A : b", body=b"hello"), REJECT, REJECT),
    case("header_name_empty", resp(CL5, ": b", body=b"hello"), REJECT, REJECT),
    case("header_name_nul", resp(CL5, "X\x00A: b", body=b"hello"), REJECT, REJECT),
    case("first_header_folded", resp(" X-A: b", CL5, body=b"hello"), REJECT, REJECT),
    case("many_headers", resp(*(f"X-{i}: {i}" for i in range(100)), CL5, body=b"hello"), OK5, OK5),
    case("long_header_value", resp("X-A: " + "v" * 10_000, CL5, body=b"hello"), OK5, OK5),
    # -- status line
    case("http_1x", resp(CL5, body=b"hello", status="HTTP/1.x 200 OK"), REJECT, REJECT),
    case("http_lowercase", resp(CL5, body=b"hello", status="http/1.1 200 OK"), REJECT, REJECT),
    case("http_1_0_sized", resp(CL5, body=b"hello", status="HTTP/1.0 200 OK"), OK5, OK5),
    case(
        "http_1_0_until_close", resp(body=b"hello", status="HTTP/1.0 200 OK"), OK5, OK5, close=True
    ),
    case("no_reason", resp(CL5, body=b"hello", status="HTTP/1.1 200"), OK5, OK5),
    case("empty_reason", resp(CL5, body=b"hello", status="HTTP/1.1 200 "), OK5, OK5),
    case("status_two_digits", resp(CL5, body=b"hello", status="HTTP/1.1 20 OK"), REJECT, REJECT),
    case("status_four_digits", resp(CL5, body=b"hello", status="HTTP/1.1 2000 OK"), REJECT, REJECT),
    case("status_letter", resp(CL5, body=b"hello", status="HTTP/1.1 2x0 OK"), REJECT, REJECT),
    case("leading_crlf", b"\r\n" + resp(CL5, body=b"hello"), REJECT, OK5),
    case("not_http", b"hello world\r\n\r\n", REJECT, REJECT, close=True),
    case("lf_only", b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", OK5, REJECT),
    case("until_close", resp(body=b"hello"), OK5, OK5, close=True),
    case("nothing_then_close", b"", REJECT, REJECT, close=True),
    case("head_cut_by_close", b"HTTP/1.1 200 OK\r\nContent-Le", REJECT, REJECT, close=True),
    # -- interim responses
    case(
        "continue_then_final", b"HTTP/1.1 100 Continue\r\n\r\n" + resp(CL5, body=b"hello"), OK5, OK5
    ),
    case(
        "early_hints_then_final",
        resp("Link: </a.css>", status="HTTP/1.1 103 Early Hints") + resp(CL5, body=b"hello"),
        OK5,
        OK5,
    ),
    case("continue_flood_5000", FLOOD + resp(CL5, body=b"hello"), OK5, OK5),
    case("continue_then_close", b"HTTP/1.1 100 Continue\r\n\r\n", REJECT, REJECT, close=True),
    # -- no body whatever the headers say
    case(
        "204_with_body",
        resp(CL5, body=b"hello", status="HTTP/1.1 204 No Content"),
        (204, b""),
        (204, b""),
    ),
    case(
        "304_with_body",
        resp(CL5, body=b"hello", status="HTTP/1.1 304 Not Modified"),
        (304, b""),
        (304, b""),
    ),
    case(
        "204_chunked",
        resp(TE, body=CHUNKS, status="HTTP/1.1 204 No Content"),
        (204, b""),
        (204, b""),
    ),
    case("head_with_body", resp(CL5, body=b"hello"), (200, b""), (200, b""), method="HEAD"),
    case("head_without_body", resp(CL5), (200, b""), (200, b""), method="HEAD"),
    case("head_chunked", resp(TE), (200, b""), (200, b""), method="HEAD"),
    # -- Connection
    case("connection_close", resp("Connection: close", CL5, body=b"hello"), OK5, OK5),
    case("connection_close_upper", resp("Connection: CLOSE", CL5, body=b"hello"), OK5, OK5),
    case(
        "connection_close_listed",
        resp("Connection: keep-alive, close", CL5, body=b"hello"),
        OK5,
        OK5,
    ),
    case(
        "connection_space_before_colon",
        resp("Connection : close", CL5, body=b"hello"),
        REJECT,
        REJECT,
    ),
    case(
        "connection_keep_alive_1_0",
        resp("Connection: keep-alive", CL5, body=b"hello", status="HTTP/1.0 200 OK"),
        OK5,
        OK5,
    ),
    # -- split desyncs: a crafted head now, the rest after the next request is written
    case(
        "desync_cl_conflict", (resp(CL5, "Content-Length: 45", body=b"hello"), EVIL), REJECT, REJECT
    ),
    case(
        "desync_te_space",
        (
            resp("Transfer-Encoding : chunked", "Content-Length: 0"),
            b"4\r\nevil\r\n0\r\n\r\n" + EVIL,
        ),
        REJECT,
        REJECT,
    ),
    case("desync_chunk_0x0", (resp(TE, body=b"0x0\r\n\r\n"), EVIL), REJECT, REJECT),
    case(
        "desync_obs_fold_te",
        (resp(CL5, "X-A: a", " Transfer-Encoding: chunked", body=b"hello"), EVIL),
        OK5,
        REJECT,
    ),
    case("desync_nul_header", (resp("Content-Length: 0", "X-A: \x00"), EVIL), REJECT, REJECT),
]
BY_NAME = {c.name: c for c in CASES}


# ---- the references --------------------------------------------------------------------------


def h11_verdict(c: Case) -> Verdict | str:
    """What h11, as a client that sent ``c.method``, makes of the first part."""
    conn = h11.Connection(our_role=h11.CLIENT)
    conn.send(h11.Request(method=c.method, target="/case", headers=[("Host", "a")]))
    conn.send(h11.EndOfMessage())
    status, body = 0, b""
    try:
        conn.receive_data(c.parts[0])
        if c.close:
            conn.receive_data(b"")
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return "wait"
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, body
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return REJECT
    except Exception:  # h11's own RemoteProtocolError, or a ValueError it lets through
        return REJECT


class _Llhttp:
    """httptools callbacks: the first final response, stopped where it ends."""

    def __init__(self, head: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.head, self.status, self.body, self.done = head, 0, b"", False
        self.sized, self.coding = False, b""

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-length":
            self.sized = True
        elif name.lower() == b"transfer-encoding":
            self.coding = value.strip().lower()

    @property
    def until_close(self) -> bool:
        """llhttp's rule for a response's body (RFC 9112 6.3): no Content-Length, and chunked
        not the final coding, is read until the close (httptools has no finish() to ask)."""
        no_body = self.status in (0, 204, 304)
        return not no_body and not self.sized and not self.coding.endswith(b"chunked")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.sized, self.coding = False, b""
            return
        self.status = status
        if self.head:
            self.done = True
            raise StopIteration

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if self.status:
            self.done = True
            raise StopIteration


def llhttp_verdict(c: Case) -> Verdict | str:
    """What llhttp makes of the first part; a body without a length ends at the close."""
    collect = _Llhttp(c.method == "HEAD")
    try:
        collect.parser.feed_data(c.parts[0])
    except httptools.HttpParserError:
        return (collect.status, collect.body) if collect.done else REJECT
    if collect.done:
        return collect.status, collect.body
    if not c.close:
        return "wait"
    return (collect.status, collect.body) if collect.until_close else REJECT


def test_the_table_covers_enough_cases_with_unique_names() -> None:
    assert len(CASES) >= 60 and len(BY_NAME) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.name)
def test_recorded_verdicts_are_the_references(c: Case) -> None:
    assert (h11_verdict(c), llhttp_verdict(c)) == (c.h11, c.llhttp)


# ---- every engine against a canned-bytes server ----------------------------------------------


async def _canned(reader: Reader, writer: Writer) -> None:
    """``/case/NAME``: the case's first part; ``/next``: the rest of the case, then NEXT."""
    rest: tuple[bytes, ...] = ()
    while (request := await fs.read_request(reader)) is not None:
        if request.path.startswith("/case/"):
            c = BY_NAME[request.path.removeprefix("/case/")]
            writer.write(c.parts[0])
            rest = c.parts[1:]
            if c.close:
                writer.close()
                await writer.wait_closed()
                return
        else:
            writer.write(b"".join(rest) + NEXT)
            rest = ()
        await writer.drain()


@pytest.fixture(scope="module")
def canned() -> Iterator[fs.RunningServer]:
    with fs.serve(_canned) as server:
        yield server


def exchange(engine: type[Transport], url: str, c: Case) -> tuple[Outcome, Outcome]:
    """The case, then a plain request on the same key, over one connection slot."""

    async def main() -> tuple[Outcome, Outcome]:
        async with engine(max_connections_per_key=1) as transport:  # type: ignore[call-arg]
            first = await transport.send("k", RequestSpec(c.method, f"{url}/case/{c.name}"))
            after = await transport.send("k", RequestSpec("GET", f"{url}/next", timeout=3.0))
            return first, after

    return asyncio.run(main())


@pytest.mark.timeout(30)
@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.__name__)
@pytest.mark.parametrize("c", CASES, ids=lambda c: c.name)
def test_engine_agrees_where_the_references_agree(
    c: Case, engine: type[Transport], canned: fs.RunningServer
) -> None:
    first, after = exchange(engine, canned.url, c)
    assert first.error is not ErrorKind.TIMEOUT, first.message  # nothing waits for more
    if c.agreed and c.h11 is REJECT:
        assert first.error is not None, (first.status, first.body)
    elif c.agreed:
        assert (first.error, first.status, first.body) == (None, *c.h11), first.message
    if first.error is not None or len(c.parts) == 1:
        assert (after.error, after.status, after.body) == (None, 200, b"next"), after.message
    # else: the engine took the crafted first part as a whole response (so did a reference),
    # and what the server sends after the next request is, to it, that request's answer.


@pytest.mark.timeout(30)
@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.__name__)
def test_an_obs_fold_line_is_never_followed_as_a_redirect(
    engine: type[Transport], canned: fs.RunningServer
) -> None:
    async def main() -> Outcome:
        async with engine() as transport:  # type: ignore[call-arg]
            spec = RequestSpec("GET", f"{canned.url}/case/obs_fold_location")
            follow = RequestSpec(spec.method, spec.url, follow_redirects=True)
            return await transport.send("k", follow)

    outcome = asyncio.run(main())
    assert canned.client_ports("/evil") == []
    assert outcome.error is not ErrorKind.TIMEOUT, outcome.message


if __name__ == "__main__":
    for c in CASES:
        print(f"{c.name:32} h11={h11_verdict(c)!r:32.32} llhttp={llhttp_verdict(c)!r:.32}")
