"""Hedging streamed sends (issue 12 item 2): the race policy with a fake clock, the A2A cancel
request on every binding, and races between real a2a-sdk 1.3.0 agents whose losing task is
cancelled."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from a2a_sdk_agents import RunningAgent, run_sdk_agent

from latcli.config.model import Agent
from latcli.core.hedge import Move, StreamRace
from latcli.routing.hedged_stream import Hedged, LegRun, hedged_stream
from latcli.transport.httpx_engine import HttpxTransport
from latcli.transport.protocols import ProtocolClient
from latcli.transport.replies import Card, Reply, read_a2a_reply
from latcli.transport.requests import cancel_task_request, get_task_request
from latcli.transport.stream_reply import OnChunk, OnEvent

# ---- the race policy, sans-I/O ---------------------------------------------------------------


def test_no_hedge_before_it_is_due_nor_after_the_first_token() -> None:
    race = StreamRace(hedge_at=10.0)
    assert not race.hedge_due(9.99) and race.hedge_pending()
    assert race.event(0, 5.0, "t0", answered=False) is Move.WAIT  # a status event: no commit
    assert race.hedge_due(10.0)
    race = StreamRace(hedge_at=10.0)
    assert race.event(0, 9.0, "t0", answered=True) is Move.COMMIT  # the first token commits
    assert not race.hedge_due(11.0) and not race.hedge_pending()
    with pytest.raises(ValueError):
        race.start_hedge()


def test_hedging_off_never_hedges() -> None:
    race = StreamRace(hedge_at=None)
    assert not race.hedge_due(1e9) and not race.hedge_pending()


def test_a_hedge_starts_once() -> None:
    race = StreamRace(hedge_at=0.0)
    assert race.start_hedge() == 1
    assert not race.hedge_due(1.0)
    with pytest.raises(ValueError):
        race.start_hedge()


@pytest.mark.parametrize(
    ("events", "winner", "moves", "losers"),
    [
        # (leg, task id, answered). The hedge answers first: leg 0 loses, cancelled by its id
        ([(0, "a", False), (1, "b", False), (1, "b", True)], 1, "wait wait commit", [0]),
        # leg 0 answers first; leg 1 has no id yet: read on, cancelled at the event naming it
        ([(0, "a", True), (1, None, False), (1, "b", False)], 0, "commit wait cancel", []),
        # leg 1 answers after leg 0 committed: only one commit; cancelled once, then ignored
        ([(1, "b", False), (0, "a", True), (1, "b", True)], 0, "wait commit cancel", []),
        ([(0, None, True), (1, "b", False), (1, "b", True)], 0, "commit cancel wait", []),
    ],
)
def test_the_first_token_wins_and_the_loser_is_cancelled_once_named(
    events: list[tuple[int, str | None, bool]], winner: int, moves: str, losers: list[int]
) -> None:
    race = StreamRace(hedge_at=0.0)
    race.start_hedge()
    got = [race.event(leg, float(t), task, ans).value for t, (leg, task, ans) in enumerate(events)]
    assert race.winner == winner and " ".join(got) == moves
    assert [i for i, move in race.losers() if move is Move.CANCEL] == losers
    assert race.losers() == []  # each loser is dealt with once
    assert race.legs[1 - winner].cancelled


def test_a_failed_leg_leaves_the_race_to_the_other() -> None:
    race = StreamRace(hedge_at=0.0)
    race.start_hedge()
    assert race.ended(0, ok=False) is Move.WAIT
    assert race.ended(1, ok=True) is Move.COMMIT and race.winner == 1
    race = StreamRace(hedge_at=0.0)
    race.start_hedge()
    assert race.ended(1, ok=False) is Move.WAIT
    assert race.ended(0, ok=False) is Move.FAILED and race.winner is None


def test_a_first_leg_failing_before_the_hedge_is_a_plain_failure() -> None:
    race = StreamRace(hedge_at=5.0)
    assert race.ended(0, ok=False) is Move.FAILED
    assert not race.hedge_due(6.0)


def test_a_whole_reply_commits_and_an_unnamed_loser_is_just_closed() -> None:
    race = StreamRace(hedge_at=0.0)
    race.start_hedge()
    assert race.ended(0, ok=True) is Move.COMMIT  # a non-streaming agent's whole answer
    assert race.losers() == []  # leg 1 has no task id yet: read on for it
    assert race.close_unnamed() == [1] and race.close_unnamed() == []


# ---- the cancel request on every binding -----------------------------------------------------

AGENT = Agent(id="c", type="llm", url="http://127.0.0.1:9", protocol="a2a", timeout=3.0)


@pytest.mark.parametrize(
    ("binding", "version", "url", "method"),
    [
        ("jsonrpc", "1.0", "http://127.0.0.1:9/", "CancelTask"),
        ("jsonrpc", "0.3", "http://127.0.0.1:9/", "tasks/cancel"),
        ("http+json", "1.0", "http://127.0.0.1:9/tasks/a%2Fb:cancel", None),
        ("http+json", "0.3", "http://127.0.0.1:9/v1/tasks/a%2Fb:cancel", None),
    ],
)
def test_cancel_task_request_speaks_the_cards_binding(
    binding: str, version: str, url: str, method: str | None
) -> None:
    card = Card(version, "c", "http://127.0.0.1:9/", binding=binding)  # type: ignore[arg-type]
    spec = cancel_task_request(AGENT, card, "a/b", 2.0)
    assert (spec.method, spec.url, spec.timeout) == ("POST", url, 2.0)
    if method is not None:
        doc = json.loads(spec.body or b"")
        assert (doc["method"], doc["params"]) == (method, {"id": "a/b"})
    assert ("A2A-Version" in spec.headers) is (version == "1.0")


# ---- real a2a-sdk agents ---------------------------------------------------------------------

SLOW = ("--think-ms", "3000", "--chunks", "3", "--gap-ms", "100")  # first token at 3 s
FAST = ("--think-ms", "50", "--chunks", "5", "--gap-ms", "250")  # first at 50 ms, done ~1.05 s
FAST_TEXT = "tok0 tok1 tok2 tok3 tok4"


@pytest.fixture(scope="module")
def slow() -> Iterator[RunningAgent]:
    with run_sdk_agent("stream", "--v03-compat", *SLOW) as agent:
        yield agent


@pytest.fixture(scope="module")
def fast() -> Iterator[RunningAgent]:
    with run_sdk_agent("stream", *FAST) as agent:
        yield agent


def at(url: str, id: str = "sdk") -> Agent:
    return Agent(id=id, type="llm", url=url, protocol="a2a", timeout=10.0)


async def task_state(client: ProtocolClient, agent: Agent, task_id: str) -> str | None:
    card = client.cached_card(agent)
    assert card is not None
    spec = get_task_request(agent, card, task_id, 5.0)
    return read_a2a_reply(await client.transport.send(agent.id, spec), card.binding).state


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["stream", "rest", "v03"])
def test_a_running_task_is_cancelled_on_the_agents_binding(kind: str) -> None:
    extra = ("--v03-only",) if kind == "v03" else ()
    sdk_kind = "stream" if kind == "v03" else kind
    with run_sdk_agent(sdk_kind, *extra, *SLOW) as running:
        agent = at(running.url)

        async def go() -> tuple[Reply, Reply, str | None, float]:
            async with HttpxTransport() as transport:
                client = ProtocolClient(transport)
                named = asyncio.Event()
                ids: list[str] = []

                def on_event(reader: object) -> None:
                    task_id = getattr(reader, "task_id", None)
                    if task_id and not ids:
                        ids.append(task_id)
                        named.set()

                began = time.monotonic()
                streaming = asyncio.ensure_future(
                    client.stream_message(agent, "hi", on_event=on_event)
                )
                await asyncio.wait_for(named.wait(), 5)
                cancelled = await client.cancel_task(agent, ids[0])
                reply = await asyncio.wait_for(streaming, 10)
                state = await task_state(client, agent, ids[0])
                return cancelled, reply, state, time.monotonic() - began

        cancelled, reply, state, took = asyncio.run(go())
    assert cancelled.ok and cancelled.state == "canceled", cancelled
    assert state == "canceled"
    assert reply.state == "canceled" and took < 2.5  # its stream ends well before 3 s of thinking
    card = cancelled.card
    assert card is None or card.binding == ("http+json" if kind == "rest" else "jsonrpc")


def test_cancelling_a_finished_task_is_a_clear_failure(fast: RunningAgent) -> None:
    agent = at(fast.url)

    async def go() -> Reply:
        async with HttpxTransport() as transport:
            client = ProtocolClient(transport)
            done = await client.stream_message(agent, "hi")
            assert done.ok and done.task_id is not None
            return await client.cancel_task(agent, done.task_id)

    reply = asyncio.run(go())
    assert not reply.ok and reply.error is not None and reply.message


def race(
    first: Agent, second: Agent | None, hedge_after: float, relayed: list[str] | None = None
) -> tuple[Hedged, float, list[str], dict[str, str | None]]:
    """Stream to ``first``; hedge onto ``second`` after ``hedge_after`` s. Returns the outcome,
    its time, the hedges started and each leg's task state afterwards (by GetTask); the text
    relayed as it arrived goes to ``relayed``."""
    started: list[str] = []

    async def go() -> tuple[Hedged, float, dict[str, str | None]]:
        async with HttpxTransport() as transport:
            client = ProtocolClient(transport)
            agents = [first] if second is None else [first, second]
            ids: dict[int, str] = {}

            def leg(i: int) -> LegRun:
                def run(on_event: OnEvent, on_chunk: OnChunk) -> object:
                    def seen(reader: object) -> None:
                        task_id = getattr(reader, "task_id", None)
                        if task_id:
                            ids[i] = task_id
                        on_event(reader)  # type: ignore[arg-type]

                    return client.stream_message(agents[i], "hi", None, on_chunk, seen)

                return run  # type: ignore[return-value]

            def hedge() -> LegRun | None:
                if second is None:
                    return None
                started.append(second.id)
                return leg(1)

            async def cancel(i: int, task_id: str) -> Reply:
                return await client.cancel_task(agents[i], task_id)

            began = time.monotonic()
            sink = None if relayed is None else relayed.append
            outcome = await hedged_stream(leg(0), hedge, began + hedge_after, cancel, on_chunk=sink)
            took = time.monotonic() - began
            states = {agents[i].id: await task_state(client, agents[i], t) for i, t in ids.items()}
            return outcome, took, states

    outcome, took, states = asyncio.run(go())
    return outcome, took, started, states


@pytest.mark.timeout(60)
def test_a_slow_first_token_is_hedged_and_the_losing_task_cancelled(
    slow: RunningAgent, fast: RunningAgent
) -> None:
    relayed: list[str] = []
    outcome, took, started, states = race(at(slow.url, "slow"), at(fast.url, "fast"), 0.3, relayed)
    assert started == ["fast"] and "".join(relayed) == FAST_TEXT  # the winner's text only
    assert outcome.leg == 1 and outcome.reply.ok and outcome.reply.text == FAST_TEXT
    assert took < 2.5  # the fast stream's ~1.05 s after the 0.3 s hedge, not slow's 3 s
    cancelled = outcome.cancelled[0]
    assert cancelled is not None and cancelled.ok and cancelled.state == "canceled"
    assert states == {"slow": "canceled", "fast": "completed"}


@pytest.mark.timeout(60)
def test_after_the_first_token_no_hedge_starts(fast: RunningAgent, slow: RunningAgent) -> None:
    # fast's first token at ~50 ms, its stream runs ~1 s: past the 0.4 s hedge point, committed
    relayed: list[str] = []
    outcome, took, started, states = race(at(fast.url, "fast"), at(slow.url, "slow"), 0.4, relayed)
    assert relayed[0] == "tok0" and "".join(relayed) == FAST_TEXT
    assert started == [] and outcome.leg == 0 and outcome.reply.text == FAST_TEXT
    assert outcome.cancelled == {} and states == {"fast": "completed"}
    assert took > 0.9  # it did stream on past the hedge point


@pytest.mark.timeout(60)
def test_no_replica_to_hedge_onto_means_the_first_stream_alone(slow: RunningAgent) -> None:
    outcome, took, started, _ = race(at(slow.url, "slow"), None, 0.2)
    assert started == [] and outcome.leg == 0 and outcome.reply.ok
    assert outcome.reply.text == "tok0 tok1 tok2" and took > 3.0


# ---- through the router: `latcli send --hedge` on a streaming type ---------------------------


@pytest.mark.timeout(60)
def test_the_router_hedges_a_slow_first_token_and_relays_the_winner_only(
    slow: RunningAgent, fast: RunningAgent
) -> None:
    from latcli.routing.recorder import HEDGE_MIN_SAMPLES
    from latcli.routing.results import RouteResult
    from latcli.routing.router import Router

    agents = [at(slow.url, "slow"), at(fast.url, "fast")]

    async def go() -> tuple[RouteResult, list[str]]:
        async with Router(agents, strategy="round_robin", hedge=True, state=None) as router:
            router.rotate_to("llm", "slow")  # slow is the first choice
            window = router._recorder.first_token["llm"]
            for _ in range(HEDGE_MIN_SAMPLES):  # as if earlier sends saw first tokens at 300 ms
                window.add(300.0)
            chunks: list[str] = []
            result = await router.send("llm", "hi", stream=True, on_chunk=chunks.append)
            return result, chunks

    began = time.monotonic()
    result, chunks = asyncio.run(go())
    assert result.ok and result.agent == "fast", result
    assert "".join(chunks) == FAST_TEXT  # the winner's text only, as it arrived
    attempts = [(a.agent, a.outcome, a.hedge) for a in result.attempts]
    assert attempts == [("fast", "ok", True)]  # the slow leg was closed: no verdict, no attempt
    assert time.monotonic() - began < 2.8  # not slow's ~3 s answer
