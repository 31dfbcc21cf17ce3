"""One ``latcli watch`` run: the options, the sinks (view, ``--events``, webhook, metrics) wired
around a :class:`~latcli.engines.watch.loop.Watch`, and the exit verdict."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from latcli.config.model import Agent, Inventory
from latcli.core.sla import canary_thresholds, thresholds_from_inventory
from latcli.engines.watch.events_file import EventsFile
from latcli.engines.watch.loop import Sink, Watch
from latcli.engines.watch.webhook import Webhook
from latcli.reports.watch import WatchSnapshot
from latcli.routing.state_sqlite import open_store
from latcli.transport.base import Transport
from latcli.transport.factory import make_transport

if TYPE_CHECKING:
    from latcli.engines.watch.metrics import WatchMetrics


@dataclass(frozen=True)
class WatchOptions:
    """What ``latcli watch`` was asked; None leaves the inventory's choice."""

    interval: float | None = None
    count: int | None = None
    strategy: str | None = None
    events: Path | None = None
    webhook: str | None = None
    metrics_port: int | None = None
    state: Path | None = None
    no_state: bool = False
    verify: bool | str = True  # TLS: the default trust store, a CA file's path, or off


def tick_interval(agents: Sequence[Agent], asked: float | None) -> float:
    """``--interval``, else the shortest ``health.interval`` among the watched agents."""
    return asked if asked is not None else min(a.health.interval for a in agents)


async def run_watch(
    inv: Inventory,
    agents: Sequence[Agent],
    opts: WatchOptions,
    render: Sink,
    warn: Callable[[str], None],
    *,
    transport: Transport | None = None,
    attach: Callable[[Watch], Sequence[asyncio.Task[None]]] | None = None,
) -> WatchSnapshot | None:
    """Watch until ``opts.count`` ticks (or forever); everything is flushed and closed after,
    Ctrl-C included. Returns the last snapshot.

    ``attach`` starts tasks that work beside the watch (the demo's chaos: it posts events and
    routes through the watch's router); they are cancelled when the watch ends.
    """
    thresholds = thresholds_from_inventory(inv.sla, "health") if inv.sla else []
    store = open_store(opts.state, enabled=not opts.no_state, env=os.environ, warn=warn)
    # each part closes when the run ends (Ctrl-C and errors included), the last made first
    async with contextlib.AsyncExitStack() as stack:
        if transport is None:
            transport = make_transport(
                "auto", len(agents), use="watch", phases=False, verify=opts.verify
            )
            stack.push_async_callback(transport.aclose)
        events = EventsFile(opts.events) if opts.events else None
        if events is not None:
            stack.callback(events.close)
        metrics = _metrics(opts.metrics_port, stack)
        watch = Watch(
            agents,
            interval=tick_interval(agents, opts.interval),
            thresholds=thresholds,
            strategy=opts.strategy or inv.routing.strategy,
            routing=inv.routing,
            inventory=str(inv.path) if inv.path else "(ad-hoc agents)",
            transport=transport,
            store=store,
            on_check=metrics.observe_check if metrics else None,
            fixed_interval=opts.interval is not None,
            canary_sla=canary_thresholds(inv.sla),
            on_canary=metrics.observe_canary if metrics else None,
        )
        stack.push_async_callback(watch.aclose)
        webhook = Webhook(opts.webhook, transport, watch) if opts.webhook else None
        if webhook is not None:
            stack.push_async_callback(webhook.aclose)
        if attach is not None:
            stack.push_async_callback(_cancel_beside, attach(watch))
        if metrics is not None and opts.metrics_port is not None:
            port = metrics.serve(opts.metrics_port)
            warn(f"metrics on http://127.0.0.1:{port}/metrics")
        if webhook is not None:
            webhook.start()
        return await watch.run(_fan_out(render, events, webhook, metrics), opts.count)


def _metrics(port: int | None, stack: contextlib.AsyncExitStack) -> WatchMetrics | None:
    """The metric families when ``--metrics-port`` asks for them (stopped with the run)."""
    if port is None:
        return None
    from latcli.engines.watch.metrics import WatchMetrics  # prometheus_client: only when asked

    metrics = WatchMetrics()
    stack.callback(metrics.stop)
    return metrics


def _fan_out(
    render: Sink, events: EventsFile | None, webhook: Webhook | None, metrics: WatchMetrics | None
) -> Sink:
    """One sink that hands each tick to every sink asked for, the view or JSON last."""

    def sink(snapshot: WatchSnapshot) -> None:
        if events is not None:
            events.write(snapshot.events)
        if webhook is not None:
            webhook.push(snapshot)
        if metrics is not None:
            metrics.update(snapshot)
        render(snapshot)

    return sink


async def _cancel_beside(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def unhealthy(snapshot: WatchSnapshot | None) -> bool:
    """True when the last tick showed an agent down or an SLA breached (exit 1 with --count)."""
    if snapshot is None:
        return False
    return any(a.state == "down" or a.sla_breached for a in snapshot.agents)


__all__ = ["WatchOptions", "run_watch", "tick_interval", "unhealthy"]
