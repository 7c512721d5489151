# Documentation only: the module is win_rebuild_baseline.ps1 (ansible.windows style).
# The lab (rebuild/lab/exec/argspec.py) validates arguments against the `options` below before it
# runs the .ps1 itself, so this file is the single argument spec both honour.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_rebuild_baseline
short_description: Apply or audit a compiled hardening baseline in one invocation
description:
  - Takes the whole list of controls compiled for one host (rebuild's C(rebuild_harden) action
    plugin compiles C(inventories/data/baseline.yml) for the host's OS, kind and exceptions)
    and checks, then applies, every setting in one module run - one WinRM round trip instead
    of one per setting.
  - Controls with I(cuts_remote_management=true) are applied after every other control, and
    only when every other control succeeded; otherwise they are reported as skipped.
  - Accounts in I(protected_accounts), and the account the module runs as, are never renamed,
    disabled or removed from a group.
  - Settings Windows enforces only after a restart (I(reboot_required=true)) are written and
    reported with C(pending_reboot) until the host has restarted.
  - Supports check mode, which audits without changing anything.
options:
  controls:
    description:
      - The compiled controls, in the order to apply them.
    type: list
    elements: dict
    required: true
    options:
      id:
        description: Stable control id, e.g. C(GHAL-NET-001).
        type: str
        required: true
      title:
        description: One-line title, echoed in the result.
        type: str
        default: ''
      cuts_remote_management:
        description: The control can cut WinRM, RDP or the local admin; applied last.
        type: bool
        default: false
      reboot_required:
        description: Windows enforces the control's settings only after a restart.
        type: bool
        default: false
      requires:
        description:
          - Host capability checked first; when missing the control is reported C(not_applicable).
        type: str
        default: ''
        choices: ['', virtualization_based_security]
      remediation:
        description:
          - C(manual) controls are audited only (no supported local way to set them).
        type: str
        default: auto
        choices: [auto, manual]
      settings:
        description:
          - Settings of the control; each a dict with C(type), C(key) and the type's fields
            (registry, service, feature, firewall_profile, firewall_rule, audit_policy,
            user_right, security_policy, defender_status, device_guard_running, local_user,
            group_members, service_allowlist, task_allowlist), as documented in
            C(inventories/data/baseline.yml).
        type: list
        elements: dict
        required: true
  protected_accounts:
    description:
      - Local account names hardening must never rename, disable or remove from a group
        (the connection account, e.g. C(rb-admin)).
    type: list
    elements: str
    required: true
notes:
  - Audit policy is read and set by subcategory GUID, so it works on any display language.
  - C(HKDU:\) registry paths are written into the Default User hive (C:\Users\Default\NTUSER.DAT).
author:
  - rebuild project
"""

EXAMPLES = r"""
- name: Apply the compiled baseline (normally done by the rebuild_harden action plugin)
  win_rebuild_baseline:
    protected_accounts: [rb-admin]
    controls:
      - id: GHAL-CRED-002
        title: WDigest keeps no clear-text credentials
        settings:
          - type: registry
            key: registry:HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\WDigest\UseLogonCredential
            path: HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\WDigest
            name: UseLogonCredential
            value_type: dword
            data: 0
  register: harden

- name: Audit only
  win_rebuild_baseline:
    protected_accounts: [rb-admin]
    controls: "{{ compiled_controls }}"
  check_mode: true
"""

RETURN = r"""
controls:
  description: One entry per control given, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Control id.
      type: str
    title:
      description: Control title.
      type: str
    changed:
      description: Settings were changed (in check mode, would be changed).
      type: bool
    compliant:
      description: The host meets the control after this run (in check mode, before it).
      type: bool
    before:
      description: Setting key to value before the run (null when absent).
      type: dict
    after:
      description: Setting key to value after the run (equal to before in check mode).
      type: dict
    error:
      description: Why the control failed, or null.
      type: str
    skipped:
      description: The control was not applied (see skip_reason).
      type: bool
    skip_reason:
      description: e.g. earlier controls failed, capability missing.
      type: str
    not_applicable:
      description: The host lacks the capability the control requires.
      type: bool
    pending_reboot:
      description: The settings are written but Windows enforces them only after a restart.
      type: bool
    noncompliant:
      description: Keys of the settings that were not compliant before the run.
      type: list
      elements: str
pending_reboot:
  description: At least one control waits for a restart.
  returned: always
  type: bool
summary:
  description: Counts of controls compliant, changed, failed, skipped.
  returned: always
  type: dict
"""
