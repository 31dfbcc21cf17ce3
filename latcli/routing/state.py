"""Routing state that outlives one run (DESIGN §4): what a store is, where it lives, what a run
journals. The SQLite store and its concurrency and failure policies:
:mod:`latcli.routing.state_sqlite`.

Where: ``--state PATH`` if given, else :func:`default_state_path` — ``$LATCLI_STATE``,
else ``$XDG_STATE_HOME/latcli/state.db``, else ``~/.local/state/latcli/state.db``
(the XDG Base Directory "state" home: data worth keeping between runs, not worth
backing up). ``--no-state`` uses :class:`NullStore`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

from latcli.core.breaker import Breaker, BreakerConfig
from latcli.core.stats import ReplicaStats

__all__ = [
    "CallRecord",
    "FlushEntry",
    "NullStore",
    "Store",
    "default_state_path",
]

_Self = TypeVar("_Self", bound="_Closing")
Warn = Callable[[str], None]


def default_state_path(env: Mapping[str, str]) -> Path:
    """``$LATCLI_STATE``, else ``$XDG_STATE_HOME/latcli/state.db``, else
    ``~/.local/state/latcli/state.db``; ``~`` is ``$HOME`` when set.

    Empty variables count as unset, and a relative ``$XDG_STATE_HOME`` is ignored, as
    the XDG Base Directory specification requires.
    """
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    explicit = env.get("LATCLI_STATE", "")
    if explicit == "~" or explicit.startswith("~/"):
        return home / explicit[2:]
    if explicit:
        return Path(explicit)
    xdg = env.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "state"
    return base / "latcli" / "state.db"


@dataclass(frozen=True)
class CallRecord:
    """One finished call as the router saw it; ``wall`` is ``time.time()`` at the end.

    ``cost_ms`` is the sample the router fed its EWMA instead of ``latency_ms`` (its
    failure penalty), if any: the replay must feed the same one.
    """

    wall: float
    latency_ms: float
    ok: bool
    cost_ms: float | None = None


@dataclass(frozen=True)
class FlushEntry:
    """One replica's journal to merge, with the configuration its state is rebuilt in.

    ``tau`` and ``window_s`` are the ``ReplicaStats`` arguments and ``breaker_cfg`` the
    ``Breaker``'s, as the run that loaded the row used them.
    """

    key: str
    tau: float
    window_s: float
    breaker_cfg: BreakerConfig
    journal: Sequence[CallRecord]


class Store(Protocol):
    """What the router needs from persisted state; :class:`StateStore` and :class:`NullStore`."""

    def load_into(
        self, key: str, stats: ReplicaStats, breaker: Breaker, now: float, wall: float
    ) -> bool: ...

    def flush(
        self,
        entries: Sequence[FlushEntry],
        now: float,
        wall: float,
        turns: Mapping[str, str] | None = None,
        cooling: Mapping[str, float] | None = None,
    ) -> bool: ...

    def load_turns(self, types: Sequence[str]) -> dict[str, str]: ...

    def load_cooling(self, keys: Sequence[str], wall: float) -> dict[str, float]: ...

    def close(self) -> None: ...


class _Closing(abc.ABC):
    """``with`` for a store: ``close()`` on the way out, whatever happened."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store."""

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NullStore(_Closing):
    """``--no-state``: nothing is loaded and nothing is saved."""

    def load_into(
        self, key: str, stats: ReplicaStats, breaker: Breaker, now: float, wall: float
    ) -> bool:
        """Never finds a row; ``stats`` and ``breaker`` are left alone."""
        return False

    def flush(
        self,
        entries: Sequence[FlushEntry],
        now: float,
        wall: float,
        turns: Mapping[str, str] | None = None,
        cooling: Mapping[str, float] | None = None,
    ) -> bool:
        """Drops the journals, turns and cooldowns: True, the caller may clear them."""
        return True

    def load_turns(self, types: Sequence[str]) -> dict[str, str]:
        """Never finds a turn: each run starts its rotation afresh."""
        return {}

    def load_cooling(self, keys: Sequence[str], wall: float) -> dict[str, float]:
        """Never finds a cooldown."""
        return {}

    def close(self) -> None:
        """Nothing to close."""
