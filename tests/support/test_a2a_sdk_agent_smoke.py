"""Smoke tests for tests/support/a2a_sdk_agent.py, the a2a-sdk 1.3.0 echo agent.

They pin down the exact wire shapes the real SDK produces, so latcli's A2A
client can be written (and tested) against them.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import stop_process

AGENT_SCRIPT = Path(__file__).with_name("a2a_sdk_agent.py")
CARD_PATH = "/.well-known/agent-card.json"
STARTUP_TIMEOUT_S = 15.0

# JSON-RPC / A2A error codes observed from a2a-sdk 1.3.0.
VERSION_NOT_SUPPORTED = -32009
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Agent:
    def __init__(self, proc: subprocess.Popen[bytes], base_url: str, log_dir: Path) -> None:
        self.proc = proc
        self.base_url = base_url
        self.log_dir = log_dir

    def stdout(self) -> str:
        return (self.log_dir / "stdout.txt").read_text(errors="replace")

    def stderr(self) -> str:
        return (self.log_dir / "stderr.txt").read_text(errors="replace")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    return stop_process(proc)


@contextlib.contextmanager
def run_agent(log_dir: Path, *extra_args: str) -> Iterator[Agent]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        open(log_dir / "stdout.txt", "wb") as out,
        open(log_dir / "stderr.txt", "wb") as err,
    ):
        proc = subprocess.Popen(
            [sys.executable, str(AGENT_SCRIPT), "--port", str(port), *extra_args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    agent = Agent(proc, base_url, log_dir)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"agent exited early with {proc.returncode}:\n{agent.stderr()}")
            try:
                r = httpx.get(base_url + CARD_PATH, timeout=1.0)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"agent not ready after {STARTUP_TIMEOUT_S}s:\n{agent.stderr()}")
            time.sleep(0.1)
        yield agent
    finally:
        _stop(proc)


def _send_message_body(text: str = "hello", request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "SendMessage",
        "params": {
            "message": {
                "role": "ROLE_USER",
                "messageId": str(uuid.uuid4()),
                "parts": [{"text": text}],
            }
        },
    }


def _message_send_v03_body(text: str = "hello", request_id: int = 2) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "message/send",
        "params": {
            "message": {
                "kind": "message",
                "role": "user",
                "messageId": str(uuid.uuid4()),
                "parts": [{"kind": "text", "text": text}],
            }
        },
    }


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    with run_agent(tmp_path / "agent") as a:
        yield a


@pytest.mark.timeout(60)
def test_sdk_agent_card_and_send_message(agent: Agent) -> None:
    base = agent.base_url
    with httpx.Client(timeout=10.0) as client:
        # --- agent card ---------------------------------------------------
        r = client.get(base + CARD_PATH)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers.get("etag", "").startswith('W/"')
        card = r.json()
        assert card["name"] == "sdk-echo"
        assert card["supportedInterfaces"] == [
            {"url": base + "/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ]
        assert card["skills"] and card["skills"][0]["id"] == "echo"
        assert card["capabilities"] == {"streaming": False, "pushNotifications": False}
        # 1.0-only card: no 0.3 top-level fields are injected.
        assert "url" not in card
        assert "preferredTransport" not in card
        assert "protocolVersion" not in card

        # --- SendMessage with A2A-Version: 1.0 -> Message result ----------
        body = _send_message_body("hello", 1)
        r = client.post(base + "/", json=body, headers={"A2A-Version": "1.0"})
        assert r.status_code == 200
        reply = r.json()
        assert reply["jsonrpc"] == "2.0"
        assert reply["id"] == 1
        assert "error" not in reply
        msg = reply["result"]["message"]
        assert msg["role"] == "ROLE_AGENT"
        assert msg["parts"] == [{"text": "echo: hello"}]
        assert msg["messageId"] and msg["contextId"]
        assert "echo: hello" in r.text

        # --- same request without A2A-Version -> treated as 0.3, rejected --
        r = client.post(base + "/", json=_send_message_body("hello", 1))
        assert r.status_code == 200  # JSON-RPC errors travel with HTTP 200
        reply = r.json()
        assert reply["id"] == 1
        assert "result" not in reply
        assert reply["error"]["code"] == VERSION_NOT_SUPPORTED
        assert "A2A version '0.3' is not supported" in reply["error"]["message"]
        assert reply["error"]["data"][0]["reason"] == "VERSION_NOT_SUPPORTED"

        # --- 0.3-style message/send -> method not found (compat is off) ----
        for headers in ({}, {"A2A-Version": "1.0"}):
            r = client.post(base + "/", json=_message_send_v03_body("hello", 2), headers=headers)
            assert r.status_code == 200
            assert r.json() == {
                "error": {"code": METHOD_NOT_FOUND, "message": "Method not found"},
                "id": 2,
                "jsonrpc": "2.0",
            }

    # Clean SIGTERM shutdown, and no per-request log lines on stdout.
    assert _stop(agent.proc) == 0
    assert agent.stdout() == ""


@pytest.mark.timeout(60)
def test_sdk_agent_v03_compat_mode(tmp_path: Path) -> None:
    with run_agent(tmp_path / "agent-v03", "--v03-compat") as agent:
        base = agent.base_url
        with httpx.Client(timeout=10.0) as client:
            card = client.get(base + CARD_PATH).json()
            assert [i["protocolVersion"] for i in card["supportedInterfaces"]] == ["1.0", "0.3"]
            # agent_card_to_dict() merges the 0.3 card fields in at top level.
            assert card["url"] == base + "/"
            assert card["preferredTransport"] == "JSONRPC"
            assert card["protocolVersion"] == "0.3"

            # 1.0 still works with the header ...
            r = client.post(base + "/", json=_send_message_body(), headers={"A2A-Version": "1.0"})
            assert r.json()["result"]["message"]["parts"] == [{"text": "echo: hello"}]
            # ... and still needs it.
            r = client.post(base + "/", json=_send_message_body())
            assert r.json()["error"]["code"] == VERSION_NOT_SUPPORTED

            # 0.3 message/send without a header -> 0.3-shaped Message result.
            r = client.post(base + "/", json=_message_send_v03_body())
            assert r.status_code == 200
            reply = r.json()
            assert reply["id"] == 2
            result = reply["result"]
            assert result["kind"] == "message"
            assert result["role"] == "agent"
            assert result["parts"] == [{"kind": "text", "text": "echo: hello"}]

            # 0.3 method with A2A-Version: 1.0 -> rejected (as -32603 by the adapter).
            r = client.post(
                base + "/", json=_message_send_v03_body(), headers={"A2A-Version": "1.0"}
            )
            err = r.json()["error"]
            assert err["code"] == INTERNAL_ERROR
            assert "A2A version '1.0' is not supported" in err["message"]

        assert _stop(agent.proc) == 0
        assert agent.stdout() == ""
