"""``latcli capacity``: the step plan, the verdicts and the sums (exact, no clock), the demo
agent's concurrency limit (measured at the server), and the real command end to end against a
demo agent whose capacity is known by construction."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from capacity_help import check_contract, measure
from cli_run import _env, interrupt_when_started
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from latcli.cli.app import main
from latcli.config.loading import load_inventory
from latcli.core.capacity import (
    GENERATOR_RETRIES,
    MAX_STEPS,
    CapacityPlan,
    LatencySummary,
    Step,
    StepMeasure,
    baseline,
    next_step,
    nice,
    replicas_needed,
    summarize,
)
from latcli.core.capacity_judge import judge_step
from latcli.core.distribution import parse_distribution
from latcli.core.errors import LatcliError
from latcli.core.sla import Measurements as SlaObservation
from latcli.core.sla import evaluate, parse_threshold
from latcli.demo.agent import FaultState, apply_fault
from latcli.demo.fleet import Fleet, free_port
from latcli.render.capacity_view import capacity_summary
from latcli.reports.capacity import capacity_report

pytestmark = pytest.mark.timeout(60)


def passed(rate: float, phase: Any = "step") -> Step:
    return Step(measure(rate), phase)


def failed(
    rate: float, why: str = "SLA p99 < 100ms (observed 300 ms)", phase: Any = "step"
) -> Step:
    return Step(measure(rate), phase, (why,))


GEN_FAIL = "generator: sent 90.0 of 100 req/s (90.0%)"


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([], (10.0, "step")),
        ([passed(10)], (15.0, "step")),
        ([passed(10), passed(15)], (22.5, "step")),
        ([passed(10), passed(15), passed(22.5)], (33.8, "step")),  # 33.75 to 3 digits
        ([failed(10)], None),  # even the first step failed
        ([passed(10), failed(15)], (12.2, "refine")),  # sqrt(150) = 12.247
        ([passed(10), failed(15), passed(12.2)], (13.5, "refine")),  # sqrt(183) = 13.53
        ([passed(10), failed(15), failed(12.2)], (11.0, "refine")),  # sqrt(122) = 11.05
        ([passed(100), failed(105)], None),  # 1.05 <= resolution 1.06
        ([passed(100), failed(106)], None),  # exactly the resolution
        ([passed(100), failed(107)], (103.0, "refine")),
        ([passed(10), Step(measure(15, interrupted=True), "step", ("interrupted",))], None),
        ([passed(10), failed(15, GEN_FAIL)], (15.0, "retry")),
        ([passed(10), failed(15, GEN_FAIL), failed(15, GEN_FAIL, "retry")], (15.0, "retry")),
        (
            [passed(10), *[failed(15, GEN_FAIL, "retry")] * (GENERATOR_RETRIES + 1)],
            (12.2, "refine"),  # retries spent: the generator's limit bounds the search
        ),
        ([passed(10), failed(15, GEN_FAIL), passed(15, "retry")], (22.5, "step")),  # a hiccup
        ([passed(10), Step(measure(15), "step", (GEN_FAIL, "SLA p99 < 1ms"))], (12.2, "refine")),
    ],
)
def test_next_step(steps: list[Step], expected: tuple[float, str] | None) -> None:
    assert next_step(CapacityPlan(), steps) == expected


@pytest.mark.parametrize(
    ("max_rate", "steps", "expected"),
    [
        (20.0, [passed(10), passed(15)], (20.0, "step")),  # capped, not 22.5
        (20.0, [passed(10), passed(15), passed(20)], None),  # max reached and held
        (10.0, [passed(10)], None),
        (20.0, [passed(10), passed(15), failed(20)], (17.3, "refine")),
    ],
)
def test_max_rate_caps_the_climb(
    max_rate: float, steps: list[Step], expected: tuple[float, str] | None
) -> None:
    assert next_step(CapacityPlan(max_rate=max_rate), steps) == expected


def _search(plan: CapacityPlan, capacity: float) -> list[Step]:
    """Run the plan against a target that sustains exactly ``capacity`` req/s."""
    steps: list[Step] = []
    while (nxt := next_step(plan, steps)) is not None:
        rate, phase = nxt
        steps.append(passed(rate, phase) if rate <= capacity else failed(rate, phase=phase))
    return steps


@settings(max_examples=300, deadline=None)
@given(
    start=st.floats(min_value=0.5, max_value=2000.0),
    ratio=st.floats(min_value=1.0, max_value=5000.0),
    factor=st.sampled_from([1.2, 1.5, 2.0, 3.0]),
)
def test_search_brackets_any_capacity_within_the_resolution(
    start: float, ratio: float, factor: float
) -> None:
    plan = CapacityPlan(start_rate=start, factor=factor)
    capacity = nice(start) * ratio
    steps = _search(plan, capacity)
    result = summarize(plan, steps)
    assert len(steps) < MAX_STEPS
    assert result.sustainable_rps is not None
    assert result.sustainable_rps <= capacity
    first_fail = min(s.rate for s in steps if not s.passed)
    assert first_fail > capacity
    # The answer is the bracket's low end: at most `resolution` (plus the 3-digit rounding of
    # the midpoints) below the truth.
    assert first_fail / result.sustainable_rps <= plan.resolution * 1.01
    assert result.sustainable_rps >= capacity / (plan.resolution * 1.01)


@settings(max_examples=200, deadline=None)
@given(capacity=st.floats(min_value=1.0, max_value=1e5))
def test_search_never_passes_above_a_failure(capacity: float) -> None:
    steps = _search(CapacityPlan(), capacity)
    passes = [s.rate for s in steps if s.passed]
    fails = [s.rate for s in steps if not s.passed]
    assert not passes or not fails or max(passes) < min(fails)
    assert len({s.rate for s in steps}) == len(steps)  # no rate is run twice without a reason


def test_a_first_step_above_capacity_ends_the_search() -> None:
    steps = _search(CapacityPlan(start_rate=500), 200)
    assert [s.rate for s in steps] == [500]
    result = summarize(CapacityPlan(start_rate=500), steps, replicas=2)
    assert result.knee is None and not result.passed
    assert result.replicas == 2 and result.replicas_needed is None
    assert "even the first step" in result.reasoning[0]


@pytest.mark.parametrize(
    "kw",
    [
        {"start_rate": 0},
        {"start_rate": 10, "max_rate": 5},
        {"factor": 1.05},
        {"resolution": 1.0},
        {"resolution": 1.6},  # not finer than a step
        {"step_duration_s": 0},
        {"target_rps": 0},
        {"headroom": 1.0},
        {"headroom": -0.1},
    ],
)
def test_bad_plans_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CapacityPlan(**kw)


def _verdicts(expr: str, p: float) -> tuple[Any, ...]:
    obs = SlaObservation(100, lambda _: p, p, p, p, 0, 100, 10.0)
    return tuple(evaluate([parse_threshold(expr)], obs))


BASE = measure(10)


@pytest.mark.parametrize(
    ("m", "reasons"),
    [
        (measure(100), []),
        (measure(100, achieved_rps=99.0), []),  # exactly 99 %
        (measure(100, achieved_rps=98.9), ["generator: sent 98.9 of 100 req/s (98.9%)"]),
        (  # the bench's lag bound is reported, not judged
            measure(100, valid=False, invalid_reason="schedule lag p99 12 ms > 10 ms"),
            [],
        ),
        (measure(100, sla=_verdicts("p99<100ms", 50.0)), []),
        (measure(100, sla=_verdicts("p99<100ms", 150.0)), ["SLA p99 < 100ms (observed 150 ms)"]),
        (measure(100, errors=1, requests=500), []),  # 0.2 %: within a point of the baseline
        (measure(100, errors=10, requests=500), ["errors rose to 2% (0% at the lowest step)"]),
        (
            measure(100, interval_p50_ms=(20.0, 25.0, 40.0, 60.0)),
            ["latency kept rising during the step (p50 22.5 ms → 50.0 ms)"],
        ),
        (measure(100, interval_p50_ms=(20.0, 21.0, 23.0, 22.0)), []),  # noise
        (measure(100, interval_p50_ms=(1.0, 1.2, 2.5, 2.8)), []),  # 2.6× but under 5 ms
        (measure(100, interval_p50_ms=(20.0,)), []),  # one interval: nothing to compare
        (
            measure(100, latency=LatencySummary(p50=41.0, mean=41.0)),
            ["p50 41.0 ms is over 2× the 20.0 ms at the lowest step"],
        ),
        (measure(100, latency=LatencySummary(p50=40.0, mean=40.0)), []),  # exactly 2×
        (measure(100, requests=0), ["no request completed"]),
        (measure(100, interrupted=True), ["interrupted"]),
    ],
)
def test_judge_step(m: StepMeasure, reasons: list[str]) -> None:
    assert list(judge_step(m, "step", BASE).reasons) == reasons


def test_every_failing_rule_is_named() -> None:
    m = measure(
        100,
        achieved_rps=50.0,
        sla=_verdicts("p90<100ms", 500.0),
        interval_p50_ms=(100.0, 900.0),
        latency=LatencySummary(p50=500.0, mean=500.0),
    )
    reasons = judge_step(m, "step", BASE).reasons
    assert [r.split(" ")[0] for r in reasons] == ["generator:", "SLA", "latency", "p50"]


def test_a_flaky_agent_keeps_its_baseline_errors() -> None:
    flaky = measure(10, errors=10, requests=50)  # 20 % at the lowest step
    assert not judge_step(measure(100, errors=110, requests=500), "step", flaky).reasons  # 22 %
    rose = judge_step(measure(100, errors=175, requests=500), "step", flaky)  # 35 %
    assert rose.reasons == ("errors rose to 35% (20% at the lowest step)",)


def test_the_first_step_has_no_baseline() -> None:
    slow = measure(10, latency=LatencySummary(p50=900.0, mean=900.0), errors=5)
    assert judge_step(slow, "step", None).passed
    assert baseline([Step(slow, "step", ("x",)), passed(10, "retry")]) == measure(10)


@pytest.mark.parametrize(
    ("target", "per", "headroom", "n"),
    [
        (500, 98, 0.3, 8),  # 500 / 68.6 = 7.29
        (140, 100, 0.3, 2),  # exactly 2 (140 / (100 × 0.7) is 2.0000000000000004 in floats)
        (200, 100, 0.0, 2),
        (201, 100, 0.0, 3),
        (1, 1000, 0.5, 1),
        (1000, 1, 0.9, 10000),
    ],
)
def test_replicas_needed(target: float, per: float, headroom: float, n: int) -> None:
    assert replicas_needed(target, per, headroom) == n


@given(
    target=st.floats(min_value=0.1, max_value=1e6),
    per=st.floats(min_value=0.1, max_value=1e5),
    headroom=st.floats(min_value=0.0, max_value=0.95),
)
def test_replicas_needed_is_the_fewest_that_keep_the_headroom(
    target: float, per: float, headroom: float
) -> None:
    n = replicas_needed(target, per, headroom)
    each = per * (1.0 - headroom)
    assert n * each >= target * (1 - 1e-9)
    assert n == 1 or (n - 1) * each < target


def _knee_steps() -> list[Step]:
    """Two replicas, the knee at 196 req/s with 31 ms mean latency."""
    at_knee = LatencySummary(min=20, p50=30, p90=33, p95=35, p99=40, max=50, mean=31.0)
    knee = Step(measure(196, throughput_rps=196.0, latency=at_knee, replicas=2), "refine")
    return [passed(100), passed(150), failed(225), knee, failed(210, phase="refine")]


def test_summary_little_and_replicas() -> None:
    plan = CapacityPlan(start_rate=100, target_rps=500, headroom=0.3)
    result = summarize(plan, _knee_steps(), replicas=2)
    assert result.knee == 3 and result.sustainable_rps == 196
    assert result.replicas == 2 and result.per_replica_rps == 98
    assert result.replicas_needed == 8 and result.target_met is False
    assert result.limited_by == "target"
    text = "\n".join(result.reasoning)
    assert "knee at 196 req/s (2 replicas → 98 req/s each)" in text
    assert "210 req/s was not sustainable" in text
    assert "~6.1 requests are in flight (3.0 per replica)" in text  # 196 × 0.031 = 6.08
    assert "each replica should carry ≤ 68.6 req/s" in text
    assert "→ 8 replicas" in text


def test_summary_when_nothing_failed_and_when_the_generator_did() -> None:
    capped = summarize(CapacityPlan(max_rate=15), [passed(10), passed(15)])
    assert capped.limited_by == "max_rate" and capped.sustainable_rps == 15
    assert any("at least 15 req/s" in line for line in capped.reasoning)
    gen = summarize(CapacityPlan(), [passed(10), *[failed(15, GEN_FAIL)] * 3, passed(12.2)])
    assert gen.limited_by == "generator" and gen.sustainable_rps == 12.2
    assert any("load generator, not the target" in line for line in gen.reasoning)
    enough = summarize(CapacityPlan(target_rps=5, headroom=0.3), [passed(10), failed(15)])
    assert enough.replicas_needed == 1 and enough.target_met is True


def test_json_contract_and_the_view() -> None:
    plan = CapacityPlan(start_rate=100, target_rps=500, step_duration_s=5.0)
    result = summarize(plan, _knee_steps(), replicas=2)
    report = capacity_report(result, target="weather", endpoint="message", sla=["p90 < 500ms"])
    doc = report.to_json()
    check_contract(json.loads(json.dumps(doc)))
    assert doc["knee"] == {"rate": 196, "index": 3}
    assert doc["steps"][2]["reason"] == "SLA p99 < 100ms (observed 300 ms)"
    assert doc["littles_law"]["in_flight"] == pytest.approx(6.076)
    console = Console(width=80, record=True, color_system=None)
    console.print(capacity_summary(report))
    text = console.export_text()
    knee_row = next(line for line in text.splitlines() if "knee" in line and "196" in line)
    assert knee_row.split()[:3] == ["4", "refine", "196"]
    assert "#3 225 req/s: SLA p99 < 100ms" in text
    assert "8 replicas for 500 req/s at 30% headroom" in " ".join(text.split())
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80


def _inventory(path: Path, ids: Sequence[str], latency: str) -> Path:
    agents = [
        {"id": i, "type": "capped", "url": f"http://127.0.0.1:{free_port()}",
         "demo": {"latency": latency, "errors": 0.0}}
        for i in ids
    ]  # fmt: skip
    doc = {
        "version": 1,
        "defaults": {"timeout": "2s"},
        "sla": {"message": "p90 < 500ms", "error_rate": "< 0.1%"},
        "agents": agents,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Fleet]]:
    """Two demo agents of fixed 20 ms; each test sets the limit it needs."""
    path = _inventory(tmp_path_factory.mktemp("capped") / "agents.yaml", ["cap-a", "cap-b"], "20ms")
    with Fleet(load_inventory(path, {}).agents, seed=3) as fleet:
        yield path, fleet


def _admin(url: str, method: str, path: str, body: Any = None) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        return client.request(method, url + path, json=body)


def _set(url: str, **change: Any) -> dict[str, Any]:
    reply = _admin(url, "POST", "/admin/fault", change)
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


async def _burst(url: str, n: int) -> tuple[float, list[int], int, float]:
    """``n`` messages at once; (seconds for all, statuses, most queued seen, health seconds)."""
    async with httpx.AsyncClient(trust_env=False, timeout=10.0, limits=httpx.Limits()) as c:
        began = time.monotonic()
        sends = [c.post(url + "/message/send", json={"message": "x"}) for _ in range(n)]
        tasks = [asyncio.ensure_future(s) for s in sends]
        queued = 0
        health_s = math.inf
        while not all(t.done() for t in tasks):
            load = (await c.get(url + "/admin/load")).json()
            queued = max(queued, int(load["queued"]))
            if queued and health_s == math.inf:  # the slots are full now: health must not wait
                t0 = time.monotonic()
                assert (await c.get(url + "/health")).status_code == 200
                health_s = time.monotonic() - t0
            await asyncio.sleep(0.01)
        replies = await asyncio.gather(*tasks)
        return time.monotonic() - began, [r.status_code for r in replies], queued, health_s


def test_the_limit_caps_messages_in_service_at_the_server(capped: tuple[Path, Fleet]) -> None:
    url = capped[1].urls["cap-a"]
    state = _set(url, latency="100ms", concurrency_limit=3)
    assert state["concurrency_limit"] == 3 and state["latency"] == "fixed 100ms"
    try:
        took, statuses, queued, health_s = asyncio.run(_burst(url, 12))
        load = _admin(url, "GET", "/admin/load").json()
    finally:
        _set(url, latency="20ms", concurrency_limit=0)
    assert statuses == [200] * 12
    assert load["peak_in_service"] == 3  # never more than the limit at once ...
    assert load["in_service"] == 0 and load["queued"] == 0
    assert load["served"] == 12 and load["mean_service_ms"] == pytest.approx(100.0)
    assert queued > 0  # ... the rest waited in the queue
    assert took >= 12 / 3 * 0.1 * 0.95  # four rounds of 100 ms, not one
    # Health checks bypass the queue: they take the fault's 100 ms (a latency fault slows every
    # endpoint), not a wait behind 12 messages in four rounds of 100 ms.
    assert health_s < 0.25


def test_without_a_limit_every_message_is_in_service_at_once(capped: tuple[Path, Fleet]) -> None:
    url = capped[1].urls["cap-b"]
    _set(url, latency="200ms", concurrency_limit=0)
    try:
        _, statuses, _, _ = asyncio.run(_burst(url, 8))
        load = _admin(url, "GET", "/admin/load").json()
    finally:
        _set(url, latency="20ms")
    assert statuses == [200] * 8
    assert load["concurrency_limit"] is None and load["peak_in_service"] == 8
    assert "concurrency_limit" not in _admin(url, "GET", "/admin/fault").json()


@pytest.mark.parametrize("bad", [-1, 2.5, "4", True])
def test_a_bad_limit_is_refused_and_changes_nothing(bad: object) -> None:
    state = FaultState(parse_distribution("5ms"), 0.1, concurrency_limit=4)
    with pytest.raises(ValueError, match="concurrency_limit"):
        apply_fault(state, {"latency": "9ms", "concurrency_limit": bad})
    assert state == FaultState(parse_distribution("5ms"), 0.1, concurrency_limit=4)


def test_the_limit_as_a_start_option(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "latcli.demo.agent", "--id", "x", "--port", str(port),
         "--concurrency-limit", "5"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                load = _admin(f"http://127.0.0.1:{port}", "GET", "/admin/load").json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert load["concurrency_limit"] == 5
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--headroom", "100%"], "under 100%"),
        (["--headroom", "lots"], "percentage"),
        (["--start-rate", "0"], "more than zero"),
        (["--start-rate", "50", "--max-rate", "20"], "at least --start-rate"),
        (["--step-duration", "0.1s"], "at least 0.5s"),
        (["--step-duration", "soon"], "duration"),
        (["--target-rps", "-5"], "more than zero"),
        (["--endpoint", "nope"], "health"),
        (["--sla", "rps>=100"], "--target-rps"),
        (["--sla", "p99<100"], "needs a unit"),
    ],
)
def test_bad_options_exit_2(
    capped: tuple[Path, Fleet], args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["capacity", "cap-a", "-i", str(capped[0]), "-q", *args]) == 2
    assert needle in capsys.readouterr().err


def test_an_unknown_target_exits_2(
    capped: tuple[Path, Fleet], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["capacity", "nobody", "-i", str(capped[0]), "-q"]) == 2
    assert "unknown target 'nobody'" in capsys.readouterr().err


def test_estimate_of_a_known_capacity_end_to_end(
    capped: tuple[Path, Fleet], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """N=2 × 20 ms = 100 req/s by construction; short steps keep the test under ~20 s (the
    ±15 % figure comes from scripts/capacity_check.py with 5 s steps)."""
    inv, fleet = capped
    _set(fleet.urls["cap-a"], concurrency_limit=2)
    out = tmp_path / "cap.json"
    try:
        code = main(
            ["capacity", "cap-a", "-i", str(inv), "--json", "-o", str(out), "--start-rate", "40",
             "--step-duration", "1s", "--target-rps", "250", "--headroom", "20%"]
        )  # fmt: skip
    finally:
        _set(fleet.urls["cap-a"], concurrency_limit=0)
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert json.loads(out.read_text()) == doc
    check_contract(doc)
    assert code == 0 and doc["pass"] is True
    assert doc["target"] == "cap-a" and doc["endpoint"] == "message"
    assert doc["sla"] == ["p90 < 500ms", "error_rate < 0.1%"]
    assert doc["replicas"] == 1 and doc["headroom"] == 0.2
    assert 60 <= doc["sustainable_rps"] <= 115
    assert any(not s["pass"] for s in doc["steps"])  # it found where the agent gives way
    per = doc["per_replica_rps"]
    assert doc["replicas_needed"] == math.ceil(250 / (per * 0.8) - 1e-9)
    assert doc["limited_by"] == "target"
    assert len(captured.err.strip().splitlines()) == len(doc["steps"])  # a line per step
    assert captured.err.startswith("step  1  step")


def test_a_type_is_routed_and_counted_per_replica(
    capped: tuple[Path, Fleet], capsys: pytest.CaptureFixture[str]
) -> None:
    inv = str(capped[0])
    code = main(["capacity", "capped", "-i", inv, "--json", "-q", "--start-rate", "200",
                 "--max-rate", "200", "--step-duration", "1s"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["limited_by"] == "max_rate"
    assert doc["replicas"] == doc["steps"][0]["replicas"] == 2
    assert doc["per_replica_rps"] == 100.0


def test_exit_1_when_even_the_first_step_fails(
    capped: tuple[Path, Fleet], capsys: pytest.CaptureFixture[str]
) -> None:
    url = capped[1].urls["cap-b"]
    _set(url, errors=1.0)
    try:
        code = main(["capacity", "cap-b", "-i", str(capped[0]), "--step-duration", "0.5s", "-q",
                     "--sla", "error_rate<1%", "--json"])  # fmt: skip
    finally:
        _set(url, errors=0.0)
    doc = json.loads(capsys.readouterr().out)
    check_contract(doc)
    assert code == 1 and doc["pass"] is False and len(doc["steps"]) == 1
    first = "even the first step, 10 req/s, failed: SLA error_rate < 1% (observed 100%)"
    assert doc["reasoning"][0].startswith(first)


def test_ctrl_c_still_reports_and_exits_130(capped: tuple[Path, Fleet]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "latcli", "capacity", "cap-b", "-i", str(capped[0]), "--json",
         "--step-duration", "1s", "--start-rate", "20"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(),
    )  # fmt: skip
    line, stdout = interrupt_when_started(proc, 0.5)
    assert line.startswith("step  1")  # one step measured, the next runs
    assert proc.returncode == 130
    doc = json.loads(stdout)
    check_contract(doc)
    assert doc["interrupted"] is True
    assert doc["steps"][0]["pass"] is True and doc["sustainable_rps"] == 20
    assert doc["steps"][-1]["interrupted"] is True


def test_html_report(
    capped: tuple[Path, Fleet], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "cap.html"
    code = main(["capacity", "cap-a", "-i", str(capped[0]), "-q", "--start-rate", "20",
                 "--max-rate", "20", "--step-duration", "0.5s", "--html", str(page)])  # fmt: skip
    assert code == 0
    html = page.read_text(encoding="utf-8")
    assert "<html" in html.lower()
    assert "cap-a" in html
    assert "knee" in capsys.readouterr().out


def _limited_inventory(path: Path, agent_id: str, limit: int) -> Path:
    """One 20 ms demo agent declaring ``demo.concurrency_limit: limit`` in the inventory."""
    _inventory(path, [agent_id], "20ms")
    text = path.read_text(encoding="utf-8")
    limited = text.replace("errors: 0.0", f"errors: 0.0\n    concurrency_limit: {limit}")
    path.write_text(limited, encoding="utf-8")
    return path


def test_an_inventory_declares_a_known_capacity_agent(tmp_path: Path) -> None:
    # demo.concurrency_limit in agents.yaml starts the agent limited: no /admin/fault needed.
    path = _limited_inventory(tmp_path / "agents.yaml", "cap-y", 2)
    (agent,) = load_inventory(path, {}).agents
    assert agent.demo is not None and agent.demo.concurrency_limit == 2
    with Fleet([agent], seed=3) as fleet:
        load = _admin(fleet.urls["cap-y"], "GET", "/admin/load").json()
    assert load["concurrency_limit"] == 2


def test_a_concurrency_limit_under_one_is_an_inventory_error(tmp_path: Path) -> None:
    path = _limited_inventory(tmp_path / "agents.yaml", "cap-z", 0)
    with pytest.raises(LatcliError, match=r"agents\[0\]\.demo\.concurrency_limit"):
        load_inventory(path, {})
