"""The one place every command picks its load engine (probe, watch, serve, bench).

Measured on the project's 2-core machine (docs/benchmarks.md; scripts/bench_engines.py and the
side-by-side runs of the raw engine), CPU per request: httpx ~1-2 ms under load, aiohttp
~250-375 µs, raw ~85-110 µs.

* ``httpx``: the reference engine (HTTP/2-capable; every phase timed).
* ``aiohttp``: a mature alternative, 3x raw's CPU.
* ``raw``: latcli's own lean HTTP/1.1 client (no HTTP/2, proxies or decompression): the load
  generator's and the gateway's default.
* ``auto``: httpx for small fleets (its cost is lost in process start-up), raw from
  :data:`LARGE_FLEET` agents on, where CPU decides whether 1,000 checks fit in a timeout
  (watch over 1,000 agents at 1 s: 40 % of a core with raw, 56 % with aiohttp).
"""

from __future__ import annotations

from typing import Literal

from latcli.transport.base import Transport

Engine = Literal["auto", "httpx", "aiohttp", "raw"]
ENGINES: tuple[Engine, ...] = ("auto", "httpx", "aiohttp", "raw")
LARGE_FLEET = 100  # agents


def make_transport(
    engine: Engine = "auto",
    agents: int = 0,
    *,
    max_connections_per_key: int = 8,
    phases: bool = True,
    verify: bool | str = True,
) -> Transport:
    """A new transport (the caller closes it). ``phases=False``: only total times are needed,
    so engines that trace phases at a cost (aiohttp) skip it. ``verify``: TLS certificates
    checked against the default trust store (True), a CA file (its path), or not (False)."""
    if engine == "auto":
        engine = "raw" if agents >= LARGE_FLEET else "httpx"
    if engine == "raw":
        from latcli.transport.raw_transport import RawTransport

        return RawTransport(max_connections_per_key=max_connections_per_key, verify=verify)
    if engine == "aiohttp":
        from latcli.transport.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(
            max_connections_per_key=max_connections_per_key, phases=phases, verify=verify
        )
    from latcli.transport.httpx_transport import HttpxTransport

    return HttpxTransport(max_connections_per_key=max_connections_per_key, verify=verify)
