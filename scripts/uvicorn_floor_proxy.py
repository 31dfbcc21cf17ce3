"""The floor of a uvicorn hop, for docs/benchmarks.md (serve: gateway overhead).

Forwards every POST to one agent's ``/message/send`` with latcli's raw client: uvicorn with
httptools and uvloop, as `latcli serve` runs, but no router, no JSON parsing, no metrics. What
`latcli serve` costs beyond this is the gateway's own work.

Usage: uv run python scripts/uvicorn_floor_proxy.py PORT AGENT_URL
(then `latcli bench http://127.0.0.1:PORT --endpoint message --rate 500 -d 10s` beside
`scripts/bench_gateway.py`'s runs, and read the process's CPU time from /proc/PID/stat).
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from latcli.transport.base import RequestSpec
from latcli.transport.raw.transport import RawTransport

PORT, AGENT = int(sys.argv[1]), sys.argv[2]
_transport: RawTransport | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _transport
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if _transport is None:
        _transport = RawTransport(max_connections_per_key=256)
    headers = {"content-type": "application/json"}
    spec = RequestSpec("POST", AGENT + "/message/send", headers, body, 2.0, 1.0)
    out = await _transport.send("agent", spec)
    data = out.body
    length = b"%d" % len(data)
    head = [(b"content-type", b"application/json"), (b"content-length", length)]
    await send({"type": "http.response.start", "status": out.status or 502, "headers": head})
    await send({"type": "http.response.body", "body": data})


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=PORT, log_level="warning", loop="uvloop", http="httptools"
    )
