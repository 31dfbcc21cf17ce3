"""A tiny HTTP/1.1 server listening on N loopback ports at once (for the 1,000-agent probe).

Usage: python scripts/many_ports_server.py N PORTFILE — writes the ports, one a line, when ready.
Answers every request with 200 and a small JSON body; keeps connections alive.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

BODY = b'{"status":"ok"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class Responder(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]


async def main(n: int, portfile: str) -> None:
    loop = asyncio.get_running_loop()
    ports = []
    for _ in range(n):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = await loop.create_server(Responder, sock=sock, backlog=128)
        ports.append(server.sockets[0].getsockname()[1])
    Path(portfile).write_text("\n".join(map(str, ports)) + "\n")  # noqa: ASYNC240 (once, at start)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
