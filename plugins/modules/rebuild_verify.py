#!/usr/bin/python
"""Documentation of the rebuild_verify action (plugins/action/rebuild_verify.py) for `ansible-doc`.

The action runs on the controller; this file holds no code (ansible.windows' layout)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rebuild_verify
short_description: Run the testinfra verification suites against a host
description:
  - Runs on the controller; only the suites' WinRM reads reach the host.
  - Connection details and the local admin secret come from the host's WinRM connection options, so no
    secret is a task argument or part of the result; the failing checks may reach the journal.
  - When a check fails, the task fails with C(rebuild_quarantine=true) (the host is quarantined).
  - In a site run the suites run in a fork of the run's warm verification server (environment variable
    C(REBUILD_VERIFY_SOCKET), set by C(rebuild site)); elsewhere, or when that server cannot be reached,
    in a new Python process, with the same result (a warning then says why).
options:
  run_dir:
    description: Where JUnit (C(junit/<host>.xml)) and logs (C(verify/<host>.log)) go.
    type: path
  defender_max_signature_age_hours:
    description: Defender signatures older than this fail.
    type: int
    default: 48
  previous_secret_name:
    description: Secret-store name of the host's pre-incident admin password; its refusal is then checked.
    type: str
    default: local_admin_previous
  timeout:
    description: Seconds for the whole verification of the host.
    type: int
    default: 900
author: rebuild
"""

EXAMPLES = r"""
- name: Verify the host
  rebuild_verify:
    run_dir: "{{ rebuild_run_dir }}"
  register: verify__result
"""

RETURN = r"""
rebuild_verify:
  description: The journal's C(verify) result - passed, counts, failed_checks, junit.
  returned: always
  type: dict
rebuild_quarantine:
  description: True when a check failed.
  returned: failed
  type: bool
"""
