"""``latcli schema``: the inventory's JSON Schema."""

from __future__ import annotations


def schema() -> int:
    """Print the JSON Schema of agents.yaml (for editors and CI validation)."""
    import json

    from latcli.config.schema import inventory_json_schema

    print(json.dumps(inventory_json_schema(), indent=2))
    return 0
