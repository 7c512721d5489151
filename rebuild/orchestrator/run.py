"""`rebuild site SITE`: the flow of one site run, wave by wave.

Everything that can refuse happens first (interlocks.py, options.py), then the journal records
the run, the operator confirms, and the waves run one after the other (waves.py: batches
pipelined inside a stage, the breaker and promotion after each batch; batches.py: one
ansible-runner call per batch through rebuild.launcher, whose child environment is an allowlist
so no secret reaches its artifacts). Secrets are rotated in the store before a wipe and read by
Ansible only through the rebuild_secret lookup (credentials.py).
"""

from __future__ import annotations

import os
import threading

from rebuild.datachecks import refuse_bad_data
from rebuild.errors import RebuildError, SafetyError
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
from rebuild.orchestrator.batch_inventory import BatchInventories
from rebuild.orchestrator.batches import BatchStarter
from rebuild.orchestrator.breaker import Breaker
from rebuild.orchestrator.credentials import check_domain_join, import_env_credentials
from rebuild.orchestrator.interlocks import (
    check_site_membership,
    confirm_site,
    refuse_fresh_journal,
    select_hosts,
    site_for_run,
    wipe_summary,
)
from rebuild.orchestrator.interrupt import Interrupt
from rebuild.orchestrator.options import SiteRunOptions, SiteRunResult, validate_options
from rebuild.orchestrator.progress import HostLogs, JsonProgress, Progress, RichProgress, Synchronized
from rebuild.orchestrator.resume import HostWork, host_work, playbook_gated, playbook_phases
from rebuild.orchestrator.run_folder import rendered_summary, write_run_files
from rebuild.orchestrator.sitelock import site_lock
from rebuild.orchestrator.verify_server import verification_server
from rebuild.orchestrator.waves import WaveRunner
from rebuild.plan import Plan, plan_site
from rebuild.promote import load_config as load_promotion_config
from rebuild.secrets import SecretStore
from rebuild.sites import SITE_NETWORKS_VAR, site_networks


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

    def prepare(self) -> tuple[list[Host], dict[str, HostWork], Plan | None]:
        o = self.o
        self.site = site = site_for_run(o.site, o.imaging_capacity)
        self._read_inventory = inventory = read_ansible_inventory(self.inventory)
        hosts = hosts_of_inventory(inventory, self.inventory)
        label = f"inventory {self.inventory}"
        check_site_membership(
            hosts,
            site,
            site_groups_of_inventory(inventory),
            site_networks(site, group_var(inventory, site.group_name, SITE_NETWORKS_VAR), where=label),
            inventory_label=label,
        )
        catalogues = image_catalogues_of(
            inventory, (h for h in hosts if h.site == site.name), site.group_name
        )
        refuse_bad_data(catalogues)  # before the journal records
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
            node=site.execution,
            site=site.name,
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

    def run(self) -> SiteRunResult:
        refuse_fresh_journal(
            self.state_dir,
            site_for_run(self.o.site, None).name,
            rehearsal=self.o.rehearsal,
            new_journal=self.o.new_journal,
        )  # before the lock: a mistyped --state-dir is not even created
        with site_lock(self.state_dir, self.o.site):
            self._check_vault_key()
            selected, work, plan = self.prepare()
            check_domain_join(self.store, self.site, work, dry_run=self.o.dry_run, env=os.environ)
            # Written before the journal records the run: a full disk leaves no run "running".
            write_run_files(self.run_dir, plan, work)
            self._close_stale_runs()
            self.journal.start_run(
                self.run_id,
                self.site.name,
                self.o.operator,
                dry_run=self.o.dry_run,
                rehearsal=self.o.rehearsal,
                options=self.o.recorded(self.inventory, self.available),
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
        promotion = load_promotion_config()
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
            node=self.site.execution,
            read_inventory=self._read_inventory,
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
            here = not self.o.dry_run and self.site.execution is None and "verify" in self.available
            with (
                Interrupt() as interrupt,
                verification_server(self.run_dir, self._batches, wanted=here, say=self.o.say),
            ):
                waves = WaveRunner(
                    options=self.o,
                    site=self.site,
                    journal=self.journal,
                    run_id=self.run_id,
                    run_dir=self.run_dir,
                    gated=self._gated,
                    batches=self._batches,
                    promotion=promotion,
                    progress=progress,
                    interrupt=interrupt,
                    breaker=breaker,
                    abort=self._abort,
                    failed=self.failed,
                )
                for n, wave in enumerate(plan.waves):
                    if interrupt.requested:
                        status, reason = "interrupted", "interrupted by the operator"
                        break
                    waves.confirm(n, wave)
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
                    status, reason = waves.run(wave, work)
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
                status, reason = "dry-run", rendered_summary(self.run_dir, work, self.failed)
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
