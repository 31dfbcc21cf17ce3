"""Sharded bench (issue 14 item 2) and the workers' default (item 4): the options, the lanes'
arithmetic (exact, no clock), the merge's refusals, then 4 real shard processes against a
loopback server, merged, checked against hdrh's own merge of their histograms and against the
arrival times the server saw."""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fault_servers as fs
import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
from hypothesis import given
from hypothesis import strategies as st
from processes import stop_process

from latcli.cli.app import main
from latcli.core import schedule
from latcli.core.shards import ShardError, parse_shard, parse_start_at, shard_from_env
from latcli.engines.bench.cores import default_workers, quota_cores
from latcli.reports.bench import BenchReport
from latcli.reports.bench_merge import merge_reports
from latcli.reports.bench_model import BenchPlan
from latcli.reports.files import ReportError
from latcli.reports.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS

pytestmark = pytest.mark.timeout(90)

# ---- the options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"), [("0/4", (0, 4)), ("3/4", (3, 4)), (" 1 / 2 ", (1, 2)), ("0/1", (0, 1))]
)
def test_shard_i_of_n(text: str, expected: tuple[int, int]) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("4/4", "I goes from 0 to 3"),
        ("1", "not I/N"),
        ("-1/4", "not I/N"),
        ("a/b", "not I/N"),
        ("0/0", "must be 1 to"),
        ("1/4/2", "not I/N"),
    ],
)
def test_bad_shard_is_one_clear_line(text: str, needle: str) -> None:
    with pytest.raises(ShardError, match=needle):
        parse_shard(text)


def test_shards_read_the_index_kubernetes_sets() -> None:
    assert shard_from_env(4, {"JOB_COMPLETION_INDEX": "2"}) == 2
    with pytest.raises(ShardError, match="not set: give --shard I/4"):
        shard_from_env(4, {})
    with pytest.raises(ShardError, match="not a shard index"):
        shard_from_env(4, {"JOB_COMPLETION_INDEX": "two"})
    with pytest.raises(ShardError, match="completions and --shards must be equal"):
        shard_from_env(4, {"JOB_COMPLETION_INDEX": "4"})


def test_start_at_iso_relative_and_past() -> None:
    now = datetime(2026, 12, 3, 15, 0, tzinfo=timezone.utc).timestamp()
    assert parse_start_at("2026-12-03T15:00:30Z", now) == now + 30
    assert parse_start_at("2026-12-03T16:00:30+01:00", now) == now + 30
    assert parse_start_at("15:00:30Z", now) == now + 30  # a time alone: today's
    assert parse_start_at("16:00:30+01:00", now) == now + 30
    assert parse_start_at("+5s", now) == now + 5
    assert parse_start_at("+250ms", now) == now + 0.25
    local = datetime(2026, 12, 3, 16, 0).timestamp()  # no offset: local time, as date(1)
    assert parse_start_at("2026-12-03T16:00:00", now) == local
    with pytest.raises(ShardError, match="30 s in the past"):
        parse_start_at("2026-12-03T14:59:30Z", now)
    with pytest.raises(ShardError, match="not a time"):
        parse_start_at("tomorrow", now)
    with pytest.raises(ShardError, match="not a duration"):
        parse_start_at("+soon", now)


# ---- lanes: shards and their workers cut one global schedule ------------------------------------


@given(
    rate=st.sampled_from([7.0, 100.0, 400.0, 999.0]),
    shards=st.integers(1, 6),
    workers=st.integers(1, 4),
    warmup=st.sampled_from([0.0, 0.05, 0.3]),
)
def test_every_lane_together_is_the_global_schedule(
    rate: float, shards: int, workers: int, warmup: float
) -> None:
    """Shard i sends request k at (kN + i)/R; the union of every shard's every worker is each
    global request once, and the measured ones are those of a one-process run."""
    one = schedule.open_share(rate, 0, 1, warmup, 1.0, None)
    due: list[float] = []
    measured = 0
    for i in range(shards):
        plans = [BenchPlan("u", "url", rate=rate, shard=i, shards=shards, workers=workers)]
        mine: list[float] = []
        for w in range(workers):
            plan = plans[0]
            share = schedule.open_share(rate, plan.lane(w), plan.lanes, warmup, 1.0, None)
            mine += [share.due_s(j) for j in range(share.count)]
            measured += sum(share.measured(j) for j in range(share.count))
        assert sorted(mine) == [(k * shards + i) / rate for k in range(len(mine))]
        due += mine
    assert sorted(due) == [one.due_s(j) for j in range(one.count)]
    assert measured == sum(one.measured(j) for j in range(one.count))


@given(concurrency=st.integers(1, 300), shards=st.integers(1, 8), workers=st.integers(1, 5))
def test_shards_connections_sum_to_c_whatever_their_workers(
    concurrency: int, shards: int, workers: int
) -> None:
    total = 0
    for i in range(shards):
        plan = BenchPlan(
            "u", "url", concurrency=concurrency, shard=i, shards=shards, workers=workers
        )
        lanes = schedule.split_evenly(concurrency, plan.lanes)
        mine = sum(lanes[plan.lane(w)] for w in range(workers))
        assert mine == plan.share_concurrency == schedule.split_evenly(concurrency, shards)[i]
        total += mine
    assert total == concurrency


# ---- the default number of workers ------------------------------------------------------------


def _plan(**kw: Any) -> BenchPlan:
    return BenchPlan("http://h/x", "url", **kw)


@pytest.mark.parametrize(
    ("plan", "cores", "workers"),
    [
        (_plan(concurrency=50, duration_s=10.0), 2, 2),  # the goal: -c 50 on this machine
        (_plan(concurrency=50, duration_s=10.0), 64, 25),  # 2 connections per worker at least
        (_plan(concurrency=3, duration_s=10.0), 2, 1),
        (_plan(concurrency=4, duration_s=10.0), 2, 2),
        (_plan(concurrency=1, duration_s=10.0), 8, 1),
        (_plan(rate=2000.0, duration_s=10.0), 8, 1),  # open model: one process held more
        (_plan(concurrency=50, requests=1000), 8, 1),  # spawning costs more than the run
        (_plan(concurrency=50, requests=50_000), 8, 8),
        (replace(_plan(concurrency=50, duration_s=10.0), target_kind="type"), 8, 1),
        (_plan(concurrency=50, duration_s=10.0, shard=3, shards=4), 8, 6),  # its 12 connections
    ],
)
def test_default_workers_rule(plan: BenchPlan, cores: int, workers: int) -> None:
    assert default_workers(plan, cores) == workers


@pytest.mark.parametrize(
    ("v2", "v1q", "v1p", "cores"),
    [
        ("max 100000\n", None, None, None),
        ("150000 100000\n", None, None, 1.5),
        (None, "-1\n", "100000\n", None),
        (None, "200000", "100000", 2.0),
        ("junk", None, None, None),
        (None, None, None, None),
    ],
)
def test_container_cpu_quota(
    v2: str | None, v1q: str | None, v1p: str | None, cores: float | None
) -> None:
    assert quota_cores(v2, v1q, v1p) == cores


# ---- the CLI's refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--shard", "4/4"], "I goes from 0 to 3"),
        (["--shard", "x"], "not I/N"),
        (["--shards", "4"], "JOB_COMPLETION_INDEX"),
        (["--shard", "0/2", "--shards", "2"], "exclude each other"),
        (["--start-at", "2001-01-01T00:00:00Z"], "in the past"),
        (["--start-at", "noon"], "not a time"),
        (["--workers", "0"], "or auto"),
        (["--workers", "many"], "or auto"),
    ],
)
def test_bad_shard_options_exit_2(
    args: list[str],
    needle: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    assert main(["bench", "http://127.0.0.1:9/health", "-q", "-n", "1", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


# ---- the merge's refusals (reports written by real runs) --------------------------------------


@pytest.fixture(scope="module")
def shard_docs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Shards 0..2 of 3, -c 3 -n 60, each a real run against one loopback server."""
    tmp = tmp_path_factory.mktemp("shards")
    docs = []
    with fs.ok_server() as server:
        for i in range(3):
            out = tmp / f"s{i}.json"
            args = ["bench", server.url + "/h", "-c", "3", "-n", "60", "--shard", f"{i}/3", "-q"]
            assert main([*args, "-o", str(out)]) == 0
            docs.append(json.loads(out.read_text()))
    return docs


def test_shard_reports_say_which_shard_and_their_share(shard_docs: list[dict[str, Any]]) -> None:
    assert [d["shard"]["index"] for d in shard_docs] == [0, 1, 2]
    assert [d["concurrency"] for d in shard_docs] == [1, 1, 1]
    assert [d["requests"] for d in shard_docs] == [20, 20, 20]
    assert shard_docs[0]["shard"]["run"]["concurrency"] == 3
    merged = _merge(shard_docs).to_json()
    assert merged["requests"] == 60 and merged["concurrency"] == 3 and merged["shard"] is None
    assert merged["shards"]["merged"] == [0, 1, 2] and merged["shards"]["missing"] == []


def _merge(docs: list[dict[str, Any]], names: list[str] | None = None) -> BenchReport:
    """``latcli report``'s merge of the documents (each read as a file is)."""
    names = names or [f"s{i}.json" for i in range(len(docs))]
    reports = [BenchReport.from_json(d, n) for d, n in zip(docs, names, strict=True)]
    return merge_reports(reports, names=names)


def _changed(doc: dict[str, Any], **run: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(doc))
    out["shard"]["run"].update(run)
    return out


def test_merge_refuses_what_is_not_one_run(shard_docs: list[dict[str, Any]]) -> None:
    a, b, c = shard_docs
    names = ["a.json", "b.json", "c.json"]
    cases = [
        ([a, _changed(b, concurrency=6), c], "b.json has 6"),
        ([a, _changed(b, target="http://other/h"), c], "target"),
        (
            [a, b, {**c, "shard": {**c["shard"], "start_at": "2026-12-03T15:00:00.000Z"}}],
            "start_at",
        ),
        ([a, {**b, "shard": {**b["shard"], "count": 4}}, c], "count"),
        ([a, b, {**c, "shard": None}], "c.json is not"),
        ([a, b, b], "shard 1/3 given twice: b.json, c.json"),
        ([a, {**b, "shard": {"index": 1}}, c], "not a latcli shard block"),
    ]
    for docs, needle in cases:
        with pytest.raises(ReportError, match=needle):
            _merge(docs, names)


def test_missing_shards_merge_with_a_warning(
    shard_docs: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = []
    for doc in shard_docs[::2]:
        path = tmp_path / f"s{doc['shard']['index']}.json"
        path.write_text(json.dumps(doc))
        paths.append(str(path))
    assert main(["report", *paths, "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["shards"]["missing"] == [1]
    assert "shard 1 of 3 missing" in out.err


def test_a_shard_leaves_its_sla_to_the_merge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shard's threshold on its part is not the run's: its exit is 0, the merge's is 1."""
    with fs.ok_server() as server:
        paths = []
        for i in range(2):
            out = tmp_path / f"s{i}.json"
            args = ["bench", server.url + "/h", "-c", "2", "-n", "20", "--shard", f"{i}/2", "-q"]
            assert main([*args, "--sla", "p50<1us", "-o", str(out)]) == 0
            paths.append(str(out))
    assert main(["report", *paths]) == 1
    assert "FAIL" in capsys.readouterr().out


# ---- 4 real shard processes, merged ------------------------------------------------------------

RATE, SHARDS, SECONDS = 400.0, 4, 2.0


def _timed_server(arrivals: list[tuple[float, int]]) -> Any:
    """200 after 2 ms; records (arrival on the wall clock, the request's X-Shard)."""
    reply = fs.response_bytes(200, b'{"ok": true}', "application/json")

    async def handler(reader: Any, writer: Any) -> None:
        import asyncio

        while (request := await fs.read_request(reader)) is not None:
            arrivals.append((time.time(), int(dict(request.headers).get("x-shard", "-1"))))
            await asyncio.sleep(0.002)
            writer.write(reply)
            await writer.drain()

    return fs.serve(handler)


def _hdr_merge(encoded: list[str]) -> HdrHistogram:
    total = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for text in encoded:
        total.add(HdrHistogram.decode(text))
    return total


def _summary(h: HdrHistogram, low_us: int, high_us: int) -> dict[str, float]:
    """hdrh's percentiles, clamped to the exact min and max the shards recorded (the report's
    documented rule), in ms to 3 decimals, as latcli.bench/v1 writes them."""
    out = {"min": low_us / 1000, "max": high_us / 1000}
    for key, p in (
        ("p50", 50),
        ("p90", 90),
        ("p95", 95),
        ("p99", 99),
        ("p99.9", 99.9),
        ("p99.99", 99.99),
    ):
        out[key] = round(min(max(h.get_value_at_percentile(p), low_us), high_us) / 1000, 3)
    return out


def test_four_shard_processes_merge_into_one_exact_interleaved_run(tmp_path: Path) -> None:
    arrivals: list[tuple[float, int]] = []
    start = datetime.now(timezone.utc) + timedelta(seconds=6)  # 4 interpreters start meanwhile
    start_at = start.isoformat().replace("+00:00", "Z")
    with _timed_server(arrivals) as server:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "latcli",
                    "bench",
                    server.url + "/h",
                    "--rate",
                    str(RATE),
                    "-d",
                    f"{SECONDS}s",
                    "--shard",
                    f"{i}/{SHARDS}",
                    "--start-at",
                    start_at,
                    "-H",
                    f"X-Shard: {i}",
                    "-q",
                    "-o",
                    str(tmp_path / f"shard-{i}.json"),
                    "--hlog",
                    str(tmp_path / f"shard-{i}.hlog"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in range(SHARDS)
        ]
        try:
            codes = [p.wait(timeout=60) for p in procs]
        finally:
            for p in procs:
                stop_process(p)
        errs = [p.stderr.read().decode() if p.stderr else "" for p in procs]
    # 3 (invalid): a shard the loaded machine held back; the merge is still what is checked
    assert set(codes) <= {0, 3}, errs
    merged_path = tmp_path / "merged.json"
    files = [str(tmp_path / f"shard-{i}.json") for i in range(SHARDS)]
    code = main(["report", *files, "-o", str(merged_path), "--json"])
    assert code == max(codes)  # the merge is invalid (3) when a shard was
    merged = json.loads(merged_path.read_text())
    shards = [json.loads(Path(f).read_text()) for f in files]

    # ~2,000 requests at 400/s for 5 s (scripts/bench_shards.py); here 2 s, all answered
    # R x T scheduled; a shard held back past the schedule's end leaves its last one unsent
    assert int(RATE * SECONDS) * 0.99 <= merged["requests"] == merged["ok"] <= int(RATE * SECONDS)
    assert merged["rate"] == RATE
    assert merged["shards"] == {
        "count": 4,
        "merged": [0, 1, 2, 3],
        "missing": [],
        "overlapped": True,
    }

    # percentiles equal hdrh's own merge of the shards' histograms: never averaged
    for name, field in (("latency", "latency_ms"), ("service_time", "service_time_ms")):
        hists = [s["histograms"][name] for s in shards]
        total = _hdr_merge([h["encoded"] for h in hists])
        assert total.get_total_count() == merged["ok"]
        low, high = min(h["min_us"] for h in hists), max(h["max_us"] for h in hists)
        expected = _summary(total, low, high)
        assert {k: merged[field][k] for k in expected} == expected, name
    # ... and the shards' .hlog files, read with hdrh's own log reader, give the same latency
    logged = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for i in range(SHARDS):
        reader = HistogramLogReader(str(tmp_path / f"shard-{i}.hlog"), logged)
        while (interval := reader.get_next_interval_histogram()) is not None:
            logged.add(interval)
    assert logged.get_total_count() == merged["ok"]
    assert logged.get_value_at_percentile(99) == _hdr_merge(
        [s["histograms"]["latency"]["encoded"] for s in shards]
    ).get_value_at_percentile(99)

    # the schedules interleave: shard i's k-th request arrived near t0 + (kN + i)/R, one t0
    arrivals.sort()
    by_shard: dict[int, list[float]] = {i: [] for i in range(SHARDS)}
    for t, shard in arrivals:
        by_shard[shard].append(t)
    assert sum(len(t) for t in by_shard.values()) == merged["requests"]
    t0 = start.timestamp()
    offsets = {
        i: statistics.median(t - t0 - (k * SHARDS + i) / RATE for k, t in enumerate(times))
        for i, times in by_shard.items()
    }
    # every shard on the asked clock (measured: within 0.3 ms of it, and of each other)
    assert max(offsets.values()) - min(offsets.values()) < 0.005, offsets
    assert all(abs(o) < 0.01 for o in offsets.values()), offsets
    order = [shard for _, shard in arrivals]
    in_turn = sum(b == (a + 1) % SHARDS for a, b in itertools.pairwise(order))
    # 2.5 ms apart, so jitter swaps a few neighbours (measured: 95-99 % in turn)
    assert in_turn / (len(order) - 1) > 0.8, f"{in_turn} of {len(order) - 1} in turn"


def test_shards_with_workers_split_again_and_merge(tmp_path: Path) -> None:
    """Each of 2 shards runs 2 worker processes (4 lanes): connections and requests are split
    again (the open schedule's split is the lanes' property test above), and the merge counts
    every request and every worker."""
    with fs.ok_server() as server:
        paths = []
        for i in range(2):
            out = tmp_path / f"s{i}.json"
            args = ["bench", server.url + "/h", "-c", "4", "-n", "101", "--workers", "2"]
            assert main([*args, "--shard", f"{i}/2", "-q", "-o", str(out)]) == 0
            paths.append(out)
    shards = [json.loads(p.read_text()) for p in paths]
    assert [s["requests"] for s in shards] == [51, 50]  # lanes 0 and 2: 26 + 25; 1 and 3: 25 + 25
    assert [s["concurrency"] for s in shards] == [2, 2] and [s["workers"] for s in shards] == [2, 2]
    merged = _merge(shards).to_json()
    assert merged["requests"] == 101 and merged["workers"] == 4 and merged["concurrency"] == 4


@given(
    rate=st.sampled_from([10.0, 333.0]),
    lanes=st.integers(1, 9),
    warmup=st.sampled_from([0.0, 0.05, 0.31]),
    requests=st.integers(1, 120),
)
def test_a_lanes_measured_count_is_what_it_will_measure(
    rate: float, lanes: int, warmup: float, requests: int
) -> None:
    shares = [schedule.open_share(rate, w, lanes, warmup, None, requests) for w in range(lanes)]
    for s in shares:
        assert s.measured_count == sum(s.measured(j) for j in range(s.count))
    assert sum(s.measured_count for s in shares) == requests
