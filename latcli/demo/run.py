"""The engine behind ``latcli demo``: start the fleet, show where it listens, watch it, and
with ``--chaos`` degrade one agent on a schedule while watching."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from latcli.config.model import Agent, Inventory
from latcli.core.errors import ExitCode
from latcli.core.units import format_duration, format_rate
from latcli.demo.chaos import TRICKLE_RATE, Schedule, is_assistant, pick_targets, schedule_for

if TYPE_CHECKING:
    from latcli.demo.chaos import ChaosChange, Trickle
    from latcli.engines.watch.loop import Watch
    from latcli.reports.watch import EventKind, WatchSnapshot

CHAOS_EVENT: EventKind = "chaos"


@dataclass(frozen=True)
class ChaosOptions:
    """What ``--chaos`` was asked; None: the default."""

    agent: str | None = None  # the agent to degrade; default: pick_targets' choice
    period: float | None = None  # seconds of one cycle; default: each schedule's own
    rate: float | None = None  # background messages a second to each target's type (0: none)


@dataclass(frozen=True)
class DemoOptions:
    interval: float
    count: int | None = None  # ticks, then stop (None: until Ctrl-C)
    json_out: bool = False  # latcli.watch/v1 lines on stdout instead of the live view
    chaos: ChaosOptions | None = None


@dataclass(frozen=True)
class _Track:
    """One degraded agent and its schedule."""

    target: Agent
    schedule: Schedule


@dataclass(frozen=True)
class _Chaos:
    """A resolved ``--chaos``: whom, when, how much traffic (to each target's type)."""

    tracks: tuple[_Track, ...]
    rate: float


def run_demo(inv: Inventory, opts: DemoOptions) -> int:
    """Run until Ctrl-C or ``opts.count`` ticks; every agent process is stopped on the way
    out, whatever happens. With a count, exit 1 if the last tick was unhealthy (as watch).

    The watch saves the routing state as usual, so a ``latcli send`` in another terminal
    routes on what the demo's health checks learned.
    """
    from latcli.demo.fleet import Fleet
    from latcli.engines.watch.run import unhealthy
    from latcli.render.console import stderr_console, stdout_console
    from latcli.render.demo_view import fleet_table

    chaos = _resolve(inv, opts.chaos)  # usage errors before any agent starts
    err = stderr_console()
    with Fleet(list(inv.agents)) as fleet:
        (err if opts.json_out else stdout_console()).print(fleet_table(fleet.describe()))
        err.print(_banner(opts.interval, chaos))
        try:
            last = _watch(inv, opts, chaos)
        except KeyboardInterrupt:
            err.print(f"stopping {len(fleet.pids)} agents")
            return ExitCode.INTERRUPTED
    return ExitCode.FAILED if opts.count is not None and unhealthy(last) else ExitCode.OK


def _resolve(inv: Inventory, opts: ChaosOptions | None) -> _Chaos | None:
    if opts is None:
        return None
    rate = TRICKLE_RATE if opts.rate is None else opts.rate
    tracks = []
    for target in pick_targets(inv.agents, opts.agent):
        schedule = schedule_for(target)
        tracks.append(
            _Track(target, schedule if opts.period is None else schedule.scaled(opts.period))
        )
    return _Chaos(tuple(tracks), rate)


def _banner(interval: float, chaos: _Chaos | None) -> str:
    if chaos is None:
        return (
            f"watching every {format_duration(interval)} · change an agent with"
            " `latcli demo fault AGENT --latency 300ms | --errors 20% | --down`"
            " · Ctrl-C stops every agent"
        )
    parts = [f"watching every {format_duration(interval)}"]
    for track in chaos.tracks:
        what = "streamed messages/s" if is_assistant(track.target) else "messages/s"
        rate = format_rate(chaos.rate, f"{track.target.type} {what}")
        traffic = f" · {rate} routed" if chaos.rate else ""
        parts.append(
            f"chaos on {track.target.id}: healthy {format_duration(track.schedule.warmup)},"
            f" then {track.schedule.describe()}{traffic}"
        )
    return " · ".join([*parts, "Ctrl-C stops every agent"])


def _watch(inv: Inventory, opts: DemoOptions, chaos: _Chaos | None) -> WatchSnapshot | None:
    def warn(text: str) -> None:
        print(text, file=sys.stderr)

    if opts.json_out:
        from latcli.reports.watch import watch_json

        def emit(snapshot: WatchSnapshot) -> None:
            print(watch_json(snapshot), flush=True)

        return asyncio.run(_run(inv, opts, chaos, emit, warn))
    from latcli.render.watch_live import LiveWatch

    # The human view even when piped through `tee`: the demo is a show; --json is for scripts.
    with LiveWatch() as live:
        return asyncio.run(_run(inv, opts, chaos, live.show, warn))


async def _run(
    inv: Inventory,
    opts: DemoOptions,
    chaos: _Chaos | None,
    sink: Callable[[WatchSnapshot], None],
    warn: Callable[[str], None],
) -> WatchSnapshot | None:
    """Watch the fleet as ``latcli watch`` would, with the chaos tasks beside it."""
    from latcli.engines.watch.run import WatchOptions, run_watch

    def attach(watch: Watch) -> list[asyncio.Task[None]]:
        return _start_chaos(watch, chaos, inv.agents) if chaos is not None else []

    watch_opts = WatchOptions(interval=opts.interval, count=opts.count)
    return await run_watch(inv, inv.agents, watch_opts, sink, warn, attach=attach)


def _start_chaos(
    watch: Watch, chaos: _Chaos, agents: tuple[Agent, ...]
) -> list[asyncio.Task[None]]:
    tasks = []
    for track in chaos.tracks:
        tasks += _start_track(watch, track, chaos.rate, agents)
    return tasks


def _start_track(
    watch: Watch, track: _Track, rate: float, agents: tuple[Agent, ...]
) -> list[asyncio.Task[None]]:
    from latcli.demo.chaos import Trickle, run_chaos

    target = track.target
    trickle = None
    if rate:  # streamed to assistants: routing learns their time to first token from it
        trickle = Trickle(watch.router, target.type, rate, stream=is_assistant(target))
    report = _reporter(watch, track, trickle, [a.id for a in agents if a.type == target.type])
    tasks = [asyncio.create_task(run_chaos(target, track.schedule, report))]
    if trickle is not None:
        tasks.append(asyncio.create_task(trickle.run()))

    def crashed(task: asyncio.Task[None]) -> None:  # a bug in chaos must not pass unseen
        if not task.cancelled() and task.exception() is not None:
            watch.post(CHAOS_EVENT, target.id, f"chaos stopped: {task.exception()!r}")

    for task in tasks:
        task.add_done_callback(crashed)
    return tasks


def _reporter(
    watch: Watch, track: _Track, trickle: Trickle | None, peers: list[str]
) -> Callable[[ChaosChange], None]:
    """Each change as one watch event; with the trickle, where the ended phase's traffic went."""
    from latcli.demo.chaos import traffic_line

    def report(change: ChaosChange) -> None:
        text = change.message()
        tally = trickle.take() if trickle is not None else None
        if change.before is None:
            text += f", then {track.schedule.describe()}"
        elif tally is not None:
            text += f" · {traffic_line(track.target.type, change.before.name, tally, peers)}"
        before = change.before.name if change.before else None
        watch.post(CHAOS_EVENT, change.agent, text, before, change.phase.name)

    return report
