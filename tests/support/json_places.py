"""Every place in a JSON value, and a document with one of them changed: for tests that
change one field of a document at a time."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st


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


def changed(doc: Any, where: tuple[Any, ...], junk: Any, drop: bool) -> Any:
    """A deep copy of ``doc`` with the value at ``where`` replaced by ``junk``, or dropped
    (``drop``, when it sits in an object)."""
    doc = copy.deepcopy(doc)
    at = doc
    for key in where[:-1]:
        at = at[key]
    if drop and isinstance(at, dict):
        del at[where[-1]]
    else:
        at[where[-1]] = junk
    return doc


def junk(*extra: Any) -> st.SearchStrategy[Any]:
    """Values of every JSON type, small, to put in a place; ``extra``: the caller's own."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.floats(allow_nan=False),
        st.text(max_size=5),
        st.just([]),
        st.just({}),
        *(st.just(value) for value in extra),
    )
