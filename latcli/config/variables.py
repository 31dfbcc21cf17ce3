"""``${VAR}`` and ``${VAR:-default}`` in every string value of the inventory (shell semantics)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from latcli.config.problems import KeyPath, Report

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_BAD_VAR = re.compile(r"\$\{(?![A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})")


def expand(value: object, path: KeyPath, env: Mapping[str, str], report: Report) -> object:
    """``value`` with ``${VAR}`` / ``${VAR:-default}`` replaced in every string (not keys)."""
    if isinstance(value, str):
        return _expand_text(value, path, env, report)
    if isinstance(value, dict):
        return {k: expand(v, (*path, str(k)), env, report) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, (*path, i), env, report) for i, v in enumerate(value)]
    return value


def _expand_text(text: str, path: KeyPath, env: Mapping[str, str], report: Report) -> str:
    if _BAD_VAR.search(text):
        report.add(path, "malformed ${...} reference (use ${VAR} or ${VAR:-default})")

    def substitute(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        # Shell semantics of ':-': an empty variable also takes the default.
        if default is not None and not value:
            return default
        if value is None:
            report.add(path, f"undefined variable {name}")
            return ""
        return value

    return _VAR.sub(substitute, text)
