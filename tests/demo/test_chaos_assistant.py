"""``latcli demo --chaos`` on assistants: the assistant schedule and what each phase asks of a
demo assistant exactly, the driver against a real one, and the real command watching the
pick move off the assistant fastest to its first token (slow, then rate limited: cooling) and
come back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaos_ticks import agent_row, chaos_segments
from cli_run import spawn

from latcli.config.loading import load_inventory
from latcli.config.model import Agent, DemoConfig
from latcli.core.errors import LatcliError
from latcli.demo.chaos import (
    ASSISTANT_SCHEDULE,
    SCHEDULE,
    ChaosChange,
    ChaosStep,
    Fault,
    Schedule,
    fault_for,
    pick_assistant,
    pick_targets,
    run_chaos,
    schedule_for,
)
from latcli.demo.control import get_fault, set_fault
from latcli.demo.fleet import DEMO_INVENTORY, Fleet, free_port

pytestmark = pytest.mark.timeout(60)

SLOW = ChaosStep("slow", 20.0, ttft_factor=10.0)
LIMITED = ChaosStep("rate_limited", 15.0, rate_limited=True)
HEALTHY = ChaosStep("healthy", 40.0)
ASSISTANT = DemoConfig("fixed 5ms", app="assistant", ttft="lognormal 150ms 0.4")

# ---- the schedule and the faults --------------------------------------------------------------


def test_the_assistant_schedule_has_the_plain_ones_shape_and_period() -> None:
    assert Schedule(15.0, (LIMITED, SLOW, HEALTHY)) == ASSISTANT_SCHEDULE
    assert ASSISTANT_SCHEDULE.period == SCHEDULE.period  # one --chaos-period scales both
    text = "rate_limited 15 s → slow 20 s → healthy 40 s, repeating"
    assert ASSISTANT_SCHEDULE.describe() == text
    scaled = ASSISTANT_SCHEDULE.scaled(10.0)
    assert [p.rate_limited for p in scaled.cycle] == [True, False, False]
    assert [p.ttft_factor for p in scaled.cycle] == [1.0, 10.0, 1.0]


@pytest.mark.parametrize(
    ("phase", "fault"),
    [
        (ChaosStep("healthy", 15.0), Fault("fixed 5ms", 0.0, False, "lognormal 150ms 0.4", 0.0)),
        (SLOW, Fault("fixed 5ms", 0.0, False, "lognormal 1500ms 0.4", 0.0)),
        (LIMITED, Fault("fixed 5ms", 0.0, False, "lognormal 150ms 0.4", 15.0)),
        (HEALTHY, Fault("fixed 5ms", 0.0, False, "lognormal 150ms 0.4", 0.0)),
    ],
)
def test_fault_for_an_assistant_sets_its_think_time_and_rate_limit(
    phase: ChaosStep, fault: Fault
) -> None:
    assert fault_for(phase, ASSISTANT) == fault


@pytest.mark.parametrize(
    ("fault", "extra"),
    [
        (Fault("5ms", 0.0, False), None),  # not an assistant: no assistant keys
        (Fault("5ms", 0.0, False, "150ms", 0.0), {"ttft": "150ms", "rate_limited": False}),
        (Fault("5ms", 0.0, False, "150ms", 2.5), {"ttft": "150ms", "rate_limited": "2.5s"}),
    ],
)
def test_the_admin_keys_of_a_fault(fault: Fault, extra: dict[str, object] | None) -> None:
    assert fault.extra() == extra


@pytest.mark.parametrize(
    ("phase", "text"),
    [
        (SLOW, "10× time to first token"),
        (LIMITED, "429 + Retry-After to new messages"),
        (HEALTHY, "normal"),
    ],
)
def test_describe(phase: ChaosStep, text: str) -> None:
    assert phase.describe() == text


def _assistant(agent_id: str, type_: str, ttft: str) -> Agent:
    demo = DemoConfig(app="assistant", ttft=ttft)
    return Agent(id=agent_id, type=type_, url="http://127.0.0.1:1", protocol="a2a", demo=demo)


def test_the_demo_fleet_degrades_weather_1_and_assistant_2() -> None:
    demo = load_inventory(DEMO_INVENTORY, {}).agents
    targets = pick_targets(demo, None)
    assert [a.id for a in targets] == ["weather-1", "assistant-2"]  # 150 ms beats 400 ms
    assert [schedule_for(a) for a in targets] == [SCHEDULE, ASSISTANT_SCHEDULE]
    assert [a.id for a in pick_targets(demo, "assistant-1")] == ["assistant-1"]


def test_pick_assistant_needs_a_peer_of_its_type() -> None:
    lone = [_assistant("a", "x", "50ms"), _assistant("b", "y", "10ms")]
    assert pick_assistant(lone) is None
    pair = [*lone, _assistant("c", "x", "20ms"), Agent(id="w", type="x", url="http://h:1")]
    assert pick_assistant(pair) is not None and pick_assistant(pair).id == "c"  # type: ignore[union-attr]
    assert [a.id for a in pick_targets(pair, None)] == ["c"]  # no plain agent with a peer


def test_no_pair_anywhere_is_the_usage_error_it_was() -> None:
    with pytest.raises(LatcliError, match="needs a type with two or more agents"):
        pick_targets([_assistant("a", "x", "50ms")], None)


# ---- the driver against a real assistant ------------------------------------------------------


@pytest.fixture(scope="module")
def assistant() -> Iterator[Agent]:
    demo = DemoConfig("2ms", app="assistant", ttft="fixed 40ms")
    agent = Agent(id="a", type="t", url="http://127.0.0.1:1", protocol="a2a", demo=demo)
    with Fleet([agent], {"a": free_port()}) as fleet:
        yield Agent(id="a", type="t", url=fleet.urls["a"], protocol="a2a", demo=demo)


def test_run_chaos_applies_each_assistant_phase(assistant: Agent) -> None:
    cycle = (
        ChaosStep("rate_limited", 0.3, rate_limited=True),
        ChaosStep("slow", 0.3, ttft_factor=10.0),
    )
    schedule = Schedule(0.3, cycle)

    async def drive() -> list[tuple[str, dict[str, object]]]:
        seen: list[ChaosChange] = []
        states: list[tuple[str, dict[str, object]]] = []
        task = asyncio.create_task(run_chaos(assistant, schedule, seen.append))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.05
        while loop.time() < deadline:
            if len(seen) > len(states):  # read the agent back before the next phase
                states.append((seen[len(states)].phase.name, await get_fault(assistant.url)))
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return states

    try:
        got = asyncio.run(drive())
    finally:
        asyncio.run(set_fault(assistant.url, latency=None, errors=None, down=None,
                              extra={"ttft": "fixed 40ms", "rate_limited": False}))  # fmt: skip
    assert [name for name, _ in got] == ["healthy", "rate_limited", "slow", "rate_limited"]
    assert [s["ttft"] for _, s in got] == ["fixed 40ms", "fixed 40ms", "fixed 400ms", "fixed 40ms"]
    limited = [s["rate_limited"] for _, s in got]
    assert limited[0] is False and limited[2] is False  # lifted by the next phase
    for left in (limited[1], limited[3]):  # seconds left of the 429s
        assert isinstance(left, float) and 0 < left <= 0.3


# ---- the command ------------------------------------------------------------------------------


def _inventory(path: Path) -> Path:
    # Fixed think times and one-chunk answers keep the picks readable: a1 (50 ms to its first
    # token) is preferred, 10× slower (500 ms) it is not, and a stream is over at its first token
    # so in-flight counts stay low. decay 2s at 200 ms checks forgets as fast per check as the
    # demo's 10s at 2s: the 5 ms card GETs pull a1's EWMA back within the healthy phase.
    one_chunk = "tokens_per_s: 50, chunk_tokens: 5, answer_tokens: 5"
    path.write_text(
        f"""\
version: 1
defaults:
  timeout: 5s
  ewma: {{decay: 2s}}
routing: {{strategy: p2c, retries: 1, retry_budget: 20%}}
agents:
  - {{id: a1, type: assistant, url: "http://127.0.0.1:{free_port()}", protocol: a2a,
      demo: {{app: assistant, ttft: "50ms", {one_chunk}}}}}
  - {{id: a2, type: assistant, url: "http://127.0.0.1:{free_port()}", protocol: a2a,
      demo: {{app: assistant, ttft: "150ms", {one_chunk}}}}}
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.timeout(60)
def test_demo_chaos_moves_the_assistant_pick_away_and_back(tmp_path: Path) -> None:
    inv = _inventory(tmp_path / "agents.yaml")
    # 15 s cycle: warm-up 3 s, rate limited 3 s, slow 4 s, healthy 8 s; 95 ticks of 200 ms go
    # one second past the next change (its event tells where the healthy phase's traffic
    # went). 4 streamed messages a second.
    args = ["demo", "-i", str(inv), "--chaos", "--chaos-period", "15s", "--chaos-rate", "4"]
    proc = spawn(*args, "--interval", "200ms", "--count", "95", "--json",
                 env={"LATCLI_STATE": str(tmp_path / "state.db")})  # fmt: skip
    try:
        out, err = proc.communicate(timeout=50)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "chaos on a1" in err and "assistant streamed messages/s" in err
    assert "Traceback" not in err
    ticks = [json.loads(line) for line in out.splitlines()]
    assert len(ticks) == 95

    segments = chaos_segments(ticks, "a1")
    names = ["healthy", "rate_limited", "slow", "healthy", "rate_limited"]
    assert [s[0] for s in segments][:5] == names
    warm, limited, slow, healed = (seg[1] for seg in segments[:4])
    to_limited, to_slow, to_healed, again = (seg[2] for seg in segments[1:5])
    assert "(429 + Retry-After to new messages)" in to_limited
    assert "(10× time to first token)" in to_slow

    # Rate limited while it was the pick: the router heard a 429 and set a1 aside (watch shows it
    # cooling, with events); while it cooled it was never the pick, and then it cooled down.
    first_429 = next(
        i for i, t in enumerate(ticks) for e in t["events"] if e["kind"] == "rate_limit"
    )
    told = ticks[first_429]["events"]
    assert [e["message"][: len("a1 rate limited: set aside for")] for e in told if
            e["kind"] == "rate_limit"] == ["a1 rate limited: set aside for"]  # fmt: skip
    assert first_429 >= len(warm)  # not before the phase began
    cooled = [e for t in ticks[first_429:] for e in t["events"] if e["kind"] == "rate_limit"]
    assert "a1 cooled down" in [e["message"] for e in cooled]
    cooling = [t for t in ticks if agent_row(t, "a1")["cooling_s"] is not None]
    assert cooling and {t["picks"]["assistant"] for t in cooling} == {"a2"}
    assert {agent_row(t, "a1")["breaker"] for t in ticks} == {"closed"}  # a 429 is no failure

    # Where the trickle went, as each chaos event tells: a1 while healthy, a2 while a1 was
    # rate limited and while it was slow, a1 again once healthy.
    a1_warm, a2_warm = _counts(to_limited, "healthy")
    a1_limited, a2_limited = _counts(to_slow, "rate_limited")
    a1_slow, a2_slow = _counts(to_healed, "slow")
    a1_healed, a2_healed = _counts(again, "healthy")
    assert a1_warm > a2_warm and a1_healed > a2_healed, (to_limited, again)
    assert a2_limited > a1_limited and a2_slow > a1_slow, (to_slow, to_healed)
    # It was the pick most of the healthy phase (the 5 ms card GETs pull a2's idle EWMA under
    # a1's every few seconds, so a2 gets a probe now and then).
    ready = [t for t in healed if agent_row(t, "a1")["cooling_s"] is None]
    assert ready and _share(ready, "a1") >= 0.5, [t["picks"] for t in ready]
    assert limited and slow  # each phase was in force for some ticks


def _counts(message: str, phase: str) -> tuple[int, int]:
    """(a1, a2) from ``... assistant traffic while slow: a1 3, a2 9``."""
    tail = message.split(f"assistant traffic while {phase}: ")[1]
    counts = dict(part.rsplit(" ", 1) for part in tail.split(", "))
    return int(counts["a1"]), int(counts["a2"])


def _share(ticks: list[dict[str, Any]], agent: str) -> float:
    return float(sum(t["picks"]["assistant"] == agent for t in ticks)) / len(ticks)
