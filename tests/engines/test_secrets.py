"""Credentials stay home (DESIGN §7, issue 10 item 4): a URL's password and a webhook URL never
appear in what latcli prints, logs or stores, and its state and report files are user-only."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import fault_servers as fs
import pytest

from latcli.config.loading import load_inventory
from latcli.core.breaker import Breaker, BreakerConfig
from latcli.core.redact import redact_text, redact_url, redact_webhook
from latcli.core.stats import ReplicaStats
from latcli.routing.router import Router
from latcli.routing.state import CallRecord, FlushEntry
from latcli.routing.state_sqlite import StateStore

SECRET = "s3cretPW"
HOOK_SECRET = "XoXbHook9"
RUN_TIMEOUT = 60


# ---- the functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pw@host:8001/a", "http://user:***@host:8001/a"),
        ("https://token@host", "https://***@host"),
        ("http://u:p%40ss@127.0.0.1", "http://u:***@127.0.0.1"),
        ("http://u:p@ss@h/x", "http://u:***@h/x"),  # a raw '@' in the password (urlsplit's view)
        ("http://host:8001/path@x", "http://host:8001/path@x"),  # '@' after the netloc
        ("http://host/?q=a@b", "http://host/?q=a@b"),
        ("http://127.0.0.1:8001", "http://127.0.0.1:8001"),
        ("http://user:***@host", "http://user:***@host"),  # idempotent
        ("not a url at all", "not a url at all"),
        ("", ""),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_masks_every_url_in_a_message() -> None:
    text = "cannot reach http://a:one@h1/x, then https://b:two@h2:9 (refused)"
    assert redact_text(text) == "cannot reach http://a:***@h1/x, then https://b:***@h2:9 (refused)"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/***"),
        ("http://127.0.0.1:9000/hook?token=abc", "http://127.0.0.1:9000/***"),
        ("https://u:pw@hooks.example/x", "https://hooks.example/***"),
        ("https://hooks.example", "https://hooks.example"),
        ("http://[::1]:80/a", "http://[::1]:80/***"),
        ("garbage", "***"),
        ("http://h:99999/x", "***"),  # a bad port: nothing of it is shown
    ],
)
def test_redact_webhook(url: str, shown: str) -> None:
    assert redact_webhook(url) == shown


# ---- every output of every command, against real agents -------------------------------------


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """An inventory with one healthy and one refusing agent, both with passwords in their URLs;
    yields (inventory, healthy agent's URL with its password, the refused port's URL)."""
    with fs.ok_server() as good, fs.refused_port() as refused:
        good_url = good.url.replace("http://", f"http://ops:{SECRET}@")
        down_url = refused.replace("http://", f"http://ops:{SECRET}@")
        inv = tmp_path / "agents.yaml"
        inv.write_text(
            "version: 1\nagents:\n"
            f"  - {{id: good-1, type: good, url: '{good_url}'}}\n"
            f"  - {{id: down-1, type: down, url: '{down_url}', timeout: 1s}}\n"
        )
        yield inv, good_url, refused


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCLI_")}
    env.update(LATCLI_STATE=str(tmp_path / "state" / "latcli" / "state.db"), NO_COLOR="1")
    return env


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "latcli", *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=RUN_TIMEOUT,
        check=False,
    )


def _clean(proc: subprocess.CompletedProcess[str]) -> None:
    assert SECRET not in proc.stdout and SECRET not in proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def _private(path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_probe_human_and_json_never_show_the_password(
    fleet: tuple[Path, str, str], tmp_path: Path
) -> None:
    inv, good_url, _ = fleet
    human = _run(tmp_path, "probe", "-i", str(inv))
    as_json = _run(tmp_path, "probe", "-i", str(inv), "--json")
    adhoc = _run(tmp_path, "probe", good_url, "--json")
    for proc in (human, as_json, adhoc):
        _clean(proc)
    assert human.returncode == as_json.returncode == 1  # down-1 refuses
    urls = [a["url"] for a in json.loads(as_json.stdout)["agents"]]
    assert all(u.startswith("http://ops:***@127.0.0.1:") for u in urls)
    assert json.loads(adhoc.stdout)["agents"][0]["url"].startswith("http://ops:***@")


def test_a_bad_url_error_hides_its_password(tmp_path: Path) -> None:
    proc = _run(tmp_path, "probe", f"http://ops:{SECRET}@127.0.0.1:99999")
    _clean(proc)
    assert proc.returncode == 2 and "not an http(s) URL" in proc.stderr
    assert "ops:***@" in proc.stderr


def test_watch_json_events_webhook_and_state_never_hold_a_secret(
    fleet: tuple[Path, str, str], tmp_path: Path
) -> None:
    inv, _, refused = fleet
    hook = f"{refused}/services/T000/B000/{HOOK_SECRET}"
    events = tmp_path / "events.jsonl"
    proc = _run(
        tmp_path, "watch", "-i", str(inv), "--json", "--count", "14", "--interval", "0.25s",
        "--events", str(events), "--alert-webhook", hook,
    )  # fmt: skip
    _clean(proc)
    assert HOOK_SECRET not in proc.stdout + proc.stderr
    ticks = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(ticks) == 14
    assert {a["url"].split("@")[0] for a in ticks[-1]["agents"]} == {"http://ops:***"}
    written = events.read_text()
    assert SECRET not in written and HOOK_SECRET not in written
    # the webhook failed: it is named by scheme and host only, in the notes and the events
    shown = f"webhook {refused}/*** unreachable"
    assert any(shown in note for t in ticks for note in t["notes"])
    assert shown in written
    _private(events)
    _state_holds_no_secret(tmp_path)


def test_send_human_and_json_and_its_state_never_show_the_password(
    fleet: tuple[Path, str, str], tmp_path: Path
) -> None:
    inv, _, _ = fleet
    ok = _run(tmp_path, "send", "-i", str(inv), "good", "hi")
    failed = _run(tmp_path, "send", "-i", str(inv), "down", "hi", "--json")
    for proc in (ok, failed):
        _clean(proc)
    assert ok.returncode == 0 and failed.returncode == 1
    assert json.loads(failed.stdout)["results"][0]["ok"] is False
    _state_holds_no_secret(tmp_path)


def _state_holds_no_secret(tmp_path: Path) -> None:
    """The state file, its WAL and shared memory: user-only, in a user-only directory, and
    the password in none of their bytes."""
    db = tmp_path / "state" / "latcli" / "state.db"
    assert db.is_file()
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if path.exists():
            _private(path)
            assert SECRET.encode() not in path.read_bytes(), path
    with sqlite3.connect(db) as conn:
        keys = [k for (k,) in conn.execute("SELECT key FROM agents")]
    assert keys and all("ops:***@" in k for k in keys)


def test_bench_reports_never_hold_the_password_and_are_user_only(
    fleet: tuple[Path, str, str], tmp_path: Path
) -> None:
    _, good_url, _ = fleet
    files = {ext: tmp_path / f"report.{ext}" for ext in ("json", "html", "xml", "hlog")}
    proc = _run(
        tmp_path, "bench", f"{good_url}/health", "-n", "30", "-c", "2", "-q", "--json",
        "-o", str(files["json"]), "--html", str(files["html"]), "--junit", str(files["xml"]),
        "--hlog", str(files["hlog"]), "--sla", "p99<5s",
    )  # fmt: skip
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["target"].startswith("http://ops:***@127.0.0.1:")
    for path in files.values():
        assert SECRET not in path.read_text(), path
        _private(path)
    human = _run(tmp_path, "bench", f"{good_url}/health", "-n", "10", "-c", "1", "-q")
    _clean(human)


def test_capacity_report_never_holds_the_password(
    fleet: tuple[Path, str, str], tmp_path: Path
) -> None:
    _, good_url, _ = fleet
    out = tmp_path / "capacity.json"
    proc = _run(
        tmp_path, "capacity", f"{good_url}", "--endpoint", "health", "--sla", "p99<5s",
        "--start-rate", "20", "--max-rate", "25", "--step-duration", "0.5s", "-q",
        "--json", "-o", str(out),
    )  # fmt: skip
    _clean(proc)
    assert json.loads(proc.stdout)["target"].startswith("http://ops:***@")
    assert SECRET not in out.read_text()
    _private(out)


# ---- state: keys, migration, modes ------------------------------------------------------------


def _entry(key: str) -> FlushEntry:
    return FlushEntry(key, 10.0, 30.0, BreakerConfig(), [CallRecord(time.time(), 5.0, True)])


def test_state_written_under_a_password_key_is_rekeyed_and_kept(tmp_path: Path) -> None:
    """A file from before keys were masked: its rows load under the masked key, and the
    password is gone from every byte of the file."""
    path = tmp_path / "state.db"
    old_key = f"good-1@http://ops:{SECRET}@127.0.0.1:8001"
    with StateStore(path, warn=pytest.fail) as store:
        assert store.flush([_entry(old_key)], time.monotonic(), time.time())
    assert SECRET.encode() in b"".join(_bytes(path))

    warnings: list[str] = []
    stats, breaker = ReplicaStats(10.0, 30.0), Breaker(BreakerConfig(), random.Random(0))
    with StateStore(path, warn=warnings.append) as store:
        new_key = "good-1@http://ops:***@127.0.0.1:8001"
        assert store.load_into(new_key, stats, breaker, time.monotonic(), time.time())
    assert stats.has_history
    assert len(warnings) == 1 and "re-keyed" in warnings[0] and SECRET not in warnings[0]
    assert SECRET.encode() not in b"".join(_bytes(path))


def _bytes(db: Path) -> list[bytes]:
    """The bytes of the database and of its WAL and shared memory, where they exist."""
    sides = (db, Path(f"{db}-wal"), Path(f"{db}-shm"))
    return [side.read_bytes() for side in sides if side.exists()]


def test_router_state_key_masks_the_password(tmp_path: Path) -> None:
    inv = tmp_path / "agents.yaml"
    inv.write_text(f"version: 1\nagents:\n  - {{id: a, type: t, url: 'http://u:{SECRET}@h:1'}}\n")
    router = Router(load_inventory(inv, {}))
    assert router.replica("a").key == "a@http://u:***@h:1"


def test_a_new_state_directory_and_file_are_user_only(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "latcli" / "state.db"
    with StateStore(path, warn=pytest.fail) as store:
        assert store.flush([_entry("a@http://h:1")], time.monotonic(), time.time())
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert modes["state.db"] == 0o600 and modes["state.db-wal"] == 0o600
    assert modes["state.db-shm"] == 0o600


def test_an_existing_world_readable_state_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path, warn=pytest.fail) as store:
        store.flush([_entry("a@http://h:1")], time.monotonic(), time.time())
    os.chmod(path, 0o644)
    with StateStore(path, warn=pytest.fail) as store:
        store.flush([_entry("a@http://h:1")], time.monotonic(), time.time())
    _private(path)


def test_serve_agents_endpoint_and_its_log_never_show_the_password(
    fleet: tuple[Path, str, str], tmp_path: Path
) -> None:
    import re
    import signal

    import httpx

    inv, _, _ = fleet
    proc = subprocess.Popen(
        [sys.executable, "-m", "latcli", "serve", "-i", str(inv), "--port", "0",
         "--interval", "0.2s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        found = re.search(r"latcli serve: (http://\S+) ", proc.stderr.readline())
        assert found is not None
        deadline = time.monotonic() + 10
        while True:
            r = httpx.get(found.group(1) + "/agents")
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200 and SECRET not in r.text
        assert {a["url"].split("@")[0] for a in r.json()["agents"]} == {"http://ops:***"}
        routed = httpx.post(found.group(1) + "/route/down", json={"message": "hi"})
        assert routed.status_code == 503 and SECRET not in routed.text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert SECRET not in out + err and "Traceback" not in err
    _state_holds_no_secret(tmp_path)


def test_report_rerenders_an_older_file_without_its_password(
    fleet: tuple[Path, str, str], tmp_path: Path
) -> None:
    _, good_url, _ = fleet
    old = tmp_path / "old.json"
    proc = _run(tmp_path, "bench", f"{good_url}/health", "-n", "5", "-c", "1", "-q", "-o", str(old))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(old.read_text())
    doc["target"] = f"{good_url}/health"  # as a latcli that kept passwords wrote it
    old.write_text(json.dumps(doc))
    html = tmp_path / "again.html"
    for args in (["--json"], [], ["--html", str(html)]):
        again = _run(tmp_path, "report", str(old), *args)
        _clean(again)
        assert again.returncode == 0, again.stderr
    assert SECRET not in html.read_text()
