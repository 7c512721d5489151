"""The batches of one wave in flight, within the site's imaging capacity, stage after stage.

With a gated playbook the next batch is started early, so Ansible's start-up overlaps the
reimaging before it, and its hosts are let go in plan order as imaging slots free up (`admit`);
without one, a batch starts only when nothing else is reimaging. The circuit breaker looks
before each gate or slot opens (`look_ahead`) and after each batch (the caller's
`batch_finished`). When the site stops, what has not started is let go untouched.

A later stage of the wave needs the services of the stages before it (a PC needs its servers
back) for its redeploy and verify, not for its reimage and harden. With `overlap` (the playbook
has a redeploy gate: resume.playbook_redeploy_gated) a batch of a later stage starts in plan order
under the same rules while the earlier stages still run; it is held at its redeploy gate
(`held`), which opens once every batch of the earlier stages has finished and the breaker has
looked (`release`). Without it, a stage starts only when the one before it is over.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from rebuild.model import Host
from rebuild.orchestrator.batch import BatchRun
from rebuild.orchestrator.breaker import Breaker, Trip
from rebuild.orchestrator.interrupt import Interrupt

Outcome = tuple[str, str]  # (status, reason) that ends the wave: stopped | interrupted


@dataclass
class WaveScheduler:
    capacity: int  # hosts reimaging at once, at most (the site's imaging capacity)
    pipeline_depth: int  # batches in flight at once
    gated: bool  # the playbook waits at rebuild_gate (resume.playbook_gated)
    overlap: bool  # stages overlap, their later ones held at the redeploy gate (not in a dry run)
    dry_run: bool
    breaker: Breaker
    interrupt: Interrupt
    # Starts a batch's thread (batch, gated, held at its redeploy gate, queue); the batch
    # reports to the queue when a slot frees or it ends.
    start_batch: Callable[[list[Host], bool, bool, queue.Queue[BatchRun]], BatchRun]
    batch_finished: Callable[[BatchRun], Outcome | None]
    tripped: Callable[[Trip], Outcome]
    abort: threading.Event = field(default_factory=threading.Event)  # cancel what still runs

    def run(self, stages: list[list[list[Host]]], sample: int) -> Outcome | None:
        """Run the wave's stages; `sample` is how many hosts the breaker waits for in a wave."""
        news: queue.Queue[BatchRun] = queue.Queue()
        waiting = [(s, batch) for s, stage in enumerate(stages) for batch in stage]
        running: list[BatchRun] = []
        stage_of: dict[BatchRun, int] = {}
        outcome: Outcome | None = None

        def start(gated: bool) -> None:
            stage, batch = waiting.pop(0)
            held = any(stage_of[r] < stage for r in running)  # an earlier stage still runs
            self.interrupt.in_batch = True
            run = self.start_batch(batch, gated, held, news)
            stage_of[run] = stage
            running.append(run)

        try:
            while waiting or running:
                if outcome is not None or self.interrupt.requested:
                    waiting.clear()  # not started: let go untouched
                    why = outcome[1].splitlines()[0] if outcome else "interrupted by the operator"
                    for r in running:
                        r.cancel(f"the site is stopping - {why}")
                else:
                    trip = self.admit(running, sample) or self.release(running, stage_of, sample)
                    if trip is not None:
                        outcome = self.tripped(trip)
                        continue
                    room = bool(waiting) and len(running) < self.pipeline_depth
                    if room and not self.overlap:  # the next stage waits for the one before
                        room = not any(stage_of[r] < waiting[0][0] for r in running)
                    if room and self.gated and all(r.gate_open for r in running):
                        start(gated=True)
                        continue
                    if room and not self.gated and not any(r.imaging or r.waiting for r in running):
                        start(gated=False)
                        continue
                try:
                    done = news.get(timeout=0.5)  # wakes for a freed slot or a finished batch
                except queue.Empty:
                    continue
                if not done.finished.is_set() or done not in running:
                    continue
                running.remove(done)
                self.interrupt.in_batch = bool(running)
                if done.error is not None:
                    raise done.error
                stopped = self.batch_finished(done)
                if stopped is not None and outcome is None:
                    outcome = stopped
        except BaseException:
            # Something broke in the orchestrator: the other batches must not run on unwatched.
            self.abort.set()
            for r in running:
                if r.thread is not None:
                    r.thread.join(timeout=60)
            raise
        finally:
            self.interrupt.in_batch = False
        return outcome

    def admit(self, running: list[BatchRun], sample: int) -> Trip | None:
        """Let hosts go in plan order while the site's imaging capacity allows: a batch's gate
        once every host of the batches before it has its slot, then each of its hosts to reimage
        its slot while fewer than the capacity are reimaging. The breaker looks before each."""
        imaging = sum(len(r.imaging) for r in running)
        for r in running:
            if not r.gate_open:
                trip = self.look_ahead(running, sample)
                if trip is not None:
                    return trip
                r.open_gate()
                imaging += len(r.imaging)
            while r.waiting and imaging < self.capacity:
                trip = self.look_ahead(running, sample)
                if trip is not None:
                    return trip
                r.open_slot()
                imaging += 1
            if r.waiting:
                break  # the batches after it queue behind its hosts
        return None

    def release(self, running: list[BatchRun], stage_of: dict[BatchRun, int], sample: int) -> Trip | None:
        """Open the redeploy gate of each held batch whose earlier stages have all finished
        (their batches left `running`; later ones were never started before them). The
        breaker looks before each."""
        for r in running:
            if r.held and not any(stage_of[o] < stage_of[r] for o in running):
                trip = self.look_ahead(running, sample)
                if trip is not None:
                    return trip
                r.open_redeploy()
        return None

    def look_ahead(self, running: list[BatchRun], sample: int) -> Trip | None:
        """The breaker over the finished batches and what is known of the running ones."""
        if self.dry_run:
            return None
        opened = [r for r in running if r.gate_open]
        return self.breaker.check_in_flight(
            sum(r.past_reimage() for r in opened),
            {k: v for r in opened for k, v in r.failures().items()},
            sample=sample,
        )
