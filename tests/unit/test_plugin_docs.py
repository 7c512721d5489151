"""`ansible-doc` renders every plugin of ours, and each action documents exactly the options it takes."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"


def _names(folder: str) -> list[str]:
    return sorted(p.stem for p in (PLUGINS / folder).glob("*.py") if not p.name.startswith("_"))


# An action-backed module is documented by plugins/modules/<name>.py (ansible.windows' layout).
PLUGIN_NAMES = {
    "module": sorted({*_names("modules"), *_names("action")}),
    "lookup": _names("lookup"),
    "inventory": _names("inventory"),
    "vars": _names("vars"),
}


def _ansible_doc(kind: str, names: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    exe = Path(sys.executable).with_name("ansible-doc")
    return subprocess.run(
        [str(exe), "-t", kind, "--json", *names],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("kind", sorted(PLUGIN_NAMES))
def test_ansible_doc_renders_every_plugin_of_ours(kind: str) -> None:
    names = PLUGIN_NAMES[kind]
    assert names
    run = _ansible_doc(kind, names)
    assert run.returncode == 0 and "[ERROR]" not in run.stderr and "[WARNING]" not in run.stderr, run.stderr
    docs = json.loads(run.stdout)
    assert sorted(docs) == names
    for name, entry in docs.items():
        doc = entry.get("doc") or {}
        assert doc.get("short_description") and doc.get("description"), f"{kind} {name}: no description"


def _doc_options(name: str) -> set[str]:
    tree = ast.parse((PLUGINS / "modules" / f"{name}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "DOCUMENTATION" for t in node.targets
        ):
            assert isinstance(node.value, ast.Constant)
            return set((yaml.safe_load(node.value.value) or {}).get("options") or {})
    raise AssertionError(f"plugins/modules/{name}.py has no DOCUMENTATION")


@pytest.mark.parametrize("name", _names("action"))
def test_each_action_takes_exactly_its_documented_options(name: str) -> None:
    import importlib.util

    path = PLUGINS / "action" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_rebuild_action_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as Ansible's plugin loader does
    spec.loader.exec_module(module)
    assert set(module.ActionModule._VALID_ARGS) == _doc_options(name)


def test_the_base_reads_options_from_the_documentation_only(tmp_path: Path) -> None:
    from rebuild.ansible_action import RebuildAction, documented_options
    from rebuild.errors import RebuildError

    assert documented_options(PLUGINS / "modules" / "rebuild_gate.py") == {"path", "timeout", "poll"}
    bare = tmp_path / "bare.py"
    bare.write_text("x = 1\n")
    with pytest.raises(RebuildError, match="no DOCUMENTATION"):
        documented_options(bare)
    with pytest.raises(TypeError, match="set NAME"):

        class Nameless(RebuildAction):  # a plugin must say which documentation is its own
            pass


def test_an_action_runs_another_action_for_its_task_with_other_arguments() -> None:
    """RebuildAction.run_action (rebuild_boot_trigger's Wake-on-LAN, rebuild_boot_entry's copy to a
    remote boot server): the other plugin gets a copy of the task with the new arguments and this
    task's connection; its result comes back; the task itself is left as it was."""
    import importlib.util
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location(
        "_rebuild_action_run_action", PLUGINS / "action" / "rebuild_boot_trigger.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)

    class Task:
        def __init__(self, args: dict[str, object]) -> None:
            self.args = args

        def copy(self) -> Task:
            return Task(dict(self.args))

    asked: list[tuple[str, dict[str, object]]] = []

    class Other:
        def __init__(self, task: Task, **context: object) -> None:
            self.task, self.context = task, context

        def run(self, task_vars: dict[str, object]) -> dict[str, object]:
            return {
                "changed": True,
                "args": self.task.args,
                "vars": task_vars,
                "connection": self.context["connection"],
            }

    def get(name: str, task: Task, **context: object) -> Other:
        asked.append((name, task.args))
        return Other(task, **context)

    action = object.__new__(module.ActionModule)
    action._task = Task({"method": "wake_on_lan"})
    action._shared_loader_obj = SimpleNamespace(action_loader=SimpleNamespace(get=get))
    action._connection, action._play_context, action._loader, action._templar = "conn", None, None, None
    result = action.run_action("ansible.builtin.copy", {"src": "a", "dest": "b"}, {"x": 1})
    assert asked == [("ansible.builtin.copy", {"src": "a", "dest": "b"})]
    assert result == {
        "changed": True,
        "args": {"src": "a", "dest": "b"},
        "vars": {"x": 1},
        "connection": "conn",
    }
    assert action._task.args == {"method": "wake_on_lan"}
