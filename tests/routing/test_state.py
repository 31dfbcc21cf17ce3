"""State persistence: round trips across clocks, merging, concurrency, bad files."""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from latcli.config.inventory import BreakerConfig
from latcli.core.breaker import Breaker, BreakerState
from latcli.core.stats import ReplicaStats
from latcli.routing.state import (
    SCHEMA,
    CallRecord,
    FlushEntry,
    NullStore,
    StateStore,
    default_state_path,
    open_store,
)

REPO = Path(__file__).resolve().parents[2]
# trips on 3 failures in a row only; opens for 10 s (plus jitter, pinned to 0 below)
CFG = BreakerConfig(failures=3, min_calls=1000, open_for=10, open_max=60)
TAU, WINDOW = 10.0, 3600.0
W = 1_700_000_000.0  # a wall clock reading
KEY = "agent-1"


class NoJitter(random.Random):
    """``uniform(a, b)`` returns ``a``: open periods last exactly their base."""

    def uniform(self, a: float, b: float) -> float:
        return a


def fresh() -> tuple[ReplicaStats, Breaker]:
    return ReplicaStats(TAU, WINDOW), Breaker(CFG, random.Random(0))


def entry(journal: list[CallRecord], key: str = KEY) -> FlushEntry:
    return FlushEntry(key, TAU, WINDOW, CFG, journal)


def obs(wall: float, ms: float = 10.0, ok: bool = True) -> CallRecord:
    return CallRecord(wall, ms, ok)


def store(path: Path, warnings: list[str] | None = None, **kw: float) -> StateStore:
    sink = warnings if warnings is not None else []
    return StateStore(path, warn=sink.append, rng=NoJitter(), **kw)


def load(path: Path, now: float, wall: float) -> tuple[ReplicaStats, Breaker]:
    stats, breaker = fresh()
    with store(path) as s:
        assert s.load_into(KEY, stats, breaker, now, wall)
    return stats, breaker


# -- default location --------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LATCLI_STATE": "/x/s.db", "XDG_STATE_HOME": "/xdg", "HOME": "/h"}, "/x/s.db"),
        ({"LATCLI_STATE": "~/s.db", "HOME": "/h"}, "/h/s.db"),
        ({"XDG_STATE_HOME": "/xdg", "HOME": "/h"}, "/xdg/latcli/state.db"),
        ({"XDG_STATE_HOME": "relative", "HOME": "/h"}, "/h/.local/state/latcli/state.db"),
        (
            {"LATCLI_STATE": "", "XDG_STATE_HOME": "", "HOME": "/h"},
            "/h/.local/state/latcli/state.db",
        ),
    ],
)
def test_default_state_path(env: dict[str, str], expected: str) -> None:
    assert default_state_path(env) == Path(expected)


def test_open_store_selects_null_or_file(tmp_path: Path) -> None:
    assert isinstance(open_store(None, enabled=False, env={}), NullStore)
    chosen = open_store(None, env={"LATCLI_STATE": str(tmp_path / "s.db")})
    assert isinstance(chosen, StateStore) and chosen.path == tmp_path / "s.db"


# -- round trips -------------------------------------------------------------------


def test_round_trip_moves_timestamps_onto_the_readers_clock(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    journal = [obs(W - 5, 50.0), *(obs(W - i, 200.0, ok=False) for i in (3, 2, 1))]
    with store(path) as writer:  # its monotonic clock reads 1000 at wall W
        assert writer.flush([entry(journal)], now=1000.0, wall=W)

    stats, breaker = load(path, now=50.0, wall=W + 2)  # another process, 2 s later
    # tripped at writer time 999 for 10 s: 7 s remain
    assert breaker.state(50.0) is BreakerState.OPEN
    assert breaker.retry_in(50.0) == pytest.approx(7.0)
    assert breaker.state(57.0) is BreakerState.HALF_OPEN
    assert (stats.success.calls(50.0), stats.success.failures(50.0)) == (4, 3)
    assert stats.latencies.values() == [50.0, 200.0, 200.0, 200.0]
    # the peak (200 ms at writer time 999) has aged 3 s
    assert stats.cost(50.0) == pytest.approx(200.0 * math.exp(-3 / TAU))


def test_load_decays_by_the_wall_time_elapsed_since_the_write(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with store(path) as writer:
        writer.flush([entry([obs(W - 60, 100.0)])], now=500.0, wall=W - 60)

    at_write, _ = load(path, now=0.0, wall=W - 60)
    a_minute_later, _ = load(path, now=0.0, wall=W)
    assert at_write.cost(0.0) == pytest.approx(100.0)
    assert a_minute_later.cost(0.0) == pytest.approx(100.0 * math.exp(-60 / TAU))


def test_without_a_row_nothing_is_touched(tmp_path: Path) -> None:
    stats, breaker = fresh()
    with store(tmp_path / "state.db") as s:
        assert not s.load_into("nobody", stats, breaker, 0.0, W)
    assert not stats.has_history and breaker.state(0.0) is BreakerState.CLOSED


# -- merging -----------------------------------------------------------------------


def test_flush_adds_the_journal_to_rows_written_after_our_load(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    ours, theirs = store(path), store(path)
    stats, breaker = fresh()
    assert not ours.load_into(KEY, stats, breaker, 0.0, W)  # nothing yet
    theirs.flush([entry([obs(W + 1, 10.0), obs(W + 2, 10.0), obs(W + 3, 10.0)])], 100.0, W + 3)
    ours.flush([entry([obs(W + 4, 30.0, ok=False), obs(W + 5, 30.0, ok=False)])], 5.0, W + 5)
    ours.close()
    theirs.close()

    merged, _ = load(path, now=0.0, wall=W + 5)
    assert (merged.success.calls(0.0), merged.success.failures(0.0)) == (5, 2)
    assert merged.latencies.values() == [10.0, 10.0, 10.0, 30.0, 30.0]


def test_replayed_failures_trip_the_stored_breaker(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with store(path) as first:
        first.flush([entry([obs(W, ok=False), obs(W + 1, ok=False)])], 0.0, W + 1)
    with store(path) as second:  # the third failure in a row comes from another run
        second.flush([entry([obs(W + 2, ok=False)])], 0.0, W + 2)
    _, breaker = load(path, now=0.0, wall=W + 2)
    assert breaker.state(0.0) is BreakerState.OPEN
    assert breaker.retry_in(0.0) == pytest.approx(10.0)


def test_replay_feeds_the_routers_ewma_sample(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with store(path) as s:  # a 3 ms failure the router charged as a 5 s timeout
        s.flush([entry([CallRecord(W, 3.0, False, cost_ms=5000.0)])], 0.0, W)
    stats, _ = load(path, 0.0, W)
    assert stats.cost(0.0) == pytest.approx(5000.0)
    assert stats.latencies.values() == [3.0]


def test_empty_journals_are_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with store(path) as s:
        s.flush([entry([obs(W)])], 0.0, W)
        assert s.flush([entry([]), entry([], key="other")], 0.0, W + 100)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT key, wall FROM agents").fetchall()
    conn.close()
    assert rows == [(KEY, W)]


WORKER = """
import sys, time
from pathlib import Path
from latcli.config.inventory import BreakerConfig
from latcli.routing.state import FlushEntry, CallRecord, StateStore

path, ready, go, tag = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
warnings = []
store = StateStore(path, busy_timeout=15.0, warn=warnings.append)
ready.touch()
deadline = time.monotonic() + 15
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.001)
first = time.time()
for i in range(50):
    journal = [CallRecord(time.time(), 10.0 + i, True)]
    entry = FlushEntry("shared", 10.0, 3600.0, BreakerConfig(), journal)
    turns = {"shared-type": f"{tag}-{i}"}
    if not store.flush([entry], time.monotonic(), time.time(), turns):
        sys.exit(f"flush {i} not saved")
last = time.time()
store.close()
if warnings:
    sys.exit("; ".join(warnings))
print(first, last)
"""


@pytest.mark.timeout(60)
def test_concurrent_processes_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(path),
                str(tmp_path / f"ready-{i}"),
                str(go),
                f"p{i}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(4)
    ]
    try:
        deadline = time.monotonic() + 30
        while not all((tmp_path / f"ready-{i}").exists() for i in range(4)):
            assert time.monotonic() < deadline, "workers never got ready"
            time.sleep(0.005)
        go.touch()
        results = [p.communicate(timeout=40) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in results]

    spans = [tuple(map(float, out.split())) for out, _ in results]
    assert max(s[0] for s in spans) < min(s[1] for s in spans), "the workers did not overlap"
    stats = ReplicaStats(10.0, 3600.0)
    with store(path) as s:
        assert s.load_into("shared", stats, Breaker(BreakerConfig(), random.Random(0)), 0, W)
        turns = s.load_turns(["shared-type"])
    assert stats.success.calls(0.0) == 200
    assert len(stats.latencies.values()) == 200
    assert turns["shared-type"] in {f"p{i}-49" for i in range(4)}  # the last writer's last
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


def test_a_busy_file_keeps_the_journal_for_later(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    warnings: list[str] = []
    s = store(path, warnings, busy_timeout=0.2)
    s.flush([entry([obs(W)])], 0.0, W)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    assert not s.flush([entry([obs(W + 1)])], 1.0, W + 1)
    assert len(warnings) == 1 and "busy" in warnings[0] and not s.disabled
    holder.execute("ROLLBACK")
    holder.close()
    assert s.flush([entry([obs(W + 1)])], 1.0, W + 1)
    s.close()
    stats, _ = load(path, 1.0, W + 1)
    assert stats.success.calls(1.0) == 2


# -- bad files and rows ------------------------------------------------------------


def assert_works(path: Path) -> None:
    with store(path) as s:
        assert s.flush([entry([obs(W, 42.0)])], 0.0, W)
    stats, _ = load(path, 0.0, W)
    assert stats.latencies.values() == [42.0]


def test_a_corrupt_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    garbage = random.Random(1).randbytes(8192)
    path.write_bytes(garbage)
    warnings: list[str] = []
    with store(path, warnings) as s:
        assert not s.load_into(KEY, *fresh(), 0.0, W)
    [aside] = tmp_path.glob("state.db.corrupt-*")
    assert aside.read_bytes() == garbage
    assert warnings == [f"latcli: state file {path} was corrupt; moved to {aside}; starting fresh"]
    assert_works(path)


def test_a_damaged_page_is_found_and_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    assert_works(path)  # closed: the WAL is checkpointed into the file
    data = bytearray(path.read_bytes())
    data[4096:] = bytes([0xA5]) * (len(data) - 4096)  # every page but the schema page
    path.write_bytes(bytes(data))
    warnings: list[str] = []
    with store(path, warnings) as s:
        assert not s.load_into(KEY, *fresh(), 0.0, W)
    assert len(list(tmp_path.glob("state.db.corrupt-*"))) == 1
    assert len(warnings) == 1 and "was corrupt" in warnings[0]
    assert_works(path)


def test_another_applications_database_is_set_aside_untouched(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.execute("INSERT INTO users VALUES ('ada')")
    conn.commit()
    conn.close()
    warnings: list[str] = []
    with store(path, warnings) as s:
        assert s.flush([entry([obs(W)])], 0.0, W)
    [aside] = tmp_path.glob("state.db.foreign-*")
    assert len(warnings) == 1 and "was foreign; moved to" in warnings[0]
    theirs = sqlite3.connect(aside)
    assert theirs.execute("SELECT name FROM users").fetchall() == [("ada",)]
    assert theirs.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    theirs.close()
    assert load(path, 0.0, W)[0].success.calls(0.0) == 1


def test_another_latcli_versions_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema', 'latcli.state/v2')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    warnings: list[str] = []
    with store(path, warnings) as s:
        assert not s.load_into(KEY, *fresh(), 0.0, W)
        assert s.flush([entry([obs(W)])], 0.0, W)  # consumed: it will never be saved
        assert s.disabled
    assert len(warnings) == 1 and "latcli.state/v2" in warnings[0]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


def test_an_unusable_location_disables_the_store_quietly(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    path = tmp_path / "file" / "state.db"
    warnings: list[str] = []
    stats, breaker = fresh()
    with store(path, warnings) as s:
        assert not s.load_into(KEY, stats, breaker, 0.0, W)
        assert s.flush([entry([obs(W)])], 0.0, W)
        assert s.flush([entry([obs(W)])], 0.0, W)
        assert s.disabled
    assert len(warnings) == 1
    assert warnings[0].startswith(f"latcli: state file {path} could not be opened")
    assert warnings[0].endswith("continuing without saved state")
    assert not stats.has_history


def write_row(path: Path, stats_json: str, breaker_json: str) -> None:
    assert_works(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE agents SET stats = ?, breaker = ?", (stats_json, breaker_json))
    conn.commit()
    conn.close()


def good_state() -> tuple[str, str]:
    with_history = ReplicaStats(TAU, WINDOW)
    with_history.start()
    with_history.finish(0.0, 5.0, True)
    return json.dumps(with_history.to_state()), json.dumps(fresh()[1].to_state())


@pytest.mark.parametrize(
    "which",
    [
        "stats not json",
        "breaker not json",
        "stats a list",
        "breaker bad state",
        "ewma bad cost",
        "infinite count",
    ],
)
def test_an_unreadable_row_is_skipped_and_rewritten(tmp_path: Path, which: str) -> None:
    good_stats, good_breaker = good_state()
    bad = {
        "stats not json": ("{oops", good_breaker),
        "breaker not json": (good_stats, "{oops"),
        "stats a list": ("[1, 2]", good_breaker),
        "breaker bad state": (good_stats, good_breaker.replace('"closed"', '"ajar"')),
        "ewma bad cost": (good_stats.replace('"cost": 5.0', '"cost": "fast"'), good_breaker),
        "infinite count": (good_stats.replace(", 1, 0]", ", Infinity, 0]"), good_breaker),
    }[which]
    path = tmp_path / "state.db"
    write_row(path, *bad)
    warnings: list[str] = []
    stats, breaker = fresh()
    with store(path, warnings) as s:
        assert not s.load_into(KEY, stats, breaker, 0.0, W)
        assert not stats.has_history and stats.latencies.values() == []  # not half-loaded
        assert s.flush([entry([obs(W, 7.0)])], 0.0, W)
    assert len(warnings) == 1 and f"unreadable entry for {KEY!r}" in warnings[0]
    assert load(path, 0.0, W)[0].latencies.values() == [7.0]


def test_the_file_records_its_schema(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    assert_works(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (SCHEMA,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


# -- NullStore ---------------------------------------------------------------------


def test_null_store_does_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stats, breaker = fresh()
    with NullStore() as s:
        assert not s.load_into(KEY, stats, breaker, 0.0, W)
        assert s.flush([entry([obs(W)])], 0.0, W)
    assert not stats.has_history
    assert list(tmp_path.iterdir()) == []


def test_config_changes_apply_on_load(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    assert_works(path)
    stats = ReplicaStats(tau=1.0, success_window_s=WINDOW)
    breaker = Breaker(replace(CFG, failures=1), random.Random(0))
    with store(path) as s:
        assert s.load_into(KEY, stats, breaker, 0.0, W + 1)
    assert stats.ewma.tau == 1.0 and stats.cost(0.0) == pytest.approx(42.0 * math.exp(-1))


# -- round_robin turns -------------------------------------------------------------


def test_turns_round_trip_in_the_flush_transaction(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with store(path) as s:
        assert s.load_turns(["weather"]) == {}
        assert s.flush([entry([obs(W)])], 0.0, W, {"weather": "w-2", "news": "n-1"})
        assert s.flush([], 1.0, W + 1, {"weather": "w-1"})  # a turn alone is saved too
    with store(path) as s:
        assert s.load_turns(["weather", "calendar"]) == {"weather": "w-1"}
        assert s.load_turns(["news"]) == {"news": "n-1"}


def test_a_file_from_before_the_rotation_table_gains_it(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        f"INSERT INTO meta VALUES ('schema', '{SCHEMA}');"
        "CREATE TABLE agents (key TEXT PRIMARY KEY, wall REAL NOT NULL, mono REAL NOT NULL,"
        " stats TEXT NOT NULL, breaker TEXT NOT NULL);"
    )
    conn.close()
    warnings: list[str] = []
    with store(path, warnings) as s:
        assert s.load_turns(["t"]) == {}
        assert s.flush([], 0.0, W, {"t": "a"})
    with store(path, warnings) as s:
        assert s.load_turns(["t"]) == {"t": "a"}
    assert warnings == []


def test_a_turn_that_is_not_text_is_no_turn(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with store(path) as s:
        assert s.flush([], 0.0, W, {"t": "a", "u": "b"})
    conn = sqlite3.connect(path)
    conn.execute("UPDATE rotation SET last = X'00ff' WHERE type = 't'")
    conn.commit()
    conn.close()
    with store(path) as s:
        assert s.load_turns(["t", "u"]) == {"u": "b"}


def test_null_store_keeps_no_turn() -> None:
    with NullStore() as s:
        assert s.flush([], 0.0, W, {"t": "a"})
        assert s.load_turns(["t"]) == {}


def test_cooldowns_persist_the_later_end_wins_and_expired_or_bad_rows_are_skipped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    with StateStore(path, warn=pytest.fail) as store:
        assert store.flush([], 1.0, W, cooling={"a@x": W + 30, "b@x": W + 5, "c@x": W + 1})
        assert store.flush([], 2.0, W + 1, cooling={"a@x": W + 10, "b@x": W + 20})
        assert store.load_cooling(["a@x", "b@x", "c@x", "d@x"], W + 2) == {
            "a@x": W + 30,  # the later end wins: an earlier report does not shorten it
            "b@x": W + 20,
        }  # c@x ended at W + 1
        assert store.load_cooling(["a@x"], W + 40) == {}
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT OR REPLACE INTO cooling (key, until) VALUES ('b@x', 'soon')")
    with StateStore(path, warn=pytest.fail) as store:
        assert store.load_cooling(["a@x", "b@x"], W + 2) == {"a@x": W + 30}
