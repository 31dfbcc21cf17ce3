"""The argv rewrite that lets ``--sla`` stand alone (DESIGN §5: inventory targets)."""

from __future__ import annotations

import pytest

from latcli.cli.options import bare_sla


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["bench", "w", "--sla"], ["bench", "w", "--sla", "inventory"]),
        (
            ["bench", "--sla", "weather", "-c", "2"],
            ["bench", "--sla", "inventory", "weather", "-c", "2"],
        ),
        (["bench", "w", "--sla", "--json"], ["bench", "w", "--sla", "inventory", "--json"]),
        (["bench", "w", "--sla", "p99<100ms"], ["bench", "w", "--sla", "p99<100ms"]),
        (
            ["bench", "w", "--sla", "rps>=5", "--sla"],
            ["bench", "w", "--sla", "rps>=5", "--sla", "inventory"],
        ),
        (["bench", "w", "--sla", "inventory"], ["bench", "w", "--sla", "inventory"]),
        (["capacity", "w", "--sla", "message"], ["capacity", "w", "--sla", "message"]),
        (["bench", "w", "--sla=p99<1s"], ["bench", "w", "--sla=p99<1s"]),
        (["send", "w", "--", "--sla"], ["send", "w", "--", "--sla"]),
        (["probe", "weather"], ["probe", "weather"]),
    ],
)
def test_bare_sla_gets_the_inventory_word(argv: list[str], expected: list[str]) -> None:
    assert bare_sla(argv) == expected
