"""Where each host resumes: which phases a run gives it, and whether it is re-checked.

Rerunning a site continues it: a verified host is left alone (unless forced), a host caught
mid-phase repeats that phase (mid-reimage: re-checked before any new wipe), a failed host is
retried from the phase it failed in, a quarantined host waits for an operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rebuild.contract import (
    GATE_ACTION,
    PHASES,
    REDEPLOY_GATE_GROUP,
    REDEPLOY_GATE_PHASE,
    WIPING_PHASE,
)
from rebuild.errors import ConfigError
from rebuild.journal import ACTIVE, DONE, HostRecord, Phase
from rebuild.yamlfile import load_yaml


@dataclass(frozen=True)
class HostWork:
    host: str
    phases: tuple[str, ...]  # work phases to run, in order
    recheck: bool  # caught mid-reimage: check before wiping again
    forced: bool  # verified/quarantined host taken back by --force-host
    why: str  # for the operator: where it resumes and why

    @property
    def wipes(self) -> bool:
        return bool(self.phases) and self.phases[0] == "reimage"


def playbook_phases(playbook: Path) -> tuple[str, ...]:
    """Work phases the playbook has a role for. The order is the contract's (rebuild.contract):
    a playbook that runs them in another order, or does not start with reimage, is refused."""
    try:
        plays = load_yaml(playbook) or []
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{playbook}: cannot read the playbook: {exc}") from exc
    phases: list[str] = []
    for play in plays:
        for name in _role_names(play or {}):
            if name in PHASES and name not in phases:
                phases.append(name)
    if not phases or phases[0] != WIPING_PHASE:
        raise ConfigError(f"{playbook}: the first role must be {WIPING_PHASE}, found {phases}")
    order = list(PHASES)
    if phases != sorted(phases, key=order.index):
        raise ConfigError(f"{playbook}: roles out of order {phases}; expected the order {order}")
    return tuple(phases)


def playbook_gated(playbook: Path) -> bool:
    """Whether the orchestrator holds the playbook's hosts until it lets them go (rebuild_gate):
    its first play, on all hosts, does nothing but wait for the batch's gate (plays run one after
    the other), and every play that runs the reimage role first waits for the host's imaging
    slot (pre_tasks). Only then may a batch start before the imaging capacity is free."""
    plays = [p for p in load_yaml(playbook) or [] if isinstance(p, dict)]
    if not plays or plays[0].get("hosts") != "all":
        return False
    first = plays[0]
    if first.get("roles") or first.get("post_tasks") or first.get("handlers"):
        return False
    tasks = [t for key in ("pre_tasks", "tasks") for t in first.get(key) or []]
    if not tasks or not all(_is_gate(t) for t in tasks):
        return False
    reimaging = [p for p in plays if WIPING_PHASE in _role_names(p)]
    return bool(reimaging) and all(
        any(_is_gate(t) for t in p.get("pre_tasks") or []) and not p.get("tasks") for p in reimaging
    )


def playbook_redeploy_gated(playbook: Path) -> bool:
    """Whether the playbook can hold a batch before redeploy, so a wave's later stage may reimage
    and harden while the one before is still redeployed and verified: a play on the redeploy gate
    group that does nothing but wait at rebuild_gate, after every play of an earlier phase and
    before every play of redeploy or a later phase (there is at least one)."""
    plays = [p for p in load_yaml(playbook) or [] if isinstance(p, dict)]
    gates = [n for n, p in enumerate(plays) if p.get("hosts") == REDEPLOY_GATE_GROUP]
    if len(gates) != 1:
        return False
    gate, first_held = gates[0], PHASES.index(REDEPLOY_GATE_PHASE)
    play = plays[gate]
    if play.get("roles") or play.get("pre_tasks") or play.get("post_tasks") or play.get("handlers"):
        return False
    if not play.get("tasks") or not all(_is_gate(t) for t in play["tasks"]):
        return False
    phase_at = [(n, PHASES.index(r)) for n, p in enumerate(plays) for r in _role_names(p) if r in PHASES]
    later = [n for n, phase in phase_at if phase >= first_held]
    return bool(later) and all((n > gate) == (phase >= first_held) for n, phase in phase_at)


def _is_gate(task: object) -> bool:
    return isinstance(task, dict) and GATE_ACTION in task


def _role_names(play: dict[str, Any]) -> list[str]:
    return [str(r.get("role") if isinstance(r, dict) else r) for r in play.get("roles") or []]


def host_work(record: HostRecord, available: tuple[str, ...], *, force: bool = False) -> HostWork:
    """The phases this run gives the host, from its journal state."""
    name, phase = record.name, record.phase

    def from_(start: str) -> tuple[str, ...]:
        return tuple(p for p in available if PHASES.index(p) >= PHASES.index(start))

    if force and phase in (Phase.VERIFIED, Phase.QUARANTINED):
        return HostWork(
            name, available, False, True, f"{phase}, forced by --force-host: rebuilt from scratch"
        )
    if phase is Phase.VERIFIED:
        return HostWork(name, (), False, False, "verified: left alone")
    if phase is Phase.QUARANTINED:
        return HostWork(name, (), False, False, f"quarantined ({record.reason}): waits for an operator")
    if phase is Phase.PENDING:
        return HostWork(name, available, False, False, "pending")
    if phase is Phase.FAILED:
        start = record.failed_phase or "reimage"
        return HostWork(name, from_(start), False, False, f"failed in {start}: retried from {start}")
    if phase in ACTIVE:
        start = ACTIVE[phase]
        return HostWork(
            name, from_(start), start == "reimage", False, f"caught mid-{start}: re-checked and resumed"
        )
    if phase in DONE:
        order = list(PHASES)
        nxt = order.index(DONE[phase]) + 1
        if nxt >= len(order):
            return HostWork(name, (), False, False, f"{phase}: nothing left")
        remaining = from_(order[nxt])
        return HostWork(
            name,
            remaining,
            False,
            False,
            f"{phase}: resumes at {order[nxt]}"
            if remaining
            else f"{phase}: no later phase in the playbook yet",
        )
    raise AssertionError(f"unhandled phase {phase}")
