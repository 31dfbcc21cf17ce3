"""The one place every command picks its load engine (probe, watch, serve, bench).

Measured on the project's 2-core machine (docs/benchmarks.md; scripts/bench_engines.py and the
side-by-side runs of the raw engine), CPU per request: httpx ~1-2 ms under load, raw ~85-110 µs.

* ``httpx``: the reference engine (HTTP/2-capable; every phase timed).
* ``raw``: latcli's own lean HTTP/1.1 client, framing by llhttp (no HTTP/2, proxies or
  decompression): the load generator's and the gateway's default.
* ``auto``: httpx for small fleets (its cost is lost in process start-up), raw from
  :data:`LARGE_FLEET` agents on, where CPU decides whether 1,000 checks fit in a timeout.

There was an aiohttp engine: ~7x raw's CPU per request, lenient framing, and better at nothing
measured (docs/benchmarks.md, "Strict framing"); removed.
"""

from __future__ import annotations

from typing import Literal

from latcli.transport.base import Transport

Engine = Literal["auto", "httpx", "raw"]
ENGINES: tuple[Engine, ...] = ("auto", "httpx", "raw")
LARGE_FLEET = 100  # agents


def make_transport(
    engine: Engine = "auto",
    agents: int = 0,
    *,
    max_connections_per_key: int = 8,
    phases: bool = True,
    verify: bool | str = True,
) -> Transport:
    """A new transport (the caller closes it). ``phases``: accepted for its callers; no engine
    left pays for timing phases, so none skips it. ``verify``: True (the system's
    ``$SSL_CERT_FILE`` or certifi), False (``--insecure``) or a CA file or directory."""
    if engine == "auto":
        engine = "raw" if agents >= LARGE_FLEET else "httpx"
    if engine == "raw":
        from latcli.transport.raw.transport import RawTransport

        return RawTransport(max_connections_per_key=max_connections_per_key, verify=verify)
    from latcli.transport.httpx_engine import HttpxTransport

    return HttpxTransport(max_connections_per_key=max_connections_per_key, verify=verify)
