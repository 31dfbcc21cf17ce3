"""Inventory bounds (issue 10 item 7): alias expansion is budgeted, deep nesting and header
values an HTTP engine cannot send are problem lines (``FILE:LINE key.path: problem``)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from latcli.config.loading import load_inventory
from latcli.config.problems import InventoryError
from latcli.config.yaml_lines import ALIAS_BUDGET

AGENT = "agents: [{id: a, type: t, url: 'http://127.0.0.1:1'}]\n"


def _laughs(levels: int = 9) -> str:
    """The classic "billion laughs": each level is nine aliases of the one before."""
    lines = ["version: 1", 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [{','.join([f'*l{n - 1}'] * 9)}]")
    return "\n".join(lines) + "\n" + AGENT


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "agents.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError) as err:
        load_inventory(path, {})
    return str(err.value).splitlines()


def test_billion_laughs_is_one_problem_line_at_once(tmp_path: Path) -> None:
    text = _laughs()
    assert len(text.encode()) < 700
    started = time.perf_counter()
    lines = _problems(tmp_path, text)
    assert time.perf_counter() - started < 2.0
    # l5 (9^6 nodes) is where the expansion first passes the budget (l4: 9^5 = 59,049)
    assert lines == [
        f"{tmp_path / 'agents.yaml'}:7: YAML aliases here expand past {ALIAS_BUDGET:,} nodes"
        " (an alias bomb?); write the values out"
    ]


def test_a_merge_key_bomb_is_caught_too(tmp_path: Path) -> None:
    lines = ["version: 1", "m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}"]
    for n in range(1, 9):
        merged = ", ".join([f"*m{n - 1}"] * 9)
        lines.append(f"m{n}: &m{n} {{<<: [{merged}], k{n}: {n}}}")
    problems = _problems(tmp_path, "\n".join(lines) + "\n" + AGENT)
    assert len(problems) == 1 and "alias bomb" in problems[0]


def test_anchors_used_as_intended_stay_well_within_the_budget(tmp_path: Path) -> None:
    # 1,000 agents merging one defaults anchor: what a real fleet file does with aliases
    lines = ["version: 1", "x-common: &common {timeout: 2s, weight: 1, health: {path: /h}}"]
    lines.append("agents:")
    for i in range(1000):
        lines.append(f"  - {{<<: *common, id: a{i}, type: t, url: 'http://127.0.0.1:{1000 + i}'}}")
    path = tmp_path / "agents.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InventoryError) as err:  # x-common is not a key latcli knows
        load_inventory(path, {})
    assert "alias bomb" not in str(err.value)
    first = str(err.value).splitlines()[0]
    assert first.endswith("x-common: unknown key (expected one of: version, agents, defaults,"
                          " routing, sla)")  # fmt: skip


@pytest.mark.parametrize("parser", ["libyaml", "pure-python"])
def test_deep_nesting_is_a_problem_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parser: str
) -> None:
    if parser == "pure-python":  # PyYAML's own composer recurses: RecursionError
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    text = "version: 1\n" + AGENT + "sla: " + "[" * 100_000 + "]" * 100_000 + "\n"
    problems = _problems(tmp_path, text)
    assert len(problems) == 1 and "invalid YAML" in problems[0]
    assert "nested too deeply" in problems[0] or "maximum nesting depth" in problems[0]


def test_the_bomb_through_the_cli_is_exit_2_fast_and_small(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(_laughs())
    script = (
        "import sys\n"
        "from latcli.cli.app import main\n"
        "code = main(['probe', '-i', sys.argv[1]])\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(hwm.split()[1], file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert time.perf_counter() - started < 10
    assert proc.returncode == 2
    message, peak_kib = proc.stderr.splitlines()
    assert message.startswith(f"{path}:7: YAML aliases here expand past")
    # VmHWM, this process's peak RSS (getrusage's ru_maxrss would count the parent's, the
    # pytest run's): the interpreter with latcli imported, well under 200 MB
    assert int(peak_kib) < 200 * 1024


@pytest.mark.parametrize(
    ("value", "where"),
    [("café", "defaults"), ("a\x07b", "agent"), ("tab\tok but NUL\x00", "agent")],
)
def test_header_values_an_engine_cannot_send_are_problem_lines(
    tmp_path: Path, value: str, where: str
) -> None:
    quoted = value.encode("unicode_escape").decode().replace('"', '\\"')
    headers = f'headers: {{X-Token: "{quoted}"}}'
    if where == "defaults":
        text = f"version: 1\ndefaults:\n  {headers}\n" + AGENT
        path = "defaults.headers.X-Token"
        line = 3
    else:
        text = (
            f"version: 1\nagents:\n  - id: a\n    type: t\n    url: 'http://h:1'\n    {headers}\n"
        )
        path = "agents[0].headers.X-Token"
        line = 6
    problems = _problems(tmp_path, text)
    assert problems == [
        f"{tmp_path / 'agents.yaml'}:{line} {path}: header value has a non-ASCII or control"
        " character"
    ]
    assert value not in problems[0]  # header values are secrets: never quoted


def test_tabs_spaces_and_visible_ascii_are_fine_in_header_values(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        'version: 1\nagents:\n  - {id: a, type: t, url: "http://h:1",'
        ' headers: {Authorization: "Bearer a.b-c_d~e+f/g= \\t!#$%&*"}}\n'
    )
    (agent,) = load_inventory(path, {}).agents
    assert agent.headers["Authorization"] == "Bearer a.b-c_d~e+f/g= \t!#$%&*"


@pytest.mark.parametrize("url", ["http://h:1/\x1b[2J", "http://h:1/a\u202eb", "http://h\x00:1"])
def test_urls_with_control_characters_are_not_urls(tmp_path: Path, url: str) -> None:
    from latcli.config.selection import adhoc_agent
    from latcli.core.errors import LatcliError

    with pytest.raises(LatcliError, match="not an http"):
        adhoc_agent(url)
    quoted = url.encode("unicode_escape").decode()
    problems = _problems(
        tmp_path, f'version: 1\nagents:\n  - {{id: a, type: t, url: "{quoted}"}}\n'
    )
    assert problems == [f"{tmp_path / 'agents.yaml'}:3 agents[0].url: not an http(s) URL"]
