"""The one place a command picks its load engine.

``httpx`` is the default engine (HTTP/2-capable, the reference for the conformance suite);
``aiohttp`` costs 2.5x less CPU per request and holds 7x the rate (docs/benchmarks.md,
scripts/bench_engines.py). ``auto`` takes aiohttp from :data:`LARGE_FLEET` agents on, where that
CPU decides whether 1,000 checks fit in a health timeout.
"""

from __future__ import annotations

from typing import Literal

from latcli.transport.base import Transport

Engine = Literal["auto", "httpx", "aiohttp", "raw"]
ENGINES: tuple[Engine, ...] = ("auto", "httpx", "aiohttp", "raw")
LARGE_FLEET = 100  # agents; below this either engine's cost is lost in process start-up


def make_transport(engine: Engine = "auto", agents: int = 0) -> Transport:
    """A new transport of ``engine`` (``auto``: by fleet size). The caller closes it."""
    if engine == "raw":
        from latcli.transport.raw_transport import RawTransport

        return RawTransport()
    if engine == "aiohttp" or (engine == "auto" and agents >= LARGE_FLEET):
        from latcli.transport.aiohttp_transport import AiohttpTransport

        return AiohttpTransport()
    from latcli.transport.httpx_transport import HttpxTransport

    return HttpxTransport()
