"""Text from agents is text (DESIGN §7): no control sequence reaches a terminal.

An agent's reply, card, error message or reason phrase may carry ESC sequences (an OSC title,
clear-screen, an OSC 8 hyperlink), bare CRs that overwrite a line, or bidi overrides that
reorder what a reader sees. :func:`escape_controls` makes every such character visible as a
Python-style escape; :func:`json_safe` does the same inside JSON text. Rich renderables of
agent text: :func:`latcli.render.text.agent_text`.
"""

from __future__ import annotations

import re

# C0 except \t and \n, DEL, C1; the Unicode bidi controls (LRM, RLM, ALM, embeddings,
# overrides and isolates: the "Trojan Source" set, CVE-2021-42574); line/paragraph separators.
_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _shown(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character spelled out (``\\x1b``, ``\\u202e``); newlines and
    tabs are kept. Text without one comes back as the same object (the common case is free)."""
    if text.isprintable():  # C speed: every character escaped here is Cc, Cf, Zl or Zp
        return text
    return _CONTROLS.sub(_shown, text) if _CONTROLS.search(text) else text


# What JSON may carry raw but a terminal would act on (json.dumps escapes only C0 and, with
# ensure_ascii=False, leaves DEL, C1 and the bidi controls as they are).
_JSON_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_safe(doc: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with the characters above
    written as ``\\u`` escapes (four hex digits): the same document, harmless on a terminal.
    These characters can only be inside strings, where the escape means the same character."""
    if not _JSON_RAW.search(doc):
        return doc
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", doc)


def terminal_reply(text: str, *, terminal: bool, raw: bool) -> str:
    """What ``latcli send`` writes for a reply: escaped on a terminal, as it came when piped
    (byte-exact for scripts) or with ``--raw``."""
    return text if raw or not terminal else escape_controls(text)


__all__ = ["escape_controls", "json_safe", "terminal_reply"]
