"""The live ``latcli watch`` screen: one rich ``Live`` redrawn in place at each tick."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.live import Live

from latcli.render.console import stdout_console
from latcli.render.watch_view import watch_renderable
from latcli.reports.watch import WatchSnapshot


class LiveWatch:
    """``with LiveWatch() as live: live.show(snapshot)``: redraw in place, no auto refresh.

    Refreshing only when a tick brings new data keeps an idle watch at ~0 % CPU; the view
    measures the terminal at each redraw, so a resize is picked up at the next tick. On a
    console that is not a terminal each tick is printed after the previous one instead.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or stdout_console()
        self._live = Live(console=self.console, auto_refresh=False, transient=False)
        self._in_place = self.console.is_terminal

    def __enter__(self) -> LiveWatch:
        if self._in_place:
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._in_place:
            self._live.stop()

    def show(self, snapshot: WatchSnapshot) -> None:
        if self._in_place:
            self._live.update(watch_renderable(snapshot), refresh=True)
        else:
            self.console.print(watch_renderable(snapshot))
