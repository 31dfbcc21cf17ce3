"""The engine behind ``latcli demo``: start the fleet, show where it listens, probe it in a loop."""

from __future__ import annotations

import asyncio
import time

from latcli.errors import ExitCode
from latcli.inventory import Inventory


def run_demo(inv: Inventory, interval: float) -> int:
    """Run until Ctrl-C; every agent process is stopped on the way out, whatever happens."""
    from latcli.demo.fleet import Fleet
    from latcli.render.console import stderr_console, stdout_console
    from latcli.render.demo_view import fleet_table

    out, err = stdout_console(), stderr_console()
    with Fleet(list(inv.agents)) as fleet:
        out.print(fleet_table(fleet.describe()))
        err.print("probing every", f"{interval:g}s", "· Ctrl-C stops every agent")
        try:
            asyncio.run(_probe_loop(inv, interval))
        except KeyboardInterrupt:
            err.print(f"stopping {len(fleet.pids)} agents")
            return ExitCode.INTERRUPTED
    return ExitCode.OK


async def _probe_loop(inv: Inventory, interval: float) -> None:
    from rich.live import Live

    from latcli.probe import probe_agents
    from latcli.protocols import ProtocolClient
    from latcli.render.console import stdout_console
    from latcli.render.probe_view import probe_round
    from latcli.transport.httpx_transport import HttpxTransport

    console = stdout_console()
    async with HttpxTransport() as transport:
        client = ProtocolClient(transport)
        with Live(console=console, auto_refresh=False, transient=False) as live:
            while True:
                started = time.monotonic()
                report = await probe_agents(client, inv.agents)
                view = probe_round(report, time.strftime("%H:%M:%S"))
                if console.is_terminal:
                    live.update(view, refresh=True)
                else:
                    console.print(view)
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
