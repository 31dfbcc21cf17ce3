"""Renderers: return text or rich renderables, never print. Only this package imports rich."""

from __future__ import annotations

from enum import Enum


class OutputFormat(str, Enum):
    """How a command shows its result. Data goes to stdout; logs and progress to stderr."""

    HUMAN = "human"
    JSON = "json"
