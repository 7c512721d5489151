"""The house's one-way arrows, checked by reading every module's imports (no module is run)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rebuild"


def _imports(path: Path) -> set[str]:
    """Every module name `path` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_only_the_launcher_imports_ansible_runner() -> None:
    importers = [
        p.relative_to(ROOT).as_posix()
        for p in _modules(PACKAGE)
        if any(n == "ansible_runner" or n.startswith("ansible_runner.") for n in _imports(p))
    ]
    assert importers == ["rebuild/launcher.py"]


def test_harden_imports_nothing_from_the_orchestrator() -> None:
    climbing = {
        p.relative_to(ROOT).as_posix(): sorted(n for n in _imports(p) if n.startswith("rebuild.orchestrator"))
        for p in _modules(PACKAGE / "harden")
    }
    assert {k: v for k, v in climbing.items() if v} == {}


def test_the_leaves_import_no_room() -> None:
    leaves = ("contract.py", "datadir.py", "atomicfile.py", "lifecycle.py", "errors.py")
    for leaf in leaves:
        found = {n for n in _imports(PACKAGE / leaf) if n.startswith("rebuild")}
        assert found <= {"rebuild.errors"}, f"rebuild/{leaf} imports {sorted(found)}"


def test_the_scan_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ansible_runner.interface import init_runner\n")
    assert "ansible_runner.interface" in _imports(module)
