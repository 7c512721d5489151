#!/usr/bin/python
"""Documentation of the rebuild_boot_trigger action (plugins/action/rebuild_boot_trigger.py),
for `ansible-doc`.

The action runs on the controller; this file holds no code (ansible.windows' layout)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rebuild_boot_trigger
short_description: Start a host's one-time network boot the way it can be started
description:
  - One task per host picks the method and runs it - C(redfish) runs C(rebuild_redfish_boot) (physical
    server, BMC one-time PXE and reset), C(hypervisor) runs C(rebuild_hypervisor_boot) (virtual machine),
    C(wake_on_lan) runs the C(rebuild_wake_on_lan) action (PC, magic packet, in-process on the controller).
  - Interlock - in a dry run (C(rebuild_dry_run) true) it refuses and sends nothing, whatever play it is in.
  - Each method reads its options from host variables, and only the chosen method's are templated -
    C(redfish) from C(rebuild_bmc_address), C(rebuild_redfish_system_id), C(reimage__bmc_user),
    C(reimage__bmc_password); C(hypervisor) from C(rebuild_hypervisor_url), C(rebuild_vm_ref),
    C(reimage__hypervisor_token); both TLS options from C(reimage__validate_certs) and C(reimage__ca_path);
    C(wake_on_lan) from C(rebuild_mac), C(rebuild_wol_broadcast), C(rebuild_wol_port), C(reimage__wol_count).
    The table is C(METHODS) in plugins/action/rebuild_boot_trigger.py.
  - Use C(no_log) for the methods with a credential (BMC password, hypervisor token).
options:
  method:
    description: Which trigger runs.
    type: str
    required: true
    choices: [redfish, hypervisor, wake_on_lan]
author: rebuild
"""

EXAMPLES = r"""
- name: One-time network boot
  rebuild_boot_trigger:
    method: "{{ reimage__trigger }}"
  delegate_to: localhost
  no_log: "{{ reimage__trigger != 'wake_on_lan' }}"
"""

RETURN = r"""
method:
  description: The method that ran.
  returned: always
  type: str
"""
