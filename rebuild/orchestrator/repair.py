"""After a batch: the journal must not say a host is mid-phase when its playbook is over.

A host the playbook left in an active phase, or never started although it had work, is failed
with why (the runner's status and rc, where its artifacts are), so a rerun retries it from that
phase. A host the orchestrator let go untouched at its imaging slot stays where it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rebuild.journal import ACTIVE, Journal, Phase
from rebuild.orchestrator.events import EventMapper


def fail_unfinished(
    journal: Journal,
    run_id: str,
    names: Sequence[str],
    before: Mapping[str, Phase],
    host_phases: Mapping[str, Sequence[str]],
    mapper: EventMapper,
    runner_status: str,
    rc: Any,
    artifacts: Path,
) -> None:
    """Hosts the playbook left mid-phase or never started are failed, with why."""
    for name in names:
        if not host_phases.get(name) or name in mapper.failed or name in mapper.quarantined:
            continue
        if name in mapper.not_started:  # let go untouched at its imaging slot
            continue
        record = journal.host(name)
        if record.phase in ACTIVE:
            reason = (
                f"the playbook ended during {ACTIVE[record.phase]} without a result "
                f"(runner {runner_status}, rc {rc})"
            )
            phase = ACTIVE[record.phase]
            journal.transition(name, Phase.FAILED, run_id=run_id, reason=reason, failed_phase=phase)
            mapper.failed[name] = reason
        elif record.run_id != run_id and record.phase is before[name]:
            if record.phase in (Phase.VERIFIED, Phase.QUARANTINED):
                continue
            first = host_phases[name][0]
            reason = f"{first} never started (runner {runner_status}, rc {rc}); see {artifacts}"
            journal.transition(name, Phase.FAILED, run_id=run_id, reason=reason, failed_phase=first)
            mapper.failed[name] = reason
