"""Typed reads of a report document parsed from JSON: a wrong or missing value is one
:class:`ReportError` line naming the schema and the key path
(``not a latcli.capacity/v1 report: steps[2].latency_ms.p99: expected a number, got 'x'``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from latcli.reports.files import ReportError

T = TypeVar("T")


class Fields:
    """One JSON object of a ``schema`` document, at ``path`` (empty: the document itself).
    Numbers are never booleans; a float field takes a whole number as written (``100``)."""

    def __init__(self, obj: object, schema: str, path: str = "") -> None:
        if not isinstance(obj, dict):
            where = path or "the document"
            raise ReportError(f"not a {schema} report: {where}: expected an object")
        self.obj: dict[str, Any] = obj
        self.schema, self.path = schema, path

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _fail(self, key: str, wanted: str) -> ReportError:
        found = self.obj.get(key)
        got = "nothing" if key not in self.obj else repr(found)[:40]
        where = self._where(key)
        return ReportError(f"not a {self.schema} report: {where}: expected {wanted}, got {got}")

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
        return float(value)

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

    def present(self, key: str) -> bool:
        """Whether ``key`` holds a value (not null); a missing key is an error."""
        if key not in self.obj:
            raise self._fail(key, "a value or null")
        return self.obj[key] is not None

    def optional(self, key: str, read: Callable[[str], T]) -> T | None:
        """``read(key)`` when the value is not null, else None."""
        return read(key) if self.present(key) else None

    def child(self, key: str) -> Fields:
        return Fields(self.obj.get(key), self.schema, self._where(key))

    def items(self, key: str) -> list[Fields]:
        where = self._where(key)
        return [Fields(v, self.schema, f"{where}[{i}]") for i, v in enumerate(self._list(key))]

    def texts(self, key: str) -> tuple[str, ...]:
        values = self._list(key)
        if not all(isinstance(v, str) for v in values):
            raise self._fail(key, "a list of strings")
        return tuple(values)

    def numbers(self, key: str) -> tuple[float, ...]:
        values = self._list(key)
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            raise self._fail(key, "a list of numbers")
        return tuple(float(v) for v in values)

    def counts(self, key: str) -> dict[str, int]:
        """An object of integer counts (``errors_by_kind``)."""
        value = self.obj.get(key)
        if not isinstance(value, dict) or any(
            isinstance(n, bool) or not isinstance(n, int) for n in value.values()
        ):
            raise self._fail(key, "an object of counts")
        return dict(value)

    def choice(self, key: str, allowed: Sequence[T]) -> T:
        value = self.obj.get(key)
        for known in allowed:
            if known == value:
                return known
        raise self._fail(key, "one of " + ", ".join(map(str, allowed)))

    def _list(self, key: str) -> list[Any]:
        value = self.obj.get(key)
        if not isinstance(value, list):
            raise self._fail(key, "a list")
        return value
