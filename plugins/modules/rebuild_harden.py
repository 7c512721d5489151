#!/usr/bin/python
"""Documentation of the rebuild_harden action (plugins/action/rebuild_harden.py) for `ansible-doc`.

The action runs on the controller; this file holds no code (ansible.windows' layout)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rebuild_harden
short_description: Compile the hardening baseline for a host on the controller and apply it in one call
description:
  - Compiles C(baseline.yml) for the host's OS, kind, site and service (with its exceptions) on the
    controller, then applies it, or audits it in check mode, with one call of C(win_rebuild_baseline).
  - Fails the host, in apply mode, when any control failed; an audit fails only when the module could
    not run.
options:
  baseline:
    description: Path of the baseline (default C(baseline.yml) in the data directory).
    type: path
  exceptions:
    description: Path of the exceptions (default C(harden_exceptions.yml) in the data directory).
    type: path
  protected_accounts:
    description: Accounts hardening must never touch; the connection user is always added.
    type: list
    elements: str
  fail_on_manual:
    description: Fail the host when a manual-remediation control is not compliant.
    type: bool
    default: true
author: rebuild
"""

EXAMPLES = r"""
- name: Apply the baseline
  rebuild_harden:
    fail_on_manual: false
  register: harden__result
"""

RETURN = r"""
controls:
  description: Per control, what the module found and did.
  returned: success
  type: list
  elements: dict
report:
  description:
    - The host's report (C(rebuild.harden.report.HostReport) as a dict).
    - The journal keeps it as the host's C(harden) result.
  returned: success
  type: dict
summary:
  description: Compact form of the report.
  returned: success
  type: dict
pending_reboot:
  description: Controls that take effect only after a restart.
  returned: success
  type: list
  elements: str
"""
