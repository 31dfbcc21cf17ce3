"""Smoke tests for tests/support/a2a_sdk_agent.py, the a2a-sdk 1.3.0 echo agent.

They pin down the exact wire shapes the real SDK produces, so latcli's A2A
client can be written (and tested) against them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a_sdk_runner import CARD_PATH, Agent, _stop, run_agent

# JSON-RPC / A2A error codes observed from a2a-sdk 1.3.0.
VERSION_NOT_SUPPORTED = -32009

METHOD_NOT_FOUND = -32601

INTERNAL_ERROR = -32603


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
