"""Real misbehaving servers on 127.0.0.1, for transport tests.

Each ``*_server()`` is a context manager yielding a :class:`RunningServer`
whose asyncio loop runs in a background thread; leaving the ``with`` block
closes the listener, cancels every open connection and joins the thread.
Nothing here is mocked: clients talk to a real socket on an ephemeral port.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

MIB = 1 << 20
_CHUNK = b"x" * (64 * 1024)  # one buffer reused for every chunk of big bodies


@dataclass
class RunningServer:
    """A live server: its address and how many TCP connections it accepted."""

    host: str
    port: int
    scheme: str = "http"
    connections: int = 0
    requests: list[tuple[int, str]] = field(default_factory=list)  # (client port, path)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def client_ports(self, path_prefix: str) -> list[int]:
        """Client ports of the parsed requests whose path starts with ``path_prefix``.

        Tests filter on their own paths because other processes on a shared
        machine may connect to any ephemeral port, ours included.
        """
        with self._lock:
            return [port for port, path in self.requests if path.startswith(path_prefix)]

    def _accepted(self) -> None:
        with self._lock:
            self.connections += 1

    def _record(self, client_port: int, path: str) -> None:
        with self._lock:
            self.requests.append((client_port, path))


# The server and client port of the connection a handler task serves.
_connection: contextvars.ContextVar[tuple[RunningServer, int]] = contextvars.ContextVar("conn")


@dataclass
class Request:
    """A parsed HTTP/1.1 request (header names lowercased, in arrival order)."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request; None when the client closed the connection first."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = [_split_header(line) for line in lines[1:] if line]
    length = int(dict(headers).get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    server, client_port = _connection.get()
    server._record(client_port, path)
    return Request(method, path, headers, body)


def _split_header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


def response_bytes(
    status: int, body: bytes, content_type: str = "text/plain", extra: str = ""
) -> bytes:
    """A complete keep-alive HTTP/1.1 response."""
    head = (
        f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


@contextlib.contextmanager
def serve(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> Iterator[RunningServer]:
    """Run ``handler`` for every connection until the block exits."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}
    thread = threading.Thread(
        target=_run_loop, args=(loop, handler, ssl_context, box, ready), daemon=True
    )
    thread.start()
    if not ready.wait(5) or "error" in box:
        raise RuntimeError(f"server did not start: {box.get('error')}")
    info = box["server"]
    assert isinstance(info, RunningServer)
    try:
        yield info
    finally:
        stop = box["stop"]
        assert isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)


def _run_loop(
    loop: asyncio.AbstractEventLoop,
    handler: Handler,
    ssl_context: ssl.SSLContext | None,
    box: dict[str, object],
    ready: threading.Event,
) -> None:
    try:
        loop.run_until_complete(_main(handler, ssl_context, box, ready))
    except BaseException as exc:  # surfaced to the starting thread
        box["error"] = exc
        ready.set()
    finally:
        loop.close()


async def _main(
    handler: Handler,
    ssl_context: ssl.SSLContext | None,
    box: dict[str, object],
    ready: threading.Event,
) -> None:
    tasks: set[asyncio.Task[Any]] = set()
    scheme = "https" if ssl_context else "http"

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info._accepted()
        _connection.set((info, writer.get_extra_info("peername")[1]))
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client hung up: expected for most faults
        except asyncio.CancelledError:
            pass  # our own shutdown; re-raising makes asyncio log it as an error
        finally:
            tasks.discard(task)
            writer.transport.abort()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=ssl_context)
    port = server.sockets[0].getsockname()[1]
    info = RunningServer("127.0.0.1", port, scheme)
    box["server"], box["stop"] = info, asyncio.Event()
    ready.set()
    stop = box["stop"]
    assert isinstance(stop, asyncio.Event)
    await stop.wait()
    server.close()
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await server.wait_closed()


# --- well-behaved HTTP ---------------------------------------------------------------


async def _keepalive(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    respond: Callable[[Request], bytes],
) -> None:
    while (request := await read_request(reader)) is not None:
        writer.write(respond(request))
        await writer.drain()


def _echo(request: Request) -> bytes:
    payload = {
        "method": request.method,
        "path": request.path,
        "headers": request.headers,
        "body": request.body.decode("latin-1"),
    }
    return response_bytes(200, json.dumps(payload).encode(), "application/json")


def echo_server() -> contextlib.AbstractContextManager[RunningServer]:
    """200 with the request as JSON: method, path, headers ``[[name, value], ...]``, body."""
    return serve(lambda r, w: _keepalive(r, w, _echo))


def ok_server(body: bytes = b'{"ok": true}') -> contextlib.AbstractContextManager[RunningServer]:
    """200 with a fixed JSON body, keep-alive."""
    reply = response_bytes(200, body, "application/json")
    return serve(lambda r, w: _keepalive(r, w, lambda _: reply))


def not_json_server() -> contextlib.AbstractContextManager[RunningServer]:
    """200 whose body is HTML, not JSON."""
    reply = response_bytes(200, b"<html><body>502 upstream</body></html>", "text/html")
    return serve(lambda r, w: _keepalive(r, w, lambda _: reply))


def _redirect(request: Request) -> bytes:
    if request.path == "/target":
        return response_bytes(200, b"arrived")
    return response_bytes(302, b"", extra="location: /target\r\n")


def redirect_server() -> contextlib.AbstractContextManager[RunningServer]:
    """302 to ``/target`` for every path but ``/target``, which answers 200 ``arrived``."""
    return serve(lambda r, w: _keepalive(r, w, _redirect))


# --- faults ---------------------------------------------------------------------------


@contextlib.contextmanager
def refused_port() -> Iterator[str]:
    """URL of a port that refuses connections.

    The port stays bound (not listening) for the block, so no other process can
    take it meanwhile; Linux answers a SYN to it with RST.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    # SO_LINGER on with timeout 0: close() sends RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def reset_server() -> contextlib.AbstractContextManager[RunningServer]:
    """Reads the request, then resets the connection (RST via SO_LINGER 0)."""
    return serve(_reset)


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await read_request(reader) is not None:
        pass
    await asyncio.Event().wait()  # half-closed clients get no answer either


def silent_server() -> contextlib.AbstractContextManager[RunningServer]:
    """Accepts and reads, never answers."""
    return serve(_silent)


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe garbage \x01\x02\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.5)  # give the client time to read before the close


def not_http_server() -> contextlib.AbstractContextManager[RunningServer]:
    """Answers any request with bytes that are not HTTP."""
    return serve(_garbage)


def _big_head(size: int, content_length: bool) -> bytes:
    framing = f"content-length: {size}" if content_length else "transfer-encoding: chunked"
    return f"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n{framing}\r\n\r\n".encode()


async def _big(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int, content_length: bool
) -> None:
    await read_request(reader)
    writer.write(_big_head(size, content_length))
    frame = _CHUNK if content_length else b"%x\r\n%s\r\n" % (len(_CHUNK), _CHUNK)
    for _ in range(size // len(_CHUNK)):
        writer.write(frame)
        await writer.drain()  # bounded server memory: one chunk in flight
    if not content_length:
        writer.write(b"0\r\n\r\n")
    await writer.drain()


def big_body_server(
    size: int = 64 * MIB, content_length: bool = False
) -> contextlib.AbstractContextManager[RunningServer]:
    """200 with a ``size``-byte body in 64 KiB chunks; chunked framing unless ``content_length``."""
    return serve(lambda r, w: _big(r, w, size, content_length))


async def _slow_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pieces: int, gap: float
) -> None:
    while await read_request(reader) is not None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % pieces)
        for _ in range(pieces):
            await writer.drain()
            await asyncio.sleep(gap)
            writer.write(b".")
        await writer.drain()


def slow_body_server(
    pieces: int = 20, gap: float = 0.1
) -> contextlib.AbstractContextManager[RunningServer]:
    """Headers at once, then one body byte every ``gap`` seconds (``pieces * gap`` in all).

    Each gap is shorter than any sane per-read timeout, so only a bound on the
    whole attempt stops it early.
    """
    return serve(lambda r, w: _slow_body(r, w, pieces, gap))


@contextlib.contextmanager
def blackhole_port() -> Iterator[str]:
    """URL whose TCP connect hangs: a listener with a full backlog that never accepts.

    With the accept queue full Linux drops further SYNs silently (the client
    retransmits), so only a connect timeout ends the attempt.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(4):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            fillers.append(filler)
            filler.connect_ex(address)
        yield f"http://127.0.0.1:{address[1]}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for 127.0.0.1 that is its own CA."""

    certfile: str
    keyfile: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certfile, self.keyfile)
        return context


def make_tls_files(directory: str) -> TlsFiles:
    """Write a fresh self-signed cert (SAN IP 127.0.0.1) and key into ``directory``."""
    import datetime
    import ipaddress
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "latcli test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = Path(directory, "cert.pem"), Path(directory, "key.pem")
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TlsFiles(str(certfile), str(keyfile))


def tls_ok_server(files: TlsFiles) -> contextlib.AbstractContextManager[RunningServer]:
    """Like :func:`ok_server`, over TLS with ``files``' certificate."""
    reply = response_bytes(200, b'{"ok": true}', "application/json")
    return serve(lambda r, w: _keepalive(r, w, lambda _: reply), files.server_context())


def delay_server(delay_s: float) -> contextlib.AbstractContextManager[RunningServer]:
    """200 after ``delay_s`` seconds (asyncio's timer: about 1 ms late), keep-alive."""
    reply = response_bytes(200, b'{"ok": true}', "application/json")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            await asyncio.sleep(delay_s)
            writer.write(reply)
            await writer.drain()

    return serve(handler)


# --- agents for the gateway's limits (tests/engines/test_serve_limits.py) --------------------------


@dataclass
class SlowAgent:
    """A plain http agent that takes ``delay`` s to answer a message, and what became of each.

    ``outcomes`` gets ``"answered"`` when it replied, ``"cancelled"`` when the caller closed
    the connection first: a cancelled routed call is observed here, at the agent.
    """

    server: RunningServer
    outcomes: list[str]

    @property
    def url(self) -> str:
        return self.server.url


async def _slow_agent(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, outcomes: list[str]
) -> None:
    while (request := await read_request(reader)) is not None:
        if request.method == "GET":  # the health check answers at once
            writer.write(response_bytes(200, b'{"status": "ok"}', "application/json"))
            await writer.drain()
            continue
        try:
            early = await asyncio.wait_for(reader.read(1), delay)
        except asyncio.TimeoutError:
            outcomes.append("answered")
            writer.write(response_bytes(200, b'{"reply": "slow"}', "application/json"))
            await writer.drain()
            continue
        outcomes.append("cancelled" if early == b"" else "pipelined")
        return


@contextlib.contextmanager
def slow_agent_server(delay: float) -> Iterator[SlowAgent]:
    """A plain http agent: ``GET`` anything 200 at once, ``POST`` 200 after ``delay`` s."""
    outcomes: list[str] = []
    with serve(lambda r, w: _slow_agent(r, w, delay, outcomes)) as server:
        yield SlowAgent(server, outcomes)


def deep_json_server(depth: int = 100_000) -> contextlib.AbstractContextManager[RunningServer]:
    """200 to everything with JSON nested ``depth`` deep (``[[[...]]]``): card and reply alike."""
    reply = response_bytes(200, b"[" * depth + b"]" * depth, "application/json")
    return serve(lambda r, w: _keepalive(r, w, lambda _: reply))
