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

import fault_servers as fs
import h11
import httptools
import pytest
from framing_cases import CASES, NEXT, REJECT, Case, Verdict

from latcli.core.errors import ErrorKind
from latcli.transport.base import Outcome, RequestSpec, Transport
from latcli.transport.httpx_engine import HttpxTransport
from latcli.transport.raw.transport import RawTransport

ENGINES = [HttpxTransport, RawTransport]

BY_NAME = {c.name: c for c in CASES}


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
