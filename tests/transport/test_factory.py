"""latcli/transport/factory.py: the one engine-choice policy, and the transports it builds."""

from __future__ import annotations

import asyncio

import pytest

from latcli.transport.factory import (
    ENGINES,
    FORCE_ENV,
    RAW_FROM,
    Engine,
    Use,
    choose_engine,
    make_transport,
)
from latcli.transport.httpx_engine import HttpxTransport
from latcli.transport.raw.transport import RawTransport

USES: tuple[Use, ...] = ("probe", "watch", "send", "serve", "bench")


@pytest.mark.parametrize(
    ("use", "agents", "engine"),
    [
        ("probe", 1, "httpx"),
        ("probe", 99, "httpx"),
        ("probe", 100, "raw"),
        ("watch", 9, "httpx"),
        ("watch", 10, "raw"),
        ("send", 1, "httpx"),
        ("send", 10_000, "httpx"),
        ("serve", 1, "raw"),
        ("bench", 1, "raw"),
        ("bench", 0, "raw"),
    ],
)
def test_auto_by_command_and_fleet_size(use: Use, agents: int, engine: str) -> None:
    assert choose_engine("auto", use, agents, env={}) == engine


@pytest.mark.parametrize("use", USES)
@pytest.mark.parametrize("engine", ["httpx", "raw"])
def test_an_engine_asked_for_is_the_engine_run(use: Use, engine: Engine) -> None:
    assert choose_engine(engine, use, 5_000, env={FORCE_ENV: "httpx"}) == engine
    assert choose_engine(engine, use, 0, env={FORCE_ENV: "raw"}) == engine


@pytest.mark.parametrize("use", USES)
def test_the_environment_forces_only_what_auto_picks(use: Use) -> None:
    assert choose_engine("auto", use, 0, env={FORCE_ENV: "raw"}) == "raw"
    assert choose_engine("auto", use, 5_000, env={FORCE_ENV: "httpx"}) == "httpx"
    # anything else is ignored: the table decides
    assert choose_engine("auto", use, 0, env={FORCE_ENV: "aiohttp"}) == choose_engine(
        "auto", use, 0, env={}
    )


def test_every_command_has_a_rule_and_every_engine_a_name() -> None:
    assert set(RAW_FROM) == set(USES)
    assert ENGINES == ("auto", "httpx", "raw")


@pytest.mark.parametrize(
    ("engine", "use", "agents", "cls"),
    [
        ("auto", "probe", 1, HttpxTransport),
        ("auto", "probe", 100, RawTransport),
        ("auto", "bench", 1, RawTransport),
        ("auto", "send", 1, HttpxTransport),
        ("httpx", "bench", 1, HttpxTransport),
        ("raw", "send", 1, RawTransport),
    ],
)
def test_make_transport_builds_the_chosen_engine(
    engine: Engine, use: Use, agents: int, cls: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(FORCE_ENV, raising=False)
    transport = make_transport(engine, agents, use=use)
    try:
        assert type(transport) is cls
    finally:
        asyncio.run(transport.aclose())
