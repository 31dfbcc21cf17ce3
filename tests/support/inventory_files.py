"""Inventory files written in the working directory (the ``here`` fixture of tests/conftest.py
makes it an empty one), and the problem lines loading them gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from latcli.config.loading import load_inventory
from latcli.config.problems import InventoryError
from latcli.core.errors import ExitCode


def write(text: str) -> str:
    Path("agents.yaml").write_text(text, encoding="utf-8")
    return "agents.yaml"


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load_inventory(write(text), env or {})
    assert info.value.exit_code == ExitCode.USAGE
    assert str(info.value).splitlines() == [str(p) for p in info.value.problems]
    return str(info.value).splitlines()
