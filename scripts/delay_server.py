"""A loopback HTTP/1.1 server that answers every request after exactly D ms (default 20).

Usage: python scripts/delay_server.py [--delay-ms 20] PORTFILE — binds 127.0.0.1 on a free
port and writes it to PORTFILE when ready. Used by scripts/bench_peers.sh (test b: the
overhead of latcli against wrk on a target of known latency).

One thread per connection, keep-alive. The answer is sent when the request's complete header
has been read plus D ms, timed with ``time.sleep`` (clock_nanosleep, well under 0.1 ms late),
not an event loop's timer (epoll rounds its timeout up to whole milliseconds). Ten concurrent
connections are ten threads each sleeping, so nothing queues behind anything else.
``serve`` is shared with scripts/stall_server.py.
"""

from __future__ import annotations

import argparse
import socket
import socketserver
import time
from collections.abc import Callable
from pathlib import Path

BODY = b'{"status":"ok"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)

# When to answer a request whose header was complete at ``arrival`` (time.monotonic()).
ReleaseAt = Callable[[float], float]


def serve(release_at: ReleaseAt, portfile: str) -> None:
    """Serve until killed; every request is answered at ``release_at(arrival)``."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock: socket.socket = self.request
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        chunk = sock.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                arrival = time.monotonic()
                _, buffer = buffer.split(b"\r\n\r\n", 1)  # GET requests: no body
                wait = release_at(arrival) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                try:
                    sock.sendall(RESPONSE)
                except OSError:
                    return

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 1024

    with Server(("127.0.0.1", 0), Handler) as server:
        Path(portfile).write_text(f"{server.server_address[1]}\n")
        server.serve_forever(poll_interval=0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("portfile")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    delay = args.delay_ms / 1000.0
    serve(lambda arrival: arrival + delay, args.portfile)


if __name__ == "__main__":
    main()
