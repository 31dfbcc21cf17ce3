"""Peak EWMA, sliding windows and per-replica stats, on a fake clock."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from latcli.core.stats import LatencyWindow, PeakEwma, ReplicaStats, SuccessWindow

TAU = 10.0


def test_ewma_without_history_costs_nothing() -> None:
    e = PeakEwma(TAU)
    assert not e.has_history and e.cost(5.0) == 0.0


def test_ewma_takes_a_peak_at_once() -> None:
    e = PeakEwma(TAU)
    e.observe(0.0, 10.0)
    e.observe(0.1, 80.0)
    assert e.has_history and e.cost(0.1) == 80.0


def test_ewma_decays_toward_a_lower_sample_by_elapsed_time() -> None:
    e = PeakEwma(TAU)
    e.observe(0.0, 100.0)
    e.observe(5.0, 20.0)
    w = math.exp(-5.0 / TAU)
    assert e.cost(5.0) == pytest.approx(100.0 * w + 20.0 * (1 - w))


def test_ewma_same_instant_sample_below_changes_nothing() -> None:
    e = PeakEwma(TAU)
    e.observe(1.0, 100.0)
    e.observe(1.0, 1.0)
    assert e.cost(1.0) == 100.0


def test_idle_decay_toward_zero_is_a_pure_read() -> None:
    e = PeakEwma(TAU)
    e.observe(0.0, 100.0)
    assert e.cost(TAU) == pytest.approx(100.0 / math.e)
    assert e.cost(0.0) == 100.0  # reading did not move the estimate
    assert e.cost(-1.0) == 100.0  # a clock read before the sample does not inflate it


@given(st.lists(st.tuples(st.floats(0, 30), st.floats(0, 1e5)), min_size=1, max_size=60))
def test_ewma_stays_between_min_and_max_sample(samples: list[tuple[float, float]]) -> None:
    e, now = PeakEwma(TAU), 0.0
    for i, (dt, ms) in enumerate(samples):
        now += dt
        e.observe(now, ms)
        seen = [s for _, s in samples[: i + 1]]
        assert min(seen) * (1 - 1e-12) <= e.cost(now) <= max(seen)


def test_ewma_state_survives_a_restart_on_another_clock() -> None:
    e = PeakEwma(TAU)
    e.observe(50.0, 40.0)
    saved = json.loads(json.dumps(e.to_state()))
    f = PeakEwma(TAU)
    f.from_state(saved, now_then=53.0, now=1000.0)  # 3 s have passed
    assert f.has_history and f.cost(1000.0) == pytest.approx(e.cost(53.0))


def test_ewma_rejects_bad_tau_and_bad_state() -> None:
    with pytest.raises(ValueError):
        PeakEwma(0.0)
    with pytest.raises(ValueError):
        PeakEwma(TAU).from_state({"cost": "fast", "at": 0.0}, 0.0, 0.0)


def test_success_window_counts_and_rate() -> None:
    w = SuccessWindow(10.0)
    assert w.rate(0.0) is None and w.calls(0.0) == 0
    for ok in (True, True, True, False):
        w.record(1.0, ok)
    assert (w.calls(1.0), w.failures(1.0), w.rate(1.0)) == (4, 1, 0.75)


def test_success_window_forgets_old_calls() -> None:
    w = SuccessWindow(10.0, buckets=10)
    w.record(0.0, False)
    w.record(9.5, True)
    assert w.calls(9.9) == 2
    assert (w.calls(10.0), w.rate(10.0)) == (1, 1.0)  # the slot [0, 1) expired whole
    assert w.calls(25.0) == 0 and w.rate(25.0) is None


@given(st.lists(st.tuples(st.floats(0, 3), st.booleans()), max_size=300))
def test_success_window_memory_is_bounded(calls: list[tuple[float, bool]]) -> None:
    w, now = SuccessWindow(5.0, buckets=8), 0.0
    for dt, ok in calls:
        now += dt
        w.record(now, ok)
        assert len(w.to_state()["slots"]) <= 8  # type: ignore[arg-type]
        assert w.failures(now) <= w.calls(now) <= len(calls)


def test_success_window_state_round_trip() -> None:
    w = SuccessWindow(10.0)
    for t, ok in ((1.0, True), (2.0, False), (8.0, True)):
        w.record(t, ok)
    saved = json.loads(json.dumps(w.to_state()))
    v = SuccessWindow(10.0)
    v.from_state(saved, now_then=9.0, now=509.0)
    assert (v.calls(509.0), v.failures(509.0)) == (3, 1)
    assert (v.calls(511.6), v.failures(511.6)) == (2, 1)  # the 1.0 s call aged out


def test_latency_window_percentiles_nearest_rank() -> None:
    w = LatencyWindow(size=100)
    assert w.percentile(50) is None
    for ms in range(100, 0, -1):
        w.add(float(ms))
    assert (w.percentile(0), w.percentile(50), w.percentile(99), w.percentile(100)) == (
        1.0,
        50.0,
        99.0,
        100.0,
    )
    with pytest.raises(ValueError):
        w.percentile(101)


def test_latency_window_is_a_ring() -> None:
    w = LatencyWindow(size=3)
    for ms in (1.0, 2.0, 3.0, 4.0):
        w.add(ms)
    assert w.values() == [2.0, 3.0, 4.0]
    v = LatencyWindow(size=3)
    v.from_state(json.loads(json.dumps(w.to_state())), 0.0, 0.0)
    assert v.values() == [2.0, 3.0, 4.0]


def test_untried_replica_takes_one_request_at_a_time() -> None:
    r = ReplicaStats(TAU, 30.0)
    assert r.load(0.0) == 0.0
    r.start()
    assert r.load(0.0) == math.inf
    r.cancel()
    assert r.load(0.0) == 0.0 and not r.has_history  # cancellation measures nothing
    r.start()
    r.finish(0.5, 20.0, ok=True)
    assert r.load(0.5) == 20.0


def test_load_is_cost_times_in_flight_plus_one() -> None:
    r = ReplicaStats(TAU, 30.0)
    r.start()
    r.finish(0.0, 30.0, ok=False)  # a failure's latency counts too
    r.start()
    r.start()
    assert r.load(0.0) == 90.0
    assert r.load(TAU) == pytest.approx(90.0 / math.e)


def test_in_flight_never_goes_negative() -> None:
    r = ReplicaStats(TAU, 30.0)
    r.cancel()
    r.finish(0.0, 1.0, ok=True)
    assert r.in_flight == 0


def test_snapshot_and_candidate() -> None:
    r = ReplicaStats(TAU, 30.0)
    empty = r.snapshot(0.0)
    assert (empty.ewma_ms, empty.p50_ms, empty.success_rate, empty.calls) == (None, None, None, 0)
    for ms, ok in ((10.0, True), (30.0, True), (20.0, False)):
        r.start()
        r.finish(1.0, ms, ok)
    r.start()
    snap = r.snapshot(1.0)
    assert snap.ewma_ms == 30.0 and snap.p50_ms == 20.0 and snap.p99_ms == 30.0
    assert snap.success_rate == pytest.approx(2 / 3) and snap.calls == 3
    assert snap.in_flight == 1 and snap.has_history
    assert snap.last_latencies == (10.0, 30.0, 20.0)
    c = r.candidate("w-1", 2.0, 1.0)
    assert (c.id, c.load, c.cost, c.in_flight, c.weight) == ("w-1", 60.0, 30.0, 1, 2.0)
    assert c.success_rate == snap.success_rate and c.has_history


def test_replica_state_round_trip() -> None:
    r = ReplicaStats(TAU, 30.0)
    r.start()
    r.finish(2.0, 25.0, ok=False)
    saved = json.loads(json.dumps(r.to_state()))
    s = ReplicaStats(TAU, 30.0)
    s.from_state(saved, now_then=2.0, now=7.0)
    assert s.snapshot(7.0) == r.snapshot(2.0)
    with pytest.raises(ValueError):
        s.from_state({"ewma": saved["ewma"]}, 0.0, 0.0)
