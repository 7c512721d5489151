"""One wave of a site run: its stages, and what follows each batch.

The wave's batches are pipelined (scheduler.py): a batch touches hosts only once the one before
it has its imaging slots, and at most `pipeline_depth` batches are in flight. A later stage's
batches reimage and harden while the stage before is redeployed and verified, and wait at their
redeploy gate until it is over (when the playbook has that gate and this is no dry run;
otherwise the stages run one after the other). Waves never overlap: the breaker's per-wave
sample, --confirm-each-wave and the tier-0 gates sit between them.
After each batch its failures are kept, the hosts it verified are promoted off the recovery
network (rebuild.promote), their rebuild secrets retired where Windows LAPS took over
(rebuild.secret_retirement), and the circuit breaker (breaker.py) decides whether the site goes on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from rebuild.journal import Journal
from rebuild.orchestrator.batch import BatchRun
from rebuild.orchestrator.batches import BatchStarter
from rebuild.orchestrator.breaker import Breaker, Trip
from rebuild.orchestrator.interlocks import confirm_site
from rebuild.orchestrator.interrupt import Interrupt
from rebuild.orchestrator.options import SiteRunOptions
from rebuild.orchestrator.progress import Progress
from rebuild.orchestrator.resume import HostWork, playbook_redeploy_gated
from rebuild.orchestrator.scheduler import Outcome, WaveScheduler
from rebuild.plan import Wave
from rebuild.promote import PromotionConfig, promote_verified
from rebuild.secret_retirement import retire_rebuild_secrets
from rebuild.sites import Site


@dataclass
class WaveRunner:
    """What every wave of one site run shares."""

    options: SiteRunOptions
    site: Site
    journal: Journal
    run_id: str
    run_dir: Path
    gated: bool  # the playbook waits at its gate (resume.playbook_gated)
    batches: BatchStarter
    promotion: PromotionConfig
    progress: Progress
    interrupt: Interrupt
    breaker: Breaker
    abort: threading.Event  # the run is failing: cancel the batches still running
    failed: dict[str, str] = field(default_factory=dict)  # host -> reason, over the whole run

    def confirm(self, n: int, wave: Wave) -> None:
        """--confirm-each-wave: the operator types the site name again before wave n (from 0)."""
        if not self.options.confirm_each_wave or n == 0 or self.options.dry_run:
            return
        self.progress.suspend()
        how = confirm_site(
            self.site.name,
            f"Wave {n + 1} (tier {wave.tier.id} {wave.tier.label}, {len(wave.hosts)} hosts): "
            f"type the site name ({self.site.name}) to go on: ",
            yes=False,
            ask=self.options.ask,
        )
        self.journal.record_confirmation(
            self.run_id, self.site.name, self.options.operator, how, f"wave tier {wave.tier.id}"
        )
        self.progress.resume()

    def run(self, wave: Wave, work: dict[str, HostWork]) -> Outcome:
        """The wave's stages; ("completed", "") or the (status, reason) that stopped it."""
        self.breaker.start_wave(wave.tier.id)
        self.progress.emit(
            "wave_started",
            tier=wave.tier.id,
            label=wave.tier.label,
            hosts=len(wave.hosts),
            batches=len(wave.batches),
        )
        numbers = {id(batch): b for b, batch in enumerate(wave.batches, 1)}
        scheduler = WaveScheduler(
            capacity=self.site.imaging_capacity,
            pipeline_depth=self.options.pipeline_depth,
            gated=self.gated,
            overlap=self.overlap,
            dry_run=self.options.dry_run,
            breaker=self.breaker,
            interrupt=self.interrupt,
            start_batch=lambda batch, gated, held, news: self.batches.start(
                wave, numbers[id(batch)], batch, work, self.progress, self.interrupt, news, gated, held
            ),
            batch_finished=lambda run: self._batch_finished(wave, run),
            tripped=self._tripped,
            abort=self.abort,
        )
        sample = min(self.site.imaging_capacity, len(wave.hosts))
        return scheduler.run(wave.stages(), sample) or ("completed", "")

    @cached_property
    def overlap(self) -> bool:
        """Whether a wave's stages overlap: the batches are gated, the playbook holds hosts at a
        redeploy gate, and this is no dry run (which renders only: its stages stay serial)."""
        return self.gated and not self.options.dry_run and playbook_redeploy_gated(self.batches.playbook)

    def _batch_finished(self, wave: Wave, run: BatchRun) -> Outcome | None:
        failures, runner_status = run.outcome
        if run.cancelled.is_set() and not run.gate_open:
            self.progress.emit(
                "batch_finished",
                tier=wave.tier.id,
                batch=run.number,
                ident=run.ident,
                hosts=0,  # stopped at its gate: nothing of it was processed
                failed=[],
                runner_status="not started (site stopping)",
            )
            return None
        self.failed.update(failures)
        self.progress.emit(
            "batch_finished",
            tier=wave.tier.id,
            batch=run.number,
            ident=run.ident,
            hosts=run.processed(),
            failed=sorted(failures),
            runner_status=runner_status,
        )
        if not self.options.dry_run:
            # Quarantine then promote: hosts that passed verification leave the
            # recovery network now (rebuild.promote); quarantined ones stay.
            promoted = promote_verified(
                self.journal,
                self.site.name,
                run_id=self.run_id,
                operator=self.options.operator,
                config=self.promotion,
            )
            if promoted.promoted or promoted.errors:
                self.progress.emit("promoted", hosts=promoted.promoted, errors=promoted.errors)
            # Promoted hosts whose rb-admin the verify role disabled (Windows LAPS manages them)
            # lose their rebuild secret; the others keep it, the journal says why.
            retire_rebuild_secrets(self.journal, self.site.name, self.batches.store, run_id=self.run_id)
        if runner_status in ("canceled", "timeout") or self.interrupt.requested:
            return "interrupted", f"batch {run.ident} {runner_status}: interrupted"
        trip = self.breaker.record_batch(run.processed(), failures)
        if trip is not None and not self.options.dry_run:
            return self._tripped(trip)
        return None

    def _tripped(self, trip: Trip) -> Outcome:
        reason = trip.explain() + f"\nPer-host logs: {self.run_dir / 'hosts'}"
        self.progress.emit(
            "breaker", tier=trip.tier, failed=trip.failed, processed=trip.processed, text=reason
        )
        return "stopped", reason
