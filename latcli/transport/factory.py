"""The one place every command picks its HTTP engine: :func:`choose_engine`'s table.

* ``httpx``: the reference engine (HTTP/2-capable; every phase timed).
* ``raw``: latcli's own lean HTTP/1.1 client, framing by llhttp (no HTTP/2, proxies or
  decompression), ~10x less CPU per request than httpx (docs/benchmarks.md "Strict framing").
* ``auto``: per command, httpx for few agents and raw from :data:`RAW_FROM` agents on.

There was an aiohttp engine: removed, see docs/benchmarks.md "Strict framing".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from latcli.transport.base import Transport

Engine = Literal["auto", "httpx", "raw"]
NAMED_ENGINES: tuple[Engine, ...] = ("raw", "httpx")  # what bench measures with: no "auto"
ENGINES: tuple[Engine, ...] = ("auto", "httpx", "raw")
Use = Literal["probe", "watch", "send", "serve", "bench"]

# What ``auto`` means per command: httpx below this many agents, raw from it on (0: always raw,
# None: always httpx). Figures behind each line: docs/benchmarks.md, the section named.
RAW_FROM: Mapping[Use, int | None] = {
    "probe": 100,  # below it httpx's cost is lost in start-up ("probe over 1,000 agents")
    "watch": 10,  # from it httpx's CPU per check stops fitting a tick ("watch")
    "send": None,  # one message: every phase timed, HTTP/2 where offered
    "serve": 0,  # the gateway: least CPU per routed call ("serve")
    "bench": 0,  # the load generator ("bench: speed and honesty against peers")
}
FORCE_ENV = "LATCLI_TRANSPORT"  # forces what auto picks (benchmark scripts compare engines)


def choose_engine(
    engine: Engine, use: Use, agents: int = 0, env: Mapping[str, str] = os.environ
) -> Literal["httpx", "raw"]:
    """The engine a command runs: an explicit one as asked, ``auto`` by :data:`RAW_FROM`."""
    if engine != "auto":
        return engine
    forced = env.get(FORCE_ENV, "")
    if forced in ("httpx", "raw"):
        return "raw" if forced == "raw" else "httpx"
    raw_from = RAW_FROM[use]
    return "raw" if raw_from is not None and agents >= raw_from else "httpx"


def make_transport(
    engine: Engine = "auto",
    agents: int = 0,
    *,
    use: Use = "probe",
    max_connections_per_key: int = 8,
    phases: bool = True,
    verify: bool | str = True,
) -> Transport:
    """A new transport for ``use`` (the caller closes it). ``phases``: accepted for its
    callers; no engine left pays for timing phases, so none skips it. ``verify``: True (the system's
    ``$SSL_CERT_FILE`` or certifi), False (``--insecure``) or a CA file or directory."""
    if choose_engine(engine, use, agents) == "raw":
        from latcli.transport.raw.transport import RawTransport

        return RawTransport(max_connections_per_key=max_connections_per_key, verify=verify)
    from latcli.transport.httpx_engine import HttpxTransport

    return HttpxTransport(max_connections_per_key=max_connections_per_key, verify=verify)
