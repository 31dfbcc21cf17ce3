"""The live ``latcli bench`` view on a terminal (as oha shows one): elapsed against the plan,
rate, p50/p99, errors and HTTP statuses, redrawn from the last progress snapshot.

The engine hands a snapshot once a second; rich's refresh thread redraws at most
:data:`REDRAWS_PER_S` times a second from it (the elapsed time moves between snapshots).
Nothing here runs per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from latcli.engines.bench.run import Progress
from latcli.render.console import stderr_console

REDRAWS_PER_S = 4
BAR_WIDTH = 30


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g} ms" if value < 100 else f"{value:,.0f} ms"


def _bar(done: float) -> Text:
    filled = round(BAR_WIDTH * min(max(done, 0.0), 1.0))
    text = Text("■" * filled, style="cyan")
    return text.append("·" * (BAR_WIDTH - filled), style="dim")


def progress_view(
    p: Progress | None,
    elapsed_s: float,
    *,
    title: str,
    duration_s: float | None,
    requests: int | None,
) -> RenderableType:
    """One frame: where the run is against its duration (or request count), and so far."""
    head = Text(f"bench {title}", style="bold")
    if (p is not None and p.warmup) or elapsed_s < 0:
        return Group(head, Text(f"warm-up {-elapsed_s:.1f} s left", style="yellow"))
    shown = max(elapsed_s, 0.0)
    where = Text()
    if duration_s:
        where.append_text(_bar(shown / duration_s))
        where.append(f"  {shown:.1f} s / {duration_s:g} s")
    elif requests:
        done = p.requests if p is not None else 0
        where.append_text(_bar(done / requests))
        where.append(f"  {done:,} / {requests:,} requests · {shown:.1f} s")
    if p is None:
        return Group(head, where, Text("starting…", style="dim"))
    rate = Text(f"{p.rps:,.0f} req/s", style="bold")
    rate.append(f"  ·  {p.requests:,} requests  ·  in flight {p.in_flight:,}")
    latency = Text(f"p50 {_ms(p.p50_ms)}  ·  p99 {_ms(p.p99_ms)}  (answered requests)")
    return Group(head, where, rate, latency, _outcomes(p))


def _outcomes(p: Progress) -> Text:
    text = Text("errors ")
    if not p.errors:
        text.append("0", style="green")
    else:
        kinds = sorted(p.errors_by_kind.items(), key=lambda kv: -kv[1])
        parts = " ".join(f"{kind} {n:,}" for kind, n in kinds) or f"{p.errors:,}"
        text.append(parts, style="red")
    for code, n in sorted(p.status_codes.items()):
        text.append("  ")
        text.append(f"[{code}] {n:,}", style="green" if 200 <= code < 300 else "red")
    return text


class LiveBench:
    """``with LiveBench(...) as live: run_bench(..., live.show)``: the view on stderr, gone
    when the run ends (the summary follows on stdout)."""

    def __init__(
        self,
        *,
        title: str,
        duration_s: float | None,
        requests: int | None,
        warmup_s: float = 0.0,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._title, self._duration_s, self._requests = title, duration_s, requests
        self._clock = clock
        self._last: Progress | None = None
        self._at = clock()
        self._start_at = self._at + warmup_s  # the measured start: elapsed is negative before
        self._live = Live(
            console=console or stderr_console(),
            get_renderable=self.frame,
            refresh_per_second=REDRAWS_PER_S,
            transient=True,
        )

    def show(self, p: Progress) -> None:
        """A new snapshot (the engine's progress sink): only stored, drawn by the next redraw."""
        self._last, self._at = p, self._clock()

    def frame(self) -> RenderableType:
        now = self._clock()
        p = self._last
        elapsed = p.elapsed_s + (now - self._at) if p is not None else now - self._start_at
        return progress_view(
            p, elapsed, title=self._title, duration_s=self._duration_s, requests=self._requests
        )

    def __enter__(self) -> LiveBench:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()
