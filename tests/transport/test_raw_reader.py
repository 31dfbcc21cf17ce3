"""The raw engine's sans-I/O response reader: states, transitions, and what llhttp leaves to it.

No sockets here: bytes in, states out (tests/transport/test_framing.py runs the same framing over a
real server and every engine).
"""

from __future__ import annotations

import itertools

import pytest
from framing_cases import CASES, REJECT, Case
from hypothesis import given
from hypothesis import strategies as st

from latcli.transport.raw.reader import (
    MAX_HEAD,
    TRANSITIONS,
    ReaderBug,
    ResponseReader,
    State,
)

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    b"3;x=1\r\nhel\r\n2\r\nlo\r\n0\r\nx-t: 1\r\n\r\n"
)


def read(raw: bytes, *, cap: int = 1 << 20, head_only: bool = False) -> ResponseReader:
    reader = ResponseReader()
    reader.expect(cap, head_only)
    reader.feed(raw)
    return reader


# --- the transition table ----------------------------------------------------------------------


def test_terminal_states_have_no_way_out_and_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(State)
    assert TRANSITIONS[State.TOO_LARGE] == TRANSITIONS[State.FAILED] == frozenset()


@pytest.mark.parametrize(
    ("start", "target"),
    [(a, b) for a in State for b in State if b not in TRANSITIONS[a]],
    ids=lambda s: s.name,
)
def test_every_illegal_move_raises(start: State, target: State) -> None:
    reader = ResponseReader()
    reader.state = start
    with pytest.raises(ReaderBug, match=f"{start.name} -> {target.name}"):
        reader._move(target)


@pytest.mark.parametrize("state", [State.HEAD, State.BODY, State.FAILED, State.TOO_LARGE])
def test_expect_is_refused_unless_idle_or_after_a_reusable_response(state: State) -> None:
    reader = ResponseReader()
    reader.state = state
    with pytest.raises(ReaderBug):
        reader.expect(100)


def test_expect_after_a_response_that_cannot_be_reused_is_refused() -> None:
    reader = read(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
    assert reader.state is State.DONE and not reader.reusable
    with pytest.raises(ReaderBug):
        reader.expect(100)


# --- responses ---------------------------------------------------------------------------------


def test_a_sized_response_then_a_chunked_one_on_the_same_reader() -> None:
    reader = read(OK)
    assert (reader.state, reader.status, reader.take_body(), reader.reusable) == (
        State.DONE,
        200,
        b"hello",
        True,
    )
    assert reader.take_body() == b""  # handed over once
    reader.expect(1 << 20)
    assert reader.feed(CHUNKED) is State.DONE
    assert reader.take_body() == b"hello" and reader.headers == [(b"transfer-encoding", b"chunked")]


def test_trailers_are_not_the_next_responses_headers() -> None:
    reader = read(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx-t: 1\r\n\r\n")
    assert (reader.state, reader.headers) == (State.DONE, [(b"transfer-encoding", b"chunked")])
    reader.expect(100)
    assert reader.feed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n") is State.BODY
    assert reader.headers == [(b"transfer-encoding", b"chunked")]


@given(st.lists(st.integers(min_value=1, max_value=len(CHUNKED) - 1), max_size=12))
def test_any_split_of_the_bytes_reads_the_same_response(cuts: list[int]) -> None:
    reader = ResponseReader()
    reader.expect(1 << 20)
    edges = [0, *sorted(set(cuts)), len(CHUNKED)]
    states = [reader.feed(CHUNKED[a:b]) for a, b in itertools.pairwise(edges)]
    assert states[-1] is State.DONE and set(states[:-1]) <= {State.HEAD, State.BODY}
    assert (reader.status, reader.take_body(), reader.reusable) == (200, b"hello", True)


def test_body_is_handed_out_incrementally_to_on_body() -> None:
    pieces: list[bytes] = []
    reader = ResponseReader(on_body=pieces.append)
    reader.expect(1 << 20)
    assert reader.feed(CHUNKED[:-20]) is State.BODY
    assert pieces == [b"hel"]  # the first chunk, before the response is whole
    assert reader.feed(CHUNKED[-20:]) is State.DONE
    assert pieces == [b"hel", b"lo"] and reader.take_body() == b""
    reader.sink_to(None)  # the pooled connection's next request keeps its body again
    reader.expect(1 << 20)
    assert reader.feed(OK) is State.DONE and reader.take_body() == b"hello"
    assert pieces == [b"hel", b"lo"]


def test_five_thousand_interim_heads_in_one_feed_are_skipped_in_a_loop() -> None:
    reader = read(b"HTTP/1.1 100 Continue\r\n\r\n" * 5000 + OK)
    assert (reader.state, reader.status, reader.take_body()) == (State.DONE, 200, b"hello")


def test_interim_heads_trickling_past_the_head_bound_fail() -> None:
    reader = ResponseReader()
    reader.expect(100)
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Co"  # never a final head
    state = State.HEAD
    while state is State.HEAD:
        state = reader.feed(interim)
    assert state is State.FAILED and f"{MAX_HEAD}" in (reader.error or "")


def test_a_head_response_ends_at_its_head_to_the_byte() -> None:
    clean = read(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n", head_only=True)
    assert (clean.state, clean.status, clean.reusable) == (State.DONE, 200, True)
    clean.expect(100)  # a fresh parser: the old one still waits for 1,000 body bytes
    assert clean.feed(OK) is State.DONE and clean.take_body() == b"hello"
    with_body = read(OK, head_only=True)
    assert (with_body.state, with_body.leftover, with_body.reusable) == (State.DONE, True, False)


@pytest.mark.parametrize("raw", [OK + b"H", OK + b"garbage", OK + OK])
def test_bytes_past_a_response_keep_it_but_poison_the_connection(raw: bytes) -> None:
    reader = read(raw)
    assert (reader.state, reader.take_body(), reader.reusable) == (State.DONE, b"hello", False)


def test_bytes_with_no_request_outstanding_fail_the_reader() -> None:
    reader = read(OK)
    assert reader.feed(b"HTTP/1.1 200 OK\r\n") is State.FAILED
    assert "no request" in (reader.error or "")
    assert ResponseReader().feed(b"x") is State.FAILED


def test_a_body_without_a_length_ends_at_the_close_and_a_cut_one_fails() -> None:
    until = read(b"HTTP/1.1 200 OK\r\n\r\nall of it")
    assert until.state is State.UNTIL_CLOSE and not until.keep_alive
    assert until.feed_eof() is State.DONE and until.take_body() == b"all of it"
    cut = read(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello")
    assert cut.feed_eof() is State.FAILED and "disconnected" in (cut.error or "")


@pytest.mark.parametrize(
    ("raw", "cap", "fragment"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n", 10, "content-length 11 exceeds"),
        (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 11, 10, "body exceeds max_body 10"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nb\r\n" + b"x" * 11, 10, "body"),
    ],
)
def test_a_body_over_the_cap_stops_reading(raw: bytes, cap: int, fragment: str) -> None:
    reader = read(raw, cap=cap)
    assert reader.state is State.TOO_LARGE and fragment in (reader.too_large or "")
    assert not reader.reusable and reader.feed(b"more") is State.TOO_LARGE


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: " + b"9" * 5000 + b"\r\n\r\n", "content-length"),
        (b"HTTP/1.1 200 OK\r\nX-A: a\r\n Location: /evil\r\n\r\n", "whitespace"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n", "header"),
        (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "cr"),
    ],
)
def test_what_llhttp_rejects_fails_with_its_reason(raw: bytes, fragment: str) -> None:
    reader = read(raw)
    assert reader.state is State.FAILED and fragment in (reader.error or "").lower()
    assert not reader.reusable


def test_a_101_ends_http_on_the_connection() -> None:
    reader = read(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\nConnection: upgrade\r\n\r\n")
    assert (reader.state, reader.status, reader.reusable) == (State.DONE, 101, False)


# --- the conformance table, without sockets ------------------------------------------------------


def _verdict(c: Case, pieces: list[bytes]) -> tuple[object, ...]:
    """What the connection would see: the response when the reader is first DONE (the waiter
    resolves there), and whether the connection is reusable after every byte."""
    reader = ResponseReader()
    reader.expect(1 << 20, head_only=c.method == "HEAD")
    answer: object = REJECT
    for piece in pieces:
        if reader.feed(piece) is State.DONE and answer is REJECT:
            answer = reader.status, reader.take_body()
    if c.close and reader.feed_eof() is State.DONE and answer is REJECT:
        answer = reader.status, reader.take_body()
    return answer, reader.reusable


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.name)
def test_the_reader_gives_llhttps_verdict_whole_or_byte_by_byte(c: Case) -> None:
    raw = c.parts[0]
    whole = _verdict(c, [raw])
    assert whole[0] == c.llhttp
    if len(raw) < MAX_HEAD:  # a flood of interim heads trickled in counts against the head bound
        assert _verdict(c, [raw[i : i + 1] for i in range(len(raw))]) == whole
