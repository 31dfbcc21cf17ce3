"""``latcli demo --chaos``: the schedule exactly, the driver and the trickle against real
agents, and the real command watching the router move traffic away and back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from chaos_ticks import agent_row, chaos_segments
from cli_run import spawn

from latcli.cli.app import main
from latcli.config.loading import load_inventory
from latcli.config.model import Agent, DemoConfig
from latcli.core.distribution import parse_distribution
from latcli.core.errors import ExitCode, LatcliError
from latcli.demo.chaos import (
    SCHEDULE,
    ChaosChange,
    ChaosStep,
    Fault,
    Schedule,
    Trickle,
    fault_for,
    pick_target,
    run_chaos,
    scale,
    traffic_line,
)
from latcli.demo.control import get_fault
from latcli.demo.fleet import DEMO_INVENTORY, Fleet, free_port
from latcli.routing.router import Router

pytestmark = pytest.mark.timeout(60)

SLOW = ChaosStep("slow", 20.0, latency_factor=10.0)
FAILING = ChaosStep("failing", 15.0, down=True)
HEALTHY = ChaosStep("healthy", 40.0)
WARMUP = ChaosStep("healthy", 15.0)

# ---- the schedule ------------------------------------------------------------------------------


def test_the_default_schedule_is_warmup_then_slow_failing_healthy() -> None:
    assert Schedule(15.0, (SLOW, FAILING, HEALTHY)) == SCHEDULE
    assert SCHEDULE.period == 75.0
    assert SCHEDULE.describe() == "slow 20 s → failing 15 s → healthy 40 s, repeating"


# t -> (phase in force, when it ends); boundaries belong to the next phase.
PHASES_AT: list[tuple[float, ChaosStep, float]] = [
    (0.0, WARMUP, 15.0),
    (14.999, WARMUP, 15.0),
    (15.0, SLOW, 35.0),
    (20.0, SLOW, 35.0),
    (34.999, SLOW, 35.0),
    (35.0, FAILING, 50.0),
    (49.5, FAILING, 50.0),
    (50.0, HEALTHY, 90.0),
    (89.999, HEALTHY, 90.0),
    (90.0, SLOW, 110.0),  # the second cycle: no warm-up again
    (110.0, FAILING, 125.0),
    (125.0, HEALTHY, 165.0),
    (15.0 + 75.0 * 100 + 21.0, FAILING, 15.0 + 75.0 * 100 + 35.0),
]


@pytest.mark.parametrize(("t", "phase", "ends"), PHASES_AT)
def test_phase_at_and_next_change(t: float, phase: ChaosStep, ends: float) -> None:
    assert SCHEDULE.phase_at(t) == phase
    assert SCHEDULE.next_change(t) == pytest.approx(ends)


@pytest.mark.parametrize(
    ("t", "name", "ends"),
    [
        (0.0, "healthy", 2.0),
        (1.99, "healthy", 2.0),
        (2.1, "slow", 2.0 + 8 / 3),
        (5.0, "failing", 6.0 + 2 / 3),
        (7.0, "healthy", 12.0),
        (12.1, "slow", 12.0 + 8 / 3),
    ],
)
def test_scaled_schedule_keeps_each_phase_share(t: float, name: str, ends: float) -> None:
    fast = SCHEDULE.scaled(10.0)
    assert fast.period == pytest.approx(10.0)
    assert fast.warmup == pytest.approx(2.0)
    assert fast.phase_at(t).name == name
    assert fast.next_change(t) == pytest.approx(ends)
    assert [p.latency_factor for p in fast.cycle] == [10.0, 1.0, 1.0]
    assert [p.down for p in fast.cycle] == [False, True, False]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Schedule(-1.0, (SLOW,)),
        lambda: Schedule(0.0, ()),
        lambda: Schedule(0.0, (SLOW, ChaosStep("failing", 0.0, down=True))),
        lambda: SCHEDULE.scaled(0.0),
    ],
    ids=["negative-warmup", "no-phases", "empty-phase", "zero-period"],
)
def test_a_schedule_that_cannot_run_is_refused(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


def test_a_schedule_without_warmup_starts_in_its_first_phase() -> None:
    s = Schedule(0.0, (ChaosStep("slow", 1.0, 10.0), ChaosStep("healthy", 2.0)))
    assert [s.phase_at(t).name for t in (0.0, 0.5, 1.0, 2.9, 3.0)] == [
        "slow",
        "slow",
        "healthy",
        "healthy",
        "slow",
    ]


# ---- what each phase asks of the agent -----------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "baseline", "fault"),
    [
        (WARMUP, DemoConfig("lognormal 15ms 0.4"), Fault("lognormal 15ms 0.4", 0.0, False)),
        (SLOW, DemoConfig("lognormal 15ms 0.4"), Fault("lognormal 150ms 0.4", 0.0, False)),
        (SLOW, DemoConfig("normal 80ms 20ms"), Fault("normal 800ms 200ms", 0.0, False)),
        (SLOW, DemoConfig("5ms", errors=0.2), Fault("fixed 50ms", 0.2, False)),
        (FAILING, DemoConfig("5ms", errors=0.2), Fault("fixed 5ms", 0.2, True)),
        (HEALTHY, DemoConfig("lognormal 40ms 0.8", 0.2), Fault("lognormal 40ms 0.8", 0.2, False)),
    ],
)
def test_fault_for_sets_the_whole_state(
    phase: ChaosStep, baseline: DemoConfig, fault: Fault
) -> None:
    assert fault_for(phase, baseline) == fault


def test_scale_keeps_a_lognormal_shape() -> None:
    assert str(scale(parse_distribution("lognormal 20ms 0.6"), 3)) == "lognormal 60ms 0.6"


def _agents(*spec: tuple[str, str]) -> list[Agent]:
    return [Agent(id=i, type=t, url="http://127.0.0.1:1") for i, t in spec]


def test_pick_target_defaults_to_the_first_agent_with_a_peer() -> None:
    demo = load_inventory(DEMO_INVENTORY, {}).agents
    assert pick_target(demo, None).id == "weather-1"
    assert pick_target(demo, "calendar-2").id == "calendar-2"
    agents = _agents(("news-1", "news"), ("cal-1", "cal"), ("cal-2", "cal"))
    assert pick_target(agents, None).id == "cal-1"


def test_pick_target_errors_are_usage_errors() -> None:
    with pytest.raises(LatcliError, match=r"no agent 'nope' \(known: a, b\)") as info:
        pick_target(_agents(("a", "x"), ("b", "y")), "nope")
    assert info.value.exit_code == ExitCode.USAGE
    with pytest.raises(LatcliError, match="needs a type with two or more agents"):
        pick_target(_agents(("a", "x"), ("b", "y")), None)


@pytest.mark.parametrize(
    ("change", "text"),
    [
        (
            ChaosChange("w-1", None, WARMUP, Fault("5ms", 0.0, False), 15.0),
            "chaos: w-1 healthy for 15 s (normal)",
        ),
        (
            ChaosChange("w-1", WARMUP, SLOW, Fault("50ms", 0.0, False), 20.0),
            "chaos: w-1 healthy → slow for 20 s (10× latency)",
        ),
        (
            ChaosChange("w-1", SLOW, FAILING, Fault("5ms", 0.0, True), 2.6667, "refused"),
            "chaos: w-1 slow → failing for 2.67 s (503 to everything) not applied: refused",
        ),
    ],
)
def test_change_message(change: ChaosChange, text: str) -> None:
    assert change.message() == text


def test_traffic_line_names_every_replica_even_without_traffic() -> None:
    line = traffic_line("weather", "slow", {"w-2": 7}, ["w-1", "w-2"])
    assert line == "weather traffic while slow: w-1 0, w-2 7"


# ---- the driver and the trickle against real agents --------------------------------------------


@pytest.fixture(scope="module")
def pair() -> Iterator[list[Agent]]:
    agents = [Agent(id=i, type="t", url="http://127.0.0.1:1", demo=DemoConfig("2ms")) for i in "ab"]
    with Fleet(agents, {"a": free_port(), "b": free_port()}) as fleet:
        yield [
            Agent(id=a.id, type=a.type, url=fleet.urls[a.id], demo=a.demo, timeout=2.0)
            for a in agents
        ]


async def _drive(agent: Agent, schedule: Schedule, seconds: float) -> list[tuple[Any, ...]]:
    """(phase, fault state read back at once, error) per reported change."""
    seen: list[ChaosChange] = []
    task = asyncio.create_task(run_chaos(agent, schedule, seen.append))
    states: list[dict[str, object]] = []
    reported = 0
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if len(seen) > reported:  # read the agent before the next phase can change it
            reported = len(seen)
            with contextlib.suppress(LatcliError):
                states.append(await get_fault(agent.url))
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return [(c.phase.name, c.before, s, c.error) for c, s in zip(seen, states, strict=False)]


def test_run_chaos_applies_each_phase_in_turn(pair: list[Agent]) -> None:
    agent = pair[0]
    schedule = Schedule(0.3, (ChaosStep("slow", 0.3, 10.0), ChaosStep("failing", 0.3, down=True)))
    try:
        got = asyncio.run(_drive(agent, schedule, 1.05))
    finally:
        asyncio.run(_restore(agent))
    assert [g[0] for g in got] == ["healthy", "slow", "failing", "slow"]
    assert got[0][1] is None and got[1][1] == ChaosStep("healthy", 0.3)
    states = [(s["latency"], s["down"]) for _, _, s, _ in got]
    assert states == [
        ("fixed 2ms", False),
        ("fixed 20ms", False),
        ("fixed 2ms", True),
        ("fixed 20ms", False),
    ]
    assert all(g[3] is None for g in got)


async def _restore(agent: Agent) -> None:
    from latcli.demo.control import set_fault

    await set_fault(agent.url, latency="2ms", errors=0.0, down=False)


def test_run_chaos_keeps_going_when_the_agent_is_unreachable() -> None:
    gone = Agent(id="gone", type="t", url=f"http://127.0.0.1:{free_port()}")
    schedule = Schedule(0.0, (ChaosStep("slow", 0.15, 10.0), ChaosStep("healthy", 0.15)))

    async def drive() -> list[ChaosChange]:
        seen: list[ChaosChange] = []
        task = asyncio.create_task(run_chaos(gone, schedule, seen.append))
        await asyncio.sleep(0.4)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return seen

    seen = asyncio.run(drive())
    assert [c.phase.name for c in seen] == ["slow", "healthy", "slow"]
    assert all(c.error and "gone" in c.error and "refused" in c.error for c in seen)
    assert "not applied: cannot reach gone" in seen[0].message()


def test_trickle_routes_through_the_router_and_counts_each_replica(pair: list[Agent]) -> None:
    async def run() -> tuple[dict[str, int], dict[str, int], int]:
        router = Router(pair, strategy="round_robin")
        trickle = Trickle(router, "t", rate=40.0)
        task = asyncio.create_task(trickle.run())
        await asyncio.sleep(0.5)
        first = trickle.take()
        await asyncio.sleep(0.25)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        second = trickle.take()
        in_flight = sum(router.replica(a.id).stats.in_flight for a in pair)
        await router.aclose()
        return first, second, in_flight

    first, second, in_flight = asyncio.run(run())
    assert set(first) == {"a", "b"} and 10 <= sum(first.values()) <= 22
    assert abs(first["a"] - first["b"]) <= 1  # round robin: the router chose, not the trickle
    assert 4 <= sum(second.values()) <= 12  # take() started afresh
    assert in_flight == 0  # cancelled sends were given back


# ---- the command --------------------------------------------------------------------------------


def _spawn(*args: str, state: Path) -> subprocess.Popen[str]:
    return spawn(*args, env={"LATCLI_STATE": str(state)})


def _inventory(path: Path) -> Path:
    # Fixed latencies keep the picks readable: weather-1 (50 ms) is preferred, 10× slower
    # (500 ms) it is not; 3:1 is the ratio that best survives p2c doubling the load of a busy
    # replica both ways, and 50 ms dwarfs the stalls of a loaded 2-core box. A short breaker
    # window and open time let a 10 s cycle show the whole recovery.
    path.write_text(
        f"""\
version: 1
defaults:
  timeout: 2s
  breaker: {{failures: 5, failure_rate: 50%, window: 2s, min_calls: 10,
            open_for: 500ms, open_max: 2s, half_open_probes: 1}}
  ewma: {{decay: 10s}}
routing: {{strategy: p2c, retries: 1, retry_budget: 20%}}
agents:
  - {{id: weather-1, type: weather, url: "http://127.0.0.1:{free_port()}",
      demo: {{latency: "50ms"}}}}
  - {{id: weather-2, type: weather, url: "http://127.0.0.1:{free_port()}",
      demo: {{latency: "150ms"}}}}
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.timeout(45)
def test_demo_chaos_moves_the_pick_away_and_back(tmp_path: Path) -> None:
    inv = _inventory(tmp_path / "agents.yaml")
    # 10 s cycle: warm-up 2 s, slow 2.7 s, failing 2 s, healthy 5.3 s; 58 ticks end in healthy.
    # 4 messages/s: the ~3 that go to weather-1 before its first slow answer returns are then
    # clearly outnumbered within the short slow phase.
    args = ["demo", "-i", str(inv), "--chaos", "--chaos-period", "10s", "--chaos-rate", "4"]
    proc = _spawn(
        *args, "--interval", "200ms", "--count", "58", "--json", state=tmp_path / "state.db"
    )
    try:
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err  # the last tick was healthy
    assert "chaos on weather-1" in err and "Traceback" not in err
    ticks = [json.loads(line) for line in out.splitlines()]
    assert len(ticks) == 58 and all(t["schema"] == "latcli.watch/v1" for t in ticks)

    segments = chaos_segments(ticks, "weather-1")
    assert [s[0] for s in segments][:4] == ["healthy", "slow", "failing", "healthy"]
    (_, warm, start), (_, slow, to_slow), (_, failing, to_failing), (_, healed, _) = segments[:4]
    assert start.endswith("then slow 2.67 s → failing 2 s → healthy 5.33 s, repeating")
    assert "weather traffic while healthy:" in to_slow

    # The picks are p2c's on live, noisy measurements: a stall on the box can flip one tick,
    # so a phase is judged by most of its second half (by then the router has seen the change).
    assert _share(warm[len(warm) // 2 :], "weather-1") >= 0.75
    assert _share(slow[len(slow) // 2 :], "weather-2") >= 0.75
    w1_slow, w2_slow = _shares(to_failing, "slow")
    assert w2_slow > w1_slow  # the trickle followed the pick
    assert agent_row(failing[-1], "weather-1")["state"] == "down"
    shunned = [t for t in failing + healed if agent_row(t, "weather-1")["breaker"] == "open"]
    assert shunned and {t["picks"]["weather"] for t in shunned} == {"weather-2"}

    closed = [t for t in healed if agent_row(t, "weather-1")["breaker"] == "closed"]
    # Still open when the agent recovered (a trial can close it within the first healed tick).
    assert agent_row(failing[-1], "weather-1")["breaker"] in ("open", "half_open")
    assert _share(closed, "weather-1") >= 0.75  # the traffic came back
    assert (agent_row(closed[-1], "weather-1")["state"], closed[-1] is healed[-1]) == (
        "healthy",
        True,
    )


def _share(ticks: list[dict[str, Any]], agent: str) -> float:
    return float(sum(t["picks"]["weather"] == agent for t in ticks)) / len(ticks)


def _shares(message: str, phase: str) -> tuple[int, int]:
    """(weather-1, weather-2) from ``... weather traffic while slow: weather-1 3, weather-2 9``."""
    tail = message.split(f"weather traffic while {phase}: ")[1]
    counts = dict(part.rsplit(" ", 1) for part in tail.split(", "))
    return int(counts["weather-1"]), int(counts["weather-2"])


def test_ctrl_c_stops_chaos_watch_and_every_agent(tmp_path: Path) -> None:
    inv = _inventory(tmp_path / "agents.yaml")
    proc = _spawn("demo", "-i", str(inv), "--chaos", "--interval", "200ms", "--json",
                  state=tmp_path / "state.db")  # fmt: skip
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # the fleet is up and watched
        assert [e["after"] for e in first["events"] if e["kind"] == "chaos"] == ["healthy"]
        agents = [c.pid for c in psutil.Process(proc.pid).children()]
        assert len(agents) == 2
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED
    assert "stopping 2 agents" in err and "Traceback" not in err
    assert not [pid for pid in agents if psutil.pid_exists(pid)]


def test_demo_json_count_is_bounded_without_chaos(tmp_path: Path) -> None:
    inv = _inventory(tmp_path / "agents.yaml")
    proc = _spawn("demo", "-i", str(inv), "--interval", "200ms", "--count", "3", "--json",
                  state=tmp_path / "state.db")  # fmt: skip
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    ticks = [json.loads(line) for line in out.splitlines()]
    assert [t["tick"] for t in ticks] == [1, 2, 3]  # nothing else on stdout
    assert "demo fleet" in err and "chaos" not in out + err


def test_help_teaches_chaos_with_the_schedules_own_period(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"(default {SCHEDULE.period:g}s)" in out
    assert "latcli demo --chaos --interval 1s" in out and "--chaos-rate" in out


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--chaos-agent", "weather-2"], "needs --chaos"),
        (["--chaos-rate", "1"], "needs --chaos"),
        (["--chaos", "--chaos-agent", "nope"], "--chaos-agent: no agent 'nope'"),
        (["--chaos", "--chaos-period", "0s"], "--chaos-period"),
        (["--chaos", "--chaos-rate", "-1"], "--chaos-rate"),
    ],
)
def test_chaos_usage_errors_start_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    inv = _inventory(tmp_path / "agents.yaml")
    assert main(["demo", "-i", str(inv), *extra]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and "demo fleet" not in err
