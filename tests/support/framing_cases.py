"""The framing conformance table: canned responses with the verdicts h11 and llhttp give them."""

from __future__ import annotations

from dataclasses import dataclass

Verdict = tuple[int, bytes] | None  # (status, body) accepted, or None: rejected

REJECT: Verdict = None

NEXT = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext"

EVIL = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil"


def resp(*headers: str, body: bytes = b"", status: str = "HTTP/1.1 200 OK") -> bytes:
    lines = "".join(f"{header}\r\n" for header in headers)
    return f"{status}\r\n{lines}\r\n".encode("latin-1") + body


@dataclass(frozen=True)
class Case:
    name: str
    parts: tuple[bytes, ...]
    h11: Verdict
    llhttp: Verdict
    method: str = "GET"
    close: bool = False  # the server closes the connection after the first part

    @property
    def agreed(self) -> bool:
        return self.h11 == self.llhttp


def case(
    name: str,
    raw: bytes | tuple[bytes, ...],
    h11: Verdict,
    llhttp: Verdict,
    *,
    method: str = "GET",
    close: bool = False,
) -> Case:
    parts = raw if isinstance(raw, tuple) else (raw,)
    return Case(name, parts, h11, llhttp, method, close)


OK5 = (200, b"hello")

CL5 = "Content-Length: 5"

TE = "Transfer-Encoding: chunked"

CHUNKS = b"5\r\nhello\r\n0\r\n\r\n"

FLOOD = b"HTTP/1.1 100 Continue\r\n\r\n" * 5000

CASES: list[Case] = [
    # -- Content-Length
    case("cl_plain", resp(CL5, body=b"hello"), OK5, OK5),
    case("cl_zero", resp("Content-Length: 0"), (200, b""), (200, b"")),
    case("cl_leading_zeros", resp("Content-Length: 0005", body=b"hello"), OK5, OK5),
    case("cl_trailing_ows", resp("Content-Length: 5 \t", body=b"hello"), OK5, OK5),
    case("cl_tab_before_value", resp("Content-Length:\t5", body=b"hello"), OK5, OK5),
    case("cl_dup_equal", resp(CL5, CL5, body=b"hello"), OK5, REJECT),
    case("cl_dup_conflict", resp(CL5, "Content-Length: 6", body=b"hello!"), REJECT, REJECT),
    case("cl_list_equal", resp("Content-Length: 5, 5", body=b"hello"), OK5, REJECT),
    case("cl_list_conflict", resp("Content-Length: 5, 6", body=b"hello!"), REJECT, REJECT),
    case("cl_plus", resp("Content-Length: +5", body=b"hello"), REJECT, REJECT),
    case("cl_minus", resp("Content-Length: -5", body=b"hello"), REJECT, REJECT),
    case("cl_hex", resp("Content-Length: 0x5", body=b"hello"), REJECT, REJECT),
    case("cl_inner_space", resp("Content-Length: 5 5", body=b"hello"), REJECT, REJECT),
    case("cl_empty", resp("Content-Length: ", body=b"hello"), REJECT, REJECT),
    case("cl_space_before_colon", resp("Content-Length : 5", body=b"hello"), REJECT, REJECT),
    case("cl_5000_digits", resp("Content-Length: " + "9" * 5000), REJECT, REJECT),
    case("cl_2_pow_64", resp("Content-Length: 18446744073709551616"), REJECT, REJECT, close=True),
    case(
        "cl_body_cut_by_close",
        resp("Content-Length: 10", body=b"hello"),
        REJECT,
        REJECT,
        close=True,
    ),
    case("cl_pipelined_leftover", resp(CL5, body=b"hello") + EVIL, OK5, OK5),
    case("cl_garbage_after", resp(CL5, body=b"helloXYZ"), OK5, OK5),
    case("cl_crlf_after", resp(CL5, body=b"hello\r\n"), OK5, OK5),
    # -- Transfer-Encoding
    case("te_chunked", resp(TE, body=CHUNKS), OK5, OK5),
    case("te_chunked_upper", resp("Transfer-Encoding: CHUNKED", body=CHUNKS), OK5, OK5),
    case(
        "te_space_before_colon",
        resp("Transfer-Encoding : chunked", CL5, body=CHUNKS),
        REJECT,
        REJECT,
    ),
    case("te_and_cl", resp(TE, CL5, body=CHUNKS), OK5, REJECT),
    case("te_gzip_chunked", resp("Transfer-Encoding: gzip, chunked", body=CHUNKS), REJECT, OK5),
    case("te_chunked_twice", resp(TE, TE, body=CHUNKS), REJECT, OK5),
    case(
        "te_identity_close",
        resp("Transfer-Encoding: identity", body=b"hello"),
        REJECT,
        OK5,
        close=True,
    ),
    case("te_obs_fold", resp("Transfer-Encoding:", " chunked", body=CHUNKS), OK5, REJECT),
    case(
        "te_vertical_tab",
        resp("Transfer-Encoding: \x0bchunked", CL5, body=b"hello"),
        REJECT,
        REJECT,
    ),
    # -- chunk-size syntax
    case("chunk_0x5", resp(TE, body=b"0x5\r\nhello\r\n0\r\n\r\n"), REJECT, REJECT),
    case("chunk_plus", resp(TE, body=b"+5\r\nhello\r\n0\r\n\r\n"), REJECT, REJECT),
    case("chunk_underscore", resp(TE, body=b"0_5\r\nhello\r\n0\r\n\r\n"), REJECT, REJECT),
    case("chunk_leading_space", resp(TE, body=b" 5\r\nhello\r\n0\r\n\r\n"), REJECT, REJECT),
    case("chunk_minus_zero", resp(TE, body=b"-0\r\n\r\n"), REJECT, REJECT),
    case(
        "chunk_overflow", resp(TE, body=b"1" + b"0" * 17 + b"\r\nhello"), REJECT, REJECT, close=True
    ),
    case(
        "chunk_upper_hex",
        resp(TE, body=b"A\r\nhelloworld\r\n0\r\n\r\n"),
        (200, b"helloworld"),
        (200, b"helloworld"),
    ),
    case("chunk_leading_zeros", resp(TE, body=b"005\r\nhello\r\n0\r\n\r\n"), OK5, OK5),
    case("chunk_extension", resp(TE, body=b"5;name=value\r\nhello\r\n0\r\n\r\n"), OK5, OK5),
    case("chunk_extension_quoted", resp(TE, body=b'5;a="b c"\r\nhello\r\n0\r\n\r\n'), OK5, OK5),
    case("chunk_size_trailing_space", resp(TE, body=b"5 \r\nhello\r\n0\r\n\r\n"), OK5, REJECT),
    case("chunk_trailers", resp(TE, body=b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), OK5, OK5),
    case(
        "chunk_trailer_no_colon", resp(TE, body=b"5\r\nhello\r\n0\r\nbad\r\n\r\n"), REJECT, REJECT
    ),
    case("chunk_data_overrun", resp(TE, body=b"5\r\nhelloX\r\n0\r\n\r\n"), REJECT, REJECT),
    case("chunk_lf_only", resp(TE, body=b"5\nhello\n0\n\n"), REJECT, REJECT, close=True),
    case("chunk_cut_by_close", resp(TE, body=b"5\r\nhel"), REJECT, REJECT, close=True),
    case("chunk_no_last_chunk", resp(TE, body=b"5\r\nhello\r\n"), REJECT, REJECT, close=True),
    # -- header syntax
    case("obs_fold", resp(CL5, "X-A: a", " folded", body=b"hello"), OK5, REJECT),
    case(
        "obs_fold_location",
        resp("Content-Length: 0", "X-A: a", " Location: /evil", status="HTTP/1.1 302 Found"),
        (302, b""),
        REJECT,
    ),
    case("nul_in_value", resp(CL5, "X-A: a\x00b", body=b"hello"), REJECT, REJECT),
    case("bare_cr_in_value", resp(CL5, "X-A: a\rb", body=b"hello"), REJECT, REJECT),
    case("bare_lf_between_headers", resp(CL5 + "\nX-A: a", body=b"hello"), OK5, REJECT),
    case("ctl_in_value", resp(CL5, "X-A: a\x01b", body=b"hello"), OK5, REJECT),
    case("del_in_value", resp(CL5, "X-A: a\x7fb", body=b"hello"), OK5, REJECT),
    case("utf8_in_value", resp(CL5, "X-A: caf\xc3\xa9", body=b"hello"), OK5, OK5),
    case("header_without_colon", resp(CL5, "X-A", body=b"hello"), REJECT, REJECT),
    case("header_name_space", resp(CL5, "X A: b", body=b"hello"), REJECT, REJECT),
    case("header_name_trailing_space", resp(CL5, "X-A : b", body=b"hello"), REJECT, REJECT),
    case("header_name_empty", resp(CL5, ": b", body=b"hello"), REJECT, REJECT),
    case("header_name_nul", resp(CL5, "X\x00A: b", body=b"hello"), REJECT, REJECT),
    case("first_header_folded", resp(" X-A: b", CL5, body=b"hello"), REJECT, REJECT),
    case("many_headers", resp(*(f"X-{i}: {i}" for i in range(100)), CL5, body=b"hello"), OK5, OK5),
    case("long_header_value", resp("X-A: " + "v" * 10_000, CL5, body=b"hello"), OK5, OK5),
    # -- status line
    case("http_1x", resp(CL5, body=b"hello", status="HTTP/1.x 200 OK"), REJECT, REJECT),
    case("http_lowercase", resp(CL5, body=b"hello", status="http/1.1 200 OK"), REJECT, REJECT),
    case("http_1_0_sized", resp(CL5, body=b"hello", status="HTTP/1.0 200 OK"), OK5, OK5),
    case(
        "http_1_0_until_close", resp(body=b"hello", status="HTTP/1.0 200 OK"), OK5, OK5, close=True
    ),
    case("no_reason", resp(CL5, body=b"hello", status="HTTP/1.1 200"), OK5, OK5),
    case("empty_reason", resp(CL5, body=b"hello", status="HTTP/1.1 200 "), OK5, OK5),
    case("status_two_digits", resp(CL5, body=b"hello", status="HTTP/1.1 20 OK"), REJECT, REJECT),
    case("status_four_digits", resp(CL5, body=b"hello", status="HTTP/1.1 2000 OK"), REJECT, REJECT),
    case("status_letter", resp(CL5, body=b"hello", status="HTTP/1.1 2x0 OK"), REJECT, REJECT),
    case("leading_crlf", b"\r\n" + resp(CL5, body=b"hello"), REJECT, OK5),
    case("not_http", b"hello world\r\n\r\n", REJECT, REJECT, close=True),
    case("lf_only", b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", OK5, REJECT),
    case("until_close", resp(body=b"hello"), OK5, OK5, close=True),
    case("nothing_then_close", b"", REJECT, REJECT, close=True),
    case("head_cut_by_close", b"HTTP/1.1 200 OK\r\nContent-Le", REJECT, REJECT, close=True),
    # -- interim responses
    case(
        "continue_then_final", b"HTTP/1.1 100 Continue\r\n\r\n" + resp(CL5, body=b"hello"), OK5, OK5
    ),
    case(
        "early_hints_then_final",
        resp("Link: </a.css>", status="HTTP/1.1 103 Early Hints") + resp(CL5, body=b"hello"),
        OK5,
        OK5,
    ),
    case("continue_flood_5000", FLOOD + resp(CL5, body=b"hello"), OK5, OK5),
    case("continue_then_close", b"HTTP/1.1 100 Continue\r\n\r\n", REJECT, REJECT, close=True),
    # -- no body whatever the headers say
    case(
        "204_with_body",
        resp(CL5, body=b"hello", status="HTTP/1.1 204 No Content"),
        (204, b""),
        (204, b""),
    ),
    case(
        "304_with_body",
        resp(CL5, body=b"hello", status="HTTP/1.1 304 Not Modified"),
        (304, b""),
        (304, b""),
    ),
    case(
        "204_chunked",
        resp(TE, body=CHUNKS, status="HTTP/1.1 204 No Content"),
        (204, b""),
        (204, b""),
    ),
    case("head_with_body", resp(CL5, body=b"hello"), (200, b""), (200, b""), method="HEAD"),
    case("head_without_body", resp(CL5), (200, b""), (200, b""), method="HEAD"),
    case("head_chunked", resp(TE), (200, b""), (200, b""), method="HEAD"),
    # -- Connection
    case("connection_close", resp("Connection: close", CL5, body=b"hello"), OK5, OK5),
    case("connection_close_upper", resp("Connection: CLOSE", CL5, body=b"hello"), OK5, OK5),
    case(
        "connection_close_listed",
        resp("Connection: keep-alive, close", CL5, body=b"hello"),
        OK5,
        OK5,
    ),
    case(
        "connection_space_before_colon",
        resp("Connection : close", CL5, body=b"hello"),
        REJECT,
        REJECT,
    ),
    case(
        "connection_keep_alive_1_0",
        resp("Connection: keep-alive", CL5, body=b"hello", status="HTTP/1.0 200 OK"),
        OK5,
        OK5,
    ),
    # -- split desyncs: a crafted head now, the rest after the next request is written
    case(
        "desync_cl_conflict", (resp(CL5, "Content-Length: 45", body=b"hello"), EVIL), REJECT, REJECT
    ),
    case(
        "desync_te_space",
        (
            resp("Transfer-Encoding : chunked", "Content-Length: 0"),
            b"4\r\nevil\r\n0\r\n\r\n" + EVIL,
        ),
        REJECT,
        REJECT,
    ),
    case("desync_chunk_0x0", (resp(TE, body=b"0x0\r\n\r\n"), EVIL), REJECT, REJECT),
    case(
        "desync_obs_fold_te",
        (resp(CL5, "X-A: a", " Transfer-Encoding: chunked", body=b"hello"), EVIL),
        OK5,
        REJECT,
    ),
    case("desync_nul_header", (resp("Content-Length: 0", "X-A: \x00"), EVIL), REJECT, REJECT),
]
