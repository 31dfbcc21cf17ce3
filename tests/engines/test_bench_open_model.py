"""The open model's lanes: every shard's every worker sends its own part of one schedule."""

from __future__ import annotations

import pytest

from latcli.engines.bench.open_model import DEFAULT_MAX_IN_FLIGHT, lane_share, worker_cap
from latcli.reports.bench_model import BenchPlan


def _plan(shard: int, shards: int, workers: int, **kw: object) -> BenchPlan:
    return BenchPlan(
        target="http://127.0.0.1:1",
        target_kind="url",
        rate=300.0,
        duration_s=2.0,
        warmup_s=0.5,
        workers=workers,
        shard=shard,
        shards=shards,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(("shards", "workers"), [(1, 1), (1, 3), (3, 1), (2, 4)])
def test_the_lanes_send_every_request_of_the_schedule_exactly_once(
    shards: int, workers: int
) -> None:
    sent: list[int] = []
    measured = 0
    for shard in range(shards):
        for worker in range(workers):
            share = lane_share(_plan(shard, shards, workers), worker)
            sent += [share.global_index(j) for j in range(share.count)]
            measured += share.measured_count
    whole = lane_share(_plan(0, 1, 1), 0)
    assert sorted(sent) == list(range(whole.total))
    assert measured == whole.measured_count == whole.total - whole.warmup


def test_a_lane_of_a_shard_is_not_the_same_lane_of_another_shard() -> None:
    first = lane_share(_plan(0, 2, 2), 1)
    second = lane_share(_plan(1, 2, 2), 1)
    assert first.worker != second.worker
    assert first.due_s(0) != second.due_s(0)


def test_the_in_flight_cap_is_global_and_never_below_one_per_lane() -> None:
    assert worker_cap(_plan(0, 1, 1)) == DEFAULT_MAX_IN_FLIGHT
    assert worker_cap(_plan(0, 2, 4, max_in_flight=80)) == 10
    assert worker_cap(_plan(0, 4, 4, max_in_flight=3)) == 1
