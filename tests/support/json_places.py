"""Every place in a JSON value, for tests that change one field of a document at a time."""

from __future__ import annotations

from typing import Any


def places(value: Any, items: int, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The key/index paths of ``value``'s objects and of the first ``items`` items of each list."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += places(v, items, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:items]):
            out += places(v, items, (*prefix, i))
    return out
