"""``latcli demo``: run the demo fleet and watch it; ``latcli demo fault`` changes an agent."""

from __future__ import annotations

from typing import Annotated

import typer

from latcli.cli.options import InventoryOpt

demo_app = typer.Typer(
    help="Start the demo fleet of agents.yaml on loopback and watch it (Ctrl-C stops it).",
    no_args_is_help=False,
    invoke_without_command=True,
    rich_markup_mode=None,
)


@demo_app.callback()
def demo(
    ctx: typer.Context,
    inventory: InventoryOpt = None,
    interval: Annotated[
        str, typer.Option("--interval", help="Time between health checks of each agent, e.g. 2s.")
    ] = "2s",
) -> int:
    """Start every agent of the inventory (default: the demo fleet) as a local process,
    print where each listens, then open `latcli watch` on the fleet. Ctrl-C stops every agent.

    Change an agent while it runs: `latcli demo fault weather-1 --latency 300ms --errors 20%`.
    """
    if ctx.invoked_subcommand is not None:
        return 0
    from latcli.demo.run import run_demo
    from latcli.inventory import load_inventory
    from latcli.units import parse_duration

    try:
        every = parse_duration(interval)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--interval") from exc
    code = run_demo(load_inventory(inventory), every)
    raise typer.Exit(code)


@demo_app.command()
def fault(
    agent: Annotated[str, typer.Argument(help="Agent id from the inventory.")],
    latency: Annotated[
        str | None,
        typer.Option(help="New latency: 300ms, 'normal 50ms 10ms' or 'lognormal 20ms 0.6'."),
    ] = None,
    errors: Annotated[str | None, typer.Option(help="Error rate, e.g. 20%.")] = None,
    down: Annotated[
        bool | None, typer.Option("--down/--up", help="Answer 503 to everything, or recover.")
    ] = None,
    inventory: InventoryOpt = None,
) -> int:
    """Change a running demo agent's latency, error rate or availability."""
    import asyncio
    import json

    from latcli.demo.control import set_fault
    from latcli.inventory import load_inventory, select_agents
    from latcli.units import parse_percent

    target = select_agents(load_inventory(inventory), [agent])
    rate = None
    if errors is not None:
        try:
            rate = parse_percent(errors)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--errors") from exc
    for a in target:
        state = asyncio.run(set_fault(a.url, latency=latency, errors=rate, down=down))
        print(f"{a.id}: {json.dumps(state)}")
    return 0
