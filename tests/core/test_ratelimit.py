"""Rate limits (issue 12 item 3): Retry-After, the cooldown, choosing around cooling replicas,
and a real server answering 429 + Retry-After for a while."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import fault_servers as fs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scripted_server import scripted

from latcli.config.model import Agent
from latcli.core.balance import Pool, choose
from latcli.core.breaker import Breaker, BreakerConfig, BreakerState
from latcli.core.errors import ErrorKind
from latcli.core.ratelimit import COOLING_DEFAULT_S, COOLING_MAX_S, cooldown, parse_retry_after
from latcli.core.stats import ReplicaStats
from latcli.core.strategies import STRATEGIES, make_strategy
from latcli.routing.router import Router
from latcli.transport.base import Outcome, Timings
from latcli.transport.replies import read_a2a_reply, read_health, read_http_reply, status_error

WALL = 1445412470.0  # Wed, 21 Oct 2015 07:27:50 GMT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        (" 12 ", 12.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 10.0),  # RFC 850
        ("Wed Oct 21 07:28:00 2015", 10.0),  # asctime: GMT by definition
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: now
        ("99999999999999999999", 1e9),  # huge: only "long", capped by cooldown()
        (None, None),
        ("", None),
        ("-3", None),
        ("1.5", None),
        ("soon", None),
        ("\x1b[31m", None),
        ("٣", None),  # a non-ASCII digit is no delay-seconds
    ],
)
def test_retry_after_is_seconds_or_an_http_date(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, WALL) == seconds


@pytest.mark.parametrize(
    ("status", "header", "want"),
    [
        (429, "7", 7.0),
        (429, None, COOLING_DEFAULT_S),  # no Retry-After: a short default
        (429, "garbage", COOLING_DEFAULT_S),
        (429, "3600", COOLING_MAX_S),  # capped
        (429, "Wed, 21 Oct 2015 09:00:00 GMT", COOLING_MAX_S),
        (503, "4", 4.0),
        (503, None, None),  # an outage, not a rate limit: the breaker's business
        (503, "garbage", None),
        (500, "4", None),
        (200, "4", None),
        (None, "4", None),
    ],
)
def test_cooldown_is_capped_and_needs_a_rate_limit(
    status: int | None, header: str | None, want: float | None
) -> None:
    assert cooldown(status, header, WALL) == want


@pytest.mark.parametrize(
    ("status", "header", "kind"),
    [
        (429, None, ErrorKind.RATE_LIMITED),
        (429, "2", ErrorKind.RATE_LIMITED),
        (503, "2", ErrorKind.RATE_LIMITED),
        (503, "Wed, 21 Oct 2015 07:28:00 GMT", ErrorKind.RATE_LIMITED),
        (503, None, ErrorKind.HTTP_5XX),
        (503, "later", ErrorKind.HTTP_5XX),
        (500, "2", ErrorKind.HTTP_5XX),
        (404, "2", ErrorKind.HTTP_4XX),
    ],
)
def test_rate_limited_replies_keep_retry_after_and_are_no_failure(
    status: int, header: str | None, kind: ErrorKind
) -> None:
    got = status_error(status, header)
    assert got is not None and got[0] is kind
    headers = {} if header is None else {"retry-after": header}
    for read in (read_health, read_http_reply):
        reply = read(Outcome(status, b"{}", Timings(total=3.0), headers=headers))
        assert reply.error is kind
        assert reply.is_failure is (
            kind is not ErrorKind.HTTP_4XX and kind is not ErrorKind.RATE_LIMITED
        )
        assert reply.retry_after == (header if kind is ErrorKind.RATE_LIMITED else None)


@pytest.mark.parametrize("binding", ["jsonrpc", "http+json"])
def test_an_a2a_agent_answering_429_is_rate_limited_on_either_binding(binding: str) -> None:
    # A2A defines no rate-limit error (a2a-sdk 1.3.0's JSON-RPC codes have none): HTTP 429 it is
    outcome = Outcome(429, b'{"error":"slow"}', Timings(total=2.0), headers={"retry-after": "9"})
    reply = read_a2a_reply(outcome, binding)  # type: ignore[arg-type]
    assert (reply.error, reply.retry_after, reply.is_failure) == (
        ErrorKind.RATE_LIMITED,
        "9",
        False,
    )


# ---- the pure choice around cooling replicas -------------------------------------------------

CFG = BreakerConfig(failures=1, open_for=10.0, open_max=60.0, half_open_probes=1)


@dataclass
class Member:
    id: str
    stats: ReplicaStats
    breaker: Breaker
    weight: float = 1.0
    cool_until: float = 0.0


def pool_of(cooling: dict[str, float], n: int = 3) -> Pool[Member]:
    return Pool(
        [
            Member(
                f"m{i}",
                ReplicaStats(10.0, 30.0),
                Breaker(CFG, random.Random(i)),
                cool_until=cooling.get(f"m{i}", 0.0),
            )
            for i in range(n)
        ]
    )


NOW = 100.0


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize(
    ("cooling", "tried", "again", "want", "wait"),
    [
        ({"m0": 105.0, "m1": 103.0}, (), True, "m2", 0.0),  # the only one not cooling
        ({"m0": 105.0, "m1": 103.0, "m2": 104.0}, (), True, "m1", 3.0),  # all: the earliest
        ({"m0": 99.0, "m1": 100.0, "m2": 104.0}, ("m2",), True, None, 0.0),  # expired: choosable
        ({"m0": 105.0, "m1": 103.0}, ("m2",), True, "m2", 0.0),  # tried one again before waiting
        ({"m0": 105.0, "m1": 103.0, "m2": 101.0}, ("m2",), True, "m2", 1.0),  # tried, soonest
        ({"m0": 105.0, "m1": 103.0, "m2": 101.0}, ("m2",), False, "m1", 3.0),  # hedge: untried
    ],
)
def test_choice_skips_cooling_replicas_and_waits_for_the_earliest(
    strategy: str,
    cooling: dict[str, float],
    tried: tuple[str, ...],
    again: bool,
    want: str | None,
    wait: float,
) -> None:
    pool = pool_of(cooling)
    for seed in range(20):
        got = choose(
            pool,
            make_strategy(strategy),
            NOW,
            random.Random(seed),
            tried=tried,
            again=again,
            cooling=list(cooling),
        )
        assert got is not None and not got.panic
        resting = {i for i, until in cooling.items() if until > NOW}
        if want is None:  # any replica not tried and not cooling
            assert got.member.id not in {*tried, *resting} and got.wait == 0.0
        else:
            assert (got.member.id, got.wait) == (want, pytest.approx(wait))


@settings(max_examples=200, deadline=None)
@given(
    cooling=st.dictionaries(st.sampled_from(["m0", "m1", "m2", "m3"]), st.floats(90.0, 110.0)),
    tried=st.sets(st.sampled_from(["m0", "m1", "m2", "m3"])),
    again=st.booleans(),
    strategy=st.sampled_from(sorted(STRATEGIES)),
)
def test_a_choice_never_sends_to_a_cooling_replica_without_waiting_it_out(
    cooling: dict[str, float], tried: set[str], again: bool, strategy: str
) -> None:
    pool = pool_of(cooling, n=4)
    got = choose(
        pool,
        make_strategy(strategy),
        NOW,
        random.Random(0),
        tried=tried,
        again=again,
        cooling=list(cooling),
    )
    resting = {i: until for i, until in cooling.items() if until > NOW}
    if got is None:
        assert not again and set(tried) == {"m0", "m1", "m2", "m3"}
        return
    assert got.member.id not in resting or got.wait == pytest.approx(resting[got.member.id] - NOW)
    if got.wait:  # only when nothing else may be tried now, and then the earliest
        free = [m for m in pool.members if m.id not in resting and (again or m.id not in tried)]
        assert not free
        candidates = [u for i, u in resting.items() if again or i not in tried]
        assert got.member.cool_until == min(candidates)


def test_a_cooling_replica_due_for_its_trial_waits_too() -> None:
    pool = pool_of({"m0": 105.0})
    m0 = pool.members[0]
    permit = m0.breaker.allow(0.0)
    assert permit is not None
    m0.breaker.record(0.0, permit, ok=False)  # open until ~10-15 s: due for a trial at NOW
    got = choose(
        pool, make_strategy("p2c"), NOW, random.Random(0), unsettled=["m0"], cooling=["m0"]
    )
    assert got is not None and got.member.id != "m0" and not got.trial


def test_an_open_cooling_replica_is_no_wait_but_panic() -> None:
    pool = pool_of({"m0": 105.0}, n=1)
    m0 = pool.members[0]
    permit = m0.breaker.allow(NOW)
    assert permit is not None
    m0.breaker.record(NOW, permit, ok=False)
    got = choose(
        pool, make_strategy("p2c"), NOW, random.Random(0), unsettled=["m0"], cooling=["m0"]
    )
    assert got is not None and got.panic and got.wait == 0.0


# ---- a real server answering 429 + Retry-After for a while -----------------------------------


class Limited:
    """``POST /message/send``: 429 with ``Retry-After: {after}`` until ``until`` (monotonic),
    then 200; counts the calls of each kind."""

    def __init__(self, after: str | None, for_s: float) -> None:
        self.after, self.until = after, time.monotonic() + for_s
        self.limited = self.answered = 0
        self._lock = threading.Lock()

    def __call__(self, request: fs.Request) -> bytes:
        with self._lock:
            if time.monotonic() < self.until:
                self.limited += 1
                extra = "" if self.after is None else f"Retry-After: {self.after}\r\n"
                body = b'{"error":"slow down"}'
                return fs.response_bytes(429, body, "application/json", extra)
            self.answered += 1
            return fs.response_bytes(200, b'{"reply":"fine"}', "application/json")


def agent(id: str, url: str) -> Agent:
    return Agent(
        id=id, type="t", url=url, timeout=2.0, breaker=BreakerConfig(failures=1, open_for=30.0)
    )  # type: ignore[arg-type]


def outcomes(attempts: object) -> list[tuple[str, str]]:
    return [(a.agent, a.outcome) for a in attempts]  # type: ignore[attr-defined]


@pytest.mark.timeout(30)
def test_send_routes_around_a_rate_limited_replica_without_judging_it() -> None:
    limited, fine = Limited("1", for_s=0.6), Limited(None, for_s=0.0)
    with scripted(limited) as a, scripted(fine) as b:
        agents = [agent("r-a", a.url), agent("r-b", b.url)]

        async def main() -> None:
            async with Router(agents, strategy="round_robin", retries=1, state=None) as router:
                router.rotate_to("t", "r-a")
                first = await router.send("t", "x", timeout=5)
                assert first.ok and first.agent == "r-b"
                assert outcomes(first.attempts) == [("r-a", "rate_limited"), ("r-b", "ok")]
                cooling = router.cooling_s("r-a")
                assert cooling is not None and 0.5 < cooling <= 1.0
                assert router.pick("t") is not None and router.pick("t").id == "r-b"  # type: ignore[union-attr]
                during = [await router.send("t", "x", timeout=5) for _ in range(4)]
                assert all(r.ok and outcomes(r.attempts) == [("r-b", "ok")] for r in during)
                a_ = router.replica("r-a")
                now = time.monotonic()
                assert a_.breaker.state(now) is BreakerState.CLOSED  # failures=1, yet closed
                assert not a_.stats.has_history and a_.stats.in_flight == 0  # EWMA untouched
                assert a_.stats.success.rate(now) is None
                await asyncio.sleep(1.05)
                assert router.cooling_s("r-a") is None
                after = [await router.send("t", "x", timeout=5) for _ in range(4)]
                assert all(r.ok for r in after)
                assert [r.agent for r in after].count("r-a") == 2  # back in the rotation

        asyncio.run(main())
    assert limited.limited == 1 and limited.answered == 2


@pytest.mark.timeout(30)
def test_when_every_replica_cools_the_send_waits_for_the_earliest() -> None:
    one, two = Limited("1", for_s=0.5), Limited("3", for_s=0.5)
    with scripted(one) as a, scripted(two) as b:
        agents = [agent("w-a", a.url), agent("w-b", b.url)]

        async def main() -> None:
            async with Router(agents, strategy="round_robin", retries=0, state=None) as router:
                router.rotate_to("t", "w-b")
                began = time.monotonic()
                result = await router.send("t", "x", timeout=5)
                took = time.monotonic() - began
                assert result.ok and result.agent == "w-a", result
                assert outcomes(result.attempts) == [
                    ("w-b", "rate_limited"),
                    ("w-a", "rate_limited"),
                    ("w-a", "ok"),
                ]
                assert 0.9 < took < 2.5  # waited w-a's 1 s, not w-b's 3 s
                for r in router.replicas("t"):
                    assert r.breaker.state(time.monotonic()) is BreakerState.CLOSED

        asyncio.run(main())


@pytest.mark.timeout(30)
def test_when_the_cooldown_ends_past_the_timeout_the_send_fails_rate_limited_at_once() -> None:
    one, two = Limited("30", for_s=60), Limited("20", for_s=60)
    with scripted(one) as a, scripted(two) as b:
        agents = [agent("x-a", a.url), agent("x-b", b.url)]

        async def main() -> None:
            async with Router(agents, strategy="p2c", retries=1, state=None) as router:
                began = time.monotonic()
                result = await router.send("t", "x", timeout=3)
                assert time.monotonic() - began < 1.0  # no pointless wait
                assert not result.ok and result.error is not None
                assert result.error.startswith("rate limited"), result.error
                assert "x-b free in 20.0s" in result.error
                assert {a.outcome for a in result.attempts} == {"rate_limited"}
                again = await router.send("t", "x", timeout=3)  # both still cooling: no call
                assert not again.ok and again.attempts == ()

        asyncio.run(main())
    assert one.limited == two.limited == 1


@pytest.mark.timeout(30)
def test_watch_shows_cooling_in_the_table_the_json_and_metrics() -> None:
    from prometheus_client.parser import text_string_to_metric_families
    from rich.console import Console

    from latcli.config.model import Inventory
    from latcli.demo.fleet import free_port
    from latcli.engines.watch.run import WatchOptions, run_watch
    from latcli.render.watch_view import watch_renderable
    from latcli.reports.watch import WatchSnapshot, watch_dict

    limited, fine = Limited("30", for_s=60), Limited(None, for_s=0)
    port = free_port()
    seen: list[WatchSnapshot] = []
    scraped: list[str] = []

    def render(snap: WatchSnapshot) -> None:
        seen.append(snap)
        if snap.tick == 2:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                scraped.append(r.read().decode())

    with scripted(limited) as a, scripted(fine) as b:
        agents = [agent("c-a", a.url), agent("c-b", b.url)]
        opts = WatchOptions(interval=0.1, count=2, no_state=True, metrics_port=port)
        asyncio.run(run_watch(Inventory(None, tuple(agents)), agents, opts, render, print))
    row = {r.id: r for r in seen[-1].agents}
    assert row["c-a"].cooling_s is not None and 29 < row["c-a"].cooling_s <= 30
    assert row["c-a"].breaker == "closed" and row["c-b"].cooling_s is None
    assert seen[-1].picks == {"t": "c-b"}
    doc = {x["id"]: x for x in watch_dict(seen[-1])["agents"]}
    assert 29 < doc["c-a"]["cooling_s"] <= 30 and doc["c-b"]["cooling_s"] is None
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(watch_renderable(seen[-1], width=160))
    line = next(x for x in console.export_text().splitlines() if "c-a" in x)
    assert "cooling 30 s" in line
    samples = {
        s.labels["agent"]: s.value
        for f in text_string_to_metric_families(scraped[0])
        for s in f.samples
        if s.name == "latcli_agent_cooling_seconds"
    }
    assert 29 < samples["c-a"] <= 30 and samples["c-b"] == 0
    events = [e for s in seen for e in s.events if e.kind == "rate_limit"]
    assert [(e.agent, e.message, e.after) for e in events] == [
        ("c-a", "c-a rate limited: set aside for 30 s", "cooling")
    ]


@pytest.mark.timeout(90)
def test_a_latcli_send_loop_respects_a_cooldown_through_the_state_file(tmp_path: Path) -> None:
    limited, fine = Limited("30", for_s=60), Limited(None, for_s=0)
    state = tmp_path / "state.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCLI_")}
    env.update(LATCLI_STATE=str(state), NO_COLOR="1")
    runs = []
    with scripted(limited) as a, scripted(fine) as b:
        inventory = tmp_path / "agents.yaml"
        inventory.write_text(
            "version: 1\nrouting: {strategy: round_robin}\nagents:\n"
            f"  - {{id: l-a, type: t, url: '{a.url}'}}\n"
            f"  - {{id: l-b, type: t, url: '{b.url}'}}\n"
        )
        for _ in range(4):
            cmd = [sys.executable, "-m", "latcli", "send", "-i", str(inventory), "t", "hi"]
            done = subprocess.run(
                [*cmd, "--json"], capture_output=True, text=True, env=env, timeout=30
            )
            assert done.returncode == 0, done.stderr
            runs.append(json.loads(done.stdout)["results"][0]["attempts"])
    hit = [i for i, attempts in enumerate(runs) if attempts[0]["agent"] == "l-a"]
    assert len(hit) == 1 and hit[0] < 2, runs  # the rotation reached l-a once, then never again
    assert [x["outcome"] for x in runs[hit[0]]] == ["rate_limited", "ok"]
    assert [x["status"] for x in runs[hit[0]]] == [429, 200]
    assert all(x == [{**x[0], "agent": "l-b", "outcome": "ok"}] for x in runs[hit[0] + 1 :])
    assert limited.limited == 1 and limited.answered == 0
