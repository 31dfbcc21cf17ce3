"""``latcli demo``: run the demo fleet and watch it; ``latcli demo fault`` changes an agent."""

from __future__ import annotations

from typing import Annotated

import typer

from latcli.cli.options import InventoryOpt, JsonOpt

demo_app = typer.Typer(  # help: the callback's docstring, examples included
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
    chaos: Annotated[
        bool,
        typer.Option(
            "--chaos",
            help="Degrade one agent and bring it back on a schedule: slow (10× latency),"
            " then failing (503), then healthy, repeating; the start line shows the times.",
        ),
    ] = False,
    chaos_agent: Annotated[
        str | None,
        typer.Option(
            help="The agent --chaos degrades. Default: the first whose type has another"
            " replica (weather-1 in the demo fleet).",
            show_default=False,
        ),
    ] = None,
    chaos_period: Annotated[
        str | None,
        typer.Option(
            help="Length of one --chaos cycle, e.g. 30s (default 75s); every phase keeps"
            " its share.",
            show_default=False,
        ),
    ] = None,
    chaos_rate: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Messages a second --chaos routes to the agent's type through watch's"
            " router, so in-flight, EWMA and breakers move with real traffic and each chaos"
            " event says where the last phase's went; 0 for none. Default: 2.",
            show_default=False,
        ),
    ] = None,
    count: Annotated[int | None, typer.Option("--count", min=1, help="Stop after N ticks.")] = None,
    json_out: JsonOpt = False,
) -> int:
    """Start the demo fleet of agents.yaml on loopback and watch it (Ctrl-C stops it).

    Every agent of the inventory (default: the demo fleet) runs as its own local process;
    the command prints where each listens, then opens `latcli watch` on the fleet.

    Change an agent while it runs: `latcli demo fault weather-1 --latency 300ms --errors 20%`.

    Or let chaos do it: `latcli demo --chaos --interval 1s` slows weather-1, then fails it,
    then lets it recover, over and over; watch's picks move to weather-2 and back, the
    breaker opens and closes, and each change is a "chaos" event saying where the last
    phase's messages went. Chaos routes a trickle of messages (--chaos-rate) through watch's
    router.

    For scripts: `latcli demo --chaos --json --count 60` prints one latcli.watch/v1 object per
    tick and exits 1 if the last tick had an agent down or an SLA breached, as watch does.
    """
    if ctx.invoked_subcommand is not None:
        return 0
    from latcli.cli.runtime import parse_seconds
    from latcli.demo.run import ChaosOptions, DemoOptions, run_demo
    from latcli.inventory import load_inventory

    every = parse_seconds(interval, "--interval") or 0.0  # never None: interval is text
    period = parse_seconds(chaos_period, "--chaos-period")
    if not chaos and (chaos_agent or period or chaos_rate is not None):
        raise typer.BadParameter("needs --chaos", param_hint="--chaos-agent/-period/-rate")
    plan = ChaosOptions(chaos_agent, period, chaos_rate) if chaos else None
    code = run_demo(load_inventory(inventory), DemoOptions(every, count, json_out, plan))
    raise typer.Exit(code)


@demo_app.command(short_help="Change a running demo agent: latency, errors, down, concurrency.")
def fault(
    agent: Annotated[str, typer.Argument(help="Agent id (or type: all its agents).")],
    latency: Annotated[
        str | None,
        typer.Option(
            metavar="LATENCY",
            help="New latency of every endpoint, health checks included: 300ms,"
            " 'normal 50ms 10ms' or 'lognormal 20ms 0.6'.",
        ),
    ] = None,
    errors: Annotated[
        str | None,
        typer.Option(metavar="RATE", help="Share of messages answered with an error: 20% or 0.2."),
    ] = None,
    down: Annotated[
        bool | None, typer.Option("--down/--up", help="Answer 503 to everything, or recover.")
    ] = None,
    concurrency_limit: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="N",
            help="Serve at most N messages at once, queue the rest (0: no limit).",
        ),
    ] = None,
    inventory: InventoryOpt = None,
) -> int:
    """Change a running demo agent's latency, error rate, availability or concurrency limit.

    Prints the agent's state after the change. Example: `latcli demo fault weather-1 --latency
    20ms --concurrency-limit 4` makes weather-1 a 200 req/s agent by construction (4 / 20 ms),
    which `latcli capacity weather-1` should find.
    """
    import asyncio

    from latcli.demo.control import set_fault
    from latcli.errors import LatcliError
    from latcli.inventory import load_inventory, select_agents
    from latcli.render.demo_view import fault_line
    from latcli.units import parse_percent

    target = select_agents(load_inventory(inventory), [agent])
    rate = None
    if errors is not None:
        try:
            rate = parse_percent(errors, bare=True)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--errors") from None
    for a in target:
        try:
            state = asyncio.run(
                set_fault(
                    a.url,
                    latency=latency,
                    errors=rate,
                    down=down,
                    concurrency_limit=concurrency_limit,
                    agent_id=a.id,
                )
            )
        except LatcliError as exc:
            if "connection refused" not in str(exc):
                raise
            raise LatcliError(f"{exc}: is `latcli demo` running?", exc.exit_code) from None
        print(fault_line(state))
    return 0
