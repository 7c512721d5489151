"""Action plugin rebuild_boot_trigger: start a host's one-time network boot the way it can be started.

One task per host instead of three skipped-or-run ones (each task is a worker process per host
on the controller: over a fleet that is minutes of CPU). The method picks what runs:

  redfish      the rebuild_redfish_boot module (physical server: BMC one-time PXE + reset)
  hypervisor   the rebuild_hypervisor_boot module (virtual machine: one-time network boot)
  wake_on_lan  the rebuild_wake_on_lan action (PC: magic packet, in-process on the controller)

Options:
  method   one of the above (required)
  params   that method's options (dict), exactly as its own module documents them; options
           whose value is None are left out (the module's default applies)

Run it where those run today: on the controller (delegate_to: localhost), or on a Wake-on-LAN
relay. Use `no_log` when the params hold a credential (BMC password, hypervisor token).
Returns the chosen module's result plus `method`.
Interlock: in a dry run (`rebuild_dry_run` true) it refuses and sends nothing, whatever play
it is in (the orchestrator's dry run puts hosts in the render play only).
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

METHODS = {
    "redfish": "rebuild_redfish_boot",
    "hypervisor": "rebuild_hypervisor_boot",
    "wake_on_lan": "rebuild_wake_on_lan",
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("method", "params"))

    def run(self, tmp=None, task_vars=None):  # type: ignore[no-untyped-def]
        result = super().run(tmp, task_vars)
        if boolean((task_vars or {}).get("rebuild_dry_run", False), strict=False):
            msg = "rebuild_boot_trigger: refused in a dry run; nothing was sent"
            return {**result, "failed": True, "msg": msg}
        method = str(self._task.args.get("method") or "")
        params = self._task.args.get("params") or {}
        if method not in METHODS:
            msg = f"rebuild_boot_trigger: method {method!r} is not one of {sorted(METHODS)}"
            return {**result, "failed": True, "msg": msg}
        if not isinstance(params, dict):
            return {**result, "failed": True, "msg": "rebuild_boot_trigger: params must be a dict"}
        params = {k: v for k, v in params.items() if v is not None}
        module = METHODS[method]
        if method == "wake_on_lan":
            # The WoL action sends the packet in-process on the controller (no Python module run).
            result.update(self._run_action(module, params, task_vars))
        else:
            result.update(self._execute_module(module_name=module, module_args=params, task_vars=task_vars))
        result["method"] = method
        return result

    def _run_action(self, name: str, params: dict[str, Any], task_vars: Any) -> dict[str, Any]:
        task = self._task.copy()
        task.args = params
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
