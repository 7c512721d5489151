"""One batch in flight: its thread, its gate and imaging slots, what its hosts became.

The scheduler (scheduler.py) opens the batch's gate, its hosts' slots and, for a batch started
while an earlier stage of its wave still runs, its redeploy gate; the batch's thread runs its
playbook and reports host events here (events.py -> host_event).
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from rebuild import atomicfile, contract
from rebuild.hostnames import checked_hostname
from rebuild.journal import Phase
from rebuild.model import Host
from rebuild.node_ssh import NodeChannel
from rebuild.orchestrator.events import EventMapper, HostEvent


class BatchRun:
    """One batch running in its own thread (its ansible-runner call), watched by the stage loop.

    The orchestrator lets its hosts go twice: the batch's gate (Ansible may touch them), then,
    for each host to reimage, an imaging slot. With a gated playbook both are files the playbook
    waits for (rebuild_gate); without one, the gate is open from the start and every host to
    reimage takes its slot then (so such a batch starts only when nothing else is reimaging).
    A batch held at its redeploy gate (`redeploy_gate`) waits a third time, after harden, until
    the earlier stages of its wave are over."""

    def __init__(
        self,
        ident: str,
        number: int,
        batch: list[Host],
        news: queue.Queue[BatchRun],
        gate: Path | None,
        slot_dir: Path | None,
        to_reimage: list[str],
        channel: NodeChannel | None = None,
        redeploy_gate: Path | None = None,
    ) -> None:
        self.ident, self.number, self.batch = ident, number, batch
        self.news = news
        self.gate = gate  # None: the batch may touch hosts as soon as it starts
        self.slot_dir = slot_dir  # None: no slot to wait for in the playbook
        self.channel = channel  # on an execution node: gate and slot files are opened through it
        self.gate_open = False
        self.redeploy_gate = redeploy_gate  # None: nothing to wait for before redeploy
        self.held = redeploy_gate is not None  # its redeploy gate is still closed
        self.cancelled = threading.Event()  # stopped at its gate: it touched nothing
        self.waiting: list[str] = list(to_reimage)  # still without an imaging slot, in plan order
        self.imaging: set[str] = set()  # slot taken, not yet reimaged (or failed)
        self.finished = threading.Event()
        self.outcome: tuple[dict[str, str], str] = ({}, "not run")
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.inventory: Path | None = None  # this batch's hosts only (batch_inventory.py)
        self.mapper: EventMapper | None = None  # its events -> the journal
        self.before: dict[str, Phase] = {}  # each host's journal phase before the batch
        self._failures: dict[str, str] = {}
        self._not_started: set[str] = set()
        self._touched: set[str] = set()  # hosts that entered a phase in this batch
        self._lock = threading.Lock()

    def host_event(self, event: HostEvent) -> None:
        """Called from the batch's thread for every host event."""
        with self._lock:
            if event.kind in ("failed", "quarantined"):
                self._failures.setdefault(event.host, event.message)
            if event.kind == "start":
                self._touched.add(event.host)
            if event.kind == "not_started" and event.host not in self._touched:
                self._not_started.add(event.host)  # let go at its slot (not at the redeploy gate)
            ended = event.kind in ("failed", "quarantined", "not_started")
            if ended and event.host in self.waiting:
                self.waiting.remove(event.host)  # it will never take its slot
            if (ended or (event.kind == "done" and event.phase == "reimage")) and event.host in self.imaging:
                self.imaging.discard(event.host)
                self.news.put(self)  # a slot is free

    def open_gate(self) -> None:
        """Let the batch touch its hosts: those with no reimage enter their first phase in the
        journal now; those to reimage when they get their slot."""
        assert self.mapper is not None  # set by _start_batch
        if self.slot_dir is None:
            self.imaging.update(self.waiting)
            self.waiting.clear()
            self.mapper.begin(h.hostname for h in self.batch)
        else:
            self.mapper.begin(h.hostname for h in self.batch if h.hostname not in self.waiting)
        if self.gate is not None:
            self._open(self.gate)
        self.gate_open = True

    def open_slot(self) -> None:
        """The next host to reimage takes an imaging slot: journal first, then the file."""
        assert self.mapper is not None and self.slot_dir is not None
        with self._lock:
            host = self.waiting.pop(0)
            self.imaging.add(host)
        self.mapper.begin([host])
        self._open(self._slot_file(host))

    def open_redeploy(self) -> None:
        """The earlier stages of the wave are over: hosts held before redeploy go on (journal
        first: the mapper starts the parked hosts' phase, then the file opens)."""
        assert self.mapper is not None and self.redeploy_gate is not None
        self.held = False
        self.mapper.release()
        self._open(self.redeploy_gate)

    def cancel(self, reason: str) -> None:
        """Stop what has not started. A batch still at its gate is cancelled whole (its runner is
        stopped; it touched nothing); in a running batch the hosts still waiting for a slot are
        let go untouched (rebuild_gate's cancel file), the redeploy gate is cancelled (its hosts
        stop after harden, at the phase they finished), and the others finish their phases."""
        if not self.gate_open:
            self.cancelled.set()
            return
        with self._lock:
            waiting, self.waiting = self.waiting, []
        for host in waiting:
            assert self.slot_dir is not None  # without slots nobody waits
            self._cancel(self._slot_file(host), reason)
        if self.held:
            assert self.redeploy_gate is not None
            self.held = False  # cancelled once; it never opens
            self._cancel(self.redeploy_gate, reason)

    def _cancel(self, path: Path, reason: str) -> None:
        """Create a wait's cancel file where the playbook runs: here, or on the batch's node."""
        if self.channel is not None:
            self.channel.cancel(path, reason)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        atomicfile.write_text(contract.cancel_file(path), reason + "\n")

    def _open(self, path: Path) -> None:
        """Create a gate or slot file where the playbook runs: here, or on the batch's node."""
        if self.channel is not None:
            self.channel.open(path)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def _slot_file(self, host: str) -> Path:
        """The host's slot file; a host name that would not stay one file name is refused."""
        assert self.slot_dir is not None
        return contract.slot_file(self.slot_dir, checked_hostname(host, str(self.slot_dir)))

    def failures(self) -> dict[str, str]:
        with self._lock:
            return dict(self._failures)

    def past_reimage(self) -> int:
        """Hosts whose fate is partly known (reimaged or failed): they count for the breaker."""
        with self._lock:
            return len(self.batch) - len(self.imaging) - len(self.waiting) - len(self._not_started)

    def processed(self) -> int:
        """Hosts the batch worked on (not those let go untouched at their slot)."""
        with self._lock:
            return len(self.batch) - len(self._not_started)

    def finish(self) -> None:
        with self._lock:
            self.imaging.clear()
            self.waiting.clear()
        self.finished.set()
        self.news.put(self)
