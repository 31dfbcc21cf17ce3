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

LIMITS = "Limits (what a client can make the gateway hold)"
AccessLogOpt = Annotated[
    bool,
    typer.Option(
        "--access-log",
        help="One line per request on stderr: time, client, method, path, status, ms, agent.",
    ),
]
NoAuthOpt = Annotated[
    bool,
    typer.Option(
        "--no-auth",
        help="Serve on a non-loopback --host without LATCLI_SERVE_TOKEN (anyone who can reach "
        "it may route messages with the agents' credentials).",
    ),
]


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
        str,
        typer.Option(
            help="On SIGTERM/SIGINT, how long in-flight requests may finish; "
            "past it they are answered 503."
        ),
    ] = "10s",
    engine: Annotated[
        str, typer.Option(help="Client to the agents: raw (leanest) or httpx.")
    ] = "raw",
    max_in_flight: Annotated[
        int,
        typer.Option(
            min=1,
            rich_help_panel=LIMITS,
            help="Routed requests under way at once; more are answered 503 overloaded "
            "with Retry-After (counted in /metrics as latcli_gateway_shed_total).",
        ),
    ] = 1024,
    max_connections: Annotated[
        int | None,
        typer.Option(
            min=1,
            rich_help_panel=LIMITS,
            help="Open client connections; more are closed at once after a 503. "
            "Default: half the process's file descriptor limit.",
            show_default=False,
        ),
    ] = None,
    max_head_size: Annotated[
        str,
        typer.Option(
            rich_help_panel=LIMITS,
            help="Request line and headers, e.g. 16KiB, 64k; larger heads are answered 431 "
            "(414 for a long URL).",
        ),
    ] = "16KiB",
    read_timeout: Annotated[
        str,
        typer.Option(
            rich_help_panel=LIMITS,
            help="A request's head and body must arrive within this, from its first byte "
            "(slow clients are answered 408 and closed).",
        ),
    ] = "10s",
    idle_timeout: Annotated[
        str,
        typer.Option(
            rich_help_panel=LIMITS,
            help="A connection with no request under way is closed after this.",
        ),
    ] = "5s",
    max_stream_queue: Annotated[
        str,
        typer.Option(
            rich_help_panel=LIMITS,
            help="A streamed answer's events waiting for a client slow to read, e.g. 1MiB; "
            "past it the client is cut and its call cancelled (counted in /metrics as "
            'latcli_gateway_cut_total{reason="slow_client"}).',
        ),
    ] = "1MiB",
    no_auth: NoAuthOpt = False,
    access_log: AccessLogOpt = False,
    state: StateOpt = None,
    no_state: NoStateOpt = False,
    inventory: InventoryOpt = None,
    cacert: CaCertOpt = None,
    insecure: InsecureOpt = False,
) -> int:
    """Route messages over HTTP with the same router, breakers and health checks as watch.

    POST /route/{type} {"message": TEXT} -> {"agent","reply","latency_ms","attempts"}
    (400 bad body, 404 unknown type, 503 no replica answered or overloaded; errors are JSON
    {"error": {"kind", "message"}}). With "Accept: text/event-stream" the answer is relayed
    as it arrives (SSE events route, the A2A events, chunk, then done or error); a client that
    hangs up cancels the agent's task. GET /agents: the latest watch tick as JSON; GET /metrics:
    Prometheus; GET /health. With LATCLI_SERVE_TOKEN set, every endpoint but /health wants
    "Authorization: Bearer TOKEN"; a --host beyond loopback needs it (or --no-auth).
    SIGTERM drains in-flight requests, saves the routing state and exits 0; SIGINT exits 130.
    Example: `latcli serve --port 8000` then
    `curl -d '{"message":"hi"}' http://127.0.0.1:8000/route/weather`, or streamed:
    `curl -N -H 'accept: text/event-stream' -d '{"message":"hi"}' .../route/assistant`
    """
    import asyncio
    import os
    import sys

    from latcli.cli.runtime import parse_seconds
    from latcli.config.loading import load_inventory
    from latcli.config.selection import select_agents
    from latcli.engines.serve.limits import Limits
    from latcli.engines.serve.options import ServeOptions
    from latcli.engines.serve.run import run_serve

    limits = Limits(
        max_head=_size(max_head_size, "--max-head-size"),
        read_timeout=parse_seconds(read_timeout, "--read-timeout") or 10.0,
        idle_timeout=parse_seconds(idle_timeout, "--idle-timeout") or 5.0,
        max_connections=max_connections,
        max_in_flight=max_in_flight,
        max_stream_queue=_size(max_stream_queue, "--max-stream-queue"),
    )
    opts = ServeOptions(
        host, port, parse_seconds(interval, "--interval"), strategy,
        drain=parse_seconds(drain, "--drain") or 10.0, engine=check_engine(engine),
        state=state, no_state=no_state, verify=tls_verify(cacert, insecure), limits=limits,
        token=os.environ.get("LATCLI_SERVE_TOKEN") or None, no_auth=no_auth,
        access_log=access_log,
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


def _size(text: str, option: str) -> int:
    from latcli.engines.serve.limits import parse_size

    try:
        size = parse_size(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None
    if size < 1024:
        raise typer.BadParameter("must be at least 1KiB", param_hint=option)
    return size
