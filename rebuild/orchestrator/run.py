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
import secrets as pysecrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rebuild import atomicfile, contract
from rebuild.childenv import child_env
from rebuild.errors import NO_ROOM_ERRNOS, ConfigError, OptionError, RebuildError, SafetyError, StateError
from rebuild.hostnames import checked_hostname
from rebuild.inventory import (
    group_var,
    hosts_of_inventory,
    read_ansible_inventory,
    site_groups_of_inventory,
)
from rebuild.journal import ACTIVE, Journal, Phase, journal_holds_site
from rebuild.model import Host
from rebuild.orchestrator.batch_inventory import BatchInventories, work_groups
from rebuild.orchestrator.breaker import Breaker, Trip
from rebuild.orchestrator.events import EventMapper, HostEvent
from rebuild.orchestrator.interlocks import (
    check_site_membership,
    confirm_site,
    select_hosts,
    wipe_summary,
)
from rebuild.orchestrator.progress import HostLogs, JsonProgress, Progress, RichProgress, Synchronized
from rebuild.orchestrator.resume import HostWork, host_work, playbook_gated, playbook_phases
from rebuild.plan import Plan, Wave, plan_site
from rebuild.promote import load_config as load_promotion_config
from rebuild.promote import promote_verified
from rebuild.secrets import KEY_FILE_ENV, STATE_DIR_ENV, SecretStore
from rebuild.sites import SITE_NETWORKS_VAR, Site, get_site, site_networks
from rebuild.statedir import other_journals
from rebuild.tiers import tier_table
from rebuild.yamlfile import load_yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PLAYBOOK = PROJECT_ROOT / "playbooks" / "site.yml"

# Credentials an operator may give through the environment; imported into the encrypted store
# (entry `site-<site>`) at the start of a run. Ansible never sees them in its environment
# (rebuild.childenv): its roles read them from the store with the rebuild_secret lookup.
ENV_CREDENTIALS = {
    "REBUILD_BMC_USER": "bmc_user",
    "REBUILD_BMC_PASSWORD": "bmc_password",
    "REBUILD_HYPERVISOR_TOKEN": "hypervisor_token",
    "REBUILD_DOMAIN_JOIN_USER": "domain_join_user",
    "REBUILD_DOMAIN_JOIN_PASSWORD": "domain_join_password",
}
# The redeploy role joins a host to the site's domain with these (roles/redeploy/defaults).
DOMAIN_JOIN_SECRETS = ("domain_join_user", "domain_join_password")

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
    new_journal: bool = False  # may start an empty journal for the site (else refused)
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


def validate_options(o: SiteRunOptions) -> None:
    """Every option checked before anything is locked, recorded or touched (OptionError, exit 3)."""
    if not 0 < o.breaker_threshold <= 1:  # NaN fails too
        raise OptionError(
            f"--breaker-threshold {o.breaker_threshold}: must be a share of the wave, more than 0 and "
            "at most 1 (0.2 = stop when more than 20% fail)"
        )
    if o.pipeline_depth < 1:
        raise OptionError(f"--pipeline-depth {o.pipeline_depth}: must be 1 or more")
    if o.imaging_capacity is not None and o.imaging_capacity < 1:
        raise OptionError(f"--capacity {o.imaging_capacity}: must be 1 or more")
    if o.tier is not None:
        known = [t.id for t in tier_table().tiers]
        if o.tier not in known:
            raise OptionError(f"--tier {o.tier}: no such tier in tiers.yml (known: {known})")
    for option, names in (("--limit", o.limit), ("--force-host", o.force_hosts)):
        blank = [n for n in names if not n.strip()]
        if blank:
            raise OptionError(f"{option} holds an empty host name: name every host. Nothing was touched.")
    if not o.operator.strip():
        raise OptionError("--operator is empty: the journal must say who confirmed the wipe")
    if o.state_dir.exists() and not o.state_dir.is_dir():
        raise OptionError(f"--state-dir {o.state_dir}: is a file, not a directory")
    if not o.inventory.exists():
        raise OptionError(f"--inventory {o.inventory}: no such file or directory")
    if not o.playbook.is_file():
        raise OptionError(f"--playbook {o.playbook}: no such file")
    try:
        plays = load_yaml(o.playbook)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: not UTF-8
        raise OptionError(f"--playbook {o.playbook}: cannot read it as YAML: {exc}") from None
    if not isinstance(plays, list) or not all(isinstance(p, dict) for p in plays):
        raise OptionError(f"--playbook {o.playbook}: not a playbook (a YAML list of plays)")


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + pysecrets.token_hex(3)


@contextlib.contextmanager
def site_lock(state_dir: Path, site: str) -> Iterator[None]:
    """One run per state directory at a time (a second operator must not race the first)."""
    path = state_dir / "runs" / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unbuffered: a full disk fails the write below, not the close after it.
    with open(path, "a+b", buffering=0) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().decode("utf-8", "replace").strip()
            raise SafetyError(
                f"another `rebuild site` run is active on {state_dir} ({holder}); nothing was touched"
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} site {site}\n".encode())
        except OSError as exc:  # a full disk shows here first
            fcntl.flock(handle, fcntl.LOCK_UN)
            raise StateError(
                f"cannot write the run lock {path}: {exc.strerror}; nothing was touched"
            ) from None
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
    """One batch running in its own thread (its ansible-runner call), watched by the stage loop.

    The orchestrator lets its hosts go twice: the batch's gate (Ansible may touch them), then,
    for each host to reimage, an imaging slot. With a gated playbook both are files the playbook
    waits for (rebuild_gate); without one, the gate is open from the start and every host to
    reimage takes its slot then (so such a batch starts only when nothing else is reimaging)."""

    def __init__(
        self,
        ident: str,
        number: int,
        batch: list[Host],
        news: queue.Queue[_BatchRun],
        gate: Path | None,
        slot_dir: Path | None,
        to_reimage: list[str],
    ) -> None:
        self.ident, self.number, self.batch = ident, number, batch
        self.news = news
        self.gate = gate  # None: the batch may touch hosts as soon as it starts
        self.slot_dir = slot_dir  # None: no slot to wait for in the playbook
        self.gate_open = False
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
        self._lock = threading.Lock()

    def host_event(self, event: HostEvent) -> None:
        """Called from the batch's thread for every host event."""
        with self._lock:
            if event.kind in ("failed", "quarantined"):
                self._failures.setdefault(event.host, event.message)
            if event.kind == "not_started":
                self._not_started.add(event.host)
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
            self.gate.parent.mkdir(parents=True, exist_ok=True)
            self.gate.touch()
        self.gate_open = True

    def open_slot(self) -> None:
        """The next host to reimage takes an imaging slot: journal first, then the file."""
        assert self.mapper is not None and self.slot_dir is not None
        with self._lock:
            host = self.waiting.pop(0)
            self.imaging.add(host)
        self.mapper.begin([host])
        self.slot_dir.mkdir(parents=True, exist_ok=True)
        self._slot_file(host).touch()

    def cancel(self, reason: str) -> None:
        """Stop what has not started. A batch still at its gate is cancelled whole (its runner is
        stopped; it touched nothing); in a running batch the hosts still waiting for a slot are
        let go untouched (rebuild_gate's cancel file), and the others finish their phases."""
        if not self.gate_open:
            self.cancelled.set()
            return
        with self._lock:
            waiting, self.waiting = self.waiting, []
        for host in waiting:
            assert self.slot_dir is not None  # without slots nobody waits
            self.slot_dir.mkdir(parents=True, exist_ok=True)
            atomicfile.write_text(contract.cancel_file(self._slot_file(host)), reason + "\n")

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
        self.batch_inventories = BatchInventories(inventory, self.inventory, self.run_dir / "inventory")
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

    def _refuse_fresh_journal(self) -> None:
        """A journal that does not know the site yet is a first run, or a wrong state directory
        (run from another folder, a typo): then verified hosts would be listed for WIPE again.
        Only `--new-journal` says it is a first run, and not while another journal this run can
        know of (the project's, $REBUILD_STATE_DIR's, ./state) holds the site - except for a
        rehearsal, whose lab keeps its own journal."""
        site = self._named_site().name
        if journal_holds_site(Journal.path_in(self.state_dir), site):
            return
        elsewhere = other_journals(site, self.state_dir)
        if elsewhere and not self.o.rehearsal:
            raise SafetyError(
                f"no journal of site {site} in the state directory {self.state_dir}, but the site's "
                f"journal is at {', '.join(map(str, elsewhere))}: give --state-dir "
                f"{elsewhere[0].parent} (a new, empty journal would list verified hosts for WIPE "
                "again). Nothing was touched."
            )
        if not self.o.new_journal:
            raise SafetyError(
                f"no journal of site {site} in the state directory {self.state_dir}: refusing to "
                "start a new, empty one. If this is the site's first run here, pass --new-journal. "
                "Nothing was touched."
            )

    def run(self) -> SiteRunResult:
        self._refuse_fresh_journal()  # before the lock: a mistyped --state-dir is not even created
        with site_lock(self.state_dir, self.o.site):
            self._check_vault_key()
            selected, work, plan = self.prepare()
            self._check_domain_join(work)
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
        """Batches of one stage. With a gated playbook the next batch is started early, so
        Ansible's start-up overlaps the reimaging before it, and its hosts are let go in plan
        order as imaging slots free up (`_admit`); without one, a batch starts only when nothing
        else is reimaging."""
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
                if outcome is not None or interrupt.requested:
                    why = outcome[1].splitlines()[0] if outcome else "interrupted by the operator"
                    for r in running:
                        r.cancel(f"the site is stopping - {why}")
                else:
                    trip = self._admit(wave, running, breaker)
                    if trip is not None:
                        outcome = self._tripped(trip, progress)
                        continue
                    room = bool(waiting) and len(running) < self.o.pipeline_depth
                    if room and self._gated and all(r.gate_open for r in running):
                        start(gated=True)
                        continue
                    if room and not self._gated and not any(r.imaging or r.waiting for r in running):
                        start(gated=False)
                        continue
                try:
                    done = news.get(timeout=0.5)  # wakes for a freed slot or a finished batch
                except queue.Empty:
                    continue
                if not done.finished.is_set() or done not in running:
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

    def _admit(self, wave: Wave, running: list[_BatchRun], breaker: Breaker) -> Trip | None:
        """Let hosts go in plan order while the site's imaging capacity allows: a batch's gate
        once every host of the batches before it has its slot, then each of its hosts to reimage
        its slot while fewer than the capacity are reimaging. The breaker looks before each."""
        imaging = sum(len(r.imaging) for r in running)
        sample = min(self.site.imaging_capacity, len(wave.hosts))
        for r in running:
            if not r.gate_open:
                trip = self._look_ahead(running, breaker, sample)
                if trip is not None:
                    return trip
                r.open_gate()
                imaging += len(r.imaging)
            while r.waiting and imaging < self.site.imaging_capacity:
                trip = self._look_ahead(running, breaker, sample)
                if trip is not None:
                    return trip
                r.open_slot()
                imaging += 1
            if r.waiting:
                break  # the batches after it queue behind its hosts
        return None

    def _look_ahead(self, running: list[_BatchRun], breaker: Breaker, sample: int) -> Trip | None:
        """The breaker over the finished batches and what is known of the running ones."""
        if self.o.dry_run:
            return None
        opened = [r for r in running if r.gate_open]
        return breaker.check_in_flight(
            sum(r.past_reimage() for r in opened),
            {k: v for r in opened for k, v in r.failures().items()},
            sample=sample,
        )

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
        gates = self.run_dir / "gates"
        to_reimage = [] if self.o.dry_run else [h.hostname for h in batch if work[h.hostname].wipes]
        run = _BatchRun(
            ident,
            number,
            batch,
            news,
            gate=contract.gate_file(gates, ident) if gated else None,
            slot_dir=contract.slot_dir(gates, ident) if gated else None,
            to_reimage=to_reimage,
        )
        run.before = {h.hostname: self.journal.host(h.hostname).phase for h in batch}
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
        if not gated:
            run.open_gate()  # no gate in the playbook: it touches hosts as soon as it runs

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
            hosts=run.processed(),
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
        trip = breaker.record_batch(run.processed(), failures)
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
            extravars[contract.GATE_FILE_VAR] = str(run.gate)
        if run.slot_dir is not None:
            extravars[contract.SLOT_DIR_VAR] = str(run.slot_dir)
        if self.o.dry_run:
            render = self.run_dir / "boot"
            (render / "unattend").mkdir(parents=True, exist_ok=True)
            extravars["rebuild_render_dir"] = str(self.run_dir)
            # A dry run talks to no host: no task may resolve a host credential (a fresh state
            # folder has none; Ansible templates the connection's password for every task, even
            # one that runs on the controller such as the gate).
            extravars["ansible_password"] = ""
        mapper = run.mapper
        assert mapper is not None  # set by _start_batch
        env = {
            STATE_DIR_ENV: str(self.state_dir),
            "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"),
            "ANSIBLE_FORKS": str(len(names)),
            # The batch inventory is always YAML written by us: no other plugin to load and try.
            "ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.yaml",
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        }
        key_file = self.store.key_path()
        if key_file is not None:  # a dry run may have none: it reads no secret
            env[KEY_FILE_ENV] = str(key_file.resolve())
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
        # ansible-runner seeds its env from os.environ and records it in artifacts/<ident>/command.
        runner.config.env = child_env(runner.config.env, **env)
        try:
            runner.run()
        except Exception as exc:  # the runner itself broke: nothing more is known about the hosts
            raise RebuildError(f"batch {ident}: ansible-runner failed: {type(exc).__name__}: {exc}") from exc
        runner_status = str(runner.status)
        if runner_status not in ("canceled", "timeout") and not self.o.dry_run:
            self._reconcile(names, run.before, host_phases, mapper, runner_status, runner.rc)
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
            if name in mapper.not_started:  # let go untouched at its imaging slot
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

    def _check_vault_key(self) -> None:
        """Before anything is recorded: the store's key exists, is private, and opens the store.
        A dry run reads and writes no secret: it needs no key."""
        if not self.o.dry_run:
            self.store.check_opens()

    def _check_domain_join(self, work: dict[str, HostWork]) -> None:
        """Hosts that will join the site's domain after their wipe need the join credential now:
        found out after the wipe, the host would stay unjoined, out of service."""
        if self.o.dry_run or not self.site.domain:
            return
        joining = sorted(name for name, w in work.items() if "redeploy" in w.phases)
        if not joining:
            return
        entry = f"site-{self.site.name}"
        missing = [
            f"{name} (or {var})"
            for var, name in ENV_CREDENTIALS.items()
            if name in DOMAIN_JOIN_SECRETS and not os.environ.get(var) and self.store.get(entry, name) is None
        ]
        if missing:
            shown = ", ".join(joining[:5]) + (f" and {len(joining) - 5} more" if len(joining) > 5 else "")
            raise ConfigError(
                f"site {self.site.name}: {len(joining)} host(s) join domain {self.site.domain} after "
                f"their wipe ({shown}) but the secret store {self.store.directory} has no "
                f"{' and no '.join(missing)} in entry {entry}; give the join account as "
                "REBUILD_DOMAIN_JOIN_USER and REBUILD_DOMAIN_JOIN_PASSWORD (imported into the store "
                "at the start of the run). Nothing was wiped."
            )

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
    validate_options(options)
    return SiteRun(options).run()
