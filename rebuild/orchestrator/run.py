"""`rebuild site SITE`: one site, wave by wave, one ansible-runner call per batch.

The run is a loop over the plan of the hosts that still have work (resume). Each batch is
one `ansible_runner` Python API call on playbooks/site.yml limited to the batch, with
forks = batch size (never more than the site's imaging capacity, so imaging queues and is
never rejected), in a thread of its own: inside a stage of a wave (Wave.stages) batches are
pipelined - a batch waits at its gate until no other batch is reimaging, so its start-up and
the previous batches' later phases overlap that reimaging. Events are consumed live into the
journal (events.py). Before each gate opens and after each batch the circuit breaker decides
whether to go on. Secrets: rotated in the store before a wipe, read by
Ansible through the lookup plugin only; the child environment is reduced to an allowlist so
ansible-runner's artifacts (which record env and command line) never hold one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
from dataclasses import asdict

from rebuild.errors import NO_ROOM_ERRNOS, RebuildError, SafetyError, StateError
from rebuild.execution_node import refuse_remote_site
from rebuild.inventory import (
    group_var,
    hosts_of_inventory,
    image_catalogues_of,
    read_ansible_inventory,
    site_groups_of_inventory,
)
from rebuild.journal import Journal
from rebuild.launcher import new_run_id
from rebuild.model import Host
from rebuild.orchestrator import tier0_gates
from rebuild.orchestrator.batch import BatchRun
from rebuild.orchestrator.batch_inventory import BatchInventories
from rebuild.orchestrator.batches import BatchStarter
from rebuild.orchestrator.breaker import Breaker, Trip
from rebuild.orchestrator.credentials import check_domain_join, import_env_credentials
from rebuild.orchestrator.interlocks import (
    check_site_membership,
    confirm_site,
    refuse_fresh_journal,
    select_hosts,
    wipe_summary,
)
from rebuild.orchestrator.interrupt import Interrupt
from rebuild.orchestrator.options import SiteRunOptions, SiteRunResult, validate_options
from rebuild.orchestrator.progress import HostLogs, JsonProgress, Progress, RichProgress, Synchronized
from rebuild.orchestrator.resume import HostWork, host_work, playbook_gated, playbook_phases
from rebuild.orchestrator.scheduler import StageScheduler
from rebuild.orchestrator.sitelock import site_lock
from rebuild.patch import refuse_stale_images
from rebuild.plan import Plan, Wave, plan_site
from rebuild.promote import load_config as load_promotion_config
from rebuild.promote import promote_verified
from rebuild.secrets import SecretStore
from rebuild.sites import SITE_NETWORKS_VAR, Site, get_site, site_networks


class SiteRun:
    def __init__(self, options: SiteRunOptions) -> None:
        self.o = options
        self.state_dir = options.state_dir.resolve()
        self.inventory = options.inventory.resolve()
        self.playbook = options.playbook.resolve()
        self.run_id = new_run_id()
        self.run_dir = self.state_dir / "runs" / self.run_id
        self.store = SecretStore(self.state_dir, rehearsal=options.rehearsal)
        self.failed: dict[str, str] = {}
        self._abort = threading.Event()  # the run is failing: cancel the batches still running

    # -- preparation: everything that can refuse happens before anything is touched ---------

    def _named_site(self) -> Site:
        site = get_site(self.o.site)
        if site.name != self.o.site:
            raise SafetyError(
                f"site {self.o.site!r}: give the site's key {site.name!r} (one site per run, named exactly)"
            )
        return site

    def prepare(self) -> tuple[list[Host], dict[str, HostWork], Plan | None]:
        o = self.o
        site = self._named_site()
        refuse_remote_site(site.name, site.execution)
        if o.imaging_capacity is not None:
            if not 1 <= o.imaging_capacity <= site.imaging_capacity:
                raise SafetyError(
                    f"--capacity {o.imaging_capacity}: must be between 1 and the site's imaging capacity "
                    f"{site.imaging_capacity} (sites.yml); it can only lower it"
                )
            site = dataclasses.replace(site, imaging_capacity=o.imaging_capacity)
        self.site = site
        inventory = read_ansible_inventory(self.inventory)
        hosts = hosts_of_inventory(inventory, self.inventory)
        label = f"inventory {self.inventory}"
        check_site_membership(
            hosts,
            site,
            site_groups_of_inventory(inventory),
            site_networks(site, group_var(inventory, site.group_name, SITE_NETWORKS_VAR), where=label),
            inventory_label=label,
        )
        refuse_stale_images(  # before the journal records
            image_catalogues_of(inventory, (h for h in hosts if h.site == site.name), site.group_name)
        )
        batch_inventories = BatchInventories(inventory, self.inventory, self.run_dir / "inventory")
        selected = select_hosts(
            hosts,
            site.name,
            limit=o.limit,
            tier=o.tier,
            force_hosts=o.force_hosts,
            inventory_label=label,
        )
        self.available = playbook_phases(self.playbook)
        self._gated = playbook_gated(self.playbook)
        self.journal = Journal.in_state_dir(self.state_dir)
        self._batches = BatchStarter(
            journal=self.journal,
            run_id=self.run_id,
            run_dir=self.run_dir,
            store=self.store,
            playbook=self.playbook,
            inventory=self.inventory,
            state_dir=self.state_dir,
            batch_inventories=batch_inventories,
            dry_run=o.dry_run,
            abort=self._abort,
        )
        self.journal.ensure_hosts([h for h in hosts if h.site == site.name])
        forced = {n.upper() for n in o.force_hosts}
        work = {
            h.hostname: host_work(
                self.journal.host(h.hostname), self.available, force=h.hostname.upper() in forced
            )
            for h in selected
        }
        todo = [h for h in selected if work[h.hostname].phases]
        plan = plan_site(todo, site) if todo else None
        return selected, work, plan

    def _write_run_files(self, plan: Plan | None, work: dict[str, HostWork]) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "plan.json").write_text(plan.to_json() if plan else "{}\n", encoding="utf-8")
            (self.run_dir / "work.json").write_text(
                json.dumps({n: asdict(w) for n, w in work.items()}, indent=1), encoding="utf-8"
            )
        except OSError as exc:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            if exc.errno in NO_ROOM_ERRNOS:
                raise StateError(
                    f"cannot write the run folder {self.run_dir}: {exc.strerror}; nothing was recorded"
                ) from None
            raise

    def run(self) -> SiteRunResult:
        refuse_fresh_journal(
            self.state_dir,
            self._named_site().name,
            rehearsal=self.o.rehearsal,
            new_journal=self.o.new_journal,
        )  # before the lock: a mistyped --state-dir is not even created
        with site_lock(self.state_dir, self.o.site):
            self._check_vault_key()
            selected, work, plan = self.prepare()
            check_domain_join(self.store, self.site, work, dry_run=self.o.dry_run, env=os.environ)
            # Written before the journal records the run: a full disk leaves no run "running".
            self._write_run_files(plan, work)
            self._close_stale_runs()
            self.journal.start_run(
                self.run_id,
                self.site.name,
                self.o.operator,
                dry_run=self.o.dry_run,
                rehearsal=self.o.rehearsal,
                options={
                    "inventory": str(self.inventory),
                    "limit": list(self.o.limit),
                    "tier": self.o.tier,
                    "force_hosts": list(self.o.force_hosts),
                    "breaker_threshold": self.o.breaker_threshold,
                    "pipeline_depth": self.o.pipeline_depth,
                    "phases": list(self.available),
                },
            )
            summary = wipe_summary(self.site.label, selected, work)
            if plan is None:
                self.journal.finish_run(self.run_id, "completed", "nothing to do")
                self.o.say(summary + "\nNothing to do: every selected host is done or waits for an operator.")
                return self._result("nothing-to-do", "nothing to do")
            if self.o.dry_run:
                self.o.say(
                    plan.to_text() + "\n" + summary + "\nDRY RUN: rendering only - no boot, reset or packet."
                )
            else:
                self.o.say(plan.to_text() + "\n" + summary)
                try:
                    how = confirm_site(
                        self.site.name,
                        f"Type the site name ({self.site.name}) to wipe and rebuild these machines: ",
                        yes=self.o.yes,
                        ask=self.o.ask,
                    )
                except SafetyError as exc:
                    self.journal.finish_run(self.run_id, "refused", str(exc))
                    raise
                self.journal.record_confirmation(
                    self.run_id,
                    self.site.name,
                    self.o.operator,
                    how,
                    f"{len(plan.hosts)} hosts, tiers {sorted({w.tier.id for w in plan.waves})}"
                    + (f", forced: {','.join(self.o.force_hosts)}" if self.o.force_hosts else ""),
                )
                import_env_credentials(self.store, self.site.name, os.environ)
            return self._execute(plan, work)

    # -- execution -------------------------------------------------------------------------

    def _execute(self, plan: Plan, work: dict[str, HostWork]) -> SiteRunResult:
        logs = HostLogs(self.run_dir / "hosts")
        progress: Progress = Synchronized(
            JsonProgress(logs)
            if self.o.json
            else RichProgress(logs, f"rebuild site {self.site.name} - run {self.run_id}")
        )
        progress.seed({h.name: h.phase.value for h in self.journal.hosts(self.site.name)})
        breaker = Breaker(self.o.breaker_threshold)
        self._promotion = load_promotion_config()
        status, reason = "completed", ""
        gates = tier0_gates.GateCheck(  # tier-0 recovery gates, checked before the first tier-1+ wave
            site=self.site.name,
            domain=self.site.domain,
            journal=self.journal,
            inventory=self.inventory,
            state_dir=self.state_dir,
            run_dir=self.run_dir,
            run_id=self.run_id,
            operator=self.o.operator,
            available=self.available,
            key_file=self.store.key_path(),
            overrides=self.o.override_gates,
            dry_run=self.o.dry_run,
        )
        progress.emit(
            "run_started",
            run_id=self.run_id,
            site=self.site.name,
            hosts=len(plan.hosts),
            waves=len(plan.waves),
            dry_run=self.o.dry_run,
            run_dir=str(self.run_dir),
        )
        try:
            # the gates and incident record are readable before anything is wiped
            tier0_gates.preflight(
                gates, [(w.tier.id, tier0_gates.rejoining(w.hosts, work)) for w in plan.waves]
            )
            with Interrupt() as interrupt:
                for n, wave in enumerate(plan.waves):
                    if interrupt.requested:
                        status, reason = "interrupted", "interrupted by the operator"
                        break
                    if self.o.confirm_each_wave and n > 0 and not self.o.dry_run:
                        progress.suspend()
                        how = confirm_site(
                            self.site.name,
                            f"Wave {n + 1} (tier {wave.tier.id} {wave.tier.label}, {len(wave.hosts)} hosts): "
                            f"type the site name ({self.site.name}) to go on: ",
                            yes=False,
                            ask=self.o.ask,
                        )
                        self.journal.record_confirmation(
                            self.run_id, self.site.name, self.o.operator, how, f"wave tier {wave.tier.id}"
                        )
                        progress.resume()
                    # -- tier-0 recovery gates (rebuild/orchestrator/tier0_gates.py): before the first
                    # tier-1+ wave whose hosts rejoin the domain (redeploy); one that does not hold
                    # stops the run here (exit 6).
                    rejoining = tier0_gates.rejoining(wave.hosts, work)
                    closed = tier0_gates.check_before_wave(
                        gates, wave.tier.id, rejoining, lambda text: progress.emit("tier0_gate", text=text)
                    )
                    if closed is not None:
                        status, reason = closed
                        break
                    # -- end of tier-0 gates
                    breaker.start_wave(wave.tier.id)
                    progress.emit(
                        "wave_started",
                        tier=wave.tier.id,
                        label=wave.tier.label,
                        hosts=len(wave.hosts),
                        batches=len(wave.batches),
                    )
                    status, reason = self._run_wave(wave, work, progress, interrupt, breaker)
                    if status != "completed":
                        break
        except KeyboardInterrupt:
            status, reason = "interrupted", "interrupted by the operator between batches"
            raise
        except BaseException as exc:  # the journal must say the run stopped, and why
            status, reason = (
                "stopped",
                str(exc) if isinstance(exc, RebuildError) else f"{type(exc).__name__}: {exc}",
            )
            raise
        finally:
            if self.o.dry_run and status == "completed":
                status, reason = "dry-run", self._rendered(work)
            self.journal.finish_run(self.run_id, status, reason)
            counts = self.journal.counts(self.site.name)
            progress.emit(
                "run_finished",
                run_id=self.run_id,
                status=status,
                reason=reason,
                counts=counts,
                failed=self.failed,
            )
            progress.close()
        return self._result(status, reason)

    def _rendered(self, work: dict[str, HostWork]) -> str:
        """What a dry run rendered, counted from the files themselves, and what it did not."""
        boot = self.run_dir / "boot"
        wanted = sum(1 for w in work.values() if w.wipes)
        entries = len(list(boot.glob("mac-*.ipxe"))) if boot.is_dir() else 0
        answers = len(list((boot / "unattend").glob("*.xml"))) if boot.is_dir() else 0
        text = (
            f"rendered {entries} boot entries and {answers} answer files "
            f"of {wanted} hosts to wipe into {boot}"
            if entries or answers
            else f"nothing rendered ({wanted} hosts to wipe)"
        )
        if self.failed:
            names = sorted(self.failed)
            text += f"; not rendered: {', '.join(names[:10])}" + (" ..." if len(names) > 10 else "")
            text += f" (first: {self.failed[names[0]].splitlines()[0][:300]})"
        return text + "; nothing was booted or reset"

    def _run_wave(
        self,
        wave: Wave,
        work: dict[str, HostWork],
        progress: Progress,
        interrupt: Interrupt,
        breaker: Breaker,
    ) -> tuple[str, str]:
        """The wave's stages one after the other; inside a stage, batches are pipelined: a batch
        touches hosts only once the one before it has finished reimaging (so no more than the
        imaging capacity reimages at once) and at most `pipeline_depth` batches are in flight."""
        numbers = {id(batch): b for b, batch in enumerate(wave.batches, 1)}
        scheduler = StageScheduler(
            capacity=self.site.imaging_capacity,
            pipeline_depth=self.o.pipeline_depth,
            gated=self._gated,
            dry_run=self.o.dry_run,
            breaker=breaker,
            interrupt=interrupt,
            start_batch=lambda batch, gated, news: self._batches.start(
                wave, numbers[id(batch)], batch, work, progress, interrupt, news, gated
            ),
            batch_finished=lambda run: self._batch_finished(wave, run, progress, interrupt, breaker),
            tripped=lambda trip: self._tripped(trip, progress),
            abort=self._abort,
        )
        sample = min(self.site.imaging_capacity, len(wave.hosts))
        for stage in wave.stages():
            outcome = scheduler.run_stage(stage, sample)
            if outcome is not None:
                return outcome
        return "completed", ""

    def _batch_finished(
        self, wave: Wave, run: BatchRun, progress: Progress, interrupt: Interrupt, breaker: Breaker
    ) -> tuple[str, str] | None:
        failures, runner_status = run.outcome
        if run.cancelled.is_set() and not run.gate_open:
            progress.emit(
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
        progress.emit(
            "batch_finished",
            tier=wave.tier.id,
            batch=run.number,
            ident=run.ident,
            hosts=run.processed(),
            failed=sorted(failures),
            runner_status=runner_status,
        )
        if not self.o.dry_run:
            # Quarantine then promote: hosts that passed verification leave the
            # recovery network now (rebuild.promote); quarantined ones stay.
            promoted = promote_verified(
                self.journal,
                self.site.name,
                run_id=self.run_id,
                operator=self.o.operator,
                config=self._promotion,
            )
            if promoted.promoted or promoted.errors:
                progress.emit("promoted", hosts=promoted.promoted, errors=promoted.errors)
        if runner_status in ("canceled", "timeout") or interrupt.requested:
            return "interrupted", f"batch {run.ident} {runner_status}: interrupted"
        trip = breaker.record_batch(run.processed(), failures)
        if trip is not None and not self.o.dry_run:
            return self._tripped(trip, progress)
        return None

    def _tripped(self, trip: Trip, progress: Progress) -> tuple[str, str]:
        reason = trip.explain() + f"\nPer-host logs: {self.run_dir / 'hosts'}"
        progress.emit("breaker", tier=trip.tier, failed=trip.failed, processed=trip.processed, text=reason)
        return "stopped", reason

    def _check_vault_key(self) -> None:
        """Before anything is recorded: the store's key exists, is private, and opens the store.
        A dry run reads and writes no secret: it needs no key."""
        if not self.o.dry_run:
            self.store.check_opens()

    # -- bookkeeping -----------------------------------------------------------------------

    def _close_stale_runs(self) -> None:
        """A run still 'running' while we hold the lock died without closing (kill -9, power loss)."""
        for run in self.journal.runs():
            if run.status == "running":
                self.journal.finish_run(
                    run.id, "interrupted", f"found unfinished at start of run {self.run_id}"
                )

    def _result(self, status: str, reason: str) -> SiteRunResult:
        return SiteRunResult(
            self.run_id, status, reason, self.run_dir, self.journal.counts(self.site.name), dict(self.failed)
        )


def run_site(options: SiteRunOptions) -> SiteRunResult:
    """Run (or resume) one site. Raises SafetyError/ConfigError before touching anything."""
    validate_options(options)
    return SiteRun(options).run()
