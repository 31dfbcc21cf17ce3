"""``--cacert FILE`` and ``--insecure`` on every command that sends (issue 10 item 4), against a
real TLS agent with a self-signed certificate on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fault_servers as fs
import pytest

from latcli.cli.options import INSECURE_WARNING

RUN_TIMEOUT = 60
SENDING = ("probe", "send", "watch", "bench", "capacity", "serve")


@pytest.fixture(scope="module")
def tls_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(the agent's https URL, its certificate: the CA that signed it)."""
    files = fs.make_tls_files(str(tmp_path_factory.mktemp("tls")))
    with fs.tls_ok_server(files) as server:
        yield server.url, files.certfile


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCLI_")}
    env.pop("SSL_CERT_FILE", None)
    env.update(LATCLI_STATE=str(tmp_path / "state.db"), NO_COLOR="1", COLUMNS="120")
    return subprocess.run(
        [sys.executable, "-m", "latcli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def _inventory(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(f"version: 1\nagents:\n  - {{id: lab-1, type: lab, url: '{url}'}}\n")
    return path


@pytest.mark.parametrize("command", SENDING)
def test_every_sending_command_offers_both_flags(tmp_path: Path, command: str) -> None:
    text = " ".join(_run(tmp_path, command, "--help").stdout.split())
    assert "--cacert" in text and "--insecure" in text


@pytest.mark.parametrize("engine", ["httpx", "raw"])
def test_probe_verifies_by_default_and_trusts_the_given_ca(
    tmp_path: Path, tls_agent: tuple[str, str], engine: str
) -> None:
    url, ca = tls_agent
    refused = _run(tmp_path, "probe", url, "--json", "--engine", engine)
    trusted = _run(tmp_path, "probe", url, "--json", "--engine", engine, "--cacert", ca)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["agents"][0]["error"]["kind"] == "tls"
    assert trusted.returncode == 0, trusted.stdout
    assert json.loads(trusted.stdout)["agents"][0]["healthy"] is True


@pytest.mark.parametrize("engine", ["httpx", "raw"])
def test_insecure_skips_verification_with_one_loud_warning(
    tmp_path: Path, tls_agent: tuple[str, str], engine: str
) -> None:
    url, _ = tls_agent
    proc = _run(tmp_path, "probe", url, "--insecure", "--engine", engine)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [INSECURE_WARNING]


def test_send_watch_and_bench_take_the_ca(tmp_path: Path, tls_agent: tuple[str, str]) -> None:
    url, ca = tls_agent
    inv = str(_inventory(tmp_path, url))
    sent = _run(tmp_path, "send", "-i", inv, "lab", "hi", "--cacert", ca)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {"ok": True}  # the agent's whole body is the reply
    watched = _run(tmp_path, "watch", "-i", inv, "--json", "--count", "2", "--interval", "0.2s",
                   "--cacert", ca)  # fmt: skip
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout.splitlines()[-1])["agents"][0]["state"] == "healthy"
    benched = _run(tmp_path, "bench", url, "-n", "10", "-c", "2", "-q", "--json", "--cacert", ca)
    assert benched.returncode == 0, benched.stderr
    assert json.loads(benched.stdout)["errors"] == {}
    unverified = _run(tmp_path, "bench", url, "-n", "5", "-c", "1", "-q", "--json")
    assert json.loads(unverified.stdout)["errors"] == {"tls": 5}


@pytest.mark.parametrize("command", SENDING)
def test_a_missing_ca_file_is_a_one_line_usage_error(tmp_path: Path, command: str) -> None:
    args = {"send": ["lab", "hi"], "bench": ["lab", "-c", "1"], "capacity": ["lab"]}.get(
        command, []
    )
    missing = tmp_path / "nope.pem"
    proc = _run(tmp_path, command, *args, "--cacert", str(missing))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"latcli: --cacert {missing}: file not found"]


def test_a_ca_file_that_is_not_pem_and_both_flags_are_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    proc = _run(tmp_path, "probe", "http://127.0.0.1:1", "--cacert", str(bad))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert "not a usable PEM CA file" in proc.stderr
    both = _run(tmp_path, "probe", "http://127.0.0.1:1", "--cacert", str(bad), "--insecure")
    assert both.returncode == 2
    assert both.stderr.splitlines() == ["latcli: --cacert and --insecure exclude each other"]
