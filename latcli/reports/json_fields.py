"""Typed reads of a report document parsed from JSON, the one reader every report schema uses
(DESIGN §7: a report file is untrusted input).

A wrong or missing value is one :class:`ReportError` line naming the file when the caller knows
it, the schema and the key path, never a traceback::

    r.json: not a latcli.bench/v1 report: generator.valid: expected true or false, got 'yes'
    not a latcli.capacity/v1 report: steps[2].latency_ms.p99: expected a number, got 'x'

Values are kept as the document states them (a number written ``100`` stays an int), so that
``to_json(from_json(doc)) == doc``; numbers are never booleans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from latcli.core.errors import LatcliError
from latcli.reports.files import ReportError

T = TypeVar("T")
D = TypeVar("D")  # a default, of the read's type or None

# What a parse hook (a histogram decoder, an enum, a shard block) raises on a bad value.
_HOOK_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError, LatcliError)


class Fields:
    """One JSON object of a ``schema`` document, at ``path`` (empty: the document itself).

    Each read names its key; ``optional`` reads a nullable value, ``default`` a field newer
    than some documents, ``parsed`` hands a value to a parser of its own (a parse hook)."""

    def __init__(self, obj: object, schema: str, *, source: str | None = None, path: str = ""):
        self.schema, self.source, self.path = schema, source, path
        if not isinstance(obj, dict):
            problem = "expected an object, got " + _shown(obj, False)
            raise self.error(problem if path else f"the document: {problem}")
        self.obj: dict[str, Any] = obj

    # --- errors ------------------------------------------------------------------------------

    def error(self, problem: str, key: str | None = None) -> ReportError:
        """The one-line error for ``problem`` at ``key`` (None: at this object)."""
        where = self.path if key is None else self._where(key)
        head = f"not a {self.schema} report"
        if self.source:
            head = f"{self.source}: {head}"
        return ReportError(f"{head}: {where}: {problem}" if where else f"{head}: {problem}")

    def _fail(self, key: str, wanted: str) -> ReportError:
        got = _shown(self.obj.get(key), key not in self.obj)
        return self.error(f"expected {wanted}, got {got}", key)

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _at(self, obj: object, path: str) -> Fields:
        return Fields(obj, self.schema, source=self.source, path=path)

    # --- single values -----------------------------------------------------------------------

    def __contains__(self, key: str) -> bool:
        return key in self.obj

    def get(self, key: str) -> object:
        """The raw value (None when missing)."""
        return self.obj.get(key)

    def text(self, key: str) -> str:
        value = self.obj.get(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def number(self, key: str) -> float:
        value = self.obj.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, "a number")
        return value

    def integer(self, key: str) -> int:
        value = self.obj.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "an integer")
        return value

    def flag(self, key: str) -> bool:
        value = self.obj.get(key)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def choice(self, key: str, allowed: Sequence[T]) -> T:
        value = self.obj.get(key)
        for known in allowed:
            if known == value:
                return known
        raise self._fail(key, "one of " + ", ".join(str(getattr(a, "value", a)) for a in allowed))

    def child(self, key: str) -> Fields:
        """The object at ``key``."""
        if key not in self.obj:
            raise self._fail(key, "an object")
        return self._at(self.obj[key], self._where(key))

    def parsed(self, key: str, parse: Callable[[Any], T], wanted: str = "a value") -> T:
        """``parse(value)``; what it raises on a bad value becomes one line naming the key."""
        if key not in self.obj:
            raise self._fail(key, wanted)
        return self._hooked(parse, self.obj[key], key)

    def _hooked(self, parse: Callable[[Any], T], value: Any, key: str) -> T:
        try:
            return parse(value)
        except ReportError:
            raise
        except _HOOK_ERRORS as exc:
            raise self.error(_why(exc), key) from None

    # --- absent and null ---------------------------------------------------------------------

    def present(self, key: str) -> bool:
        """Whether ``key`` holds a value (not null); a missing key is an error."""
        if key not in self.obj:
            raise self._fail(key, "a value or null")
        return self.obj[key] is not None

    def optional(self, key: str, read: Callable[[str], T], *, missing_ok: bool = False) -> T | None:
        """``read(key)`` when the value is not null, else None. A missing key is an error, or
        None with ``missing_ok`` (a nullable field newer than some documents)."""
        if missing_ok and key not in self.obj:
            return None
        return read(key) if self.present(key) else None

    def default(self, key: str, read: Callable[[str], T], value: D, *, null: bool = False) -> T | D:
        """``read(key)``, or ``value`` when the document has no ``key`` (a field newer than
        it) or, with ``null``, when the value is null."""
        if key not in self.obj or (null and self.obj[key] is None):
            return value
        return read(key)

    # --- collections -------------------------------------------------------------------------

    def values(self, key: str) -> list[Any]:
        """A list, its items unread."""
        value = self.obj.get(key)
        if not isinstance(value, list):
            raise self._fail(key, "a list")
        return value

    def items(self, key: str) -> list[Fields]:
        """A list of objects, each with its index in its path (``steps[2]``)."""
        where = self._where(key)
        return [self._at(v, f"{where}[{i}]") for i, v in enumerate(self.values(key))]

    def each(self, key: str, parse: Callable[[Any], T]) -> list[T]:
        """A list, each item through a parse hook (an error names ``key[i]``)."""
        return [self._hooked(parse, v, f"{key}[{i}]") for i, v in enumerate(self.values(key))]

    def texts(self, key: str) -> tuple[str, ...]:
        values = self.values(key)
        if not all(isinstance(v, str) for v in values):
            raise self._fail(key, "a list of strings")
        return tuple(values)

    def numbers(self, key: str) -> tuple[float, ...]:
        values = self.values(key)
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            raise self._fail(key, "a list of numbers")
        return tuple(values)

    def counts(self, key: str) -> dict[str, int]:
        """An object of integer counts (``errors_by_kind``, ``status_codes``)."""
        if not isinstance(self.obj.get(key), dict):
            raise self._fail(key, "an object of counts")
        counts = self.child(key)
        return {k: counts.integer(k) for k in counts.obj}


def _why(exc: Exception) -> str:
    return f"missing field {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__


def _shown(value: object, missing: bool) -> str:
    """A found value for a message: cut short, since a document may hold anything."""
    return "nothing" if missing else repr(value)[:40]
