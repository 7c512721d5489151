#!/usr/bin/python
"""Controller-side module: network-boot a virtual machine through the site hypervisor's REST API."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rebuild_hypervisor_boot
short_description: Network-boot a virtual machine once through the hypervisor API
description:
  - Reads the VM's power state, then asks the hypervisor to power it on (when off) or reset it
    (when on) with a one-time network boot, so it starts its reimaging entry
    (API in docs/hypervisor-api.md - C(GET /vms/{ref}), C(POST /vms/{ref}/power)).
  - Runs on the controller (delegated to C(localhost)). In check mode it reads the VM and reports
    what it would do, without any power action.
options:
  url:
    description: Base URL of the hypervisor API (site group variable C(rebuild_hypervisor_url)).
    type: str
    required: true
  vm_ref:
    description: The hypervisor's reference of the VM (C(rebuild_vm_ref)).
    type: str
    required: true
  token:
    description: API token, sent as an C(Authorization) C(Bearer) header.
    type: str
    required: true
  boot:
    description: Boot device for this one boot.
    type: str
    default: network
    choices: [network, disk]
  validate_certs:
    description: Check the API's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: CA bundle to check it against.
    type: path
  timeout:
    description: Seconds per HTTP request.
    type: int
    default: 15
author: rebuild
"""

EXAMPLES = r"""
- name: Network-boot the VM once
  rebuild_hypervisor_boot:
    url: "{{ rebuild_hypervisor_url }}"
    vm_ref: "{{ rebuild_vm_ref }}"
    token: "{{ reimage__hypervisor_token }}"
  delegate_to: localhost
  no_log: true
"""

RETURN = r"""
vm_ref:
  description: The VM acted on.
  returned: success
  type: str
power_state:
  description: Power state before the action.
  returned: success
  type: str
action:
  description: The power action sent (C(on) or C(reset)).
  returned: success
  type: str
"""

from typing import Any
from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule


def _call(module: AnsibleModule, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import requests

    p = module.params
    url = p["url"].rstrip("/") + path
    verify: Any = (p["ca_path"] or True) if p["validate_certs"] else False
    try:
        response = requests.request(
            method,
            url,
            json=body,
            timeout=p["timeout"],
            verify=verify,
            headers={"Authorization": f"Bearer {p['token']}", "Accept": "application/json"},
        )
    except requests.RequestException as exc:
        module.fail_json(msg=f"hypervisor API {p['url']} unreachable: {method} {path}: {type(exc).__name__}")
    if response.status_code >= 400:
        detail = ""
        try:
            body = response.json()
            detail = str(body.get("message") or body.get("error") or "")
        except ValueError:
            pass
        module.fail_json(
            msg=f"hypervisor API refused {method} {path}: HTTP {response.status_code} {detail}".strip()
        )
    return response.json() if response.content else {}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "vm_ref": {"type": "str", "required": True},
            "token": {"type": "str", "required": True, "no_log": True},
            "boot": {"type": "str", "default": "network", "choices": ["network", "disk"]},
            "validate_certs": {"type": "bool", "default": True},
            "ca_path": {"type": "path"},
            "timeout": {"type": "int", "default": 15},
        },
        supports_check_mode=True,
    )
    ref = module.params["vm_ref"]
    path = f"/vms/{quote(ref, safe='')}"
    vm = _call(module, "GET", path)
    power = str(vm.get("power_state", vm.get("power", "unknown")))
    action = "on" if power.lower() == "off" else "reset"
    result = {"changed": True, "vm_ref": ref, "power_state": power, "action": action}
    if not module.check_mode:
        _call(module, "POST", f"{path}/power", {"action": action, "boot": module.params["boot"]})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
