"""Action plugin rebuild_phase_done: the end of a phase, as a result the orchestrator reads.

Each role's last task. It talks to no host: it returns `rebuild_phase: <phase>` and the `facts`
the journal keeps for that phase (image id, harden report, ...). The orchestrator recognises a
phase's end by that key in the runner event's result (rebuild.contract.phase_done), not by the
task's name. Documentation: plugins/modules/rebuild_phase_done.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.plugins.action import ActionBase

try:
    from rebuild.contract import PHASE_DONE_KEY, PHASE_FACTS_KEY, PHASES
except ImportError as exc:  # the controller must have rebuild installed (pip install -e .)
    _IMPORT_ERROR: Exception | None = exc
else:
    _IMPORT_ERROR = None

_NAME = "rebuild_phase_done"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("phase", "facts"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        if _IMPORT_ERROR is not None:
            return {**result, "failed": True, "msg": f"{_NAME} needs the rebuild package: {_IMPORT_ERROR}"}
        phase = self._task.args.get("phase")
        facts = self._task.args.get("facts") or {}
        if phase not in PHASES:
            msg = f"{_NAME}: phase must be one of {', '.join(PHASES)}, got {phase!r}"
            return {**result, "failed": True, "msg": msg}
        if not isinstance(facts, Mapping):
            msg = f"{_NAME}: facts must be a dict, got {type(facts).__name__}"
            return {**result, "failed": True, "msg": msg}
        return {**result, "changed": False, PHASE_DONE_KEY: phase, PHASE_FACTS_KEY: dict(facts)}
