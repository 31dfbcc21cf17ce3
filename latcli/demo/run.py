"""The engine behind ``latcli demo``: start the fleet, show where it listens, watch it."""

from __future__ import annotations

import asyncio
import sys

from latcli.errors import ExitCode
from latcli.inventory import Inventory


def run_demo(inv: Inventory, interval: float) -> int:
    """Run until Ctrl-C; every agent process is stopped on the way out, whatever happens.

    The watch saves the routing state as usual, so a ``latcli send`` in another terminal
    routes on what the demo's health checks learned.
    """
    from latcli.demo.fleet import Fleet
    from latcli.render.console import stderr_console, stdout_console
    from latcli.render.demo_view import fleet_table

    out, err = stdout_console(), stderr_console()
    with Fleet(list(inv.agents)) as fleet:
        out.print(fleet_table(fleet.describe()))
        err.print(
            f"watching every {interval:g}s · change an agent with"
            " `latcli demo fault AGENT --latency 300ms | --errors 20% | --down`"
            " · Ctrl-C stops every agent"
        )
        try:
            _watch(inv, interval)
        except KeyboardInterrupt:
            err.print(f"stopping {len(fleet.pids)} agents")
            return ExitCode.INTERRUPTED
    return ExitCode.OK


def _watch(inv: Inventory, interval: float) -> None:
    from latcli.render.watch_live import LiveWatch
    from latcli.watch import WatchOptions, run_watch

    def warn(text: str) -> None:
        print(text, file=sys.stderr)

    # Always the human view: the demo is a show, even piped through `tee`.
    with LiveWatch() as live:
        asyncio.run(run_watch(inv, inv.agents, WatchOptions(interval=interval), live.show, warn))
