"""How a model field is written in agents.yaml, declared on the field itself (model.py).

A dataclass field made with :func:`key`, :func:`nested` or :func:`file_key` metadata is also a
key of the file: its ``shape`` is what the file may hold there (a msgspec type with its
constraints and description), from which :mod:`latcli.config.schema` derives the sections and
the JSON Schema. A field made without them (``Agent.adhoc``, ``HealthConfig.method``) is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Annotated, Any, TypeVar

from msgspec import Meta

from latcli.core.breaker import BreakerConfig

T = TypeVar("T")

Duration = Annotated[
    float | str,
    Meta(description="A duration: 250ms, 5s, 1m, or a number of seconds."),
]
Percent = Annotated[
    float | str,
    Meta(description="A percentage: 50%, or a fraction between 0 and 1."),
]
AtLeastOne = Annotated[int, Meta(ge=1)]
Name = Annotated[str, Meta(description="Letters, digits, '.', '_' and '-'.")]

FILE_KEY = "latcli.file_key"  # the dataclass field metadata entry holding its FileKey


@dataclass(frozen=True)
class FileKey:
    """What the file may hold for one field; a dataclass ``shape`` is a nested section."""

    shape: Any
    nullable: bool = False  # `key: null` is accepted (and overrides the defaults' section)
    per_agent: bool = False  # under an agent only, never in `defaults`

    # The model dataclass this key's section builds, if the key is a section (asked per value).
    nested: type[Any] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        is_section = isinstance(self.shape, type) and is_dataclass(self.shape)
        object.__setattr__(self, "nested", self.shape if is_section else None)


def described(shape: Any, text: str) -> Any:
    """``shape`` with a description for the JSON Schema."""
    return Annotated[shape, Meta(description=text)]


def one_of(choices: tuple[str, ...], text: str | None = None) -> Any:
    """A string from ``choices`` (listed as the JSON Schema's enum; checks.py checks it)."""
    return Annotated[str, Meta(description=text, extra_json_schema={"enum": list(choices)})]


def file_key(shape: Any, *, nullable: bool = False, per_agent: bool = False) -> dict[str, FileKey]:
    """Field metadata saying the file writes this field as ``shape`` (for ``field(...)``)."""
    return {FILE_KEY: FileKey(shape, nullable, per_agent)}


def key(default: T, shape: Any, *, nullable: bool = False, per_agent: bool = False) -> T:
    """A dataclass field with ``default`` that the file writes as ``shape``."""
    got: T = field(
        default=default, metadata=file_key(shape, nullable=nullable, per_agent=per_agent)
    )
    return got


def nested(kind: type[T]) -> T:
    """A dataclass field holding a ``kind`` (its default), the file's section of that name."""
    got: T = field(default_factory=kind, metadata=file_key(kind))
    return got


# latcli.core knows nothing of files: the breaker's file forms are given here, by field name
# (a test checks they are exactly BreakerConfig's fields).
BREAKER_KEYS: dict[str, FileKey] = {
    "failures": FileKey(AtLeastOne),
    "failure_rate": FileKey(Percent),
    "window": FileKey(Duration),
    "min_calls": FileKey(AtLeastOne),
    "open_for": FileKey(Duration),
    "open_max": FileKey(Duration),
    "half_open_probes": FileKey(AtLeastOne),
}


def keys_of(kind: type[Any]) -> dict[str, FileKey]:
    """The file keys of a model dataclass, in field order."""
    if kind not in _KEYS:  # once per dataclass: build() asks for every section of every agent
        found = {f.name: f.metadata[FILE_KEY] for f in fields(kind) if FILE_KEY in f.metadata}
        _KEYS[kind] = BREAKER_KEYS if kind is BreakerConfig else found
    return _KEYS[kind]


_KEYS: dict[type[Any], dict[str, FileKey]] = {}
