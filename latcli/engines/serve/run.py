"""One ``latcli serve`` run: the gateway, its background health checks, and an orderly stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

from latcli.config.model import Agent, Inventory
from latcli.core.errors import ExitCode
from latcli.engines import gctune
from latcli.engines.serve.auth import client_token
from latcli.engines.serve.gateway import Gateway
from latcli.engines.serve.metrics import GatewayMetrics
from latcli.engines.serve.options import ServeOptions
from latcli.engines.serve.server import GatewayServer, bind, settle, url_of, uvicorn_config
from latcli.engines.serve.tasks import supervise
from latcli.engines.watch.loop import Watch
from latcli.engines.watch.run import tick_interval
from latcli.routing.state_sqlite import open_store
from latcli.transport.base import Transport
from latcli.transport.factory import Engine, make_transport

# Connections to one agent. A bulkhead, not a throttle: by Little's law 500 req/s at 20 ms
# keep 10 busy, and a tail of 200 ms 100; the CLI commands' 8 would queue the gateway's calls.
AGENT_CONNECTIONS = 256


def gateway_transport(engine: Engine = "raw", verify: bool | str = True) -> Transport:
    """The gateway's client to the agents (transport/factory.py's choice for "serve");
    AGENT_CONNECTIONS per agent."""
    return make_transport(
        engine,
        use="serve",
        max_connections_per_key=AGENT_CONNECTIONS,
        phases=False,
        verify=verify,
    )


async def run_serve(
    inv: Inventory,
    agents: list[Agent],
    opts: ServeOptions,
    warn: Callable[[str], None],
    *,
    transport: Transport | None = None,
) -> ExitCode:
    """Serve until SIGTERM/SIGINT; the state is saved and everything closed after.

    Exit code: 0 after SIGTERM (an orderly stop), 130 after SIGINT (DESIGN §3: interrupted).
    """
    token = client_token(opts, warn)
    store = open_store(opts.state, enabled=not opts.no_state, env=os.environ, warn=warn)
    # each part closes when the gateway stops (or fails to start), the last made first
    async with contextlib.AsyncExitStack() as stack:
        if transport is None:
            transport = gateway_transport(opts.engine, opts.verify)
            stack.push_async_callback(transport.aclose)
        metrics = GatewayMetrics(agents=agents)
        watch = Watch(
            agents,
            interval=tick_interval(agents, opts.interval),
            strategy=opts.strategy or inv.routing.strategy,
            routing=inv.routing,
            inventory=str(inv.path) if inv.path else "(ad-hoc agents)",
            transport=transport,
            store=store,
            on_check=metrics.watch.observe_check,
            fixed_interval=opts.interval is not None,
            canaries=False,  # the gateway routes; canaries are watch's (one model call per every)
        )
        stack.push_async_callback(watch.aclose)
        gateway = Gateway(watch.router, metrics, opts.limits, token, peek=watch.peek)
        stack.push_async_callback(gateway.settle_cancels)
        sock = stack.enter_context(bind(opts.host, opts.port))

        def started() -> None:
            warn(f"latcli serve: {url_of(sock)} ({len(agents)} agents, {_types(agents)})")
            # Full collections walk every module object: tens of ms with the loop stopped (gctune).
            stack.callback(gctune.restore, gctune.settle())

        server = GatewayServer(uvicorn_config(gateway, opts, warn), started)
        checks = asyncio.create_task(
            supervise(
                "health checks",
                lambda: watch.run(gateway.sink),
                warn,
                on_restart=metrics.restarts.labels("health_checks").inc,
            )
        )
        stack.push_async_callback(_stop, checks)
        await server.serve(sockets=[sock])
        await settle(server)
    warn(_final_line(server.stopped_by, gateway.cut_by_drain, opts.drain))
    return ExitCode.INTERRUPTED if server.stopped_by == signal.SIGINT else ExitCode.OK


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _types(agents: list[Agent]) -> str:
    n = len({a.type for a in agents})
    return f"{n} type{'' if n == 1 else 's'}"


def _final_line(stopped_by: int | None, cut: int, drain: float) -> str:
    how = "interrupted" if stopped_by == signal.SIGINT else "stopped"
    if cut:
        calls = f"{cut} call{'' if cut == 1 else 's'}"
        return (
            f"latcli serve: {how}; the {drain:g}s drain ran out: {calls} cut "
            "(answered 503), state saved"
        )
    return f"latcli serve: {how}; in-flight requests drained, state saved"


__all__ = ["gateway_transport", "run_serve"]
