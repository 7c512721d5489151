"""The one way rebuild runs a playbook: ansible-runner, with the environment Ansible may see.

Every playbook run goes through `run_playbook` (molecule's AnsiblePlaybook is the model): the
site batches (rebuild.orchestrator) and the hardening audit (rebuild.harden.audit). It is the
only module under rebuild/ that imports ansible_runner (tests/unit/test_layers.py).

What it guarantees for every run:
- the project's ansible.cfg and this Python's Ansible (the virtualenv's bin first on PATH);
- the environment reduced to the allow-list of rebuild.childenv: ansible-runner records the
  environment and command line in its artifacts, so no credential may be in them;
- a failure of ansible-runner itself becomes a RebuildError naming the run, never a traceback.
"""

from __future__ import annotations

import os
import secrets as pysecrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild.childenv import child_env
from rebuild.datadir import PROJECT_ROOT
from rebuild.errors import RebuildError
from rebuild.secrets import STATE_DIR_ENV


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


@dataclass(frozen=True)
class PlaybookOutcome:
    status: str  # ansible-runner's: successful | failed | canceled | timeout
    rc: Any


def run_playbook(run: Playbook) -> PlaybookOutcome:
    """Run the playbook to its end (or its cancel); returns ansible-runner's status and rc."""
    from ansible_runner.interface import init_runner  # only here: `rebuild --help` stays fast

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
