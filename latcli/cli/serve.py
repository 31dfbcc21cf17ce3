"""``latcli serve``: the Router as an HTTP gateway, health-checked in the background."""

from __future__ import annotations

from typing import Annotated

import typer

from latcli.cli.options import (
    CaCertOpt,
    InsecureOpt,
    InventoryOpt,
    NoStateOpt,
    SelectorsArg,
    StateOpt,
    check_engine,
    tls_verify,
)


def serve(
    agents: SelectorsArg = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")
    ] = 8000,
    interval: Annotated[
        str | None,
        typer.Option(
            help="Time between health checks and ticks, e.g. 2s. Default: health.interval."
        ),
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="Routing strategy. Default: the inventory's.")
    ] = None,
    drain: Annotated[
        str, typer.Option(help="On SIGTERM/SIGINT, how long in-flight requests may finish.")
    ] = "10s",
    engine: Annotated[
        str, typer.Option(help="Client to the agents: raw (leanest) or httpx.")
    ] = "raw",
    state: StateOpt = None,
    no_state: NoStateOpt = False,
    inventory: InventoryOpt = None,
    cacert: CaCertOpt = None,
    insecure: InsecureOpt = False,
) -> int:
    """Route messages over HTTP with the same router, breakers and health checks as watch.

    POST /route/{type} {"message": TEXT} -> {"agent","reply","latency_ms","attempts"}
    (400 bad body, 404 unknown type, 503 no replica answered; errors are JSON with a reason).
    GET /agents: the latest watch tick as JSON; GET /metrics: Prometheus; GET /health.
    SIGTERM drains in-flight requests, saves the routing state and exits 0; SIGINT exits 130.
    Example: `latcli serve --port 8000` then
    `curl -d '{"message":"hi"}' http://127.0.0.1:8000/route/weather`
    """
    import asyncio
    import sys

    from latcli.cli.runtime import parse_seconds
    from latcli.inventory import load_inventory, select_agents
    from latcli.serve import ServeOptions, run_serve

    opts = ServeOptions(
        host, port, parse_seconds(interval, "--interval"), strategy,
        drain=parse_seconds(drain, "--drain") or 10.0, engine=check_engine(engine),
        state=state, no_state=no_state, verify=tls_verify(cacert, insecure),
    )  # fmt: skip
    inv = load_inventory(inventory)
    chosen = select_agents(inv, agents or [], None)

    def warn(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    try:  # libuv's loop: the gateway's per-request loop work is about half of asyncio's
        import uvloop
    except ImportError:  # not built for this platform (Windows): the standard loop
        return asyncio.run(run_serve(inv, list(chosen), opts, warn))
    return uvloop.run(run_serve(inv, list(chosen), opts, warn))
