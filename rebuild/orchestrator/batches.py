"""Starting a batch: its hosts' phases, new secrets for the wipes, its inventory, its thread.

The thread runs the batch's playbook through rebuild.launcher with the batch's gate and slot
files (and its redeploy gate, when it is held there) as extravars, feeds its events to the
journal (events.EventMapper) and, once the playbook is over, fails the hosts it left mid-phase
(repair.py).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild import contract
from rebuild.execution_node import ExecutionNode
from rebuild.journal import Journal
from rebuild.launcher import Playbook, run_playbook
from rebuild.model import Host
from rebuild.node_ssh import NodeChannel, check_reachable
from rebuild.orchestrator.batch import BatchRun
from rebuild.orchestrator.batch_inventory import BatchInventories, work_groups
from rebuild.orchestrator.credentials import batch_secrets, rotate_before_wipe
from rebuild.orchestrator.events import EventMapper, HostEvent
from rebuild.orchestrator.interrupt import Interrupt
from rebuild.orchestrator.progress import Progress
from rebuild.orchestrator.repair import fail_unfinished
from rebuild.orchestrator.resume import HostWork
from rebuild.plan import Wave
from rebuild.secrets import KEY_FILE_ENV, SecretStore
from rebuild.verify.client import SOCKET_ENV


@dataclass
class BatchStarter:
    """What every batch of one site run shares."""

    journal: Journal
    run_id: str
    run_dir: Path
    store: SecretStore
    playbook: Path
    inventory: Path  # the site's; each batch gets its own from batch_inventories
    state_dir: Path
    batch_inventories: BatchInventories
    dry_run: bool
    abort: threading.Event = field(default_factory=threading.Event)  # the run is failing
    node: ExecutionNode | None = None  # the site's execution node (sites.yml), else None: here
    site: str = ""  # the site's key: its entry `site-<site>` in the store goes to the node
    verify_socket: Path | None = None  # the run's verification server (verify_server.py), if any

    def start(
        self,
        wave: Wave,
        number: int,
        batch: list[Host],
        work: dict[str, HostWork],
        progress: Progress,
        interrupt: Interrupt,
        news: queue.Queue[BatchRun],
        gated: bool,
        held: bool = False,
    ) -> BatchRun:
        """Start the batch's thread. `held`: an earlier stage of the wave still runs, so the
        batch's hosts wait at its redeploy gate after harden (the scheduler opens it)."""
        ident = f"t{wave.tier.id}-b{number:03d}"
        if self.node is not None:  # before its gate opens: a node that does not answer starts nothing
            check_reachable(self.node)
        progress.emit(
            "batch_started",
            tier=wave.tier.id,
            batch=number,
            batches=len(wave.batches),
            ident=ident,
            hosts=[h.hostname for h in batch],
        )
        # On a node, the gates live in the batch's folder there, opened through its ssh session.
        channel = NodeChannel() if self._runs_on_node else None
        gates = Path(channel.gates) if channel is not None else self.run_dir / "gates"
        to_reimage = [] if self.dry_run else [h.hostname for h in batch if work[h.hostname].wipes]
        run = BatchRun(
            ident,
            number,
            batch,
            news,
            gate=contract.gate_file(gates, ident) if gated else None,
            slot_dir=contract.slot_dir(gates, ident) if gated else None,
            to_reimage=to_reimage,
            channel=channel,
            redeploy_gate=contract.redeploy_gate_file(gates, ident) if held else None,
        )
        run.before = {h.hostname: self.journal.host(h.hostname).phase for h in batch}
        # Secrets rotate here, in the orchestrator's thread, before the batch's own thread starts.
        prepared = self._prepare(batch, work)
        run.inventory = self.batch_inventories.write(
            ident, [h.hostname for h in batch], work_groups(*prepared, dry_run=self.dry_run, held=held)
        )

        def on_event(event: HostEvent) -> None:
            progress.host_event(event)
            run.host_event(event)

        run.mapper = EventMapper(
            self.journal,
            self.run_id,
            phases=prepared[0],
            force_hosts=frozenset(h.hostname for h in batch if work[h.hostname].forced),
            record_only=self.dry_run,
            on_host_event=on_event,
            hold_from=contract.REDEPLOY_GATE_PHASE if held else "",
        )
        if not gated:
            run.open_gate()  # no gate in the playbook: it touches hosts as soon as it runs

        def body() -> None:
            try:
                run.outcome = self._run(ident, batch, prepared, interrupt, run)
            except BaseException as exc:  # re-raised in the orchestrator's thread
                run.error = exc
            finally:
                run.finish()

        run.thread = threading.Thread(target=body, name=f"batch-{ident}", daemon=True)
        run.thread.start()
        return run

    @property
    def _runs_on_node(self) -> bool:
        """A dry run talks to no host and keeps what it renders in the run folder: it renders
        here even for a site on a node (whose reachability start() still checks)."""
        return self.node is not None and not self.dry_run

    def _prepare(
        self, batch: list[Host], work: dict[str, HostWork]
    ) -> tuple[dict[str, list[str]], list[str]]:
        """Each host's phases for this batch and the hosts to re-check; new secrets for the wipes."""
        host_phases: dict[str, list[str]] = {}
        recheck: list[str] = []
        for h in batch:
            name = h.hostname
            w = work[name]
            phases = list(w.phases)
            if self.dry_run:
                phases = ["reimage"] if w.wipes else []  # a dry run renders; it never talks to a host
            host_phases[name] = phases
            if w.recheck:
                recheck.append(name)
            elif w.wipes and not self.dry_run:
                rotate_before_wipe(self.store, name)
        return host_phases, recheck

    def _run(
        self,
        ident: str,
        batch: list[Host],
        prepared: tuple[dict[str, list[str]], list[str]],
        interrupt: Interrupt,
        run: BatchRun,
    ) -> tuple[dict[str, str], str]:
        names = [h.hostname for h in batch]
        host_phases, _ = prepared  # what each host does is in the batch inventory's work groups
        extravars: dict[str, Any] = {
            "rebuild_dry_run": self.dry_run,
            "rebuild_run_id": self.run_id,
        }
        if run.gate is not None:
            extravars[contract.GATE_FILE_VAR] = str(run.gate)
        if run.slot_dir is not None:
            extravars[contract.SLOT_DIR_VAR] = str(run.slot_dir)
        if run.redeploy_gate is not None:
            extravars[contract.REDEPLOY_GATE_FILE_VAR] = str(run.redeploy_gate)
        if self.dry_run:
            render = self.run_dir / "boot"
            (render / "unattend").mkdir(parents=True, exist_ok=True)
            extravars["rebuild_render_dir"] = str(self.run_dir)
            # A dry run talks to no host: no task may resolve a host credential (a fresh state
            # folder has none; Ansible templates the connection's password for every task, even
            # one that runs on the controller such as the gate).
            extravars["ansible_password"] = ""
        mapper = run.mapper
        assert mapper is not None  # set by start
        env = {
            "ANSIBLE_FORKS": str(len(names)),
            # The batch inventory is always YAML written by us: no other plugin to load and try.
            "ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.yaml",
        }
        if self.verify_socket is not None and not self._runs_on_node:
            env[SOCKET_ENV] = str(self.verify_socket)
        key_file = self.store.key_path()
        if key_file is not None:  # a dry run may have none: it reads no secret
            env[KEY_FILE_ENV] = str(key_file.resolve())
        node_secrets = None
        if self._runs_on_node and key_file is not None:
            node_secrets = batch_secrets(self.store, [*names, f"site-{self.site}"])
        outcome = run_playbook(
            Playbook(
                what=f"batch {ident}",
                playbook=self.playbook,
                inventory=run.inventory or self.inventory,
                state_dir=self.state_dir,
                private_dir=self.run_dir / "runner" / ident,
                artifact_dir=self.run_dir / "artifacts",
                ident=ident,
                limit=",".join(names),  # the batch inventory holds only these; the limit says so twice
                extravars=extravars,
                env=env,
                forks=len(names),
                event_handler=mapper,
                cancel_callback=lambda: interrupt.requested or self.abort.is_set() or run.cancelled.is_set(),
                node=self.node if self._runs_on_node else None,
                channel=run.channel,
                node_secrets=node_secrets,
            )
        )
        if outcome.status not in ("canceled", "timeout") and not self.dry_run:
            fail_unfinished(
                self.journal,
                self.run_id,
                names,
                run.before,
                host_phases,
                mapper,
                outcome.status,
                outcome.rc,
                self.run_dir / "artifacts",
            )
        return {**mapper.failed, **mapper.quarantined}, outcome.status
