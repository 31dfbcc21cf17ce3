"""agents.yaml read as YAML with a line for every key path, so problems say FILE:LINE.

PyYAML composes the node tree (every node knows its line); the key-path -> line map goes into
the :class:`~latcli.config.problems.Report`, duplicate keys and alias bombs are problems.
"""

from __future__ import annotations

from typing import Any

import yaml

from latcli.config.problems import KeyPath, Problem, Report, format_path


def parse_yaml(text: str, report: Report) -> object:
    """The document as plain Python data, filling ``report.lines``; None on YAML errors."""
    # libyaml's parser when present: same marks, ~8x faster (docs/benchmarks.md, probe over 1,000).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        bomb = alias_bomb(node) if "&" in text else None  # no anchor, no alias
        if bomb is not None:
            report.add_at(
                bomb.start_mark.line + 1,
                f"YAML aliases here expand past {ALIAS_BUDGET:,} nodes (an alias bomb?);"
                " write the values out",
            )
            return None
        _record_lines(node, (), report, set(), set())
        return loader.construct_document(node)
    except RecursionError:
        report.add_at(None, "invalid YAML: nested too deeply")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        report.add_at(mark.line + 1 if mark else None, f"invalid YAML: {exc.problem}")
    except yaml.YAMLError as exc:
        report.add_at(None, f"invalid YAML: {exc}")
    finally:
        loader.dispose()
    return None


# Nodes that aliases (and merge keys) may add to the document beyond those written: a
# 1,000-agent inventory merging a defaults anchor into each agent adds ~20,000; a 400-byte
# "billion laughs" adds 9^9. Past this, loading would take minutes and gigabytes.
ALIAS_BUDGET = 100_000


def _node_children(node: yaml.Node) -> list[yaml.Node]:
    """Every node ``node`` holds: items, or keys and values (merge keys included)."""
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def alias_bomb(root: yaml.Node) -> yaml.Node | None:
    """The node where aliases multiply the document past :data:`ALIAS_BUDGET` nodes, or None.

    Sizes are counted on the composed graph (an alias is a shared node), once per distinct
    node and without recursion, so the check costs O(nodes written) whatever they expand to.
    """
    size: dict[int, int] = {}
    children: dict[int, list[yaml.Node]] = {}
    stack = [root]
    while stack:
        node = stack[-1]
        kids = children.get(id(node))
        if kids is None:  # first visit: its collections go on the stack, scalars count 1
            kids = children[id(node)] = _node_children(node)
            for c in kids:
                if isinstance(c, yaml.ScalarNode):
                    size[id(c)] = 1
                elif id(c) not in children:
                    stack.append(c)
            continue
        stack.pop()  # its children are sized (a recursive alias, reported later, counts 0)
        size.setdefault(id(node), 1 + sum(size.get(id(c), 0) for c in kids))
    if size[id(root)] - len(size) <= ALIAS_BUDGET:
        return None
    node = root  # go down the heaviest branch to where the multiplying happens
    while True:
        heaviest = max(children.get(id(node), ()), key=lambda c: size.get(id(c), 0), default=None)
        if heaviest is None or size.get(id(heaviest), 0) <= ALIAS_BUDGET:
            return node
        node = heaviest


def _record_lines(
    node: yaml.Node, path: KeyPath, report: Report, seen: set[int], stack: set[int]
) -> None:
    """Map every key path to its line; report duplicate keys; refuse recursive aliases."""
    if id(node) in stack:
        raise yaml.composer.ComposerError(None, None, "recursive alias", node.start_mark)
    report.lines.setdefault(path, node.start_mark.line + 1)
    # An alias re-uses a node: walk it once, so its other uses take the alias's line.
    if id(node) in seen:
        return
    seen.add(id(node))
    stack.add(id(node))
    for key, child in _children(node, path, report):
        report.lines.setdefault((*path, key), child.start_mark.line + 1)
        _record_lines(child, (*path, key), report, seen, stack)
    stack.discard(id(node))


def _children(node: yaml.Node, path: KeyPath, report: Report) -> list[tuple[str | int, Any]]:
    """A node's (key, child) pairs; a repeated key is reported (PyYAML keeps the last)."""
    if isinstance(node, yaml.SequenceNode):
        return list(enumerate(node.value))
    if not isinstance(node, yaml.MappingNode):
        return []
    out: list[tuple[str | int, Any]] = []
    first: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key == "<<":  # a merge key: its keys land in this mapping when constructed
            continue
        line = key_node.start_mark.line + 1
        if key in first:
            message = f"duplicate key '{key}' (first at line {first[key]})"
            report.problems.append(Problem(report.file, line, format_path((*path, key)), message))
        first.setdefault(key, line)
        out.append((key, value_node))
    return out
