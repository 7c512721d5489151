"""The shared base of rebuild's Ansible action plugins (plugins/action/).

Each action plugin used to repeat the same preamble; the base does it once:
- Options: the plugin takes exactly the options its documentation lists
  (plugins/modules/<name>.py, which `ansible-doc` renders), so the check and the
  documentation cannot drift. Ansible's own ActionBase refuses any other option, naming it.
- Data preload: `preload()` runs once when Ansible imports the plugin, in ansible-playbook's
  own process, before it forks a worker per host and task: every worker inherits the data
  already parsed. A problem there is not raised at import (the task reports it when it runs).
- The import guard: a plugin imports rebuild through this module only; on a controller without
  the rebuild package (pip install -e .) Ansible then refuses to load the plugin, naming the
  missing module, before any host is touched.

A plugin sets `NAME`, implements `act(args, task_vars)` and returns what to add to the result.
"""

from __future__ import annotations

import ast
import contextlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import yaml
from ansible.plugins.action import ActionBase

from rebuild.errors import RebuildError


def documented_options(doc_file: Path) -> frozenset[str]:
    """The option names of a plugin's DOCUMENTATION (read as text: the file is not imported)."""
    tree = ast.parse(doc_file.read_text(encoding="utf-8"), str(doc_file))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "DOCUMENTATION" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            doc = yaml.safe_load(node.value.value) or {}
            return frozenset((doc.get("options") or {}) if isinstance(doc, Mapping) else {})
    raise RebuildError(f"{doc_file}: no DOCUMENTATION")


class RebuildAction(ActionBase):  # type: ignore[misc]  # ansible ships no type hints
    """Base of rebuild's action plugins: documented options only, data preloaded, one `act`."""

    NAME: ClassVar[str] = ""
    TRANSFERS_FILES = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.NAME:
            raise TypeError(f"{cls.__name__}: set NAME to the plugin's name")
        source = sys.modules[cls.__module__].__file__
        assert source is not None
        cls._VALID_ARGS = documented_options(Path(source).resolve().parents[1] / "modules" / f"{cls.NAME}.py")
        with contextlib.suppress(RebuildError, OSError, ValueError):
            cls.preload()

    @classmethod
    def preload(cls) -> None:
        """Parse the data the plugin reads (catalogue, baseline...), once per ansible-playbook."""

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result: dict[str, Any] = super().run(tmp, task_vars)  # refuses undocumented options
        result.update(self.act(dict(self._task.args), task_vars))
        return result

    def run_action(self, name: str, args: dict[str, Any], task_vars: Any) -> dict[str, Any]:
        """Run another action plugin (e.g. ansible.builtin.copy) as part of this task, with `args`."""
        task = self._task.copy()
        task.args = args
        action = self._shared_loader_obj.action_loader.get(
            name,
            task=task,
            connection=self._connection,
            play_context=self._play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
        )
        return dict(action.run(task_vars=task_vars))

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """The plugin's work; returns what to add to the task's result."""
        raise NotImplementedError
