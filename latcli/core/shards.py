"""Sharded bench: the options (``--shard I/N``, ``--shards N``, ``--start-at TIME``), the
``shard`` block of a shard's report, and what ``latcli report`` checks before merging shards.

Sans-I/O: the environment and the clock come in as arguments. How a shard's share is cut from
the whole run is ``BenchPlan.lane`` and :mod:`latcli.core.schedule`.

A shard's report (``latcli.bench/v1``, additive) carries
``"shard": {"index", "count", "start_at", "run": {"target", "endpoint", "model", "rate",
"concurrency", "duration_s", "requests", "warmup_s"}}``: ``rate`` and ``concurrency`` at the
top level are the shard's own share, ``run`` is what the whole run asked, so shards of
different runs are told apart. A merge of shards carries ``"shards": {"count", "merged",
"missing", "overlapped"}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timezone
from typing import Any

from latcli.core.units import format_number, parse_duration

JOB_INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by Kubernetes in every pod of an Indexed Job
MAX_SHARDS = 100_000  # Kubernetes' own cap on an Indexed Job's completions
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
# What every shard of one run must agree on (the keys of the block's ``run``).
RUN_KEYS = (
    "target",
    "endpoint",
    "model",
    "rate",
    "concurrency",
    "duration_s",
    "requests",
    "warmup_s",
)


class ShardError(ValueError):
    """A bad --shard, --shards or --start-at value, or shards that do not make one run."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"1/4"`` -> ``(1, 4)``: shard 1 of 4, counted from 0 as Kubernetes counts pods."""
    m = _SHARD.match(text)
    if not m:
        raise ShardError(f"{text!r} is not I/N (shard I of N, I from 0 to N-1: 0/4 ... 3/4)")
    index, count = int(m.group(1)), int(m.group(2))
    _check_count(count)
    if index >= count:
        raise ShardError(f"shard {index} of {count} does not exist: I goes from 0 to {count - 1}")
    return index, count


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_SHARDS:
        raise ShardError(f"the number of shards must be 1 to {MAX_SHARDS:,}, not {count}")


def shard_from_env(count: int, env: Mapping[str, str]) -> int:
    """This pod's shard index from ``JOB_COMPLETION_INDEX`` (``--shards N``)."""
    _check_count(count)
    raw = env.get(JOB_INDEX_ENV)
    if raw is None or not raw.strip():
        raise ShardError(
            f"--shards {count} reads this process's shard from {JOB_INDEX_ENV} (set by a "
            f"Kubernetes Indexed Job), which is not set: give --shard I/{count} instead"
        )
    if not raw.strip().isdigit():
        raise ShardError(f"{JOB_INDEX_ENV}={raw!r} is not a shard index (0 to {count - 1})")
    index = int(raw)
    if index >= count:
        raise ShardError(
            f"{JOB_INDEX_ENV}={index} but --shards {count}: the Job's completions and "
            "--shards must be equal"
        )
    return index


def parse_start_at(text: str, now: float) -> float:
    """``--start-at``: an ISO-8601 date and time (without an offset: local time) or ``+5s``
    (from ``now``), as seconds since the epoch. A time already past is an error: a shard that
    started later than its siblings would not interleave with them, so it is refused before
    any load rather than measured out of step."""
    value = text.strip()
    if value.startswith("+"):
        try:
            return now + parse_duration(value[1:])
        except ValueError as exc:
            raise ShardError(str(exc)) from None
    at = _wall_clock(value, now)
    if at is None:
        raise ShardError(
            f"{text!r} is not a time: give ISO-8601 (2026-12-03T15:00:00Z, or today's "
            "15:00:00Z) or +DURATION (+30s)"
        )
    if at < now:
        raise ShardError(
            f"{text} is {format_number(now - at)} s in the past: give a time still ahead "
            "(every shard must be started before it)"
        )
    return at


def _wall_clock(value: str, now: float) -> float | None:
    """An ISO-8601 date and time, or a time alone (today's, on its own clock), as epoch
    seconds; a time without an offset is local time, as date(1) prints it. None: not a time."""
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        pass
    try:
        alone = time.fromisoformat(value)
    except ValueError:
        return None
    today = datetime.fromtimestamp(now, alone.tzinfo).date()
    return datetime.combine(today, alone).timestamp()


def iso_utc(epoch_s: float) -> str:
    """``2026-12-03T15:00:00.250Z``: the wall-clock start as the report records it."""
    stamp = datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


@dataclass(frozen=True)
class ShardRun:
    """What the whole run asked (:data:`RUN_KEYS`): shards of one run agree on all of it."""

    target: str
    endpoint: str | None
    model: str | None
    rate: float | None
    concurrency: int | None
    duration_s: float | None
    requests: int | None
    warmup_s: float | None

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in RUN_KEYS}


@dataclass(frozen=True)
class ShardBlock:
    """A shard's report's ``shard`` field: which shard of which run."""

    index: int
    count: int
    start_at: str | None  # ISO-8601 UTC, as the report records it
    run: ShardRun

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "start_at": self.start_at,
            "run": self.run.as_json(),
        }

    @classmethod
    def from_json(cls, d: Any) -> ShardBlock:
        """ShardError when ``d`` is not a shard block latcli wrote."""
        try:
            run = d["run"]
            block = cls(
                _int(d["index"]),
                _int(d["count"]),
                _opt(d.get("start_at"), str),
                ShardRun(
                    str(run["target"]),
                    _opt(run.get("endpoint"), str),
                    _opt(run.get("model"), str),
                    _opt(run.get("rate"), (int, float)),
                    _opt(run.get("concurrency"), int),
                    _opt(run.get("duration_s"), (int, float)),
                    _opt(run.get("requests"), int),
                    _opt(run.get("warmup_s"), (int, float)),
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ShardError("its shard field is not a latcli shard block") from None
        if not 0 <= block.index < block.count:
            raise ShardError(f"shard {block.index} of {block.count} does not exist")
        return block


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _opt(value: Any, kind: type | tuple[type, ...]) -> Any:
    """``value`` if None or of ``kind`` (a bool is no number), else TypeError."""
    if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
        return value
    raise TypeError(value)


def shard_block(index: int, count: int, start_at: float | None, run: ShardRun) -> ShardBlock:
    """The ``shard`` field of a shard's report; ``run`` is what the whole run asked."""
    return ShardBlock(index, count, None if start_at is None else iso_utc(start_at), run)


@dataclass(frozen=True)
class ShardSet:
    """The shards given to a merge: how many the run had, which came, which are missing."""

    count: int
    merged: tuple[int, ...]
    missing: tuple[int, ...]
    overlapped: bool = True  # every shard's measured period overlapped the others'

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "merged": list(self.merged),
            "missing": list(self.missing),
            "overlapped": self.overlapped,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ShardSet:
        return cls(
            int(d["count"]),
            tuple(int(i) for i in d["merged"]),
            tuple(int(i) for i in d["missing"]),
            bool(d.get("overlapped", True)),
        )


def check_shards(blocks: Sequence[ShardBlock | None], names: Sequence[str]) -> ShardSet | None:
    """None when no report is a shard; else the set, after refusing (ShardError, one line
    naming the files) shards mixed with other reports, shards of different runs, and a shard
    given twice. Missing shards are not an error: the caller warns."""
    if all(b is None for b in blocks):
        return None
    if any(b is None for b in blocks):
        plain = names[blocks.index(None)]
        some = next(i for i, b in enumerate(blocks) if b is not None)
        raise ShardError(
            f"{names[some]} is a shard and {plain} is not: merge the shards of one run, "
            "then that report with others"
        )
    shards = [b for b in blocks if b is not None]
    first = _fingerprint(shards[0])
    seen: dict[int, str] = {}
    for block, name in zip(shards, names, strict=True):
        for key, value in _fingerprint(block).items():
            if value != first[key]:
                raise ShardError(
                    f"not shards of one run: {names[0]} has {key} {_shown(first[key])}, "
                    f"{name} has {_shown(value)}"
                )
        if block.index in seen:
            raise ShardError(
                f"shard {block.index}/{block.count} given twice: {seen[block.index]}, {name}"
            )
        seen[block.index] = name
    count = shards[0].count
    return ShardSet(
        count,
        tuple(sorted(seen)),
        tuple(i for i in range(count) if i not in seen),
    )


def _fingerprint(block: ShardBlock) -> dict[str, Any]:
    return {"count": block.count, "start_at": block.start_at, **block.run.as_json()}


def _shown(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return format_number(value)
    return "none" if value is None else str(value)


def warnings(shards: ShardSet | None) -> list[str]:
    """What a merge of shards should tell on stderr: missing shards, shards not run together."""
    if shards is None:
        return []
    out = []
    if shards.missing:
        listed = ", ".join(str(i) for i in shards.missing)
        word = "shard" if len(shards.missing) == 1 else "shards"
        out.append(
            f"{word} {listed} of {shards.count} missing: the merged report covers "
            f"{len(shards.merged)} of {shards.count} shards (their part of the load only)"
        )
    if not shards.overlapped:
        out.append(
            "the shards did not all run at the same time (give every shard one --start-at): "
            "their rates are added as if they had"
        )
    return out
