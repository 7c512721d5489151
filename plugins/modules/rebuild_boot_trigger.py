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
  - Use C(no_log) when the params hold a credential (BMC password, hypervisor token).
options:
  method:
    description: Which trigger runs.
    type: str
    required: true
    choices: [redfish, hypervisor, wake_on_lan]
  params:
    description:
      - That method's options, exactly as its own module documents them.
      - Options whose value is None are left out (the module's default applies).
    type: dict
    default: {}
author: rebuild
"""

EXAMPLES = r"""
- name: One-time network boot
  rebuild_boot_trigger:
    method: wake_on_lan
    params:
      mac: "{{ rebuild_mac }}"
      broadcast: "{{ rebuild_wol_broadcast }}"
  delegate_to: localhost
"""

RETURN = r"""
method:
  description: The method that ran.
  returned: always
  type: str
"""
