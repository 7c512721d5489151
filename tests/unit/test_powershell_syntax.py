"""Every .ps1 in the project parses with a real PowerShell grammar (tree-sitter-powershell).

A syntax error in a module only shows on a real Windows host (the lab runs Python twins),
so this is the one gate that catches it before a hospital host does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "node_modules", ".lab", "state", ".tox"}


def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def syntax_errors(source: bytes) -> list[str]:
    """Every ERROR or MISSING node as 'line:col kind', empty when the source parses cleanly."""
    found: list[str] = []
    stack = [_parser().parse(source).root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            kind = f"missing {node.type}" if node.is_missing else "syntax error"
            found.append(f"{node.start_point[0] + 1}:{node.start_point[1] + 1} {kind}")
        stack.extend(node.children)
    return sorted(found)


def project_scripts() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.ps1") if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts))


def test_there_are_scripts_to_check() -> None:
    assert any(p.name == "win_rebuild_baseline.ps1" for p in project_scripts())


@pytest.mark.parametrize("script", project_scripts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_script_parses(script: Path) -> None:
    errors = syntax_errors(script.read_bytes())
    assert not errors, f"{script.relative_to(ROOT)}: " + ", ".join(errors)


@pytest.mark.parametrize(
    "broken",
    [
        b"function Get-X { if ($a -eq 1) { 'one' }\n",  # unclosed function body
        b"$x = @{ a = 1; b = \n",  # unfinished hashtable
        b"foreach ($i in 1..3 { $i }\n",  # missing )
        b"try { 1 } catch { 2 \n",  # unclosed catch
    ],
)
def test_checker_catches_broken_snippets(broken: bytes) -> None:
    assert syntax_errors(broken)


def test_checker_accepts_valid_snippet() -> None:
    assert syntax_errors(b'$h = @{ a = 1 }\nforeach ($k in $h.Keys) { Write-Output "$k" }\n') == []
