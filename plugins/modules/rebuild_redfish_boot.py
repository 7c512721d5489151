#!/usr/bin/python
"""Controller-side module: one-time network boot of a physical server through its BMC (Redfish)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rebuild_redfish_boot
short_description: One-time PXE boot and reset of a server through its BMC's Redfish API
description:
  - Sets C(Boot.BootSourceOverrideTarget) with C(BootSourceOverrideMode=UEFI) (the install is UEFI -
    a PXE boot in Legacy mode never reaches it) and C(BootSourceOverrideEnabled=Once) on the system,
    reads the override back, then resets it (C(ForceRestart), or C(On) when it is powered off), so the
    server network-boots once into its reimaging entry and boots its disk afterwards.
  - A BMC whose C(BootSourceOverrideEnabled@Redfish.AllowableValues) lacks C(Once) gets C(Continuous),
    as sushy does for such BMCs; the boot server's one-shot entry then sends every later network boot
    to the local disk. A BMC that cannot set UEFI mode, or that does not keep what was set, fails before
    the reset - nothing is rebooted.
  - Runs on the controller (delegated to C(localhost)); speaks plain Redfish over HTTP(S).
  - In check mode reads the system and reports what it would do, without any PATCH or reset.
options:
  bmc_address:
    description: Base URL of the BMC, e.g. C(https://10.11.0.21).
    type: str
    required: true
  system_id:
    description: Redfish system id; when omitted the BMC must expose exactly one system.
    type: str
  username:
    description: BMC account; omitted means no authentication.
    type: str
  password:
    description: BMC password.
    type: str
  boot_target:
    description: One-time boot source.
    type: str
    default: Pxe
    choices: [Pxe, UefiHttp, Cd]
  validate_certs:
    description: Check the BMC's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: CA bundle to check the BMC certificate against.
    type: path
  timeout:
    description: Seconds per HTTP request.
    type: int
    default: 15
author: rebuild
"""

EXAMPLES = r"""
- name: Network-boot the server once into its install entry
  rebuild_redfish_boot:
    bmc_address: "{{ rebuild_bmc_address }}"
    system_id: "{{ rebuild_redfish_system_id | default(omit) }}"
  delegate_to: localhost
"""

RETURN = r"""
system_id:
  description: The Redfish system that was (or would be) booted.
  returned: success
  type: str
power_state:
  description: Power state read before the reset.
  returned: success
  type: str
reset_type:
  description: The reset sent (ForceRestart or On).
  returned: success
  type: str
boot_target:
  description: The one-time boot source set.
  returned: success
  type: str
boot_enabled:
  description: The override mode set (Once, or Continuous when the BMC does not offer Once).
  returned: success
  type: str
boot_mode:
  description: The boot mode set (UEFI).
  returned: success
  type: str
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule


def _session(module: AnsibleModule) -> Any:
    import requests

    session = requests.Session()
    p = module.params
    if p["username"]:
        session.auth = (p["username"], p["password"] or "")
    session.verify = (p["ca_path"] or True) if p["validate_certs"] else False
    session.headers.update({"Accept": "application/json", "OData-Version": "4.0"})
    return session


def _call(
    module: AnsibleModule, session: Any, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    import requests

    url = module.params["bmc_address"].rstrip("/") + path
    try:
        response = session.request(method, url, json=body, timeout=module.params["timeout"])
    except requests.RequestException as exc:
        module.fail_json(msg=f"BMC {module.params['bmc_address']} unreachable: {method} {path}: {exc}")
    if response.status_code >= 400:
        module.fail_json(
            msg=f"BMC {module.params['bmc_address']} refused {method} {path}: HTTP {response.status_code}",
            status=response.status_code,
        )
    return response.json() if response.content else {}


def _override_enabled(module: AnsibleModule, boot: dict[str, Any]) -> str:
    """Once, or Continuous for a BMC that does not offer Once (sushy's handling of such BMCs)."""
    allowed = boot.get("BootSourceOverrideEnabled@Redfish.AllowableValues")
    if not isinstance(allowed, list) or "Once" in allowed:
        return "Once"
    if "Continuous" in allowed:
        return "Continuous"
    module.fail_json(
        msg=f"BMC {module.params['bmc_address']} offers no one-time or continuous boot override ({allowed})"
    )
    return ""  # not reached (fail_json exits)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "bmc_address": {"type": "str", "required": True},
            "system_id": {"type": "str"},
            "username": {"type": "str"},
            "password": {"type": "str", "no_log": True},
            "boot_target": {"type": "str", "default": "Pxe", "choices": ["Pxe", "UefiHttp", "Cd"]},
            "validate_certs": {"type": "bool", "default": True},
            "ca_path": {"type": "path"},
            "timeout": {"type": "int", "default": 15},
        },
        supports_check_mode=True,
    )
    session = _session(module)
    system_id = module.params["system_id"]
    if not system_id:
        members = _call(module, session, "GET", "/redfish/v1/Systems").get("Members", [])
        if len(members) != 1:
            module.fail_json(
                msg=f"BMC {module.params['bmc_address']} has {len(members)} systems; "
                "set rebuild_redfish_system_id"
            )
        system_id = members[0]["@odata.id"].rstrip("/").rsplit("/", 1)[-1]
    path = f"/redfish/v1/Systems/{system_id}"
    system = _call(module, session, "GET", path)
    power = str(system.get("PowerState", "Unknown"))
    reset = "On" if power == "Off" else "ForceRestart"
    boot = system.get("Boot") if isinstance(system.get("Boot"), dict) else {}
    enabled = _override_enabled(module, boot)
    modes = boot.get("BootSourceOverrideMode@Redfish.AllowableValues")
    if isinstance(modes, list) and "UEFI" not in modes:
        module.fail_json(
            msg=f"BMC {module.params['bmc_address']} cannot set BootSourceOverrideMode UEFI (offers {modes})"
        )
    result = {
        "changed": True,
        "system_id": system_id,
        "power_state": power,
        "reset_type": reset,
        "boot_target": module.params["boot_target"],
        "boot_enabled": enabled,
        "boot_mode": "UEFI",
    }
    if module.check_mode:
        module.exit_json(**result)
    wanted = {
        "BootSourceOverrideTarget": module.params["boot_target"],
        "BootSourceOverrideEnabled": enabled,
        "BootSourceOverrideMode": "UEFI",
    }
    _call(module, session, "PATCH", path, {"Boot": wanted})
    # Read it back: a BMC that accepted the PATCH but kept another target/mode would boot the disk
    # (or Legacy PXE) and the host would be waited for in vain.
    kept = _call(module, session, "GET", path).get("Boot") or {}
    differ = {k: kept.get(k) for k, v in wanted.items() if k in kept and kept.get(k) != v}
    if differ:
        module.fail_json(
            msg=f"BMC {module.params['bmc_address']} did not keep the boot override: set {wanted}, "
            f"reads {differ}; the server was not reset"
        )
    _call(module, session, "POST", f"{path}/Actions/ComputerSystem.Reset", {"ResetType": reset})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
