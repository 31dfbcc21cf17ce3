"""``latcli watch`` in a real terminal: tmux runs it, we kill a demo agent and read the screen.

The capture tests (test_watch_view.py) check what the view draws; this one checks that the live
redraw reaches a terminal, in place, and follows a crash: the killed agent goes down with an
open breaker while every other row stays on screen.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import DemoFleet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

REPO = Path(__file__).resolve().parents[2]
VICTIM = "weather-2"  # a replica: the weather type still has weather-1 to pick
WAIT = 20.0  # seconds for each thing we wait to see on screen
COLS, ROWS = 120, 40


@pytest.fixture
def tmux() -> Iterator[Callable[..., str]]:
    """``tmux(*args)`` on a private server (own socket, no user config); killed afterwards."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is missing under CI: .ci/run installs it from Debian")
        pytest.skip("tmux is not installed (.ci/run installs it from Debian)")
    socket = f"latcli-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> str:
        cmd = ["tmux", "-L", socket, "-f", "/dev/null", *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=10).stdout

    try:
        yield run
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def _row(screen: str, agent_id: str) -> str | None:
    """The table row of ``agent_id``: the first line that starts with the id as a word."""
    return next((line for line in screen.splitlines() if line.split()[:1] == [agent_id]), None)


def _wait_for(read: Callable[[], str], ok: Callable[[str], bool], what: str) -> str:
    deadline = time.monotonic() + WAIT
    screen = read()
    while not ok(screen):
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {WAIT:g}s; the screen:\n{screen}")
        time.sleep(0.25)
        screen = read()
    return screen


def test_killed_agent_shows_down_with_an_open_breaker(
    tmux: Callable[..., str], demo_fleet: DemoFleet, tmp_path: Path
) -> None:
    ids = [a.id for a in demo_fleet.agents]
    assert VICTIM in ids
    watch = [sys.executable, "-m", "latcli", "watch", "-i", str(demo_fleet.inventory_path)]
    watch += ["--interval", "500ms", "--no-state"]
    # COLUMNS/LINES from the test runner would override the pane size rich reads from the tty.
    # The trailing sleep keeps the pane (and whatever watch printed) if watch exits early.
    shell = f"env -u COLUMNS -u LINES TERM=xterm-256color {shlex.join(watch)}"
    shell += "; echo watch exited $?; sleep 30"
    session = "watch"
    size = ["-x", str(COLS), "-y", str(ROWS)]
    tmux("new-session", "-d", "-s", session, *size, "-c", str(tmp_path), shell)

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", session)

    first = _wait_for(screen, lambda s: all(_row(s, i) for i in ids), "row for every agent")
    assert "every 500 ms" in first and "p2c" in first, first

    demo_fleet.fleet.kill(VICTIM)
    try:

        def victim_down(s: str) -> bool:
            row = _row(s, VICTIM)
            return row is not None and "down" in row.split() and "open" in row.split()

        shown = _wait_for(screen, victim_down, f"{VICTIM} down with an open breaker")
        for agent_id in ids:
            assert _row(shown, agent_id), f"{agent_id} row missing:\n{shown}"
        for agent_id in set(ids) - {VICTIM}:
            row = _row(shown, agent_id) or ""
            assert "down" not in row.split(), shown
        assert "every 500 ms" in shown and "p2c" in shown, shown
        assert "watch exited" not in shown
    finally:
        demo_fleet.fleet.restart(VICTIM)  # the fleet is shared by the whole session
