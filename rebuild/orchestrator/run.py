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

import contextlib
import dataclasses
import fcntl
import json
import os
import queue
import re
import secrets as pysecrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rebuild.errors import ConfigError, RebuildError, SafetyError
from rebuild.inventory import hosts_of_inventory, read_ansible_inventory
from rebuild.journal import ACTIVE, Journal, Phase
from rebuild.model import Host
from rebuild.orchestrator.batch_inventory import BatchInventories, work_groups
from rebuild.orchestrator.breaker import Breaker, Trip
from rebuild.orchestrator.events import EventMapper, HostEvent
from rebuild.orchestrator.interlocks import confirm_site, select_hosts, wipe_summary
from rebuild.orchestrator.progress import HostLogs, JsonProgress, Progress, RichProgress, Synchronized
from rebuild.orchestrator.resume import HostWork, host_work, playbook_gated, playbook_phases
from rebuild.plan import Plan, Wave, plan_site
from rebuild.promote import load_config as load_promotion_config
from rebuild.promote import promote_verified
from rebuild.secrets import KEY_FILE_ENV, STATE_DIR_ENV, SecretStore
from rebuild.sites import get_site

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PLAYBOOK = PROJECT_ROOT / "playbooks" / "site.yml"

# Credentials an operator may give through the environment; imported into the encrypted store
# (entry `site-<site>`) and removed from Ansible's environment.
ENV_CREDENTIALS = {
    "REBUILD_BMC_USER": "bmc_user",
    "REBUILD_BMC_PASSWORD": "bmc_password",
    "REBUILD_HYPERVISOR_TOKEN": "hypervisor_token",
}
_ENV_KEEP = {
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TZ",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    STATE_DIR_ENV,
    KEY_FILE_ENV,
}
_ENV_PREFIXES = ("ANSIBLE_", "AWX_", "RUNNER_", "JOB_", "ORIGINAL_STDOUT_CALLBACK")
_SECRETISH = re.compile(r"PASS|TOKEN|SECRET|CREDENTIAL|PRIVATE", re.IGNORECASE)

EXIT_OK, EXIT_FAILED_HOSTS, EXIT_BREAKER, EXIT_INTERRUPTED = 0, 1, 4, 130


@dataclass
class SiteRunOptions:
    site: str
    inventory: Path
    state_dir: Path
    operator: str
    yes: bool = False
    dry_run: bool = False
    limit: tuple[str, ...] = ()
    tier: int | None = None
    force_hosts: tuple[str, ...] = ()
    confirm_each_wave: bool = False
    breaker_threshold: float = 0.2
    json: bool = False
    rehearsal: bool = False
    playbook: Path = DEFAULT_PLAYBOOK
    imaging_capacity: int | None = None  # may only lower the site's capacity (degraded imaging)
    pipeline_depth: int = 4  # batches in flight at once in a stage (1: strictly one after another)
    ask: Callable[[str], str] = input
    say: Callable[[str], None] = print


@dataclass
class SiteRunResult:
    run_id: str
    status: str  # completed | stopped | interrupted | dry-run | nothing-to-do
    reason: str
    run_dir: Path
    counts: dict[str, int]
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.status == "stopped":
            return EXIT_BREAKER
        if self.status == "interrupted":
            return EXIT_INTERRUPTED
        return EXIT_FAILED_HOSTS if self.failed else EXIT_OK


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + pysecrets.token_hex(3)


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment Ansible gets: what it needs, never a credential."""
    kept = {}
    for key, value in env.items():
        if key in (STATE_DIR_ENV, KEY_FILE_ENV):
            kept[key] = value  # paths, not secrets
        elif (key in _ENV_KEEP or key.startswith(_ENV_PREFIXES)) and not _SECRETISH.search(key):
            kept[key] = value
    return kept


@contextlib.contextmanager
def site_lock(state_dir: Path, site: str) -> Iterator[None]:
    """One run per state directory at a time (a second operator must not race the first)."""
    path = state_dir / "runs" / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise SafetyError(
                f"another `rebuild site` run is active on {state_dir} ({handle.read().strip()}); "
                "nothing was touched"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} site {site}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Interrupt:
    """SIGINT/SIGTERM stop the current batch cleanly (ansible-runner's cancel callback)."""

    def __init__(self) -> None:
        self.requested = False
        self.in_batch = False  # during a batch, ansible-runner's cancel callback stops it cleanly
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if not self.in_batch:  # e.g. at a --confirm-each-wave prompt: stop now
            raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _BatchRun:
    """One batch running in its own thread (its ansible-runner call), watched by the stage loop."""

    def __init__(
        self, ident: str, number: int, batch: list[Host], news: queue.Queue[_BatchRun], gate: Path | None
    ) -> None:
        self.ident, self.number, self.batch = ident, number, batch
        self.news = news
        self.gate = gate  # None: the batch may touch hosts as soon as it starts
        self.gate_open = gate is None
        self.cancelled = threading.Event()  # stopped at its gate: it touched nothing
        self.imaging: set[str] = set()  # hosts still to finish their reimage phase
        self.reimaged = threading.Event()  # none of them is reimaging any more: the next may start
        self.finished = threading.Event()
        self.outcome: tuple[dict[str, str], str] = ({}, "not run")
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.inventory: Path | None = None  # this batch's hosts only (batch_inventory.py)
        self.mapper: EventMapper | None = None  # its events -> the journal
        self._failures: dict[str, str] = {}
        self._lock = threading.Lock()

    def host_event(self, event: HostEvent) -> None:
        """Called from the batch's thread for every host event."""
        with self._lock:
            if event.kind in ("failed", "quarantined"):
                self._failures.setdefault(event.host, event.message)
            ends_imaging = (event.kind == "done" and event.phase == "reimage") or event.kind in (
                "failed",
                "quarantined",
            )
            if ends_imaging and event.host in self.imaging:
                self.imaging.discard(event.host)
                if not self.imaging:
                    self._signal_reimaged()

    def open_gate(self) -> None:
        """Let the batch touch its hosts: they enter their first phase in the journal first."""
        if self.mapper is not None:
            self.mapper.begin()
        if self.gate is not None:
            self.gate.parent.mkdir(parents=True, exist_ok=True)
            self.gate.touch()
        self.gate_open = True

    def cancel(self) -> None:
        self.cancelled.set()

    def failures(self) -> dict[str, str]:
        with self._lock:
            return dict(self._failures)

    def past_reimage(self) -> int:
        """Hosts whose fate is partly known (reimaged or failed): they count for the breaker."""
        with self._lock:
            return len(self.batch) - len(self.imaging)

    def finish(self) -> None:
        with self._lock:
            self.imaging.clear()
            self._signal_reimaged()
        self.finished.set()
        self.news.put(self)

    def _signal_reimaged(self) -> None:
        if not self.reimaged.is_set():
            self.reimaged.set()
            self.news.put(self)


class SiteRun:
    def __init__(self, options: SiteRunOptions) -> None:
        self.o = options
        self.state_dir = options.state_dir.resolve()
        self.inventory = options.inventory.resolve()
        self.playbook = options.playbook.resolve()
        self.run_id = new_run_id()
        self.run_dir = self.state_dir / "runs" / self.run_id
        self.store = SecretStore(self.state_dir)
        self.failed: dict[str, str] = {}
        self._abort = threading.Event()  # the run is failing: cancel the batches still running

    # -- preparation: everything that can refuse happens before anything is touched ---------

    def prepare(self) -> tuple[list[Host], dict[str, HostWork], Plan | None]:
        o = self.o
        site = get_site(o.site)
        if site.name != o.site:
            raise SafetyError(
                f"site {o.site!r}: give the site's key {site.name!r} (one site per run, named exactly)"
            )
        if o.pipeline_depth < 1:
            raise ConfigError(f"--pipeline-depth {o.pipeline_depth}: must be 1 or more")
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
        self.batch_inventories = BatchInventories(inventory, self.inventory, self.run_dir / "inventory")
        selected = select_hosts(
            hosts,
            site.name,
            limit=o.limit,
            tier=o.tier,
            force_hosts=o.force_hosts,
            inventory_label=f"inventory {self.inventory}",
        )
        self.available = playbook_phases(self.playbook)
        self._gated = playbook_gated(self.playbook)
        self.journal = Journal.in_state_dir(self.state_dir)
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
        with site_lock(self.state_dir, self.o.site):
            selected, work, plan = self.prepare()
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
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "plan.json").write_text(plan.to_json() if plan else "{}\n", encoding="utf-8")
            (self.run_dir / "work.json").write_text(
                json.dumps({n: asdict(w) for n, w in work.items()}, indent=1), encoding="utf-8"
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
                self._import_env_credentials()
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
            with _Interrupt() as interrupt:
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
                status, reason = (
                    "dry-run",
                    f"rendered into {self.run_dir / 'boot'}; nothing was booted or reset",
                )
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

    def _run_wave(
        self,
        wave: Wave,
        work: dict[str, HostWork],
        progress: Progress,
        interrupt: _Interrupt,
        breaker: Breaker,
    ) -> tuple[str, str]:
        """The wave's stages one after the other; inside a stage, batches are pipelined: a batch
        touches hosts only once the one before it has finished reimaging (so no more than the
        imaging capacity reimages at once) and at most `pipeline_depth` batches are in flight."""
        numbers = {id(batch): b for b, batch in enumerate(wave.batches, 1)}
        for stage in wave.stages():
            outcome = self._run_stage(wave, stage, numbers, work, progress, interrupt, breaker)
            if outcome is not None:
                return outcome
        return "completed", ""

    def _run_stage(
        self,
        wave: Wave,
        stage: list[list[Host]],
        numbers: dict[int, int],
        work: dict[str, HostWork],
        progress: Progress,
        interrupt: _Interrupt,
        breaker: Breaker,
    ) -> tuple[str, str] | None:
        """Batches of one stage. A batch's gate opens (it may touch hosts) only when no other
        batch is reimaging and the breaker agrees; with a gated playbook the next batch is
        started early so Ansible's start-up overlaps the reimaging before it."""
        news: queue.Queue[_BatchRun] = queue.Queue()
        waiting = list(stage)
        running: list[_BatchRun] = []
        outcome: tuple[str, str] | None = None

        def start(gated: bool) -> None:
            batch = waiting.pop(0)
            interrupt.in_batch = True
            running.append(
                self._start_batch(wave, numbers[id(batch)], batch, work, progress, interrupt, news, gated)
            )

        try:
            while waiting or running:
                imaging = any(r.gate_open and not r.reimaged.is_set() for r in running)
                closed = [r for r in running if not r.gate_open]
                room = bool(waiting) and len(running) < self.o.pipeline_depth
                if outcome is not None or interrupt.requested:
                    for r in closed:
                        r.cancel()  # started early, never let through: nothing was touched
                elif not imaging and (closed or room):
                    opened = [r for r in running if r.gate_open]
                    trip = breaker.check_in_flight(
                        sum(r.past_reimage() for r in opened),
                        {k: v for r in opened for k, v in r.failures().items()},
                    )
                    if trip is not None and not self.o.dry_run:
                        outcome = self._tripped(trip, progress)
                        continue
                    if closed:
                        closed[0].open_gate()
                    else:
                        start(gated=False)
                    continue
                elif self._gated and room and not closed:
                    start(gated=True)
                    continue
                try:
                    done = news.get(timeout=0.5)  # wakes for a reimaged batch or a finished one
                except queue.Empty:
                    continue
                if not done.finished.is_set():
                    continue
                running.remove(done)
                interrupt.in_batch = bool(running)
                if done.error is not None:
                    raise done.error
                stopped = self._batch_finished(wave, done, progress, interrupt, breaker)
                if stopped is not None and outcome is None:
                    outcome = stopped
        except BaseException:
            # Something broke in the orchestrator: the other batches must not run on unwatched.
            self._abort.set()
            for r in running:
                if r.thread is not None:
                    r.thread.join(timeout=60)
            raise
        finally:
            interrupt.in_batch = False
        return outcome

    def _start_batch(
        self,
        wave: Wave,
        number: int,
        batch: list[Host],
        work: dict[str, HostWork],
        progress: Progress,
        interrupt: _Interrupt,
        news: queue.Queue[_BatchRun],
        gated: bool,
    ) -> _BatchRun:
        ident = f"t{wave.tier.id}-b{number:03d}"
        progress.emit(
            "batch_started",
            tier=wave.tier.id,
            batch=number,
            batches=len(wave.batches),
            ident=ident,
            hosts=[h.hostname for h in batch],
        )
        gate = self.run_dir / "gates" / ident if gated else None
        run = _BatchRun(ident, number, batch, news, gate)
        run.imaging = {
            h.hostname for h in batch if "reimage" in work[h.hostname].phases and not self.o.dry_run
        }
        if not run.imaging:
            run.reimaged.set()
        # Secrets rotate here, in the orchestrator's thread, before the batch's own thread starts.
        prepared = self._prepare_batch(batch, work)
        run.inventory = self.batch_inventories.write(
            ident, [h.hostname for h in batch], work_groups(*prepared, dry_run=self.o.dry_run)
        )

        def on_event(event: HostEvent) -> None:
            progress.host_event(event)
            run.host_event(event)

        run.mapper = EventMapper(
            self.journal,
            self.run_id,
            phases=prepared[0],
            force_hosts=frozenset(h.hostname for h in batch if work[h.hostname].forced),
            record_only=self.o.dry_run,
            on_host_event=on_event,
        )

        def body() -> None:
            try:
                run.outcome = self._run_batch(ident, batch, prepared, interrupt, run)
            except BaseException as exc:  # re-raised in the orchestrator's thread
                run.error = exc
            finally:
                run.finish()

        run.thread = threading.Thread(target=body, name=f"batch-{ident}", daemon=True)
        run.thread.start()
        return run

    def _batch_finished(
        self, wave: Wave, run: _BatchRun, progress: Progress, interrupt: _Interrupt, breaker: Breaker
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
            hosts=len(run.batch),
            failed=sorted(failures),
            runner_status=runner_status,
        )
        if not self.o.dry_run:
            # Quarantine then promote: hosts that passed verification leave the
            # recovery network now (rebuild.promote); quarantined ones stay.
            promoted = promote_verified(
                self.journal, self.site.name, run_id=self.run_id,
                operator=self.o.operator, config=self._promotion,
            )
            if promoted.promoted or promoted.errors:
                progress.emit("promoted", hosts=promoted.promoted, errors=promoted.errors)
        if runner_status in ("canceled", "timeout") or interrupt.requested:
            return "interrupted", f"batch {run.ident} {runner_status}: interrupted"
        trip = breaker.record_batch(len(run.batch), failures)
        if trip is not None and not self.o.dry_run:
            return self._tripped(trip, progress)
        return None

    def _tripped(self, trip: Trip, progress: Progress) -> tuple[str, str]:
        reason = trip.explain() + f"\nPer-host logs: {self.run_dir / 'hosts'}"
        progress.emit("breaker", tier=trip.tier, failed=trip.failed, processed=trip.processed, text=reason)
        return "stopped", reason

    def _prepare_batch(
        self, batch: list[Host], work: dict[str, HostWork]
    ) -> tuple[dict[str, list[str]], list[str]]:
        """Each host's phases for this batch and the hosts to re-check; new secrets for the wipes."""
        host_phases: dict[str, list[str]] = {}
        recheck: list[str] = []
        for h in batch:
            name = h.hostname
            w = work[name]
            phases = list(w.phases)
            if self.o.dry_run:
                phases = ["reimage"] if w.wipes else []  # a dry run renders; it never talks to a host
            host_phases[name] = phases
            if w.recheck:
                recheck.append(name)
            elif w.wipes and not self.o.dry_run:
                self._rotate(name)
        return host_phases, recheck

    def _run_batch(
        self,
        ident: str,
        batch: list[Host],
        prepared: tuple[dict[str, list[str]], list[str]],
        interrupt: _Interrupt,
        run: _BatchRun,
    ) -> tuple[dict[str, str], str]:
        from ansible_runner.interface import init_runner

        names = [h.hostname for h in batch]
        host_phases, _ = prepared  # what each host does is in the batch inventory's work groups
        extravars: dict[str, Any] = {
            "rebuild_dry_run": self.o.dry_run,
            "rebuild_run_id": self.run_id,
        }
        if run.gate is not None:
            extravars["rebuild_gate_file"] = str(run.gate)
        if self.o.dry_run:
            render = self.run_dir / "boot"
            (render / "unattend").mkdir(parents=True, exist_ok=True)
            extravars["rebuild_render_dir"] = str(self.run_dir)
        mapper = run.mapper
        assert mapper is not None  # set by _start_batch
        before = {n: self.journal.host(n).phase for n in names}
        if run.gate is None:
            run.open_gate()  # no gate task in the playbook: it touches hosts as soon as it runs
        env = dict(os.environ)
        env.update(
            {
                STATE_DIR_ENV: str(self.state_dir),
                "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"),
                "ANSIBLE_FORKS": str(len(names)),
                # The batch inventory is always YAML written by us: no other plugin to load and try.
                "ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.yaml",
                "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
            }
        )
        if KEY_FILE_ENV not in env:
            env[KEY_FILE_ENV] = str(self.store.key_file.resolve())
        private = self.run_dir / "runner" / ident
        private.mkdir(parents=True, exist_ok=True)
        runner = init_runner(
            private_data_dir=str(private),
            artifact_dir=str(self.run_dir / "artifacts"),
            ident=ident,
            project_dir=str(PROJECT_ROOT),
            playbook=str(self.playbook),
            inventory=str(run.inventory or self.inventory),
            limit=",".join(names),  # the batch inventory holds only these; the limit says so twice
            extravars=extravars,
            forks=len(names),
            quiet=True,
            suppress_env_files=True,
            event_handler=mapper,
            cancel_callback=lambda: interrupt.requested or self._abort.is_set() or run.cancelled.is_set(),
        )
        runner.config.env = child_env({**runner.config.env, **env})
        try:
            runner.run()
        except Exception as exc:  # the runner itself broke: nothing more is known about the hosts
            raise RebuildError(f"batch {ident}: ansible-runner failed: {type(exc).__name__}: {exc}") from exc
        runner_status = str(runner.status)
        if runner_status not in ("canceled", "timeout") and not self.o.dry_run:
            self._reconcile(names, before, host_phases, mapper, runner_status, runner.rc)
        return {**mapper.failed, **mapper.quarantined}, runner_status

    def _reconcile(
        self,
        names: list[str],
        before: dict[str, Phase],
        host_phases: dict[str, list[str]],
        mapper: EventMapper,
        runner_status: str,
        rc: Any,
    ) -> None:
        """Hosts the playbook left mid-phase or never started are failed, with why."""
        for name in names:
            if not host_phases.get(name) or name in mapper.failed or name in mapper.quarantined:
                continue
            record = self.journal.host(name)
            if record.phase in ACTIVE:
                reason = (
                    f"the playbook ended during {ACTIVE[record.phase]} without a result "
                    f"(runner {runner_status}, rc {rc})"
                )
                self.journal.transition(
                    name, Phase.FAILED, run_id=self.run_id, reason=reason, failed_phase=ACTIVE[record.phase]
                )
                mapper.failed[name] = reason
            elif record.run_id != self.run_id and record.phase is before[name]:
                if record.phase in (Phase.VERIFIED, Phase.QUARANTINED):
                    continue
                first = host_phases[name][0]
                artifacts = self.run_dir / "artifacts"
                reason = f"{first} never started (runner {runner_status}, rc {rc}); see {artifacts}"
                self.journal.transition(
                    name, Phase.FAILED, run_id=self.run_id, reason=reason, failed_phase=first
                )
                mapper.failed[name] = reason

    # -- secrets ---------------------------------------------------------------------------

    def _rotate(self, host: str) -> None:
        """A new local admin secret before the wipe; the pre-incident one is kept once, apart."""
        current = self.store.get(host)
        if current is not None and self.store.get(host, "local_admin_previous") is None:
            self.store.put(host, current, "local_admin_previous")
        self.store.rotate(host)

    def _import_env_credentials(self) -> None:
        for var, name in ENV_CREDENTIALS.items():
            value = os.environ.get(var)
            if value:
                self.store.put(f"site-{self.site.name}", value, name)

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
    return SiteRun(options).run()
