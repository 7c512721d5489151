"""No import circle among rebuild's modules, and every lab module imports on its own.

The graph is read from every module's source (`ast`), with the imports inside functions (a late
import hides a circle, it does not break it) and without those under `if TYPE_CHECKING:` (they
never run: a type named back is not a circle at run time).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rebuild"

# Circles known and accepted: none. A new circle fails (docs/architecture.md, "The rooms").
KNOWN: set[frozenset[str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(tree: ast.Module) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                hidden.update(id(n) for n in ast.walk(statement))
    return hidden


def imports_of(name: str, source: str) -> set[str]:
    """The rebuild modules `source` (module `name`) imports when it runs."""
    tree = ast.parse(source)
    hidden = _type_checking_only(tree)
    package = name if MODULES.get(name, Path()).name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected parts of more than one module (Tarjan), each as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _graph() -> dict[str, set[str]]:
    return {n: imports_of(n, p.read_text(encoding="utf-8")) for n, p in MODULES.items()}


def test_the_cycle_finder_sees_a_circle_hidden_in_a_function() -> None:
    a = "from rebuild.errors import RebuildError\n"
    b = "def late():\n    from rebuild import model\n"
    graph = {
        "rebuild.model": imports_of("rebuild.model", a),
        "rebuild.errors": imports_of("rebuild.errors", b),
    }
    assert circles(graph) == [["rebuild.errors", "rebuild.model"]]
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from rebuild import model\n"
    assert imports_of("rebuild.errors", typed) == set()


def test_no_import_circle_among_rebuild_modules() -> None:
    new = [c for c in circles(_graph()) if frozenset(c) not in KNOWN]
    assert not new, "import circle(s): " + "; ".join(" <-> ".join(c) for c in new)


def test_each_lab_module_imports_alone() -> None:
    """Each lab module imported first, with no other rebuild module loaded before it: an
    import circle that only works in one order fails here."""
    lab = [n for n in MODULES if n.startswith("rebuild.lab")]
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {lab!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'rebuild' or m.startswith('rebuild.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "", out.stdout
