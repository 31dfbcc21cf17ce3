"""``latcli demo``: run the demo fleet and watch it; ``latcli demo fault`` changes an agent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

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
            " then failing (503), then healthy, repeating; with two or more demo assistants"
            " of a type, also the one fastest to its first token: rate limited (429 +"
            " Retry-After), then 10× time to first token, then healthy. The start line shows"
            " the times.",
        ),
    ] = False,
    chaos_agent: Annotated[
        str | None,
        typer.Option(
            help="The one agent --chaos degrades. Default: the first whose type has another"
            " replica (weather-1 in the demo fleet) and the assistant fastest to its first"
            " token (assistant-2).",
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
            help="Messages a second --chaos routes to each degraded type through watch's"
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
    phase's messages went. At the same time assistant-2 answers 429 with Retry-After (watch
    shows it cooling, "rate_limit" events), then gets 10× slower to its first token, then
    recovers: the assistant pick moves to assistant-1 and back, twice. Chaos routes a trickle of
    messages (--chaos-rate) to each degraded type through watch's router, streamed to
    assistants so routing learns their time to first token.

    For scripts: `latcli demo --chaos --json --count 60` prints one latcli.watch/v1 object per
    tick and exits 1 if the last tick had an agent down or an SLA breached, as watch does.
    """
    if ctx.invoked_subcommand is not None:
        return 0
    from latcli.cli.runtime import parse_seconds
    from latcli.config.loading import load_inventory
    from latcli.demo.run import ChaosOptions, DemoOptions, run_demo

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
    ttft: Annotated[
        str | None,
        typer.Option(
            help="Assistants: time to first token, e.g. 'lognormal 400ms 0.5' or 300ms.",
            show_default=False,
        ),
    ] = None,
    tokens_per_s: Annotated[
        float | None,
        typer.Option(
            min=0.001, help="Assistants: tokens a second after the first.", show_default=False
        ),
    ] = None,
    chunk_tokens: Annotated[
        int | None,
        typer.Option(min=1, help="Assistants: tokens per streamed chunk.", show_default=False),
    ] = None,
    answer_tokens: Annotated[
        int | None,
        typer.Option(min=1, help="Assistants: tokens in a whole answer.", show_default=False),
    ] = None,
    fail_tasks: Annotated[
        str | None,
        typer.Option(
            help="Assistants: share of tasks that fail ('model overloaded'): 10% or 0.1.",
            show_default=False,
        ),
    ] = None,
    input_required: Annotated[
        str | None,
        typer.Option(
            help="Assistants: share of tasks that stop at input-required: 5% or 0.05.",
            show_default=False,
        ),
    ] = None,
    rate_limited: Annotated[
        str | None,
        typer.Option(
            help="Assistants: answer new messages HTTP 429 + Retry-After for this long (30s),"
            " or 'on' until 'off'.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Assistants: restart the random source with this seed.", show_default=False
        ),
    ] = None,
    inventory: InventoryOpt = None,
) -> int:
    """Change a running demo agent's latency, error rate, availability or concurrency limit,
    or an assistant's think time, speed, failed tasks and rate limit.

    Prints the agent's state after the change. Example: `latcli demo fault weather-1 --latency
    20ms --concurrency-limit 4` makes weather-1 a 200 req/s agent by construction (4 / 20 ms),
    which `latcli capacity weather-1` should find.

    Example: `latcli demo fault assistant-1 --ttft "lognormal 400ms 0.5" --tokens-per-s 30
    --fail-tasks 10%` makes assistant-1 slower to start and to finish, and fail one task in ten;
    `--rate-limited 20s` makes it answer 429 for twenty seconds.
    """
    import asyncio

    from latcli.config.loading import load_inventory
    from latcli.config.selection import select_agents
    from latcli.core.errors import LatcliError
    from latcli.core.units import parse_percent
    from latcli.demo.control import set_fault
    from latcli.render.demo_view import fault_line

    target = select_agents(load_inventory(inventory), [agent])
    rate = None
    if errors is not None:
        try:
            rate = parse_percent(errors, bare=True)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--errors") from None
    extra = _assistant_change(
        ttft=ttft,
        tokens_per_s=tokens_per_s,
        chunk_tokens=chunk_tokens,
        answer_tokens=answer_tokens,
        fail_tasks=fail_tasks,
        input_required=input_required,
        rate_limited=rate_limited,
        seed=seed,
    )
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
                    extra=extra,
                )
            )
        except LatcliError as exc:
            if "connection refused" not in str(exc):
                raise
            raise LatcliError(f"{exc}: is `latcli demo` running?", exc.exit_code) from None
        print(fault_line(state))
    return 0


def _assistant_change(**given: object) -> dict[str, object]:
    """The assistant keys of a fault change, checked here so a typo is a usage error."""
    from latcli.core.distribution import parse_distribution
    from latcli.demo.assistant.behaviour import parse_rate_limit, parse_share

    change = {k: v for k, v in given.items() if v is not None}
    checks: dict[str, Callable[[Any], object]] = {
        "ttft": parse_distribution,
        "fail_tasks": parse_share,
        "input_required": parse_share,
        "rate_limited": parse_rate_limit,
    }
    for key, check in checks.items():
        if key in change:
            try:
                parsed = check(change[key])
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--" + key.replace("_", "-")) from exc
            if key != "ttft":  # the agent takes the distribution as text
                change[key] = parsed
    return change
