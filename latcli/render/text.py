"""Agent text as a rich renderable: controls escaped (:mod:`latcli.core.escape`), rich markup never
interpreted (``[link=...]`` prints as those characters)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from latcli.core.escape import escape_controls

if TYPE_CHECKING:  # imported when used: the log paths that escape text need no rich
    from rich.text import Text


def agent_text(text: str, style: str = "") -> Text:
    """A renderable of untrusted ``text``: controls escaped, markup never interpreted."""
    from rich.text import Text

    return Text(escape_controls(text), style=style)


__all__ = ["agent_text"]
