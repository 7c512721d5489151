"""The parser's plain nodes mirror tree-sitter's tree exactly (issue 15: the evaluator reads plain
Python nodes, converted once per parsed script, instead of tree-sitter's C objects)."""

from __future__ import annotations

from typing import Any

import pytest
import tree_sitter

from rebuild.lab.exec.modules.product import script_source
from rebuild.lab.ps.parser import Node, _parser, parse

SNIPPET = """
function Set-Thing {
    [CmdletBinding()]
    param([Parameter(Mandatory=$true)][string]$Name, [switch]$Force)
    if ($Name -eq 'a') { 'one' } elseif ($Force) { 'two' } else { "three $Name" }
}
$x = Get-Service -Name Spooler | Where-Object { $_.Status -eq 'Running' }
Select-Object Name,Status
"""


def _same(ts: tree_sitter.Node, node: Node, source: bytes) -> None:
    assert (node.type, node.start_byte, node.end_byte, node.start_point) == (
        ts.type,
        ts.start_byte,
        ts.end_byte,
        (ts.start_point[0], ts.start_point[1]),
    )
    assert (node.is_named, node.is_missing, node.child_count) == (ts.is_named, ts.is_missing, ts.child_count)
    assert node.text == source[ts.start_byte : ts.end_byte].decode("utf-8", "replace")
    assert [c.start_byte for c in node.named_children] == [c.start_byte for c in ts.named_children]
    fields = {ts.field_name_for_child(i) for i in range(ts.child_count)} - {None}
    for name in fields:
        assert name is not None
        want: Any = ts.child_by_field_name(name)
        got = node.child_by_field_name(name)
        assert got is not None and (got.start_byte, got.end_byte, got.type) == (
            want.start_byte,
            want.end_byte,
            want.type,
        )
    assert node.child_by_field_name("no_such_field") is None
    for child in node.children:
        assert child.parent is node


@pytest.mark.parametrize("name", ["win_rebuild_baseline", "win_rebuild_apps", "snippet"])
def test_plain_nodes_mirror_the_tree_sitter_tree(name: str) -> None:
    text = SNIPPET if name == "snippet" else script_source(name)
    script = parse(text, f"{name}.ps1")
    tree = _parser().parse(script.source)
    pairs: list[tuple[tree_sitter.Node, Node]] = [(tree.root_node, script.root)]
    seen = 0
    while pairs:
        ts, node = pairs.pop()
        _same(ts, node, script.source)
        pairs.extend(zip(ts.children, node.children, strict=True))
        seen += 1
    assert seen > 50


def test_a_deeply_nested_script_converts_without_recursion() -> None:
    depth = 3000
    script = parse("$x = " + "(" * depth + "1" + ")" * depth, "deep.ps1")
    deepest = 0
    stack = [(script.root, 0)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((c, level + 1) for c in node.children)
    assert deepest > depth
