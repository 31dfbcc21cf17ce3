"""Bench engine: schedule arithmetic (exact, no clock), then real runs against loopback servers
and the demo fleet: closed and open models, warm-up, in-flight cap, errors, type targets,
interruption and multi-process merging."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import replace

import fault_servers as fs
import pytest
from conftest import DemoFleet

from latcli.config.loading import load_inventory
from latcli.core import schedule
from latcli.engines.bench.recorder import WorkerRecorder, halve
from latcli.engines.bench.run import run_share
from latcli.engines.bench.targets import Target, resolve_target
from latcli.engines.bench.workers import merge, pack, run_bench
from latcli.reports.bench_model import BenchPlan, IntervalSample
from latcli.reports.histogram import LatencyHistogram

pytestmark = pytest.mark.timeout(60)

# ---- schedule arithmetic --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "parts", "expected"),
    [(10, 3, [4, 3, 3]), (2, 4, [1, 1, 0, 0]), (0, 2, [0, 0]), (7, 1, [7])],
)
def test_split_evenly(total: int, parts: int, expected: list[int]) -> None:
    assert schedule.split_evenly(total, parts) == expected
    assert sum(expected) == total


def test_warmup_and_totals_are_exact_at_boundaries() -> None:
    assert schedule.warmup_requests(10, 0.3) == 3  # due at 0, .1, .2; .3 is measured
    assert schedule.warmup_requests(10, 0.25) == 3
    assert schedule.warmup_requests(10, 0) == 0
    assert schedule.open_total(2000, 0, 10, None) == 20_000
    assert schedule.open_total(10, 0.3, 1.0, None) == 13
    assert schedule.open_total(10, 0.3, None, 5) == 8


def test_due_time_of_request_i_is_i_over_r() -> None:
    share = schedule.open_share(200.0, 0, 1, 0.0, 1.0, None)
    assert share.count == 200
    assert [share.due_s(i) for i in range(3)] == [0.0, 0.005, 0.01]
    assert share.due_s(199) == pytest.approx(0.995)


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_workers_interleave_the_global_schedule(workers: int) -> None:
    rate, warm = 100.0, 0.05
    shares = [schedule.open_share(rate, w, workers, warm, 1.0, None) for w in range(workers)]
    dues = sorted(s.due_s(j) for s in shares for j in range(s.count))
    assert dues == [g / rate for g in range(105)]  # every global request once, none twice
    measured = sum(s.measured(j) for s in shares for j in range(s.count))
    assert measured == 100
    assert sum(s.worker_rate for s in shares) == pytest.approx(rate)


def test_worker_index_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        schedule.open_share(10, 2, 2, 0, 1, None)


def test_achieved_rate_of_a_perfect_and_a_late_schedule() -> None:
    # 100 sends at 100/s: the last leaves at 0.99 s.
    assert schedule.achieved_rate(100, 1.0, 0.99, 100.0) == pytest.approx(100.0)
    # The same 100 sends stretched over 2 s: the generator fell behind.
    assert schedule.achieved_rate(100, 1.0, 1.99, 100.0) == pytest.approx(50.0)
    assert schedule.achieved_rate(0, 1.0, None, 100.0) == 0.0


@pytest.mark.parametrize(
    ("achieved", "lag", "valid"),
    [(99.0, 1.0, True), (98.9, 1.0, False), (100.0, 10.0, True), (100.0, 10.01, False)],
)
def test_validity_bounds(achieved: float, lag: float, valid: bool) -> None:
    ok, reason = schedule.validity(100.0, achieved, lag)
    assert ok is valid
    assert (reason is None) is valid


def test_halving_intervals_keeps_every_value_and_the_timeline() -> None:
    intervals = []
    for i in range(5):
        h = LatencyHistogram()
        h.record_us(1000 * (i + 1))
        intervals.append(IntervalSample(float(i), 1.0, h, errors=i))
    halved = halve(intervals)
    assert [(iv.start_s, iv.length_s) for iv in halved] == [(0.0, 2.0), (2.0, 2.0), (4.0, 1.0)]
    assert sum(iv.histogram.count for iv in halved) == 5
    assert sum(iv.errors for iv in halved) == 10


# ---- real runs -------------------------------------------------------------------------------


def _target(url: str) -> Target:
    return resolve_target(load_inventory(None, {}), url + "/health")


def _plan(url: str, **kw: object) -> BenchPlan:
    return BenchPlan(target=url, target_kind="url", **kw)  # type: ignore[arg-type]


async def _delayed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    reply = fs.response_bytes(200, b"{}", "application/json")
    while await fs.read_request(reader) is not None:
        await asyncio.sleep(0.02)
        writer.write(reply)
        await writer.drain()


@contextlib.contextmanager
def slow_server() -> Iterator[fs.RunningServer]:
    """Answers every request after 20 ms."""
    with fs.serve(_delayed) as server:
        yield server


def test_closed_model_sends_exactly_the_asked_requests() -> None:
    with fs.ok_server() as server:
        plan = _plan(server.url, concurrency=4, requests=300)
        result = run_bench(plan, _target(server.url))
    assert result.requests == result.ok == 300
    assert result.latency.count == 300
    assert result.errors == {}
    assert result.service_time is None
    assert result.elapsed_s > 0 and result.throughput_rps > 0
    (agent,) = result.agents.values()
    assert agent.requests == 300
    assert result.valid


def test_closed_model_duration_and_warmup_exclusion() -> None:
    with slow_server() as server:
        plan = _plan(server.url, concurrency=2, duration_s=0.6, warmup_s=0.3)
        result = run_bench(plan, _target(server.url))
    # 2 loops x 20 ms: about 30 requests in 0.6 s measured, about 15 in the warm-up.
    assert 15 <= result.requests <= 62
    assert result.warmup_requests >= 8
    assert 0.55 <= result.elapsed_s <= 0.9
    assert result.latency.min_ms is not None and result.latency.min_ms >= 19.0
    assert sum(iv.histogram.count for iv in result.intervals) == result.requests


def test_open_model_holds_a_modest_rate_and_measures_from_the_due_time() -> None:
    with fs.ok_server() as server:
        plan = _plan(server.url, rate=200.0, duration_s=1.0, warmup_s=0.2)
        result = run_bench(plan, _target(server.url))
    assert result.requests == 200  # exactly the schedule's measured requests
    assert result.warmup_requests == 40
    assert result.service_time is not None and result.schedule_lag is not None
    assert result.service_time.count == result.schedule_lag.count == 200
    assert result.achieved_rate == pytest.approx(200.0, rel=0.02)
    # latency (from due) = lag + service time: never below the service time
    assert result.latency.percentile_ms(50) >= result.service_time.percentile_ms(50)  # type: ignore[operator]


def test_in_flight_cap_makes_later_requests_late_and_the_run_invalid() -> None:
    with slow_server() as server:
        # One request at a time, 20 ms each, asked for 200/s: the generator cannot hold it.
        plan = _plan(server.url, rate=200.0, requests=40, max_in_flight=1)
        result = run_bench(plan, _target(server.url))
    # Past the schedule's end (0.2 s) nothing more is sent: about 10 of the 40 went out.
    assert 3 <= result.requests < 40
    assert not result.valid and result.invalid_reason
    assert "achieved" in result.invalid_reason
    lat, svc = result.latency, result.service_time
    assert svc is not None and result.schedule_lag is not None
    # Coordinated omission shows: service time stays ~20 ms, latency from the due time grows.
    assert svc.percentile_ms(99) < 60  # type: ignore[operator]
    assert lat.max_ms is not None and lat.max_ms > 80
    assert result.schedule_lag.max_ms is not None and result.schedule_lag.max_ms > 60


def test_errors_are_counted_by_kind() -> None:
    with fs.refused_port() as url:
        result = run_bench(_plan(url, concurrency=2, requests=10), _target(url))
    assert result.ok == 0
    assert result.errors == {"connect": 10}


def test_interrupt_cancels_outstanding_requests_and_keeps_what_was_measured() -> None:
    with slow_server() as server:
        plan = _plan(server.url, concurrency=3, duration_s=30.0)
        calls = {"n": 0}

        def stop_after_half_a_second() -> bool:
            calls["n"] += 1
            return calls["n"] >= 5  # polled every 0.1 s

        result = asyncio.run(
            run_share(plan, _target(server.url), should_stop=stop_after_half_a_second)
        )
    assert result.interrupted
    assert result.dropped_in_flight == 3
    assert result.requests > 0 and result.elapsed_s < 5


def test_pack_and_merge_are_exact_and_judge_the_whole_rate() -> None:
    with fs.ok_server() as server:
        plan = _plan(server.url, rate=100.0, duration_s=0.5, workers=2)
        parts = [
            asyncio.run(run_share(plan, _target(server.url), worker=w, handle_sigint=False))
            for w in range(2)
        ]
    merged = merge([pack(p) for p in parts], plan)
    assert merged.requests == sum(p.requests for p in parts) == 50
    assert merged.latency.count == 50
    assert merged.latency.sum_us == sum(p.latency.sum_us for p in parts)
    # exact extremes, not the HDR buckets' lowest/highest equivalents
    assert merged.latency.min_us == min(p.latency.min_us for p in parts)
    assert merged.latency.max_us == max(p.latency.max_us for p in parts)
    assert merged.achieved_rate is not None
    assert merged.achieved_rate == pytest.approx(sum(p.achieved_rate or 0 for p in parts))


def test_workers_split_the_requests_across_processes() -> None:
    with fs.ok_server() as server:
        plan = _plan(server.url, concurrency=4, requests=101, workers=2)
        result = run_bench(plan, _target(server.url))
    assert result.requests == result.ok == 101
    assert result.latency.count == 101


# ---- agents, protocols and types (demo fleet) ------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "endpoint"),
    [
        ("weather-1", "health"),
        ("weather-1", "message"),
        ("calendar-1", "message"),  # A2A 1.0
        ("calendar-2", "message"),  # A2A 0.3
        ("calendar-2", "health"),  # the card GET
        ("calendar-1", "discovery"),
    ],
)
def test_bench_demo_agents_of_both_protocols(
    demo_fleet: DemoFleet, agent: str, endpoint: str
) -> None:
    inv = load_inventory(demo_fleet.inventory_path, {})
    target = resolve_target(inv, agent)
    assert target.kind == "agent"
    plan = BenchPlan(agent, "agent", endpoint=endpoint, concurrency=4, requests=12)  # type: ignore[arg-type]
    result = run_bench(plan, target)
    assert result.ok == 12, result.errors
    assert list(result.agents) == [agent]


@pytest.mark.parametrize("endpoint", ["message", "health"])
def test_type_target_is_routed_and_broken_down_per_agent(
    demo_fleet: DemoFleet, endpoint: str
) -> None:
    inv = load_inventory(demo_fleet.inventory_path, {})
    target = resolve_target(inv, "weather")
    assert target.kind == "type"
    plan = BenchPlan("weather", "type", endpoint=endpoint, concurrency=6, requests=60)  # type: ignore[arg-type]
    result = run_bench(plan, target)
    assert result.ok == 60
    assert set(result.agents) <= {"weather-1", "weather-2"}
    assert sum(t.requests for t in result.agents.values()) == 60
    assert sum(t.latency.count for t in result.agents.values()) == 60
    # p2c prefers the fast replica (15 ms vs 60 ms)
    assert result.agents["weather-1"].requests > 30


def test_type_target_open_model(demo_fleet: DemoFleet) -> None:
    inv = load_inventory(demo_fleet.inventory_path, {})
    plan = BenchPlan("calendar", "type", endpoint="message", rate=50.0, requests=25)
    result = run_bench(plan, resolve_target(inv, "calendar"))
    assert result.ok == 25
    assert set(result.agents) <= {"calendar-1", "calendar-2"}


def test_unknown_target_names_what_there_is(demo_fleet: DemoFleet) -> None:
    from latcli.core.errors import LatcliError

    inv = load_inventory(demo_fleet.inventory_path, {})
    with pytest.raises(LatcliError, match="weather-1"):
        resolve_target(inv, "nope")
    bare = resolve_target(inv, "http://127.0.0.1:9")
    assert bare.kind == "url" and bare.agents[0].health.path == "/health"
    assert replace(bare, kind="url").agents[0].url == "http://127.0.0.1:9"


@pytest.mark.parametrize(("end", "lengths"), [(1.3, [1.3]), (1.6, [1.0, 0.6])])
def test_the_final_cut_folds_a_short_tail_into_the_last_interval(
    end: float, lengths: list[float]
) -> None:
    # A tail under half an interval would be a timeline point of a few requests, wild rate.
    run = WorkerRecorder(
        _plan("http://127.0.0.1:9/", concurrency=1, duration_s=1.0), per_agent=False
    )
    run.record(0.0, 0.01, "a", None, 200)
    run.cut(1.0)
    run.record(1.0, 1.01, "a", None, 200)
    run.cut(end, final=True)
    assert [iv.length_s for iv in run.result.intervals] == lengths
    assert sum(iv.count for iv in run.result.intervals) == run.result.requests == 2
