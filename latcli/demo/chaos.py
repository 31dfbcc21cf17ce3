"""``latcli demo --chaos``: one agent degrades and recovers on a schedule, so that watch shows
the router moving traffic away from it and back; with an assistant type of two or more demo
assistants, one assistant too: rate limited (HTTP 429 + ``Retry-After``), then slower to its
first token, then healthy.

The schedules are data, in one place (:data:`SCHEDULE`, :data:`ASSISTANT_SCHEDULE`), read by
the pure :meth:`Schedule.phase_at`. :func:`run_chaos` applies each phase to the agent through
its ``/admin/fault`` endpoint and reports every change; :class:`Trickle` routes a few messages
a second to the agent's type (streamed to assistants, so the router learns their time to first
token), so in-flight counts, EWMAs, breakers and cooldowns move with real traffic and each
change can say where the traffic went.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from latcli.config.model import Agent, DemoConfig
from latcli.core.distribution import Distribution, parse_distribution
from latcli.core.errors import LatcliError
from latcli.core.units import format_duration
from latcli.demo.control import set_fault
from latcli.routing.router import Router

PhaseName = Literal["healthy", "slow", "failing", "rate_limited"]


@dataclass(frozen=True)
class ChaosStep:
    """One step of the schedule: how the agent behaves and for how long."""

    name: PhaseName
    seconds: float
    latency_factor: float = 1.0  # × the agent's own latency distribution
    down: bool = False  # 503 to everything, health checks included
    ttft_factor: float = 1.0  # assistants: × their think time before the first token
    rate_limited: bool = False  # assistants: new messages get 429 + Retry-After (phase's end)

    def describe(self) -> str:
        if self.down:
            return "503 to everything"
        if self.rate_limited:
            return "429 + Retry-After to new messages"
        if self.ttft_factor != 1.0:
            return f"{self.ttft_factor:g}× time to first token"
        if self.latency_factor != 1.0:
            return f"{self.latency_factor:g}× latency"
        return "normal"


@dataclass(frozen=True)
class Schedule:
    """A healthy warm-up once, then ``cycle`` over and over. Times in seconds from the start."""

    warmup: float
    cycle: tuple[ChaosStep, ...]

    def __post_init__(self) -> None:
        if self.warmup < 0 or not self.cycle or any(p.seconds <= 0 for p in self.cycle):
            raise ValueError("a chaos schedule needs a warm-up >= 0 and phases longer than 0 s")

    @property
    def period(self) -> float:
        """Seconds of one cycle."""
        return sum(p.seconds for p in self.cycle)

    def phase_at(self, t: float) -> ChaosStep:
        """The phase in force ``t`` seconds after the start; a boundary belongs to the next."""
        if t < self.warmup:
            return ChaosStep("healthy", self.warmup)
        return self.cycle[self._index(t)[0]]

    def next_change(self, t: float) -> float:
        """When (seconds from the start) the phase in force at ``t`` ends."""
        if t < self.warmup:
            return self.warmup
        index, cycle_start = self._index(t)
        return cycle_start + self._ends[index]

    def scaled(self, period: float) -> Schedule:
        """The same shape with one cycle lasting ``period`` seconds (the warm-up in proportion)."""
        if not period > 0:
            raise ValueError("the chaos period must be more than zero")
        k = period / self.period
        cycle = tuple(replace(p, seconds=p.seconds * k) for p in self.cycle)
        return Schedule(self.warmup * k, cycle)

    def describe(self) -> str:
        """``slow 20s → failing 15s → healthy 40s, repeating``."""
        steps = " → ".join(f"{p.name} {format_duration(p.seconds)}" for p in self.cycle)
        return f"{steps}, repeating"

    @property
    def _ends(self) -> list[float]:
        return list(itertools.accumulate(p.seconds for p in self.cycle))

    def _index(self, t: float) -> tuple[int, float]:
        """(index of the cycle phase at ``t``, start of that cycle); ``t >= warmup``."""
        cycles, offset = divmod(t - self.warmup, self.period)
        ends = self._ends
        index = min(bisect.bisect_right(ends, offset), len(ends) - 1)  # rounding at the end
        return index, self.warmup + cycles * self.period


# Why these numbers: the warm-up gives watch ~7 checks at the demo's 2 s interval to learn each
# replica's EWMA before anything happens. Slow is 10× the agent's latency, health checks
# included (a latency fault slows every endpoint), so weather-1 turns slower than weather-2.
# Failing is `down`, not an error rate: injected errors hit messages only, and watch checks
# health; 15 s lets rise/fall call it down (3 checks) and the breaker open (5 failures).
# Healthy lasts 40 s because the breaker window (30 s in the demo inventory) must forget the
# failures before watch calls the agent healthy again.
SCHEDULE = Schedule(
    warmup=15.0,
    cycle=(
        ChaosStep("slow", 20.0, latency_factor=10.0),
        ChaosStep("failing", 15.0, down=True),
        ChaosStep("healthy", 40.0),
    ),
)


# The same period as SCHEDULE, so one --chaos-period scales both. Rate limited first, while the
# assistant is the pick: new messages get 429 with the phase's remaining seconds as Retry-After,
# the router sets it aside that long (no breaker, no EWMA sample: watch shows it cooling) and takes
# it back at once after. Then slow, 10× the time to first token (the demo's assistant-2, 150 ms,
# becomes 1.5 s: behind assistant-1's 400 ms); the card GET (the health check) keeps its latency,
# only streamed messages tell. Healthy lasts long enough for its EWMA to forget the slow phase.
ASSISTANT_SCHEDULE = Schedule(
    warmup=15.0,
    cycle=(
        ChaosStep("rate_limited", 15.0, rate_limited=True),
        ChaosStep("slow", 20.0, ttft_factor=10.0),
        ChaosStep("healthy", 40.0),
    ),
)


# ---- what a phase asks of the agent (pure) ---------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """The whole fault state one phase sets, so a phase also undoes any earlier change."""

    latency: str  # a distribution as /admin/fault takes it
    errors: float
    down: bool
    ttft: str | None = None  # assistants only: their think-time distribution
    rate_limited: float | None = None  # assistants only: seconds of 429 from now (0: lifted)

    def extra(self) -> dict[str, object] | None:
        """The assistant keys of ``/admin/fault`` (None for other agents)."""
        if self.ttft is None:
            return None
        limited: object = f"{self.rate_limited:g}s" if self.rate_limited else False
        return {"ttft": self.ttft, "rate_limited": limited}


def scale(dist: Distribution, factor: float) -> Distribution:
    """``dist`` ``factor`` times slower: the median scales, and a normal's stddev with it
    (a lognormal's sigma is a shape, it stays)."""
    return dist.scaled(factor)


def fault_for(phase: ChaosStep, baseline: DemoConfig) -> Fault:
    """The fault state of an agent simulated as ``baseline`` during ``phase`` (an assistant's
    rate limit lasts the phase)."""
    latency = scale(parse_distribution(baseline.latency), phase.latency_factor)
    if baseline.app != "assistant":
        return Fault(str(latency), baseline.errors, phase.down)
    ttft = scale(parse_distribution(baseline.ttft), phase.ttft_factor)
    limited = phase.seconds if phase.rate_limited else 0.0
    return Fault(str(latency), baseline.errors, phase.down, str(ttft), limited)


def schedule_for(agent: Agent) -> Schedule:
    """The schedule an agent's chaos follows: assistants have their own."""
    return ASSISTANT_SCHEDULE if is_assistant(agent) else SCHEDULE


def is_assistant(agent: Agent) -> bool:
    return agent.demo is not None and agent.demo.app == "assistant"


def pick_target(agents: Sequence[Agent], wanted: str | None) -> Agent:
    """The agent to degrade: ``wanted``, else the first whose type has another replica
    (the router needs somewhere to send the traffic). Raises LatcliError (exit 2)."""
    if wanted is not None:
        found = next((a for a in agents if a.id == wanted), None)
        if found is None:
            known = ", ".join(a.id for a in agents)
            raise LatcliError(f"--chaos-agent: no agent {wanted!r} (known: {known})")
        return found
    types = Counter(a.type for a in agents)
    found = next((a for a in agents if types[a.type] > 1), None)
    if found is None:
        raise LatcliError("--chaos needs a type with two or more agents, or --chaos-agent ID")
    return found


def pick_targets(agents: Sequence[Agent], wanted: str | None) -> tuple[Agent, ...]:
    """Who ``--chaos`` degrades: ``wanted`` alone; else the first plain agent with a peer and
    the assistant :func:`pick_assistant` names, each when there is one. Raises LatcliError."""
    if wanted is not None:
        return (pick_target(agents, wanted),)
    plain = [a for a in agents if not is_assistant(a)]
    types = Counter(a.type for a in plain)
    first_plain = next((a for a in plain if types[a.type] > 1), None)
    found = tuple(a for a in (first_plain, pick_assistant(agents)) if a is not None)
    return found or (pick_target(agents, None),)


def pick_assistant(agents: Sequence[Agent]) -> Agent | None:
    """The demo assistant with a peer of its type that is fastest to its first token (the one
    routing on time to first token prefers, so slowing it moves the pick); None without one."""
    types = Counter(a.type for a in agents if is_assistant(a))
    paired = [a for a in agents if is_assistant(a) and types[a.type] > 1]
    if not paired:
        return None

    def ttft_median(agent: Agent) -> float:
        assert agent.demo is not None
        return parse_distribution(agent.demo.ttft).median

    return min(paired, key=ttft_median)


# ---- the driver ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosChange:
    """One phase applied (or tried: ``error`` says why the agent did not take it)."""

    agent: str
    before: ChaosStep | None  # None at the start
    phase: ChaosStep
    fault: Fault
    seconds: float  # until the next change
    error: str | None = None

    def message(self) -> str:
        """``chaos: weather-1 healthy → slow for 20s (10× latency)``."""
        move = self.phase.name if self.before is None else f"{self.before.name} → {self.phase.name}"
        text = f"chaos: {self.agent} {move} for {format_duration(self.seconds)}"
        text += f" ({self.phase.describe()})"
        return text if self.error is None else f"{text} not applied: {self.error}"


Report = Callable[[ChaosChange], None]


async def run_chaos(
    agent: Agent,
    schedule: Schedule,
    report: Report,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Apply ``schedule`` to ``agent`` until cancelled, calling ``report`` at each change.

    An agent that does not take a phase (unreachable, refused) is reported and tried again
    at the next change: chaos never stops the watch.
    """
    baseline = agent.demo if agent.demo is not None else DemoConfig()
    start, t = clock(), 0.0
    before: ChaosStep | None = None
    while True:
        phase = schedule.phase_at(t)
        fault = fault_for(phase, baseline)
        until = schedule.next_change(t)
        error = await _apply(agent, fault)
        report(ChaosChange(agent.id, before, phase, fault, until - t, error))
        before = phase
        await asyncio.sleep(max(0.0, start + until - clock()))
        t = max(until, clock() - start)  # never before the boundary slept for (float rounding)


async def _apply(agent: Agent, fault: Fault) -> str | None:
    try:
        await set_fault(
            agent.url,
            latency=fault.latency,
            errors=fault.errors,
            down=fault.down,
            agent_id=agent.id,
            extra=fault.extra(),
        )
    except LatcliError as exc:
        return str(exc)
    return None


# ---- background traffic ----------------------------------------------------------------------

TRICKLE_RATE = 2.0  # messages a second: enough to move in-flight and EWMA, cheap on 2 cores
TRICKLE_MAX_IN_FLIGHT = 8  # beyond this a due send is skipped: a stuck agent builds no pile
TRICKLE_TEXT = "chaos trickle"


class Trickle:
    """Routes ``rate`` messages a second to ``type_`` through ``router`` until cancelled;
    ``stream``: streamed where the agent can, so the router learns the time to first token.

    Counts the attempts each replica received (failovers included): :meth:`take` returns
    them and starts afresh, so each chaos change can say where the last phase's traffic went.
    """

    def __init__(
        self, router: Router, type_: str, rate: float = TRICKLE_RATE, *, stream: bool = False
    ) -> None:
        if not rate > 0:
            raise ValueError("the trickle rate must be more than zero")
        self._router, self._type, self._every = router, type_, 1.0 / rate
        self._stream = stream
        self._tally: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    def take(self) -> dict[str, int]:
        """Attempts per agent id since the last call."""
        tally, self._tally = dict(self._tally), Counter()
        return tally

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while True:
                due += self._every
                await asyncio.sleep(max(0.0, due - loop.time()))
                if len(self._tasks) < TRICKLE_MAX_IN_FLIGHT:
                    task = asyncio.create_task(self._send())
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send(self) -> None:
        result = await self._router.send(self._type, TRICKLE_TEXT, stream=self._stream)
        self._tally.update(a.agent for a in result.attempts)


def traffic_line(type_: str, phase: str, tally: dict[str, int], agents: Sequence[str]) -> str:
    """``weather traffic while healthy: weather-1 38, weather-2 2``."""
    shares = ", ".join(f"{a} {tally.get(a, 0)}" for a in agents)
    return f"{type_} traffic while {phase}: {shares}"


__all__ = [
    "ASSISTANT_SCHEDULE",
    "SCHEDULE",
    "ChaosChange",
    "ChaosStep",
    "Fault",
    "Schedule",
    "Trickle",
    "fault_for",
    "is_assistant",
    "pick_assistant",
    "pick_target",
    "pick_targets",
    "run_chaos",
    "scale",
    "schedule_for",
    "traffic_line",
]
