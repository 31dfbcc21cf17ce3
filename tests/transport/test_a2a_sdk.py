"""latcli against real a2a-sdk 1.3.0 agents (tests/support/a2a_sdk_agents.py), started here on
ephemeral loopback ports: task lifecycle, both bindings, both wire versions and the phases of
a streamed answer checked against the agent's own schedule (issue 11 item 8)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from a2a_sdk_agents import RunningAgent, run_sdk_agent

from latcli.config.model import A2AConfig, Agent
from latcli.core.errors import ErrorKind
from latcli.transport.base import Outcome
from latcli.transport.httpx_engine import HttpxTransport
from latcli.transport.protocols import ProtocolClient
from latcli.transport.replies import Reply

pytestmark = pytest.mark.timeout(120)

THINK_MS, CHUNKS, GAP_MS = 200.0, 5, 100.0  # the stream agents' schedule
SCHEDULE = ("--think-ms", str(THINK_MS), "--chunks", str(CHUNKS), "--gap-ms", str(GAP_MS))
TEXT = "tok0 tok1 tok2 tok3 tok4"
SLACK_MS = 150.0  # upper tolerance on a shared 2-core machine; lower bounds are exact


def agent_at(url: str, **extra: object) -> Agent:
    return Agent(id="sdk", type="llm", url=url, protocol="a2a", timeout=10.0, **extra)  # type: ignore[arg-type]


def run(coro_fn: object) -> object:
    return asyncio.run(coro_fn)  # type: ignore[arg-type]


def stream(agent: Agent, text: str = "hi") -> tuple[Reply, list[str]]:
    chunks: list[str] = []

    async def go() -> Reply:
        async with HttpxTransport() as transport:
            return await ProtocolClient(transport).stream_message(agent, text, None, chunks.append)

    return asyncio.run(go()), chunks


def unary(agent: Agent, text: str = "hi") -> Reply:
    async def go() -> Reply:
        async with HttpxTransport() as transport:
            return await ProtocolClient(transport).send_message(agent, text)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def stream_10() -> Iterator[RunningAgent]:
    with run_sdk_agent("stream", *SCHEDULE) as agent:
        yield agent


@pytest.fixture(scope="module")
def stream_03() -> Iterator[RunningAgent]:
    with run_sdk_agent("stream", "--v03-only", *SCHEDULE) as agent:
        yield agent


@pytest.fixture(scope="module")
def rest_10() -> Iterator[RunningAgent]:
    with run_sdk_agent("rest", *SCHEDULE) as agent:
        yield agent


@pytest.fixture(scope="module")
def failing() -> Iterator[RunningAgent]:
    with run_sdk_agent("fail", "--v03-compat", "--think-ms", "20") as agent:
        yield agent


def check_schedule(reply: Reply, chunks: list[str], ttft_max: float = THINK_MS + SLACK_MS) -> None:
    """The phases against the agent's schedule: working, think, CHUNKS chunks GAP_MS apart."""
    assert reply.ok, reply.message
    assert (reply.text, reply.state) == (TEXT, "completed")
    assert "".join(chunks) == TEXT and len(chunks) == CHUNKS
    p = reply.stream
    assert p is not None
    assert (p.events, p.chunks) == (CHUNKS + 3, CHUNKS)  # task, working, chunks, completed
    assert p.first_event_ms is not None and p.working_ms is not None
    assert p.first_artifact_ms is not None and p.total_ms is not None
    assert 0 < p.first_event_ms <= p.working_ms <= p.first_artifact_ms <= p.total_ms
    # no chunk can come before the think is over; the time to first token is the think's
    assert THINK_MS <= p.first_artifact_ms <= ttft_max
    streaming = p.total_ms - p.first_artifact_ms  # (CHUNKS - 1) gaps, then completed
    assert (CHUNKS - 1) * GAP_MS - 5 <= streaming <= (CHUNKS - 1) * GAP_MS + SLACK_MS
    assert p.gap_ms_max is not None and GAP_MS - 5 <= p.gap_ms_max <= GAP_MS + SLACK_MS
    # the reply's latency from the attempt's start (its connect too), the phases from the send
    assert p.total_ms <= reply.latency_ms <= p.total_ms + SLACK_MS


def test_a_streamed_answer_over_jsonrpc_10(stream_10: RunningAgent) -> None:
    reply, chunks = stream(agent_at(stream_10.url))
    assert reply.card is not None and (reply.card.version, reply.card.binding) == ("1.0", "jsonrpc")
    assert reply.card.streaming
    check_schedule(reply, chunks)


def test_the_same_agent_answers_a_unary_send_after_the_whole_task(stream_10: RunningAgent) -> None:
    reply = unary(agent_at(stream_10.url))
    assert (reply.ok, reply.text, reply.state, reply.stream) == (True, TEXT, "completed", None)
    assert reply.latency_ms >= THINK_MS + (CHUNKS - 1) * GAP_MS


def test_a_streamed_answer_over_the_03_wire(stream_03: RunningAgent) -> None:
    reply, chunks = stream(agent_at(stream_03.url))
    assert reply.card is not None and reply.card.version == "0.3"
    # the SDK's 0.3 adapter holds its first bytes back, measured up to ~200 ms: TTFT is its
    check_schedule(reply, chunks, ttft_max=THINK_MS + 200 + SLACK_MS)
    assert unary(agent_at(stream_03.url)).text == TEXT


def test_an_http_json_only_agent_is_spoken_to_over_http_json(rest_10: RunningAgent) -> None:
    reply, chunks = stream(agent_at(rest_10.url))
    assert reply.card is not None and reply.card.binding == "http+json"
    assert reply.card.bindings == ("http+json",)
    check_schedule(reply, chunks)
    assert unary(agent_at(rest_10.url)).text == TEXT


def test_forcing_a_binding_the_card_lacks_is_one_clear_line(rest_10: RunningAgent) -> None:
    reply = unary(agent_at(rest_10.url, a2a=A2AConfig(binding="jsonrpc")))
    assert reply.error is ErrorKind.BAD_RESPONSE
    assert reply.message == (
        "the inventory asks for binding jsonrpc but the card offers only http+json"
    )


def test_an_http_json_03_agent(tmp_path: Path) -> None:
    with run_sdk_agent("rest", "--v03-only", "--think-ms", "10", "--gap-ms", "10") as agent:
        reply, chunks = stream(agent_at(agent.url))
        assert reply.card is not None
        assert (reply.card.version, reply.card.binding) == ("0.3", "http+json")
        assert (reply.text, reply.state, len(chunks)) == (TEXT, "completed", CHUNKS)
        assert unary(agent_at(agent.url)).text == TEXT


@pytest.mark.parametrize("mode", ["stream", "unary"])
def test_a_failed_task_is_a_failure_carrying_the_agents_message(
    failing: RunningAgent, mode: str
) -> None:
    agent = agent_at(failing.url)
    reply = stream(agent)[0] if mode == "stream" else unary(agent)
    assert not reply.ok and reply.is_failure
    assert (reply.error, reply.state) == (ErrorKind.TASK_FAILED, "failed")
    assert reply.message == "task failed: model overloaded"
    if mode == "stream":
        assert reply.stream is not None and reply.stream.working_ms is not None


def test_a_failed_task_over_the_03_wire() -> None:
    with run_sdk_agent("fail", "--v03-only", "--think-ms", "20") as agent:
        for reply in (stream(agent_at(agent.url))[0], unary(agent_at(agent.url))):
            assert reply.card is not None and reply.card.version == "0.3"
            assert (reply.error, reply.state) == (ErrorKind.TASK_FAILED, "failed")
            assert "model overloaded" in (reply.message or "")


def test_input_required_is_an_answer_that_stops_early() -> None:
    with run_sdk_agent("input", "--think-ms", "20") as agent:
        for reply in (stream(agent_at(agent.url))[0], unary(agent_at(agent.url))):
            assert reply.ok and not reply.is_failure
            assert (reply.state, reply.text) == ("input-required", "which city?")


def test_a_task_answered_working_is_polled_until_completed() -> None:
    with run_sdk_agent("later", "--think-ms", "400") as agent:
        reply = unary(agent_at(agent.url))
        assert reply.ok, reply.message
        assert (reply.text, reply.state) == ("done later", "completed")
        assert reply.latency_ms >= 400  # the whole task, polls included
        # within a shorter attempt timeout the poll gives up: a timeout, not a hang
        short = unary(Agent(id="s", type="llm", url=agent.url, protocol="a2a", timeout=0.3))
        assert short.error is ErrorKind.TIMEOUT
        assert short.message == "task still working after 0.3s"
        assert 250 <= short.latency_ms <= 300 + SLACK_MS


def test_a_failed_task_counts_against_the_agent_in_the_router(
    failing: RunningAgent, stream_10: RunningAgent
) -> None:
    from latcli.core.breaker import BreakerConfig
    from latcli.routing.router import Router

    trips = BreakerConfig(failures=2, open_for=60.0, open_max=60.0)
    bad = Agent(id="a-bad", type="llm", url=failing.url, protocol="a2a", breaker=trips)
    good = Agent(id="b-good", type="llm", url=stream_10.url, protocol="a2a", timeout=10.0)

    async def go() -> list[list[tuple[str, str]]]:
        async with Router([bad, good], strategy="round_robin", retries=1, state=None) as router:
            results = [await router.send("llm", "hi") for _ in range(6)]
        assert all(r.ok and r.reply == TEXT for r in results)
        return [[(a.agent, a.outcome) for a in r.attempts] for r in results]

    per_send = asyncio.run(go())
    attempts = [a for tries in per_send for a in tries]
    # the failing agent is tried until its breaker opens after 2 task failures, then never
    assert attempts.count(("a-bad", "task_failed")) == 2
    assert set(attempts) == {("a-bad", "task_failed"), ("b-good", "ok")}
    assert per_send[-1] == [("b-good", "ok")]


def test_an_engine_without_the_streaming_seam_answers_unary(stream_10: RunningAgent) -> None:
    from latcli.transport.base import RequestSpec, can_stream
    from latcli.transport.raw.transport import RawTransport

    class UnaryOnly:
        """A real engine seen through the plain Transport protocol (no stream())."""

        def __init__(self) -> None:
            self._inner = RawTransport()

        async def send(self, key: str, spec: RequestSpec) -> Outcome:
            return await self._inner.send(key, spec)

        async def aclose(self) -> None:
            await self._inner.aclose()

    async def go() -> tuple[Reply, bool]:
        transport = UnaryOnly()
        try:
            reply = await ProtocolClient(transport).stream_message(agent_at(stream_10.url), "hi")
        finally:
            await transport.aclose()
        return reply, can_stream(transport)

    reply, streams = asyncio.run(go())
    assert not streams
    assert (reply.ok, reply.text, reply.state, reply.stream) == (True, TEXT, "completed", None)


# ---- latcli send, as a user runs it ---------------------------------------------------------


def latcli_send(inventory: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCLI_")}
    env.update(LATCLI_STATE=str(tmp_path / "state.db"), NO_COLOR="1", COLUMNS="100")
    cmd = [sys.executable, "-m", "latcli", "send", "-i", str(inventory), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_latcli_send_exits_1_on_a_failed_task(failing: RunningAgent, tmp_path: Path) -> None:
    inventory = tmp_path / "agents.yaml"
    inventory.write_text(
        f"version: 1\nagents:\n  - {{id: llm-1, type: llm, url: '{failing.url}', protocol: a2a}}\n",
        encoding="utf-8",
    )
    done = latcli_send(inventory, tmp_path, "llm", "hello")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert "llm-1: task_failed" in done.stderr
    assert "Traceback" not in done.stderr
