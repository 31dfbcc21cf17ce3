"""Small helpers every engine's one ``classify()`` uses to read an exception."""

from __future__ import annotations

from collections.abc import Iterator


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts, outermost first, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def first(found: list[BaseException], *types: type[BaseException]) -> BaseException | None:
    """The outermost exception of ``types`` in a :func:`chain` list, if any."""
    return next((e for e in found if isinstance(e, types)), None)


def text(exc: BaseException) -> str:
    """A short one-line description of ``exc`` (its class name if it has no text)."""
    words = " ".join(str(exc).split())
    return words[:200] if words else type(exc).__name__
