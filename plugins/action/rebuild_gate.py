"""Action plugin rebuild_gate: wait on the controller until the orchestrator lets this batch or host go.

`rebuild site` starts a batch's ansible-playbook while earlier batches are still reimaging, so
Ansible's start-up (inventory, playbook, roles) overlaps that work. It then holds it twice, each
time with one of these waits: once per batch before any host is touched (`run_once: true`), and
once per host before its reimage, until an imaging slot is free (the site's imaging capacity).
A batch of a wave's later stage, started while an earlier stage still runs, also waits per host
after harden until that stage is over (its redeploy gate: docs/site-run.md).
The orchestrator opens a wait by creating its file, only once the capacity is free and the
circuit breaker has looked at what is known so far. It can instead cancel it by creating
`<path>.cancel` (the site is stopping): the wait then fails with `rebuild_not_started: true`, so
the host leaves the playbook untouched and the orchestrator leaves it where it was. A wait it
never opens or cancels, because the run was stopped, ends with the run.

The file is only looked for on the controller; the wait talks to no host.

Options and result: plugins/modules/rebuild_gate.py (`ansible-doc -t module rebuild_gate`).
"""

from __future__ import annotations

import os
import time
from typing import Any

from rebuild.ansible_action import RebuildAction
from rebuild.contract import CANCEL_SUFFIX, NOT_STARTED_KEY


class ActionModule(RebuildAction):
    NAME = "rebuild_gate"

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        path = str(args.get("path") or "")
        if not path:
            return {"failed": True, "msg": "rebuild_gate: path is required"}
        timeout = float(args.get("timeout", 86400))
        poll = max(float(args.get("poll", 0.05)), 0.01)
        started = time.monotonic()
        while not os.path.exists(path):
            if os.path.exists(path + CANCEL_SUFFIX):
                with open(path + CANCEL_SUFFIX, encoding="utf-8") as handle:
                    why = handle.read().strip() or "the site is stopping"
                return {"failed": True, NOT_STARTED_KEY: True, "msg": f"not started: {why}"}
            if time.monotonic() - started > timeout:
                return {"failed": True, "msg": f"rebuild_gate: {path} did not open within {timeout:g} s"}
            time.sleep(poll)
        return {"changed": False, "waited_s": round(time.monotonic() - started, 2)}
