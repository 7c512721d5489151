"""From ansible-runner events to journal transitions (docs/contracts.md "Phases, journal, events").

Each role ends its phase with the action `rebuild_phase_done`, whose result names the phase and
carries the facts the journal keeps (rebuild.contract: how a phase's end is recognised). Phases
start without a task of their own (each would be one more worker per host): a host's first phase
when Ansible may touch it (`begin`: at its imaging slot, or at its batch's gate when it does not
reimage), each next phase when the one before is done. A failed or unreachable task (not
ignored) fails the host in the phase it is in, with the task name and message as reason; the
verify role asks for quarantine with `rebuild_quarantine: true`. A host the orchestrator held at
its imaging slot and then let go (`rebuild_gate` fails it with `rebuild_not_started: true`) was
never touched: it is not failed, and stays where the journal had it. A batch held at its
redeploy gate (`hold_from`) starts its hosts' phases from redeploy on only when the orchestrator
opens that gate (`release`), so a host let go there stays at its last finished phase.
The mapper is pure bookkeeping over one batch, so it can be tested with plain event dicts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rebuild.contract import NOT_STARTED_KEY, PHASES, phase_done
from rebuild.journal import ACTIVE, WORK_PHASES, Journal, Phase

_REASON_MAX = 500


@dataclass(frozen=True)
class HostEvent:
    """What one runner event meant for one host (for progress and per-host logs)."""

    host: str
    kind: str  # start | done | failed | quarantined | not_started | task
    phase: str  # work phase ("reimage"...) or ""
    task: str
    status: str  # ok | changed | skipped | failed | unreachable
    message: str = ""


def failure_message(res: Mapping[str, Any]) -> str:
    """The useful part of a failed result, short; never the censored content of a no_log task."""
    if res.get("censored"):
        return "(details hidden: the task handles a secret)"
    msg = res.get("msg") or res.get("reason") or res.get("stderr") or res.get("exception") or ""
    if isinstance(msg, list | tuple):
        msg = "; ".join(str(m) for m in msg)
    text = " ".join(str(msg).split())
    return text[:_REASON_MAX] or "failed without a message"


@dataclass
class EventMapper:
    """Consume one batch's events live and move hosts in the journal.

    `phases` is what each host runs in this batch, in order (its batch inventory's work groups).
    `force_hosts` may be taken back from verified (or quarantined) to reimaging.
    In `record_only` mode (dry run) the journal is not touched; events are still reported.
    """

    journal: Journal
    run_id: str
    phases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    force_hosts: frozenset[str] = frozenset()
    record_only: bool = False
    on_host_event: Callable[[HostEvent], None] | None = None
    failed: dict[str, str] = field(default_factory=dict)  # host -> reason, this batch
    quarantined: dict[str, str] = field(default_factory=dict)
    # Held at its imaging slot and let go untouched (the site stopped): left where it was.
    not_started: dict[str, str] = field(default_factory=dict)
    # The batch waits at its redeploy gate: a host's first phase from this one on is parked
    # (not started in the journal) until release(), called just before the gate's file opens.
    hold_from: str = ""
    _parked: dict[str, str] = field(default_factory=dict)  # host -> the phase it waits to start
    _hold_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def release(self) -> None:
        """The redeploy gate opens: parked hosts enter their phase now, before Ansible goes on."""
        with self._hold_lock:
            self.hold_from = ""
            parked, self._parked = self._parked, {}
        for host, phase in parked.items():
            self._start(host, phase)

    def __call__(self, event: Mapping[str, Any]) -> bool:
        self.handle(event)
        return True  # keep every event in the runner artifacts (they carry no secret)

    def begin(self, hosts: Iterable[str]) -> None:
        """Ansible may now touch these hosts: each enters its first phase (before Ansible can
        reach it, so a crash from here on leaves it mid-phase, to be re-checked on resume)."""
        for host in hosts:
            phases = self.phases.get(host)
            if phases:
                self._start(host, phases[0])

    def handle(self, event: Mapping[str, Any]) -> HostEvent | None:
        kind = event.get("event", "")
        if not kind.startswith("runner_on_") and kind != "runner_item_on_failed":
            return None
        data = event.get("event_data") or {}
        host = data.get("host")
        if not host:
            return None
        task = str(data.get("task", ""))
        res = data.get("res") or {}
        ended = phase_done(res) if kind == "runner_on_ok" else None
        outcome: HostEvent | None = None
        if ended is not None:
            outcome = self._done(host, ended[0], task, ended[1])
        elif kind in ("runner_on_failed", "runner_on_unreachable"):
            if data.get("ignore_errors"):
                outcome = HostEvent(
                    host, "task", _role_phase(data), task, "failed", "ignored: " + failure_message(res)
                )
            else:
                outcome = self._failure(host, kind, data, task, res)
        elif kind in ("runner_on_ok", "runner_on_skipped"):
            status = "skipped" if kind == "runner_on_skipped" else ("changed" if res.get("changed") else "ok")
            outcome = HostEvent(host, "task", _role_phase(data), task, status)
        if outcome is not None and self.on_host_event is not None:
            self.on_host_event(outcome)
        if outcome is not None and outcome.kind == "done":
            self._start_next(host, outcome.phase)
        return outcome

    def _park(self, host: str, phase: str) -> bool:
        with self._hold_lock:
            if not self.hold_from or PHASES.index(phase) < PHASES.index(self.hold_from):
                return False
            self._parked[host] = phase
            return True

    def _start(self, host: str, phase: str) -> None:
        if self._park(host, phase):
            return
        active, _ = WORK_PHASES[phase]
        if not self.record_only and host not in self.failed:
            current = self.journal.host(host).phase
            self.journal.transition(
                host,
                active,
                run_id=self.run_id,
                reason="resume: re-check" if current is active else "",
                force=host in self.force_hosts and phase == "reimage",
            )
        if self.on_host_event is not None:
            self.on_host_event(HostEvent(host, "start", phase, f"rebuild phase | {phase} | start", "ok"))

    def _done(self, host: str, phase: str, task: str, facts: dict[str, Any]) -> HostEvent:
        if phase not in WORK_PHASES:
            raise ValueError(f"{host}: end of unknown phase {phase!r} in task {task!r}")
        _, done = WORK_PHASES[phase]
        if not self.record_only and host not in self.failed:
            self.journal.transition(host, done, run_id=self.run_id, result=facts, result_key=phase)
        summary = ", ".join(f"{k}={v}" for k, v in facts.items() if not isinstance(v, Mapping | list))
        return HostEvent(host, "done", phase, task, "ok", summary[:300])

    def _start_next(self, host: str, phase: str) -> None:
        planned = list(self.phases.get(host, ()))
        if phase in planned and planned.index(phase) + 1 < len(planned):
            self._start(host, planned[planned.index(phase) + 1])

    def _failure(
        self, host: str, kind: str, data: Mapping[str, Any], task: str, res: Mapping[str, Any]
    ) -> HostEvent:
        status = "unreachable" if kind == "runner_on_unreachable" else "failed"
        if res.get(NOT_STARTED_KEY) and host not in self.failed:
            self.not_started[host] = failure_message(res)
            return HostEvent(host, "not_started", "", task, "skipped", failure_message(res))
        reason = f"{task}: {'unreachable: ' if status == 'unreachable' else ''}{failure_message(res)}"
        phase = self.current_phase(host) or _role_phase(data)
        if host in self.failed or host in self.quarantined:
            return HostEvent(host, "task", phase, task, status, reason)  # first failure is the reason
        quarantine = bool(res.get("rebuild_quarantine")) and phase == "verify"
        if not self.record_only:
            if quarantine:
                # The verify role's results (failing checks, JUnit path) go with the quarantine.
                verify = res.get("rebuild_verify")
                self.journal.transition(
                    host,
                    Phase.QUARANTINED,
                    run_id=self.run_id,
                    reason=reason,
                    result=dict(verify) if isinstance(verify, Mapping) else None,
                    result_key="verify",
                )
            else:
                self.journal.transition(
                    host, Phase.FAILED, run_id=self.run_id, reason=reason, failed_phase=phase or "reimage"
                )
        if quarantine:
            self.quarantined[host] = reason
            return HostEvent(host, "quarantined", phase, task, status, reason)
        self.failed[host] = reason
        return HostEvent(host, "failed", phase, task, status, reason)

    def current_phase(self, host: str) -> str:
        if self.record_only:
            return ""
        record = self.journal.find_host(host)
        if record is None:
            return ""
        return ACTIVE.get(record.phase, "") or ""


def _role_phase(data: Mapping[str, Any]) -> str:
    role = str(data.get("role", "") or "")
    return role if role in WORK_PHASES else ""
