"""``latcli probe``: health, phase timings and discovery of every (or the named) agent."""

from __future__ import annotations

from typing import Annotated

import typer

from latcli.cli.options import EngineOpt, InventoryOpt, JsonOpt, SelectorsArg, check_engine


def probe(
    agents: SelectorsArg = None,
    count: Annotated[
        int,
        typer.Option(
            "--requests",
            "-n",
            "--count",
            min=1,
            max=10000,
            help="Health checks (requests) per agent; from 2 on, p50/p99/min/max.",
        ),
    ] = 1,
    inventory: InventoryOpt = None,
    json_out: JsonOpt = False,
    engine: EngineOpt = "auto",
) -> int:
    """Probe agents concurrently: health latency by phase (connect, TLS, first byte, total),
    A2A card discovery, error kind. Exits 1 if any probed agent is unhealthy.

    Examples: `latcli probe` · `latcli probe weather -n 20` · `latcli probe http://127.0.0.1:8001`
    """
    import asyncio

    from latcli.cli.runtime import is_demo_fleet
    from latcli.engine import run_probe
    from latcli.errors import ExitCode
    from latcli.inventory import load_inventory, select_agents

    kind = check_engine(engine)
    inv = load_inventory(inventory)
    chosen = select_agents(inv, agents or [])
    report = asyncio.run(run_probe(chosen, count, kind))
    if json_out:
        from latcli.render.probe_json import probe_json

        print(probe_json(report))
    else:
        from latcli.render.console import stdout_console
        from latcli.render.probe_view import probe_summary, probe_table

        console = stdout_console()
        console.print(probe_table(report, count))
        console.print(probe_summary(report, is_demo_fleet(inv)))
    return ExitCode.OK if report.ok else ExitCode.FAILED
