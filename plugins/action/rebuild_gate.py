"""Action plugin rebuild_gate: wait on the controller until the orchestrator opens this batch's gate.

`rebuild site` starts a batch's ansible-playbook while the previous batch is still reimaging, so
Ansible's start-up (inventory, playbook, roles) overlaps that work; the batch then waits here,
before it touches any host, until the orchestrator creates the gate file - which it does only
once the imaging capacity is free and the circuit breaker has looked at what is known so far.
If the orchestrator cancels the batch instead, nothing was touched.

Run it once per batch (`run_once: true`); it talks to no host.

Options:
  path     the gate file to wait for (required)
  timeout  seconds before giving up (default 86400: a wave can take hours)
  poll     seconds between looks (default 0.05: the next batch waits on it)
"""

from __future__ import annotations

import os
import time

from ansible.plugins.action import ActionBase

_ARGS = frozenset(("path", "timeout", "poll"))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = _ARGS

    def run(self, tmp=None, task_vars=None):  # type: ignore[no-untyped-def]
        result = super().run(tmp, task_vars)
        args = self._task.args
        path = str(args.get("path") or "")
        if not path:
            return {**result, "failed": True, "msg": "rebuild_gate: path is required"}
        timeout = float(args.get("timeout", 86400))
        poll = max(float(args.get("poll", 0.05)), 0.01)
        started = time.monotonic()
        while not os.path.exists(path):
            if time.monotonic() - started > timeout:
                return {**result, "failed": True, "msg": f"rebuild_gate: {path} did not open within {timeout:g} s"}
            time.sleep(poll)
        return {**result, "changed": False, "waited_s": round(time.monotonic() - started, 2)}
