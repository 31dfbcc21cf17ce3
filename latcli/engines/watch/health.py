"""An agent's health as watch judges it: rise/fall hysteresis, then healthy, degraded or down.

Sans-I/O: each check's verdict comes in as a bool; nothing here reads a clock.
"""

from __future__ import annotations

from latcli.config.model import HealthConfig
from latcli.core.breaker import BreakerState
from latcli.reports.watch import AgentState

# HAProxy's defaults (`rise 2 fall 3`), as the inventory's `health.rise` / `health.fall` default.
RISE = HealthConfig.rise
FALL = HealthConfig.fall


class RiseFall:
    """HAProxy-style hysteresis: ``up`` flips after ``rise`` good or ``fall`` bad checks in a row.

    The first check decides at once: before it there is no state to protect from flapping.
    """

    def __init__(self, rise: int = RISE, fall: int = FALL) -> None:
        self.rise, self.fall = rise, fall
        self.up: bool | None = None
        self._run = 0  # consecutive checks that disagree with ``up``

    def record(self, ok: bool) -> bool:
        if self.up is None or ok == self.up:
            self.up, self._run = ok, 0
            return ok
        self._run += 1
        if self._run >= (self.rise if ok else self.fall):
            self.up, self._run = ok, 0
        return self.up


def agent_state(
    up: bool | None,
    breaker: BreakerState,
    sla_ok: bool,
    success: float | None,
    canary_ok: bool = True,
) -> AgentState:
    """down: not up by rise/fall; degraded: up but the breaker, the SLA, a check or the latest
    canary objects (a model that stopped answering stays flagged until a canary passes)."""
    if not up:
        return "down"
    if breaker is not BreakerState.CLOSED or not sla_ok or (success is not None and success < 1):
        return "degraded"
    return "healthy" if canary_ok else "degraded"


__all__ = ["FALL", "RISE", "RiseFall", "agent_state"]
