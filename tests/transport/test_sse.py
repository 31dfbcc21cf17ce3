"""The SSE decoder against the WHATWG event-stream rules, case by case and by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from latcli.transport.a2a.sse import SSEDecoder, SSEError, SSEEvent


def decode(*chunks: bytes, max_event: int = 1 << 20) -> list[SSEEvent]:
    decoder = SSEDecoder(max_event)
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    decoder.close()
    return events


E = SSEEvent

CASES: list[tuple[str, bytes, list[SSEEvent]]] = [
    ("one event", b"data: hi\n\n", [E("hi")]),
    ("no space after colon", b"data:hi\n\n", [E("hi")]),
    ("only one space is removed", b"data:  hi\n\n", [E(" hi")]),
    ("multi-line data joins with LF", b"data: a\ndata: b\n\n", [E("a\nb")]),
    ("empty data line", b"data\n\n", [E("")]),
    ("data then empty data", b"data: a\ndata\n\n", [E("a\n")]),
    ("comment ignored", b": keep-alive\ndata: x\n\n", [E("x")]),
    ("comment alone dispatches nothing", b": ping\n\n", []),
    ("event type", b"event: update\ndata: x\n\n", [E("x", "update")]),
    ("event type resets", b"event: u\ndata: 1\n\ndata: 2\n\n", [E("1", "u"), E("2")]),
    ("id persists", b"id: 7\ndata: a\n\ndata: b\n\n", [E("a", id="7"), E("b", id="7")]),
    (
        "id with NUL ignored",
        b"id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n",
        [E("a", id="1"), E("b", id="1")],
    ),
    ("empty id resets", b"id: 1\ndata: a\n\nid\ndata: b\n\n", [E("a", id="1"), E("b")]),
    ("unknown field ignored", b"foo: bar\ndata: x\n\n", [E("x")]),
    ("field without data is not dispatched", b"event: x\n\n", []),
    ("CR line ends", b"data: a\rdata: b\r\r", [E("a\nb")]),
    ("CRLF line ends", b"data: a\r\ndata: b\r\n\r\n", [E("a\nb")]),
    ("mixed line ends", b"data: a\ndata: b\r\n\rdata: c\r\n\n", [E("a\nb"), E("c")]),
    ("leading BOM dropped", b"\xef\xbb\xbfdata: x\n\n", [E("x")]),
    ("second BOM kept", b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", []),
    ("unfinished event discarded", b"data: a\n\ndata: b\n", [E("a")]),
    ("unterminated line discarded", b"data: a", []),
    ("UTF-8 text", "data: héllo ✓\n\n".encode(), [E("héllo ✓")]),
    ("bad UTF-8 replaced", b"data: \xff\n\n", [E("\ufffd")]),
    ("colon in value kept", b"data: a: b\n\n", [E("a: b")]),
    ("several events", b"data: 1\n\ndata: 2\n\ndata: 3\n\n", [E("1"), E("2"), E("3")]),
]


@pytest.mark.parametrize(("stream", "events"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_whole_stream(stream: bytes, events: list[SSEEvent]) -> None:
    assert decode(stream) == events


@pytest.mark.parametrize(("stream", "events"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_byte_boundary(stream: bytes, events: list[SSEEvent]) -> None:
    for cut in range(len(stream) + 1):
        assert decode(stream[:cut], stream[cut:]) == events, cut
    assert decode(*(stream[i : i + 1] for i in range(len(stream)))) == events


def test_cr_at_end_of_one_read_and_lf_at_start_of_next_is_one_line_end() -> None:
    assert decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [E("a\nb")]
    # ... while a CR then a CR is two line ends: the second one dispatches.
    assert decode(b"data: a\r", b"\r") == [E("a")]


def test_retry_field_needs_digits_only() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 1500\n\n")
    assert decoder.retry == 1500
    decoder.feed(b"retry: 15x\nretry: \xd9\xa3\n\n")  # Arabic-Indic 3 is a digit, not ASCII
    assert decoder.retry == 1500


def test_events_come_out_as_soon_as_their_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [E("a")]
    assert decoder.feed(b"data: b\n\ndata: c") == [E("b")]


def test_an_event_past_the_bound_is_an_error() -> None:
    with pytest.raises(SSEError, match="longer than 64 bytes"):
        decode(b"data: " + b"x" * 100 + b"\n\n", max_event=64)
    with pytest.raises(SSEError):  # many short lines add up
        decode(b"data: xxxxxxxx\n" * 20, max_event=64)
    with pytest.raises(SSEError):  # a line that never ends cannot grow without bound
        decode(*[b"x" * 10] * 10, max_event=64)
    assert decode(b"data: " + b"x" * 50 + b"\n\n" * 3, max_event=64) == [E("x" * 50)]


_ATOMS = [
    b"data: a",
    b"data:b",
    b"data",
    b"event: e",
    b"id: 1",
    b"id",
    b"retry: 5",
    b": c",
    b"\n",
    b"\r",
    b"\r\n",
    b"\xef\xbb\xbf",
    "é".encode(),
    b"x",
    b" ",
    b":",
]


@given(
    st.lists(st.sampled_from(_ATOMS), max_size=40).map(b"".join),
    st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_any_split_of_the_bytes_gives_the_same_events(stream: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert decode(*chunks) == decode(stream)


@given(
    st.lists(
        st.tuples(
            st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
            st.sampled_from([b"data:", b"data: ", b"data:  "]),
            st.sampled_from([b"\n\n", b"\r\n\r\n", b"\r\r", b"\n\r\n"]),
        ),
        max_size=6,
    ),
    st.sampled_from([b"", b"\xef\xbb\xbf", b": c\n", b"id: 7\n\n", b"event: e\n"]),
)
def test_one_event_per_read_gives_what_byte_by_byte_reading_gives(
    events: list[tuple[bytes, bytes, bytes]], lead: bytes
) -> None:
    """Whole one-line events take the decoder's shortcut; single bytes never can."""
    reads = [lead] + [field + value + end for value, field, end in events]
    stream = b"".join(reads)
    assert decode(*reads) == decode(*(stream[i : i + 1] for i in range(len(stream))))
