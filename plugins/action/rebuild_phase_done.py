"""Action plugin rebuild_phase_done: the end of a phase, as a result the orchestrator reads.

Each role's last task. It talks to no host: it returns `rebuild_phase: <phase>` and the `facts`
the journal keeps for that phase (image id, harden report, ...). The orchestrator recognises a
phase's end by that key in the runner event's result (rebuild.contract.phase_done), not by the
task's name. Options and result: plugins/modules/rebuild_phase_done.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rebuild.ansible_action import RebuildAction
from rebuild.contract import PHASE_DONE_KEY, PHASE_FACTS_KEY, PHASES


class ActionModule(RebuildAction):
    NAME = "rebuild_phase_done"

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        phase, facts = args.get("phase"), args.get("facts") or {}
        if phase not in PHASES:
            known = ", ".join(PHASES)
            return {"failed": True, "msg": f"{self.NAME}: phase must be one of {known}, got {phase!r}"}
        if not isinstance(facts, Mapping):
            return {"failed": True, "msg": f"{self.NAME}: facts must be a dict, got {type(facts).__name__}"}
        return {"changed": False, PHASE_DONE_KEY: phase, PHASE_FACTS_KEY: dict(facts)}
