"""``latcli send``: route one message to the best replica of one or more types."""

from __future__ import annotations

from typing import Annotated

import typer

from latcli.cli.options import (
    CaCertOpt,
    HeaderOpt,
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    NoStateOpt,
    StateOpt,
    request_shape_of,
    tls_verify,
)


def send(
    targets: Annotated[
        str,
        typer.Argument(
            metavar="TARGET[,TARGET...]",
            help="Agent type (routed to its best replica), agent id or URL; several, comma"
            " separated, fan out: weather,calendar.",
        ),
    ],
    message: Annotated[str, typer.Argument(help="The message text; - reads it from stdin.")],
    strategy: Annotated[
        str | None,
        typer.Option(
            help="p2c, fastest, round_robin, least_loaded or weighted. Default: inventory."
        ),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Retries: other replicas first, the same one when no other is admissible."
            " Default: inventory.",
        ),
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(
            help="Bound on the whole send, failovers and rate-limit waits included, e.g. 3s."
        ),
    ] = None,
    hedge: Annotated[
        bool,
        typer.Option(
            help="After the type's p95, also ask a second replica; first wins (a streamed "
            "answer is then written whole, once it won)."
        ),
    ] = False,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream/--no-stream",
            help="Stream the answer to stdout as it arrives when the agent can (an A2A card "
            "with capabilities.streaming); the decision line adds the first token's time. "
            "--no-stream asks for one whole reply.",
        ),
    ] = True,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Write the reply exactly as the agent sent it, even to a terminal (by default "
            "control characters such as escape sequences are shown escaped on a terminal; "
            "piped output is always as sent).",
        ),
    ] = False,
    state: StateOpt = None,
    no_state: NoStateOpt = False,
    inventory: InventoryOpt = None,
    json_out: JsonOpt = False,
    cacert: CaCertOpt = None,
    insecure: InsecureOpt = False,
    header: HeaderOpt = None,
) -> int:
    """Send MESSAGE to the fastest healthy replica of a type, failing over behind circuit
    breakers; or to one agent, by id or URL.

    The reply goes to stdout, the decision to stderr (→ weather-2 · p2c · 41 ms). A streaming
    A2A agent's answer is written as it arrives (→ llm-1 · p2c · 612 ms · first token 203 ms
    · 5 chunks); a task that stops early says its state (input-required), a failed one exits 1
    with the agent's message. Several targets fan out at once, each reply written whole.
    Routing state (EWMA, breakers) is kept between runs. On a terminal
    the reply's control characters (escape sequences, bare CR) are shown escaped; piped, it is
    written as sent; --raw writes it as sent to a terminal too.
    Examples: `latcli send weather "will it rain?"` · `latcli send weather-2 hello` ·
    `echo hello | latcli send http://127.0.0.1:8001 -`
    """
    import asyncio
    import json
    import sys

    from latcli.cli.runtime import DEMO_HINT, is_demo_fleet, parse_seconds
    from latcli.config.loading import load_inventory
    from latcli.core.errors import ExitCode
    from latcli.core.escape import escape_controls, terminal_reply
    from latcli.engines.send import run_send, send_targets
    from latcli.render.send_view import decision_lines, reply_text
    from latcli.reports.send import SendReport

    wanted = [t.strip() for t in targets.split(",") if t.strip()]
    if not wanted:
        raise typer.BadParameter("give at least one type, agent id or URL", param_hint="TARGET")
    limit = parse_seconds(timeout, "--timeout")
    verify = tls_verify(cacert, insecure)
    text = _message(message)
    loaded = load_inventory(inventory)
    inv, keys = send_targets(request_shape_of(header).apply_inventory(loaded), wanted)
    terminal = sys.stdout.isatty()
    live = _ChunkWriter(terminal, raw)
    fan = asyncio.run(
        run_send(
            *(inv, keys, text, strategy, retries, limit, hedge, state, no_state, verify),
            stream=stream,
            on_chunk=None if json_out else live.chunk,
        )
    )
    if json_out:
        print(json.dumps(SendReport.of(fan).to_json(), indent=2))
    elif live.wrote:  # the answer is out already; end its line
        live.write("\n")
    else:
        text = reply_text(fan)
        if text:
            _write(terminal_reply(text, terminal=terminal, raw=raw) + "\n")
    for line in decision_lines(fan) if not json_out else []:
        print(escape_controls(line) if sys.stderr.isatty() else line, file=sys.stderr)
    refused = any(a.outcome == "connect" for r in fan.results for a in r.attempts)
    if not fan.ok and refused and is_demo_fleet(loaded):
        print(f"latcli: {DEMO_HINT}", file=sys.stderr)
    return ExitCode.OK if fan.ok else ExitCode.FAILED


class _ChunkWriter:
    """Writes a streamed answer's chunks to stdout as they come (escaped as the whole reply
    would be), remembering whether any went out. A reader that went away (``| head``) ends the
    writing, not the send: the agent's answer is still read and judged."""

    def __init__(self, terminal: bool, raw: bool) -> None:
        self.terminal, self.raw, self.wrote, self.gone = terminal, raw, False, False

    def chunk(self, text: str) -> None:
        from latcli.core.escape import terminal_reply

        self.wrote = True
        self.write(terminal_reply(text, terminal=self.terminal, raw=self.raw))

    def write(self, text: str) -> None:
        if self.gone:
            return
        try:
            _write(text)
        except BrokenPipeError:
            self.gone = True
            _quiet_stdout()


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: the interpreter's final flush must not fail on the pipe."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _write(text: str) -> None:
    """Reply text to stdout as UTF-8; a lone surrogate (valid JSON, not valid UTF-8) is
    written as U+FFFD instead of ending the command."""
    import sys

    sys.stdout.flush()
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # a text-only stream (tests): let it encode
        sys.stdout.write(text)
        return
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "replace")
    out.write(data)
    out.flush()


def _message(text: str) -> str:
    """The message argument; ``-`` reads it from stdin (one trailing newline dropped)."""
    import sys

    if text != "-":
        return text
    read = sys.stdin.read()
    read = read[:-1] if read.endswith("\n") else read
    if not read.strip():
        raise typer.BadParameter("no message on stdin", param_hint="MESSAGE")
    return read
