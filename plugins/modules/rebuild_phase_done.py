#!/usr/bin/python
"""Documentation of the rebuild_phase_done action (plugins/action/rebuild_phase_done.py) for `ansible-doc`.

The action runs on the controller; this file holds no code (ansible.windows' layout)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rebuild_phase_done
short_description: Mark the end of a rebuild phase for the orchestrator
description:
  - The last task of each phase's role. Talks to no host.
  - Its result carries C(rebuild_phase) (the phase's name) and C(facts) (what the journal keeps for that
    phase). The orchestrator recognises a phase's end by that key, not by the task's name
    (C(rebuild/contract.py)).
options:
  phase:
    description: The phase that ends.
    type: str
    required: true
    choices: [reimage, harden, redeploy, verify]
  facts:
    description: What the journal keeps as the host's result for this phase.
    type: dict
    default: {}
author: rebuild
"""

EXAMPLES = r"""
- name: rebuild phase | reimage | done
  rebuild_phase_done:
    phase: reimage
    facts:
      image_id: "{{ reimage__image.image_id }}"
"""

RETURN = r"""
rebuild_phase:
  description: The phase that ended.
  returned: success
  type: str
facts:
  description: The facts given, for the journal.
  returned: success
  type: dict
"""
