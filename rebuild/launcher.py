"""The one way rebuild runs a playbook: ansible-runner, with the environment Ansible may see.

Every playbook run goes through `run_playbook` (molecule's AnsiblePlaybook is the model): the
site batches (rebuild.orchestrator) and the hardening audit (rebuild.harden.audit). It is the
only module under rebuild/ that imports ansible_runner (tests/unit/test_layers.py).

What it guarantees for every run:
- the project's ansible.cfg and this Python's Ansible (the virtualenv's bin first on PATH);
- the environment reduced to the allow-list of rebuild.childenv: ansible-runner records the
  environment and command line in its artifacts, so no credential may be in them;
- a failure of ansible-runner itself becomes a RebuildError naming the run, never a traceback.

A run given an execution node (rebuild.execution_node) goes through ansible-runner's streaming
interface instead: transmit here, `ansible-runner worker` on the node over SSH (rebuild.node_ssh),
process here - its events reach the same event_handler, live, as a local run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets as pysecrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rebuild import contract, node_agent
from rebuild.childenv import child_env
from rebuild.datadir import PROJECT_ROOT
from rebuild.errors import RebuildError
from rebuild.execution_node import ExecutionNode
from rebuild.node_ssh import NodeChannel, agent_said, check_node, pinned_host_key, start_agent
from rebuild.secrets import KEY_FILE_ENV, STATE_DIR_ENV


def new_run_id() -> str:
    """A run's id: UTC time (sorts in order) and a random suffix (two runs in one second)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + pysecrets.token_hex(3)


@dataclass
class Playbook:
    """One ansible-playbook run (the arguments of ansible_runner's init_runner that rebuild uses)."""

    what: str  # for messages: "batch t1-b001", "harden audit of arlon"
    playbook: Path
    inventory: Path
    state_dir: Path
    private_dir: Path  # ansible-runner's private data dir (created)
    artifact_dir: Path
    ident: str
    limit: str
    extravars: dict[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)  # set for the run (allow-listed names only)
    forks: int | None = None
    cmdline: str = ""
    event_handler: Callable[[Mapping[str, Any]], bool] | None = None
    cancel_callback: Callable[[], bool] | None = None
    node: ExecutionNode | None = None  # None: run here; else ansible-runner worker on that node
    # On a node: the batch's control line (its gates and slots are opened through it) and the
    # secrets it needs, (key, {store file name: vault text}) sealed with that per-batch key.
    channel: NodeChannel | None = None
    node_secrets: NodeSecrets | None = None


@dataclass(frozen=True)
class NodeSecrets:
    """A batch's own secret store for its node: only its entries, sealed with a key of its own."""

    key: str = field(repr=False)
    files: Mapping[str, str] = field(repr=False)  # store file name -> ansible-vault text


# ansible_runner's package __init__ binds `ansible_runner.plugins` to its plugin dict only at its
# end, after an entry-points scan; until then the name is the ansible_runner.plugins submodule its
# runner module imported. A second batch thread importing ansible_runner.interface meanwhile finds
# that module already loaded and goes on with the half-initialised package: Runner.run() then
# fails with "TypeError: 'module' object is not iterable" (seen once, a held batch starting
# while the first one imported). One thread imports the whole package; the others wait for it.
_RUNNER_IMPORT = threading.Lock()


def _init_runner() -> Any:
    """ansible_runner's init_runner, its package completely imported (imported only when a
    playbook runs, so that `rebuild --help` stays fast)."""
    with _RUNNER_IMPORT:
        import ansible_runner  # noqa: F401  the package, to its end
        from ansible_runner.interface import init_runner
    return init_runner


@dataclass(frozen=True)
class PlaybookOutcome:
    status: str  # ansible-runner's: successful | failed | canceled | timeout
    rc: Any


def run_playbook(run: Playbook) -> PlaybookOutcome:
    """Run the playbook to its end (or its cancel); returns ansible-runner's status and rc."""
    init_runner = _init_runner()
    env = {
        STATE_DIR_ENV: str(run.state_dir),
        "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        **run.env,
    }
    run.private_dir.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "private_data_dir": str(run.private_dir),
        "artifact_dir": str(run.artifact_dir),
        "ident": run.ident,
        "project_dir": str(PROJECT_ROOT),
        "playbook": str(run.playbook),
        "inventory": str(run.inventory),
        "limit": run.limit,
        "extravars": run.extravars,
        "quiet": True,
        "suppress_env_files": True,
        "event_handler": run.event_handler,
    }
    if run.forks is not None:
        options["forks"] = run.forks
    if run.cmdline:
        options["cmdline"] = run.cmdline
    if run.node is not None:
        return _run_on_node(run, run.node, options, env)
    if run.cancel_callback is not None:
        options["cancel_callback"] = run.cancel_callback
    runner = init_runner(**options)
    # ansible-runner seeds its env from os.environ and records it in artifacts/<ident>/command.
    runner.config.env = child_env(runner.config.env, **env)
    try:
        runner.run()
    except Exception as exc:  # the runner itself broke: nothing more is known about the hosts
        raise RebuildError(f"{run.what}: ansible-runner failed: {type(exc).__name__}: {exc}") from exc
    return PlaybookOutcome(str(runner.status), runner.rc)


CANCEL_POLL_S = 0.2
CANCEL_GRACE_S = 60  # a cancelled worker stops ansible-playbook and streams its end within this


def _run_on_node(
    run: Playbook, node: ExecutionNode, options: dict[str, Any], env: dict[str, str]
) -> PlaybookOutcome:
    """transmit -> rebuild.node_agent and `ansible-runner worker` on the node -> process; the node
    is checked first, and its run's folder must be reported removed at the end."""
    init_runner = _init_runner()

    channel = run.channel or NodeChannel()
    with pinned_host_key(node) as known_hosts:
        check_node(node, known_hosts)  # unreachable or another version: no batch starts
        job = _node_job(run, node, channel.folder, options, env)
        with tempfile.TemporaryFile() as packed, tempfile.TemporaryFile() as stderr:
            try:
                init_runner(streamer="transmit", _output=packed, **job).run()
            except Exception as exc:  # packing the job broke: nothing was sent
                raise RebuildError(
                    f"{run.what}: ansible-runner transmit failed: {type(exc).__name__}: {exc}"
                ) from exc
            worker = start_agent(node, known_hosts, channel.folder, stderr)
            try:
                _send_job(worker, packed, run.node_secrets)
                assert worker.stdin is not None
                channel.attach(worker.stdin)
                cancelled = threading.Event()
                watcher = threading.Thread(
                    target=_watch_cancel, args=(run, channel, worker, cancelled), daemon=True
                )
                watcher.start()
                last_status: dict[str, Any] = {}
                processor = init_runner(
                    streamer="process",
                    _input=worker.stdout,
                    private_data_dir=str(run.private_dir),
                    artifact_dir=str(run.artifact_dir / run.ident),
                    ident=run.ident,
                    quiet=True,
                    event_handler=_paths_from_node(run, channel.folder),
                    status_handler=lambda data, runner_config: last_status.update(data),
                )
                try:
                    processor.run()
                except Exception as exc:  # the stream itself broke
                    worker.kill()
                    raise RebuildError(
                        f"{run.what}: execution node {node.label}: {type(exc).__name__}: {exc}"
                    ) from exc
                # The stream ended: the worker and the agent finish (folder removal) on their own;
                # closing stdin first would read as a cut session and stop a worker still exiting.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.wait(timeout=CANCEL_GRACE_S)
            finally:
                channel.end()
                rc = worker.wait()
            status = "canceled" if cancelled.is_set() else str(processor.status)
            said = _stderr_tail(stderr)
            if status not in ("successful", "failed", "canceled", "timeout"):
                why = last_status.get("job_explanation") or f"worker ended with status {status}"
                raise RebuildError(
                    f"{run.what}: execution node {node.label}: {why}"
                    + (f"; ssh/worker stderr: {' | '.join(said)}" if said else "")
                )
            if not agent_said(stderr, node_agent.REMOVED_LINE + channel.folder):
                raise RebuildError(
                    f"{run.what}: execution node {node.label}: the run's folder {channel.folder} "
                    "(its secrets and artifacts) was not reported removed; remove it on the node"
                    + (f"; ssh/agent stderr: {' | '.join(said)}" if said else "")
                )
            return PlaybookOutcome(status, rc)


def _send_job(worker: subprocess.Popen[bytes], packed: IO[bytes], secrets: NodeSecrets | None) -> None:
    """The agent's header (job size, the batch's secrets) then the packed job, on ssh's stdin:
    never in a process argument, never in the transmitted job (so never in its artifacts)."""
    assert worker.stdin is not None
    size = packed.seek(0, os.SEEK_END)
    packed.seek(0)
    header = {
        "job_bytes": size,
        "key": secrets.key if secrets else None,
        "secrets": dict(secrets.files) if secrets else {},
    }
    try:
        worker.stdin.write(json.dumps(header).encode() + b"\n")
        shutil.copyfileobj(packed, worker.stdin)
        worker.stdin.flush()
    except OSError:  # ssh ended early (refused, cut): the stream's end says why
        pass


def _stderr_tail(stderr: IO[bytes]) -> list[str]:
    stderr.seek(0)
    return stderr.read().decode("utf-8", "replace").strip().splitlines()[-3:]


def _node_job(
    run: Playbook, node: ExecutionNode, folder: str, options: dict[str, Any], env: dict[str, str]
) -> dict[str, Any]:
    """The transmitted job: paths as the node sees them, the same allow-listed environment.

    The inventory travels inside the private data dir; the playbook, roles and plugins are the
    node's own copy of the project (the same version: check_node)."""
    project = Path(node.project)
    playbook = run.playbook.resolve()
    if not playbook.is_relative_to(PROJECT_ROOT):
        raise RebuildError(
            f"{run.what}: {playbook} is not in the project: a node runs only the project's playbooks"
        )
    inventory = run.private_dir / "inventory" / run.inventory.name
    shutil.rmtree(inventory.parent, ignore_errors=True)
    try:
        if run.inventory.is_dir():
            shutil.copytree(run.inventory, inventory)
        else:
            inventory.parent.mkdir(parents=True)
            shutil.copy2(run.inventory, inventory)
    except OSError as exc:
        raise RebuildError(
            f"{run.what}: cannot pack the inventory {run.inventory} for the node: {exc}"
        ) from exc
    node_env = {
        **{k: v for k, v in env.items() if k != KEY_FILE_ENV},  # the controller's key stays here
        "ANSIBLE_CONFIG": str(project / "ansible.cfg"),
        "PATH": f"{node.venv}/bin:/usr/local/bin:/usr/bin:/bin",
        # the batch's own store, written by the agent from the session (rebuild.node_agent)
        STATE_DIR_ENV: node_agent.state_dir(folder),
    }
    if run.node_secrets is not None:
        node_env[KEY_FILE_ENV] = node_agent.key_file(folder)
    job = {k: v for k, v in options.items() if k not in ("artifact_dir", "event_handler")}
    job.update(
        extravars={**run.extravars, contract.RUN_FILES_DIR_VAR: _node_run_files(folder, run.ident)},
        project_dir=str(project),
        playbook=str(project / playbook.relative_to(PROJECT_ROOT)),
        inventory=str(inventory),  # inside the private data dir: transmitted, relative on the node
        envvars=child_env({}, **node_env),
    )
    return job


def _node_run_files(folder: str, ident: str) -> str:
    """The run's files on the node: in the worker's artifacts, which it streams back at its end."""
    return f"{node_agent.job_dir(folder)}/artifacts/{ident}/run"


def _paths_from_node(run: Playbook, folder: str) -> Callable[[Mapping[str, Any]], bool] | None:
    """The run's event handler, with the node's paths of the streamed-back artifacts (e.g. a
    verification's JUnit file) replaced by where they land here (`<artifact_dir>/<ident>`)."""
    handler = run.event_handler
    if handler is None:
        return None
    there = json.dumps(f"{node_agent.job_dir(folder)}/artifacts/{run.ident}")[1:-1]
    here = json.dumps(str(run.artifact_dir / run.ident))[1:-1]

    def mapped(event: Mapping[str, Any]) -> bool:
        text = json.dumps(event)
        return handler(json.loads(text.replace(there, here)) if there in text else event)

    return mapped


def _watch_cancel(
    run: Playbook, channel: NodeChannel, worker: subprocess.Popen[bytes], cancelled: threading.Event
) -> None:
    """Cancel honoured on a node: the agent is told to stop the worker, which ends its stream
    itself; ssh is ended only if it has not within CANCEL_GRACE_S (or the agent cannot be told)."""
    if run.cancel_callback is None:
        return
    while worker.poll() is None:
        if run.cancel_callback():
            cancelled.set()
            if channel.stop():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.wait(timeout=CANCEL_GRACE_S)
            if worker.poll() is None:
                worker.terminate()
            return
        time.sleep(CANCEL_POLL_S)
