#!/usr/bin/python
"""Documentation of the rebuild_gate action (plugins/action/rebuild_gate.py) for `ansible-doc`.

The action runs on the controller; this file holds no code (ansible.windows' layout)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rebuild_gate
short_description: Wait on the controller until the orchestrator lets this batch or host go
description:
  - C(rebuild site) starts a batch's playbook while earlier batches are still reimaging and holds it
    with this wait twice - once per batch before any host is touched (C(run_once)), once per host before
    its reimage until an imaging slot is free.
  - A batch of a wave's later stage, started while an earlier stage still runs, waits a third time, per
    host after harden, until every batch of the earlier stages is over (the redeploy gate).
  - The host that leaves a cancelled wait stays, in the journal, at the phase it last finished.
  - The orchestrator opens the wait by creating the file C(path). It cancels it by creating C(path) plus
    C(.cancel) (the site is stopping) - the wait then fails with C(rebuild_not_started=true), so the host
    leaves the playbook untouched. File names are in C(rebuild/contract.py).
  - Only looks for the file on the controller; talks to no host.
options:
  path:
    description: The file to wait for.
    type: path
    required: true
  timeout:
    description: Seconds before giving up (a wave can take hours).
    type: float
    default: 86400
  poll:
    description: Seconds between looks (at least 0.01).
    type: float
    default: 0.05
author: rebuild
"""

EXAMPLES = r"""
- name: rebuild | wait for the orchestrator to open this batch's gate
  rebuild_gate:
    path: "{{ rebuild_gate_file }}"
  run_once: true
  when: rebuild_gate_file is defined
"""

RETURN = r"""
waited_s:
  description: Seconds waited.
  returned: success
  type: float
rebuild_not_started:
  description: True when the orchestrator cancelled the wait; the host was not touched.
  returned: when cancelled
  type: bool
"""
