"""Parse PowerShell with the real grammar (tree-sitter-powershell) and refuse what 5.1 refuses.

Trees are cached by script name and content, so the lab parses each product script once per
process however many twins run it. Each tree is converted once into plain Python nodes (`Node`:
type, children, fields, text, position), so evaluation never crosses into tree-sitter's C objects,
which build new Python objects on every attribute access.

Syntax PowerShell 5.1 does not have fails as a parse error:
the grammar accepts some PowerShell 7 syntax (`&&`/`||` pipeline chains) and rejects the rest
(`??`, `?.`, `? :` appear as ERROR nodes), and both are reported the same way.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import tree_sitter
import tree_sitter_powershell

from rebuild.lab.ps.errors import PSParseError


class Node:
    """One syntax node of a parsed script, as plain Python data (the subset of tree_sitter.Node
    the lab reads, same names). `memo` holds facts the evaluator derives from the node alone."""

    __slots__ = (
        "children",
        "end_byte",
        "fields",
        "is_missing",
        "is_named",
        "memo",
        "named_children",
        "parent",
        "start_byte",
        "start_point",
        "text",
        "type",
    )

    def __init__(self, ts: tree_sitter.Node, parent: Node | None, source: bytes) -> None:
        self.type: str = ts.type
        self.children: list[Node] = []
        self.named_children: list[Node] = []
        self.fields: dict[str, Node] = {}
        self.parent = parent
        self.start_byte: int = ts.start_byte
        self.end_byte: int = ts.end_byte
        self.start_point: tuple[int, int] = (ts.start_point[0], ts.start_point[1])
        self.is_named: bool = ts.is_named
        self.is_missing: bool = ts.is_missing
        self.text: str = source[self.start_byte : self.end_byte].decode("utf-8", "replace")
        self.memo: dict[str, Any] = {}

    @property
    def child_count(self) -> int:
        return len(self.children)

    def child_by_field_name(self, name: str) -> Node | None:
        return self.fields.get(name)

    def __repr__(self) -> str:
        return f"<Node {self.type} {self.start_point[0] + 1}:{self.start_point[1] + 1}>"


def _convert(tree: tree_sitter.Tree, source: bytes) -> Node:
    """The tree as plain nodes, walked once with a cursor (no recursion: deep scripts are fine)."""
    cursor = tree.walk()
    root = Node(cursor.node, None, source)  # type: ignore[arg-type]
    current = root

    def add(parent: Node) -> Node:
        node = Node(cursor.node, parent, source)  # type: ignore[arg-type]
        parent.children.append(node)
        if node.is_named:
            parent.named_children.append(node)
        field_name = cursor.field_name
        if field_name is not None:
            parent.fields.setdefault(field_name, node)  # child_by_field_name: the first such child
        return node

    while True:
        if cursor.goto_first_child():
            current = add(current)
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return root
            assert current.parent is not None
            current = current.parent
        assert current.parent is not None
        current = add(current.parent)


# PowerShell 7 tokens that Windows PowerShell 5.1's parser does not know.
_PS7_TOKENS = {"&&": "the pipeline chain operator '&&'", "||": "the pipeline chain operator '||'"}


@dataclass
class Script:
    """One parsed script: its name (for messages), source, tree, and statement coverage."""

    name: str
    source: bytes
    root: Node
    statements: list[int] = field(default_factory=list)  # start bytes of every statement

    def where(self, node: Node) -> str:
        return f"{self.name}:{node.start_point[0] + 1}"

    def text(self, node: Node) -> str:
        return node.text


@lru_cache(maxsize=1)
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


_CACHE: dict[tuple[str, str], Script] = {}
# Twins run modules on several threads at once; a tree-sitter Parser must not be shared between them.
_LOCK = threading.Lock()


def parse(source: str | bytes, name: str = "<script>") -> Script:
    """The parsed script, from the cache when the same name and content were parsed before."""
    data = source.encode("utf-8") if isinstance(source, str) else source
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    key = (name, hashlib.sha256(data).hexdigest())
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        script = Script(name, data, _convert(_parser().parse(data), data))
        _check_51(script)
        script.statements = sorted(_statement_starts(script.root))
        if len(_CACHE) > 256:
            _CACHE.clear()
        _CACHE[key] = script
        return script


def _check_51(script: Script) -> None:
    stack: list[Any] = [script.root]
    while stack:
        node = stack.pop()
        if node.is_missing and _bareword_list_gap(script, node):
            continue
        if node.type == "ERROR" or node.is_missing:
            text = script.text(node).strip()[:40]
            if "?" in text:
                raise PSParseError(
                    f"{script.where(node)}: Windows PowerShell 5.1 cannot parse this script: "
                    f"unexpected token {text!r} "
                    "(the operators '??', '??=', '?.' and '? :' exist only in PowerShell 7)"
                )
            if re.search(r"\bclean\s*(\{|$)", script.text(node), re.I):
                raise PSParseError(
                    f"{script.where(node)}: Windows PowerShell 5.1 cannot parse this script: "
                    "the 'clean' block exists only in PowerShell 7.3"
                )
            # Not every grammar gap is a 5.1 error (e.g. `function f { param($a) $a }` on one line):
            # say which parser refused, and fail loudly rather than guess.
            raise PSParseError(
                f"{script.where(node)}: the lab's PowerShell grammar (tree-sitter-powershell) cannot parse "
                f"this script: unexpected token {text!r}"
            )
        if node.type in _PS7_TOKENS:
            raise PSParseError(
                f"{script.where(node)}: Windows PowerShell 5.1 cannot parse this script: "
                f"{_PS7_TOKENS[node.type]} exists only in PowerShell 7 "
                f"(The token '{node.type}' is not a valid statement separator in this version.)"
            )
        if node.type == "command" and _is_clean_block(script, node):
            raise PSParseError(
                f"{script.where(node)}: Windows PowerShell 5.1 cannot parse this script: "
                "the 'clean' block exists only in PowerShell 7.3"
            )
        stack.extend(node.children)


def _bareword_list_gap(script: Script, node: Node) -> bool:
    """`Select-Object Name,Status`: PowerShell reads comma-separated barewords as one array argument
    (about_Parsing, argument mode); the grammar gives `Name`, a MISSING separator, `,Status`, which
    the evaluator joins back into the array."""
    sep = node.parent
    following = None
    if sep is not None and sep.type == "command_argument_sep" and sep.parent is not None:
        siblings = sep.parent.children
        after = [i + 1 for i, c in enumerate(siblings) if c is sep]
        following = siblings[after[0]] if after and after[0] < len(siblings) else None
    return (
        following is not None and following.type == "generic_token" and script.text(following).startswith(",")
    )


def _is_clean_block(script: Script, node: Node) -> bool:
    name = node.child_by_field_name("command_name")
    if name is None or script.text(name).lower() != "clean":
        return False
    parent = node.parent
    while parent is not None and parent.type not in ("function_statement", "program"):
        parent = parent.parent
    return parent is not None and parent.type == "function_statement"


STATEMENT_TYPES = {
    "pipeline",
    "if_statement",
    "foreach_statement",
    "for_statement",
    "while_statement",
    "do_statement",
    "switch_statement",
    "try_statement",
    "trap_statement",
    "flow_control_statement",
    "function_statement",
}


def _statement_starts(root: Node) -> set[int]:
    """Every statement directly in a statement list (what coverage counts)."""
    found: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "statement_list":
            for child in node.named_children:
                if child.type in STATEMENT_TYPES:
                    found.add(child.start_byte)
        stack.extend(node.children)
    return found
