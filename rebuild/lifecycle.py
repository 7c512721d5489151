"""A host's life in the journal, as one table: event -> from state -> to state.

Named the way ironic names its node state machine (ironic/common/states.py): every move is an
event with a name, allowed from some states to one state, and nothing else moves a host. The
journal refuses any move not in `TRANSITIONS` (IllegalTransition).

What is *not* a state, and why:
- Waiting for an imaging slot: the host stays where the journal had it (pending, failed,
  quarantined...) until the orchestrator gives it a slot; only then does `deploy` move it to
  reimaging. A host let go at its slot was never touched, so the journal must not say otherwise.
- Promoted (let out of the recovery network): a verified host stays `verified`; each promotion
  attempt is kept in its results under `promote` (rebuild/promote.py). Promotion changes the
  network, not the machine, and is retried without rebuilding anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    """A host's state in the journal (docs/contracts.md "Phases, journal, events")."""

    PENDING = "pending"
    REIMAGING = "reimaging"
    REIMAGED = "reimaged"
    HARDENING = "hardening"
    HARDENED = "hardened"
    REDEPLOYING = "redeploying"
    REDEPLOYED = "redeployed"
    VERIFYING = "verifying"
    VERIFIED = "verified"
    FAILED = "failed"
    QUARANTINED = "quarantined"


# Each work phase (rebuild.contract.PHASES, in that order): its state while it runs, and once done.
WORK_PHASES: dict[str, tuple[Phase, Phase]] = {
    "reimage": (Phase.REIMAGING, Phase.REIMAGED),
    "harden": (Phase.HARDENING, Phase.HARDENED),
    "redeploy": (Phase.REDEPLOYING, Phase.REDEPLOYED),
    "verify": (Phase.VERIFYING, Phase.VERIFIED),
}
ACTIVE = {active: name for name, (active, _done) in WORK_PHASES.items()}
DONE = {done: name for name, (_active, done) in WORK_PHASES.items()}


class Event(StrEnum):
    """Why a host moves (the name a transition is known by)."""

    DEPLOY = "deploy"  # pending -> reimaging: its imaging slot opened, the wipe starts
    RECHECK = "recheck"  # <phase>ing -> the same: a rerun found it mid-phase and repeats the phase
    DONE = "done"  # <phase>ing -> <phase>ed: the role's end signal (rebuild_phase_done)
    CONTINUE = "continue"  # <phase>ed -> the next phase's <phase>ing, in the same batch or a rerun
    FAIL = "fail"  # a task failed (or the run ended mid-phase): failed, with phase and reason
    QUARANTINE = "quarantine"  # verifying -> quarantined: verification found a problem
    RETRY = "retry"  # failed -> <phase>ing: a rerun retries from the phase it failed in
    REVERIFY = "reverify"  # quarantined -> verifying: an operator fixed it, verify again
    REBUILD = "rebuild"  # quarantined -> reimaging: rebuilt from scratch
    FORCE_REBUILD = "force-rebuild"  # any state but reimaging -> reimaging: --force-host only


@dataclass(frozen=True)
class Transition:
    event: Event
    source: Phase
    target: Phase
    forced: bool = False  # only with force=True (--force-host): never by accident


def _table() -> Iterator[Transition]:
    names = list(WORK_PHASES)
    yield Transition(Event.DEPLOY, Phase.PENDING, Phase.REIMAGING)
    yield Transition(Event.FAIL, Phase.PENDING, Phase.FAILED)
    for i, name in enumerate(names):
        active, done = WORK_PHASES[name]
        yield Transition(Event.RECHECK, active, active)
        yield Transition(Event.DONE, active, done)
        yield Transition(Event.FAIL, active, Phase.FAILED)
        if i + 1 < len(names):
            yield Transition(Event.CONTINUE, done, WORK_PHASES[names[i + 1]][0])
            yield Transition(Event.FAIL, done, Phase.FAILED)
        yield Transition(Event.RETRY, Phase.FAILED, active)
    yield Transition(Event.QUARANTINE, Phase.VERIFYING, Phase.QUARANTINED)
    yield Transition(Event.REVERIFY, Phase.QUARANTINED, Phase.VERIFYING)
    yield Transition(Event.REBUILD, Phase.QUARANTINED, Phase.REIMAGING)
    for phase in Phase:
        if phase is not Phase.REIMAGING:
            yield Transition(Event.FORCE_REBUILD, phase, Phase.REIMAGING, forced=True)


TRANSITIONS: tuple[Transition, ...] = tuple(_table())

# Moves allowed without force, per state (what the journal checked before this table).
ALLOWED: dict[Phase, frozenset[Phase]] = {
    p: frozenset(t.target for t in TRANSITIONS if t.source is p and not t.forced) for p in Phase
}


def find(source: Phase, target: Phase, *, force: bool = False) -> Transition | None:
    """The transition from `source` to `target` (an unforced one first), or None if illegal."""
    for t in TRANSITIONS:
        if t.source is source and t.target is target and not t.forced:
            return t
    if force:
        for t in TRANSITIONS:
            if t.source is source and t.target is target:
                return t
    return None
