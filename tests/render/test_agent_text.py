"""Agent text is text (DESIGN §7, issue 10 item 5): escapes never reach a terminal, rich markup
from an agent is never interpreted, piped ``send`` output stays byte-exact."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_agents import EVIL, markup_error_agent, text_agent
from pty_run import latcli_on_a_terminal
from rich.console import Console

from latcli.config.loading import load_inventory
from latcli.config.selection import adhoc_agent
from latcli.core.escape import escape_controls, json_safe, terminal_reply
from latcli.engines.send import run_probe
from latcli.render.probe_view import probe_table
from latcli.render.text import agent_text
from latcli.render.watch_view import event_line
from latcli.reports.watch import WatchEvent

RUN_TIMEOUT = 30

# What must never be written to a terminal: the raw sequences of EVIL and rich's own hyperlink.
RAW = ("\x1b]0;", "\x1b[2J", "\x1b]8;;http://evil", "\u202e", "\x1b]8;id=")


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=200, color_system="truecolor"), out


# ---- the functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text", "plain text"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("\x1b[2J", "\\x1b[2J"),
        ("a\rb", "a\\x0db"),
        ("del\x7f", "del\\x7f"),
        ("c1\x9b31m", "c1\\x9b31m"),
        ("nul\x00", "nul\\x00"),
        ("bidi \u202eevil\u2066", "bidi \\u202eevil\\u2066"),
        ("line\u2028sep", "line\\u2028sep"),
        ("é ü 日本 🙂", "é ü 日本 🙂"),
    ],
)
def test_escape_controls_spells_out_every_control_character(text: str, shown: str) -> None:
    assert escape_controls(text) == shown


def test_escape_controls_returns_clean_text_itself() -> None:
    text = "nothing to escape here"
    assert escape_controls(text) is text


def test_agent_text_in_a_terminal_console_writes_no_sequence_and_no_markup() -> None:
    console, out = terminal()
    console.print(agent_text(EVIL))
    written = out.getvalue()
    assert not any(raw in written for raw in RAW)
    assert "[link=http://evil.example/]here[/link]" in written
    assert "[bold red]alarm[/bold red]" in written
    assert "\\x1b]0;pwned\\x07" in written


def test_markup_printed_as_a_plain_string_would_be_interpreted() -> None:
    # the hazard the renderables avoid: the same text as a str becomes a live hyperlink
    console, out = terminal()
    console.print("[link=http://evil.example/]here[/link]")
    assert "\x1b]8;" in out.getvalue() and "[link=" not in out.getvalue()


def test_terminal_reply_escapes_only_on_a_terminal_without_raw() -> None:
    assert terminal_reply(EVIL, terminal=True, raw=False) == escape_controls(EVIL)
    assert terminal_reply(EVIL, terminal=False, raw=False) == EVIL
    assert terminal_reply(EVIL, terminal=True, raw=True) == EVIL


def test_watch_event_line_shows_agent_text_as_text() -> None:
    console, out = terminal()
    console.print(event_line(WatchEvent(0.0, "state", "a", f"a healthy → down ({EVIL})")))
    assert not any(raw in out.getvalue() for raw in RAW)
    assert "[link=http://evil.example/]" in out.getvalue()


# ---- probe against real hostile agents ---------------------------------------------------------


def test_probe_table_shows_a_hostile_card_name_literally() -> None:
    with text_agent() as server:
        agent = adhoc_agent(server.url)
        a2a = type(agent)(**{**agent.__dict__, "protocol": "a2a"})
        report = asyncio.run(run_probe([a2a]))
    assert report.ok and report.results[0].card is not None
    assert report.results[0].card.name == EVIL  # kept as sent; only its display is escaped
    console, out = terminal()
    console.print(probe_table(report, 1))
    written = out.getvalue()
    assert not any(raw in written for raw in RAW)
    assert "a2a 0.3" in written  # the name and skills are --json's (the table fits 80 columns)


def test_probe_error_message_markup_prints_literally(tmp_path: Path) -> None:
    with markup_error_agent() as server:
        inv = tmp_path / "agents.yaml"
        inv.write_text(
            f"version: 1\nagents:\n  - {{id: m, type: m, url: '{server.url}', protocol: a2a}}\n"
        )
        agents = load_inventory(inv, {}).agents
        report = asyncio.run(run_probe(agents))
        proc = _latcli("probe", "-i", str(inv))
    assert not report.ok and report.results[0].message is not None
    assert "[link=" in report.results[0].message
    console, out = terminal()
    console.print(probe_table(report, 1))
    assert "\x1b]8;" not in out.getvalue()
    assert "[link=http://evil.example/]x[/link]" in "".join(out.getvalue().split())
    # the command itself, piped: the same literal text, exit 1, no traceback
    assert proc.returncode == 1, proc.stderr
    assert "[link=http://evil.example/]x[/link]" in "".join(proc.stdout.decode().split())
    assert b"Traceback" not in proc.stderr


# ---- send: escaped on a terminal, byte-exact piped, --raw --------------------------------------


def _inventory(tmp_path: Path, url: str, protocol: str = "http") -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(
        f"version: 1\nagents:\n  - {{id: evil-1, type: evil, url: '{url}', protocol: {protocol}}}\n"
    )
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCLI_")}
    env.update(LATCLI_STATE=str(tmp_path / "state.db"), NO_COLOR="1", COLUMNS="120")
    return env


def _latcli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "latcli", *args],
        capture_output=True,
        env=env,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run latcli with stdout on a pseudo-terminal; (exit code, bytes written to it)."""
    return latcli_on_a_terminal(args, env, RUN_TIMEOUT)


@pytest.mark.parametrize("protocol", ["http", "a2a"])
def test_send_piped_writes_the_reply_byte_exact(tmp_path: Path, protocol: str) -> None:
    with text_agent() as server:
        inv = _inventory(tmp_path, server.url, protocol)
        proc = _latcli("send", "-i", str(inv), "evil", "hi", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (EVIL + "\n").encode()
    assert b"Traceback" not in proc.stderr


def test_send_on_a_terminal_escapes_the_reply(tmp_path: Path) -> None:
    with text_agent() as server:
        inv = _inventory(tmp_path, server.url)
        code, written = _on_a_terminal(["send", "-i", str(inv), "evil", "hi"], _env(tmp_path))
    text = written.decode()
    assert code == 0
    assert not any(raw in text for raw in RAW)
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in text and "\\u202eevil\\x0d!" in text


def test_send_raw_on_a_terminal_writes_the_reply_as_sent(tmp_path: Path) -> None:
    with text_agent() as server:
        inv = _inventory(tmp_path, server.url)
        args = ["send", "-i", str(inv), "evil", "hi", "--raw"]
        code, written = _on_a_terminal(args, _env(tmp_path))
    assert code == 0
    assert "\x1b]0;pwned\x07\x1b[2J" in written.decode()


def test_send_help_says_what_raw_does() -> None:
    proc = _latcli("send", "--help")
    help_text = " ".join(proc.stdout.decode().split())
    assert "--raw" in help_text and "exactly as the agent sent it" in help_text


def test_send_json_keeps_the_reply_and_escapes_it_as_json(tmp_path: Path) -> None:
    import json

    with text_agent() as server:
        inv = _inventory(tmp_path, server.url)
        proc = _latcli("send", "-i", str(inv), "evil", "hi", "--json", env=_env(tmp_path))
    assert proc.returncode == 0
    assert b"\x1b" not in proc.stdout  # JSON spells control characters \u001b
    assert json.loads(proc.stdout)["results"][0]["reply"] == EVIL


def test_json_safe_escapes_what_json_dumps_leaves_raw_and_keeps_the_document() -> None:
    import json

    doc = {"m": "del\x7f c1\x9b bidi\u202e sep\u2028 é 日本 ok"}
    text = json.dumps(doc, ensure_ascii=False)
    safe = json_safe(text)
    assert json.loads(safe) == doc
    assert not any(c in safe for c in "\x7f\x9b\u202e\u2028")
    assert "é 日本" in safe  # other text stays readable
    clean = json.dumps({"m": "é"}, ensure_ascii=False)
    assert json_safe(clean) is clean
