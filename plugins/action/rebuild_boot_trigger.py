"""Action plugin rebuild_boot_trigger: start a host's one-time network boot the way it can be started.

One task per host instead of three skipped-or-run ones (each task is a worker process per host
on the controller: over a fleet that is minutes of CPU). The method picks what runs:

  redfish      the rebuild_redfish_boot module (physical server: BMC one-time PXE + reset)
  hypervisor   the rebuild_hypervisor_boot module (virtual machine: one-time network boot)
  wake_on_lan  the rebuild_wake_on_lan action (PC: magic packet, in-process on the controller)

Which variable feeds which option of each is the table `METHODS` below, and only there: only
the chosen method's variables are templated (a PC never looks up a BMC credential).
Options and result: plugins/modules/rebuild_boot_trigger.py.

Run it where those run today: on the controller (delegate_to: localhost), or on a Wake-on-LAN
relay. Use `no_log` for the methods with a credential (BMC password, hypervisor token).
Interlock: in a dry run (`rebuild_dry_run` true) it refuses and sends nothing, whatever play
it is in (the orchestrator's dry run puts hosts in the render play only).
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean

from rebuild.ansible_action import RebuildAction


class Method:
    """A boot trigger: the module it runs and, per module option, the variable it reads
    (inventory host vars, docs/contracts.md; role defaults, roles/reimage/defaults/main.yml)."""

    def __init__(
        self,
        module: str,
        required: dict[str, str],
        optional: dict[str, str],
        blank_is_unset: tuple[str, ...] = (),
    ) -> None:
        self.module, self.required, self.optional = module, required, optional
        self.blank_is_unset = blank_is_unset  # options whose empty value means "not set"


_TLS = {"validate_certs": "reimage__validate_certs", "ca_path": "reimage__ca_path"}
METHODS = {
    "redfish": Method(
        "rebuild_redfish_boot",
        required={"bmc_address": "rebuild_bmc_address"},
        optional={
            "system_id": "rebuild_redfish_system_id",
            "username": "reimage__bmc_user",
            "password": "reimage__bmc_password",
            **_TLS,
        },
        blank_is_unset=("system_id", "username", "password"),
    ),
    "hypervisor": Method(
        "rebuild_hypervisor_boot",
        required={
            "url": "rebuild_hypervisor_url",
            "vm_ref": "rebuild_vm_ref",
            "token": "reimage__hypervisor_token",
        },
        optional=_TLS,
    ),
    "wake_on_lan": Method(
        "rebuild_wake_on_lan",
        required={"mac": "rebuild_mac", "broadcast": "rebuild_wol_broadcast"},
        optional={"port": "rebuild_wol_port", "count": "reimage__wol_count"},
    ),
}


class ActionModule(RebuildAction):
    NAME = "rebuild_boot_trigger"

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        if boolean(task_vars.get("rebuild_dry_run", False), strict=False):
            return {"failed": True, "msg": "rebuild_boot_trigger: refused in a dry run; nothing was sent"}
        name = str(args.get("method") or "")
        method = METHODS.get(name)
        if method is None:
            return {
                "failed": True,
                "msg": f"rebuild_boot_trigger: method {name!r} is not one of {sorted(METHODS)}",
            }
        params: dict[str, Any] = {}
        for option, variable in {**method.required, **method.optional}.items():
            value = self._templar.template(task_vars[variable]) if variable in task_vars else None
            if value is None or (value == "" and option in method.blank_is_unset):
                if option in method.required:
                    msg = f"rebuild_boot_trigger: method {name} needs the host variable {variable} ({option})"
                    return {"failed": True, "msg": msg}
                continue  # the module's default applies
            params[option] = value
        if name == "wake_on_lan":
            # The WoL action sends the packet in-process on the controller (no Python module run).
            result = self.run_action(method.module, params, task_vars)
        else:
            result = self._execute_module(module_name=method.module, module_args=params, task_vars=task_vars)
        return {**result, "method": name}
