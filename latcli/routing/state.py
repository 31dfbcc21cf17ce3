"""Routing state that outlives one run: EWMA cost, success windows, breakers (DESIGN §4).

Where: ``--state PATH`` if given, else :func:`default_state_path` — ``$LATCLI_STATE``,
else ``$XDG_STATE_HOME/latcli/state.db``, else ``~/.local/state/latcli/state.db``
(the XDG Base Directory "state" home: data worth keeping between runs, not worth
backing up). ``--no-state`` uses :class:`NullStore`.

What: one SQLite file in WAL mode, table ``agents`` with one row per replica key:
the JSON of ``ReplicaStats.to_state()`` and ``Breaker.to_state()`` plus the writer's
wall and monotonic clocks at write time, so a reader can move the timestamps onto
its own clock and let time-decayed values decay by the time elapsed. In-flight
counts and half-open trial permits are never stored: they die with their run. Table
``rotation`` holds, per type, the id picked last (round_robin's turn), so consecutive
``latcli send`` runs rotate instead of each starting over.

Concurrent runs: a run loads rows once at start (:meth:`StateStore.load_into`) and
keeps a journal of the calls it finished. :meth:`StateStore.flush` then, in one
``BEGIN IMMEDIATE`` transaction, re-reads each row (another run may have written
since), replays the journal onto it and writes it back. Each run only *adds* its
own observations to the freshest stored state, so no run loses another's updates;
SQLite's locking makes the read-modify-write atomic across processes. A type's turn
is written in the same transaction; the last writer's turn wins (two concurrent runs
may take the same next replica, never a torn or foreign value).

Failure policy: state is an optimisation, so no state problem ever raises. A file
that is not SQLite, is corrupt, or belongs to another application is renamed to
``<name>.corrupt-<unix time>`` / ``<name>.foreign-<unix time>`` and a fresh file is
made; anything else (unwritable location, a newer latcli's schema, I/O errors)
disables the store for the rest of the run. Each case is reported once through
``warn``.
"""

from __future__ import annotations

import abc
import contextlib
import json
import math
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

from latcli.core.breaker import Breaker
from latcli.core.redact import redact_text
from latcli.core.stats import ReplicaStats

if TYPE_CHECKING:  # only the fields are read, as in latcli.core.breaker
    from latcli.config.inventory import BreakerConfig

__all__ = [
    "SCHEMA",
    "CallRecord",
    "FlushEntry",
    "NullStore",
    "StateStore",
    "Store",
    "default_state_path",
    "open_store",
]

SCHEMA = "latcli.state/v1"
_SCHEMA_FAMILY = "latcli.state/"
_CREATE = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '{SCHEMA}')",
    "CREATE TABLE IF NOT EXISTS agents (key TEXT PRIMARY KEY, wall REAL NOT NULL,"
    " mono REAL NOT NULL, stats TEXT NOT NULL, breaker TEXT NOT NULL)",
)
# added after v1 shipped: created in older v1 files too (they ignore it, so still v1)
_CREATE_ROTATION = "CREATE TABLE IF NOT EXISTS rotation (type TEXT PRIMARY KEY, last TEXT NOT NULL)"
# likewise: rate-limited replicas (row key -> epoch seconds the cooldown ends), issue 12
_CREATE_COOLING = "CREATE TABLE IF NOT EXISTS cooling (key TEXT PRIMARY KEY, until REAL NOT NULL)"
# what from_state and json raise on hand-edited or damaged rows (int(inf) overflows,
# deep nesting recurses): such a row is skipped, never a crash
_BAD_DATA = (ValueError, OverflowError, TypeError, RecursionError)
_RETRY_PAUSE = 0.01  # seconds between retries when SQLite answers "busy" without waiting

T = TypeVar("T")
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


def open_store(
    path: Path | None, *, enabled: bool = True, env: Mapping[str, str], warn: Warn | None = None
) -> Store:
    """The store ``--state PATH`` / ``--no-state`` select: a :class:`NullStore` when not
    ``enabled``, else a :class:`StateStore` at ``path`` or :func:`default_state_path`."""
    if not enabled:
        return NullStore()
    return StateStore(path or default_state_path(env), warn=warn)


class _Row(NamedTuple):
    wall: object  # as stored: REAL columns may still hold text written by someone else
    mono: object
    stats: str
    breaker: str


class StateStore(_Closing):
    """Persisted routing state in the SQLite file ``path`` (module docstring).

    Opens lazily, on the first ``load_into`` or ``flush``. ``busy_timeout`` bounds how
    long one operation waits for other runs' locks. ``warn`` receives one line per
    problem (default: stderr); no method raises for a state problem. ``rng`` draws the
    breaker jitter when a replayed journal trips a breaker. One instance may move
    between threads but must not be used by two at once.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        warn: Warn | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._warn = warn or _to_stderr
        self._rng = rng or random.Random()
        self._conn: sqlite3.Connection | None = None
        self._ident: tuple[int, int] | None = None  # the opened file, to set aside only it
        self._disabled = False
        self._warned_keys: set[str] = set()

    @property
    def disabled(self) -> bool:
        """True once a problem made the store give up for the rest of the run."""
        return self._disabled

    # -- the public operations -------------------------------------------------

    def load_into(
        self, key: str, stats: ReplicaStats, breaker: Breaker, now: float, wall: float
    ) -> bool:
        """Restore ``stats`` and ``breaker`` from the row ``key``; True if one was loaded.

        ``now`` is our monotonic clock and ``wall`` ``time.time()``, both read now; the
        row's timestamps move onto ``now``'s clock, so decayed values decay by the time
        elapsed since the write and open breakers keep their remaining open time. The
        objects' own configuration (tau, windows, thresholds) applies. With no row, an
        unreadable row (reported) or a failed store they are left untouched.
        """
        row = self._run(lambda conn: _select(conn, key))
        if row is None:
            return False
        try:
            _restore(row, stats, breaker, now, wall)
        except _BAD_DATA as exc:
            self._warn_row(key, exc)
            return False
        return True

    def load_turns(self, types: Sequence[str]) -> dict[str, str]:
        """The stored round_robin turn (the id picked last) of each of ``types`` that has one."""
        found = self._run(lambda conn: _select_turns(conn, types))
        return found or {}

    def load_cooling(self, keys: Sequence[str], wall: float) -> dict[str, float]:
        """Row key -> epoch seconds its rate-limit cooldown ends, for those of ``keys`` still
        cooling at ``wall``."""
        found = self._run(lambda conn: _select_cooling(conn, keys, wall))
        return found or {}

    def flush(
        self,
        entries: Sequence[FlushEntry],
        now: float,
        wall: float,
        turns: Mapping[str, str] | None = None,
        cooling: Mapping[str, float] | None = None,
    ) -> bool:
        """Merge every entry's journal into its stored row, all in one transaction.

        Each row is re-read, restored into a fresh ``ReplicaStats`` / ``Breaker`` built
        from the entry's configuration (an absent or unreadable row starts fresh), the
        journal is replayed in order on ``now``'s clock, and the row is written back.
        Entries with an empty journal are not rewritten. Returns True when the journals
        are consumed — saved, or the store is disabled and never will save them — so the
        caller clears them; False when other runs held the lock past ``busy_timeout``
        and a later flush may succeed. ``turns`` (type -> id picked last) replace the
        stored ones in the same transaction; ``cooling`` (row key -> epoch seconds a rate
        limit's cooldown ends) extends the stored cooldowns.
        """
        work = [entry for entry in entries if entry.journal]
        turned = dict(turns or {})
        cooled = dict(cooling or {})
        if not work and not turned and not cooled:
            return True
        done = self._run(lambda conn: self._merge_all(conn, work, turned, now, wall, cooled))
        return done is not None or self._disabled

    def close(self) -> None:
        """Close the file; a later operation reopens it."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- merging ---------------------------------------------------------------

    def _merge_all(
        self,
        conn: sqlite3.Connection,
        work: Sequence[FlushEntry],
        turns: Mapping[str, str],
        now: float,
        wall: float,
        cooling: Mapping[str, float],
    ) -> bool:
        # IMMEDIATE takes the write lock before the reads: the rows cannot change
        # between our read and our write, which is what makes the merge lossless.
        with _transaction(conn):
            for entry in work:
                stats, breaker = self._merged(entry, _select(conn, entry.key), now, wall)
                conn.execute(
                    "INSERT OR REPLACE INTO agents (key, wall, mono, stats, breaker)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (entry.key, wall, now, _dumps(stats.to_state()), _dumps(breaker.to_state())),
                )
            conn.executemany(
                "INSERT OR REPLACE INTO rotation (type, last) VALUES (?, ?)", turns.items()
            )
            if cooling:
                conn.execute("DELETE FROM cooling WHERE until <= ?", (wall,))
                conn.executemany(  # the later end wins: two runs may both have been told
                    "INSERT INTO cooling (key, until) VALUES (?, ?) ON CONFLICT (key)"
                    " DO UPDATE SET until = max(until, excluded.until)",
                    cooling.items(),
                )
        return True

    def _merged(
        self, entry: FlushEntry, row: _Row | None, now: float, wall: float
    ) -> tuple[ReplicaStats, Breaker]:
        """The stored state of ``entry.key`` with ``entry.journal`` replayed onto it."""
        stats, breaker = self._fresh(entry)
        if row is not None:
            try:  # fresh objects: a bad row is not tried on copies first, they are dropped
                _restore(row, stats, breaker, now, wall, trial=False)
            except _BAD_DATA as exc:
                self._warn_row(entry.key, exc)
                stats, breaker = self._fresh(entry)
        for obs in entry.journal:
            t = now - (wall - obs.wall)
            stats.start()
            stats.finish(t, obs.latency_ms, obs.ok, cost_ms=obs.cost_ms)
            # the stored breaker judges each call at its finish time; a call it refuses
            # (open: it may have been sent in panic) leaves no verdict, as it would live
            permit = breaker.allow(t)
            if permit is not None:
                breaker.record(t, permit, obs.ok)
        return stats, breaker

    def _fresh(self, entry: FlushEntry) -> tuple[ReplicaStats, Breaker]:
        return ReplicaStats(entry.tau, entry.window_s), Breaker(entry.breaker_cfg, self._rng)

    # -- failure handling ------------------------------------------------------

    def _run(self, op: Callable[[sqlite3.Connection], T]) -> T | None:
        """``op`` on an open connection; None if the store failed (reported)."""
        for _ in range(3):  # a corrupt file found mid-run is set aside and the op retried
            conn = self._connection()
            if conn is None:
                return None
            try:
                return self._retry_busy(partial(op, conn))
            except sqlite3.DatabaseError as exc:
                if not self._handle_error(exc):
                    return None
            except OSError as exc:
                self._disable(f"could not be used ({exc})")
                return None
        return None

    def _handle_error(self, exc: sqlite3.DatabaseError) -> bool:
        """React to ``exc``; True when the file was set aside and a retry makes sense."""
        if _is_corrupt(exc):
            return self._set_aside("corrupt")
        if _is_busy(exc):
            self._warn(f"latcli: state file {self._shown()} is busy ({exc}); skipped this time")
        else:
            self._disable(f"could not be used ({exc})")
        return False

    def _retry_busy(self, fn: Callable[[], T]) -> T:
        # SQLite's busy handler covers most waits, but some "locked" answers
        # (WAL recovery, a journal-mode change) come back at once: retry those.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(_RETRY_PAUSE)

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and not self._disabled:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection | None:
        """Open (creating if needed) a file holding our schema; None if impossible."""
        for _ in range(3):  # a set-aside file is replaced by a fresh one
            conn = self._connect()
            if conn is None:
                return None
            try:
                verdict = self._retry_busy(partial(_initialise, conn))
            except sqlite3.DatabaseError as exc:
                conn.close()
                if not self._handle_error(exc):
                    return None
                continue
            if verdict == "ours":
                self._rekey(conn)
                return conn
            conn.close()
            if verdict == "foreign":
                if not self._set_aside("foreign"):
                    return None
                continue
            self._disable(f"was written by another latcli version ({verdict}); not using it")
            return None
        self._disable("kept failing to open")
        return None

    def _rekey(self, conn: sqlite3.Connection) -> None:
        """Rows an older latcli keyed by a URL with its password get the masked key."""
        try:
            moved = self._retry_busy(partial(_redact_keys, conn))
        except sqlite3.DatabaseError:
            return  # tried again at the next open; the rows stay readable meanwhile
        if moved:
            self._warn(
                f"latcli: state file {self._shown()}: {moved} entries were keyed by URLs with"
                " passwords; re-keyed without them"
            )

    def _connect(self) -> sqlite3.Connection | None:
        try:
            _private_dir(self.path.parent)
            _private_file(self.path)
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._ident = _ident(self.path)
        except (OSError, sqlite3.Error) as exc:
            self._disable(f"could not be opened ({exc})")
            return None
        return conn

    def _set_aside(self, kind: str) -> bool:
        """Move the opened file (and its WAL) aside; True when a fresh start may follow."""
        self.close()
        if self._ident is None or _ident(self.path) != self._ident:
            return True  # another run already replaced it
        aside = _free_name(self.path, f"{kind}-{int(time.time())}")
        try:
            os.replace(self.path, aside)
            # a stale WAL left next to the fresh file would be replayed into it
            for suffix in ("-wal", "-shm"):
                side = Path(f"{self.path}{suffix}")
                if side.exists():
                    os.replace(side, f"{aside}{suffix}")
        except OSError as exc:
            self._disable(f"was {kind} and could not be moved aside ({exc})")
            return False
        self._warn(
            f"latcli: state file {self._shown()} was {kind}; moved to {aside}; starting fresh"
        )
        return True

    def _disable(self, why: str) -> None:
        self.close()
        if not self._disabled:
            self._disabled = True
            self._warn(f"latcli: state file {self._shown()} {why}; continuing without saved state")

    def _warn_row(self, key: str, exc: Exception) -> None:
        if key not in self._warned_keys:
            self._warned_keys.add(key)
            self._warn(
                f"latcli: state file {self._shown()}: unreadable entry for {key!r} ({exc});"
                " starting it fresh"
            )

    def _shown(self) -> str:
        home = os.path.expanduser("~")  # unlike Path.home(), never raises
        text = str(self.path)
        return "~" + text[len(home) :] if text.startswith(home + os.sep) else text


# -- SQLite helpers -------------------------------------------------------------


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back if the body raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _initialise(conn: sqlite3.Connection) -> str:
    """Classify the file, creating our schema in an empty one.

    Returns ``"ours"``, ``"foreign"``, or the schema name of another latcli version.
    The foreign check comes before any write, so another application's file is set
    aside exactly as it was found (not even switched to WAL).
    """
    verdict = _classify(conn)
    if verdict == "empty":
        conn.execute("PRAGMA journal_mode=WAL")
        with _transaction(conn):
            verdict = _classify(conn)  # another run may have created it meanwhile
            if verdict == "empty":
                for statement in _CREATE:
                    conn.execute(statement)
                verdict = "ours"
    if verdict == "ours":
        # WAL + NORMAL: commits skip fsync; a power loss may drop the latest
        # flushes but never corrupts the file (sqlite.org/pragma.html#pragma_synchronous)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_CREATE_ROTATION)
        conn.execute(_CREATE_COOLING)
    return verdict


def _classify(conn: sqlite3.Connection) -> str:
    """``"empty"`` (no tables, or only our meta), ``"ours"``, ``"foreign"`` or a schema name."""
    tables = {
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not name.startswith("sqlite_")
    }
    if not tables:
        return "empty"
    columns = {row[1] for row in conn.execute("PRAGMA table_info(meta)")}
    if not {"key", "value"} <= columns:
        return "foreign"
    found = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    schema = found[0] if found else None
    if schema == SCHEMA:
        return "ours" if "agents" in tables else "empty"
    if isinstance(schema, str) and schema.startswith(_SCHEMA_FAMILY):
        return schema
    return "foreign"


def _redact_keys(conn: sqlite3.Connection) -> int:
    """Mask URL passwords in row keys (state written before keys were masked); the number of
    rows re-keyed. A masked key already present wins; the old row is dropped. The freed bytes
    are zeroed and the file rewritten, so the password is not left in free pages or the WAL."""
    found = conn.execute("SELECT key FROM agents WHERE key LIKE '%://%@%'").fetchall()
    moved = [(key, redact_text(key)) for (key,) in found if redact_text(key) != key]
    if not moved:
        return 0
    conn.execute("PRAGMA secure_delete=ON")
    with _transaction(conn):
        for old, new in moved:
            if _select(conn, new) is None:
                conn.execute("UPDATE agents SET key = ? WHERE key = ?", (new, old))
            else:
                conn.execute("DELETE FROM agents WHERE key = ?", (old,))
    with contextlib.suppress(sqlite3.OperationalError):  # busy: the rows are re-keyed anyway
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return len(moved)


PRIVATE_DIR = 0o700  # DESIGN §7: state may hold URLs; user-only
PRIVATE_FILE = 0o600


def _private_dir(path: Path) -> None:
    """Create ``path`` user-only (0700) if it is missing; an existing one is left as it is."""
    if not path.is_dir():
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def _private_file(path: Path) -> None:
    """Make the database file user-only (0600) before SQLite opens it; SQLite gives its -wal
    and -shm files the database's mode. Existing files of ours are tightened."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    os.close(fd)
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(OSError):  # not ours, or not there: nothing to tighten
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, PRIVATE_FILE)


def _select(conn: sqlite3.Connection, key: str) -> _Row | None:
    found = conn.execute(
        "SELECT wall, mono, stats, breaker FROM agents WHERE key = ?", (key,)
    ).fetchone()
    return None if found is None else _Row(*found)


def _select_turns(conn: sqlite3.Connection, types: Sequence[str]) -> dict[str, str]:
    wanted = set(types)
    rows = conn.execute("SELECT type, last FROM rotation").fetchall()
    # a hand-edited row of another type (a number, a blob) is no turn: skipped
    return {t: last for t, last in rows if t in wanted and isinstance(last, str)}


def _select_cooling(conn: sqlite3.Connection, keys: Sequence[str], wall: float) -> dict[str, float]:
    wanted = set(keys)
    rows = conn.execute("SELECT key, until FROM cooling WHERE until > ?", (wall,)).fetchall()
    # a hand-edited row (text, NaN) is no cooldown: skipped
    return {
        k: until
        for k, until in rows
        if k in wanted and isinstance(until, float) and math.isfinite(until)
    }


def _restore(
    row: _Row, stats: ReplicaStats, breaker: Breaker, now: float, wall: float, trial: bool = True
) -> None:
    """Load ``row`` into ``stats`` and ``breaker``; a ``_BAD_DATA`` error leaves both untouched
    (without ``trial``, when the caller throws them away then, they may be half-loaded)."""
    if not isinstance(row.wall, float) or not isinstance(row.mono, float):
        raise ValueError(f"bad clocks {row.wall!r}, {row.mono!r}")
    now_then = row.mono + (wall - row.wall)  # the present instant on the writer's clock
    s, b = _loads(row.stats), _loads(row.breaker)
    # from_state fills an object part by part and may raise half-way: try the
    # data on throwaway copies first so a bad row cannot leave a half-loaded replica
    if trial:
        ReplicaStats(stats.ewma.tau, stats.success.window_s).from_state(s, now_then, now)
        Breaker(breaker.cfg, random.Random(0)).from_state(b, now_then, now)
    stats.from_state(s, now_then, now)
    breaker.from_state(b, now_then, now)


def _loads(text: object) -> dict[str, object]:
    if not isinstance(text, str):
        raise ValueError(f"expected JSON text, got {type(text).__name__}")
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _dumps(state: Mapping[str, object]) -> str:
    return json.dumps(state, separators=(",", ":"))


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    # SQLITE_CORRUPT and SQLITE_NOTADB are the only codes Python maps to the bare
    # DatabaseError class; its subclasses (OperationalError, ...) are other problems
    return type(exc) is sqlite3.DatabaseError


def _is_busy(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _ident(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _free_name(path: Path, tag: str) -> Path:
    """``<path>.<tag>``, or ``<path>.<tag>.<n>`` if that is taken."""
    candidate, n = Path(f"{path}.{tag}"), 1
    while candidate.exists():
        candidate, n = Path(f"{path}.{tag}.{n}"), n + 1
    return candidate


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
