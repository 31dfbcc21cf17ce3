"""What the gateway's endpoints share: the router, the latest watch tick, the limits, the token."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope

from latcli.engines.serve.limits import Limits
from latcli.engines.serve.metrics import GatewayMetrics
from latcli.reports.watch import SCHEMA, WatchSnapshot, watch_dict
from latcli.routing.router import Router

CANCEL_WAIT = 1.0  # seconds a shutdown waits for the A2A cancels of abandoned streams


@dataclass
class Gateway:
    """What the endpoints read and count: the router, the latest watch tick, the limits."""

    router: Router
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    limits: Limits = field(default_factory=Limits)
    token: str | None = None  # a client must send ``Authorization: Bearer TOKEN``
    latest: WatchSnapshot | None = None
    peek: Callable[[], WatchSnapshot] | None = None  # the watch's snapshot before its first tick
    in_flight: int = 0  # routed requests being answered (the --max-in-flight count)
    cut_by_drain: int = 0
    cancels: set[asyncio.Task[Any]] = field(default_factory=set)  # A2A cancels under way

    def __post_init__(self) -> None:
        self.types = frozenset(self.router.types)
        self._bearer = None if self.token is None else b"Bearer " + self.token.encode()

    def cancel_task(self, agent_id: str, task_id: str) -> None:
        """Cancel an abandoned stream's A2A task in the background (its answer nobody reads)."""
        agent = self.router.replica(agent_id).agent
        task = asyncio.ensure_future(self.router.client.cancel_task(agent, task_id))
        self.cancels.add(task)
        task.add_done_callback(self._cancelled)

    def _cancelled(self, task: asyncio.Task[Any]) -> None:
        self.cancels.discard(task)
        if not task.cancelled() and task.exception() is None:
            outcome = "ok" if task.result().ok else "failed"
        else:
            outcome = "failed"
        self.metrics.task_cancels.labels(outcome).inc()

    async def settle_cancels(self, most: float = CANCEL_WAIT) -> None:
        """Let the cancels under way reach their agents before the transport closes."""
        if self.cancels:
            await asyncio.wait(set(self.cancels), timeout=most)

    def sink(self, snapshot: WatchSnapshot) -> None:
        """Watch's sink: keep the tick for ``GET /agents`` and update the gauges."""
        self.latest = snapshot
        self.metrics.watch.update(snapshot)

    def authorized(self, scope: Scope) -> bool:
        """No token asked, or the request carries it (compared in constant time)."""
        if self._bearer is None:
            return True
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self._bearer)
        return False

    def agents_json(self) -> dict[str, Any]:
        """``GET /agents``: the latest tick (before the first, the agents as they stand); an
        agent not yet checked is ``unknown``, not ``down`` (that would be a guess)."""
        snapshot = self.latest or (self.peek() if self.peek is not None else None)
        if snapshot is None:
            return {"schema": SCHEMA, "agents": [], "picks": {}, "events": []}
        doc = watch_dict(snapshot)
        for row in doc["agents"]:
            if not row["checks"]:
                row["state"] = "unknown"
        return doc


__all__ = ["Gateway"]
