"""The contract between the orchestrator (Python) and playbooks/site.yml (Ansible), in one place.

Both sides read their names from here, and tests/unit/test_contract.py checks site.yml against
it. This module imports nothing of the orchestrator (nor anything heavy), so Ansible plugins on
the controller can import it too.

- Phases: `PHASES`, in the order every host goes through them.
- Groups of the batch inventory (`rebuild.orchestrator.batch_inventory`), one play each:
  `phase_group(p)` for the hosts that run phase p this batch, `RECHECK_GROUP` for a host caught
  mid-reimage, `RENDER_GROUP` for a dry run, `REDEPLOY_GATE_GROUP` for the hosts held at their
  batch's redeploy gate.
- Gates (`plugins/action/rebuild_gate.py`): the orchestrator opens a wait by creating its file
  (`gate_file`, `slot_file`, `redeploy_gate_file`), or cancels it by creating the same path plus
  `CANCEL_SUFFIX`.
- End of a phase: each role's last task is the action `PHASE_DONE_ACTION` with `phase: <name>`
  (and the facts the journal keeps); its result carries `PHASE_DONE_KEY: <name>`, which is how the
  orchestrator recognises it in the runner event's `res` (`phase_done`), whatever the task is named.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Work phases in order; each is also the name of its role (roles/<phase>).
PHASES: tuple[str, ...] = ("reimage", "harden", "redeploy", "verify")
# The phase that wipes a host: it needs an imaging slot, and only it may be re-checked.
WIPING_PHASE = "reimage"

PHASE_GROUP_PREFIX = "rebuild_phase_"
RECHECK_GROUP = "rebuild_recheck"
RENDER_GROUP = "rebuild_render"
# In a wave's later stage a batch reimages and hardens while the stage before is still being
# redeployed and verified; its hosts that go on to these phases wait in this group's play (the
# redeploy gate) until the orchestrator opens it: the earlier stages' services are back.
REDEPLOY_GATE_GROUP = "rebuild_redeploy_gate"
REDEPLOY_GATE_PHASE = "redeploy"  # the gate holds a host before its first phase from this one on

# The controller-side wait (plugins/action/rebuild_gate.py) and its cancel file.
GATE_ACTION = "rebuild_gate"
CANCEL_SUFFIX = ".cancel"
# A wait the orchestrator cancelled fails with this key true: the host was never touched.
NOT_STARTED_KEY = "rebuild_not_started"

# The end-of-phase signal (plugins/action/rebuild_phase_done.py).
PHASE_DONE_ACTION = "rebuild_phase_done"
PHASE_DONE_KEY = "rebuild_phase"
PHASE_FACTS_KEY = "facts"

# Extravars the orchestrator passes to every batch.
GATE_FILE_VAR = "rebuild_gate_file"
SLOT_DIR_VAR = "rebuild_slot_dir"
REDEPLOY_GATE_FILE_VAR = "rebuild_redeploy_gate_file"  # only for a batch held at its redeploy gate
# Set by the launcher for a batch on an execution node only: where the batch writes the files the
# run keeps (verification JUnit and logs), inside the worker's artifacts so they come back.
RUN_FILES_DIR_VAR = "rebuild_run_files_dir"


def phase_group(phase: str) -> str:
    """The group of the hosts that run `phase` in a batch (a play of playbooks/site.yml)."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r} (phases: {', '.join(PHASES)})")
    return PHASE_GROUP_PREFIX + phase


def all_groups() -> tuple[str, ...]:
    """Every group a batch inventory writes (empty ones too), in playbook order."""
    held = PHASES.index(REDEPLOY_GATE_PHASE)
    return (
        RENDER_GROUP,
        RECHECK_GROUP,
        *(phase_group(p) for p in PHASES[:held]),
        REDEPLOY_GATE_GROUP,
        *(phase_group(p) for p in PHASES[held:]),
    )


def gate_file(gates_dir: Path, batch: str) -> Path:
    """The file that lets batch `batch` touch its hosts (`rebuild_gate_file`)."""
    return gates_dir / batch


def slot_dir(gates_dir: Path, batch: str) -> Path:
    """The directory of batch `batch`'s imaging slots (`rebuild_slot_dir`)."""
    return gates_dir / f"{batch}-slots"


def redeploy_gate_file(gates_dir: Path, batch: str) -> Path:
    """The file that lets batch `batch`'s hosts go on to redeploy (`rebuild_redeploy_gate_file`)."""
    return gates_dir / f"{batch}-redeploy"


def slot_file(slots: Path, host: str) -> Path:
    """The file that gives `host` its imaging slot (site.yml: `<rebuild_slot_dir>/<host>`)."""
    return slots / host


def cancel_file(wait_file: Path) -> Path:
    """The file that cancels a wait on `wait_file` (the site is stopping)."""
    return wait_file.with_name(wait_file.name + CANCEL_SUFFIX)


def phase_done(res: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(phase, facts) when a task result is a phase's end signal, else None."""
    phase = res.get(PHASE_DONE_KEY)
    if not isinstance(phase, str) or not phase:
        return None
    facts = res.get(PHASE_FACTS_KEY)
    return phase, dict(facts) if isinstance(facts, Mapping) else {}


def next_phase(phase: str) -> str | None:
    """The phase after `phase`, or None after the last."""
    i = PHASES.index(phase) + 1
    return PHASES[i] if i < len(PHASES) else None
