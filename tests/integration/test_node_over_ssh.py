"""Execution nodes (issue 17): a playbook run through a real sshd on loopback, as the site's node.

The "node" is this machine: Debian's sshd started by the test as the current user, with its own
host key, authorized key and config in a temporary folder (no system configuration is used), and
this worktree's virtualenv as the node's environment. rebuild.launcher packs the job (ansible-runner
transmit), runs `ansible-runner worker --delete` through ssh and unpacks the stream (process).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from rebuild import contract
from rebuild.errors import RebuildError
from rebuild.execution_node import ExecutionNode
from rebuild.launcher import Playbook, PlaybookOutcome, run_playbook
from rebuild.node_ssh import NodeChannel
from rebuild.tiers import PROJECT_ROOT

SSHD = Path("/usr/sbin/sshd")
DATA = Path(__file__).parent / "data"
PLAYBOOK = DATA / "node-smoke.yml"
INVENTORY = DATA / "node-smoke-inventory.yml"
VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(not SSHD.exists(), reason="needs Debian's openssh-server (scripts/setup.sh)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _node_venv(folder: Path, runner_prelude: str = "") -> Path:
    """The node's environment: this worktree's virtualenv, reached through a folder of its own
    (so a test can put something in front of ansible-runner)."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    for item in VENV_BIN.iterdir():
        if item.name.startswith("python"):  # a venv's python must be run from its own folder
            script = f'#!/bin/sh\nexec "{item}" "$@"\n'
        elif item.name == "ansible-runner":
            script = f'#!/bin/sh\n{runner_prelude}exec "{item}" "$@"\n'
        else:
            (bin_dir / item.name).symlink_to(item)
            continue
        (bin_dir / item.name).write_text(script, encoding="utf-8")
        (bin_dir / item.name).chmod(0o755)
    return folder


@contextlib.contextmanager
def loopback_node(home: Path) -> Iterator[ExecutionNode]:
    """A running sshd on 127.0.0.1 (its files in `home`) and the ExecutionNode that reaches it."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "user_key")], check=True)
    shutil.copy(home / "user_key.pub", home / "authorized_keys")
    port = _free_port()
    (home / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1:{port}\nHostKey {home / 'host_key'}\nPidFile {home / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n",
        encoding="utf-8",
    )
    if (
        os.geteuid() == 0
    ):  # sshd started by root wants its privilege-separation folder (tmpfiles.d makes it at boot)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    with open(home / "sshd.log", "wb") as log:  # sshd keeps its own copy of the descriptor
        sshd = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(home / "sshd_config")], stderr=log)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert sshd.poll() is None and time.monotonic() < deadline, (home / "sshd.log").read_text()
            time.sleep(0.1)
    host_key = (home / "host_key.pub").read_text(encoding="utf-8").split()
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        yield ExecutionNode(
            host="127.0.0.1",
            user=user,
            known_hosts=f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}",
            venv=str(_node_venv(home / "venv")),
            project=str(PROJECT_ROOT),
            port=port,
            identity_file=home / "user_key",
        )
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)


def data_with_node(folder: Path, site: str, node: ExecutionNode) -> Path:
    """A copy of the project's data in `folder` whose sites.yml sends `site`'s batches to `node`
    (as an operator would write it); give it as REBUILD_DATA_DIR."""
    data = folder / "data"
    shutil.copytree(PROJECT_ROOT / "inventories" / "data", data)
    sites = yaml.safe_load((data / "sites.yml").read_text(encoding="utf-8"))
    entry = next(s for s in sites["sites"] if s["name"] == site)
    keys = ("host", "port", "user", "known_hosts", "venv", "project")
    entry["execution"] = {
        "node": {**{k: getattr(node, k) for k in keys}, "identity_file": str(node.identity_file)}
    }
    (data / "sites.yml").write_text(yaml.safe_dump(sites), encoding="utf-8")
    return data


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExecutionNode]:
    """The test's execution node (loopback_node)."""
    with loopback_node(tmp_path_factory.mktemp("node")) as running:
        yield running


def _run(
    tmp_path: Path, node: ExecutionNode | None, name: str, **changes: Any
) -> tuple[PlaybookOutcome, list[Mapping[str, Any]]]:
    events: list[Mapping[str, Any]] = []

    def keep(event: Mapping[str, Any]) -> bool:
        events.append(event)
        return True

    run = Playbook(
        what=f"node test {name}",
        playbook=PLAYBOOK,
        inventory=INVENTORY,
        state_dir=tmp_path / name / "state",
        private_dir=tmp_path / name / "runner",
        artifact_dir=tmp_path / name / "artifacts",
        ident=name,
        limit="all",
        event_handler=keep,
        node=node,
    )
    return run_playbook(replace(run, **changes)), events


def _host_results(events: list[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(event, host, task) of every host result, in a stable order."""
    return sorted(
        (str(e["event"]), str(e["event_data"]["host"]), str(e["event_data"]["task"]))
        for e in events
        if str(e.get("event", "")).startswith("runner_on_")
    )


def _worker_folders() -> set[Path]:
    return set(Path("/tmp").glob("rebuild-worker-*"))


def _processes(with_pid: bool = False) -> list[str]:
    columns = "pid,args" if with_pid else "args"
    lines = subprocess.run(
        ["ps", "-ww", "-eo", columns], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return [line.strip() for line in lines[1:]]


def _worker_processes() -> list[str]:
    return [
        line
        for line in _processes()
        if "ansible-runner worker --private-data-dir /tmp/rebuild-worker-" in line
    ]


def test_a_run_on_the_node_gives_the_same_events_as_a_local_run_and_leaves_nothing_there(
    node: ExecutionNode, tmp_path: Path
) -> None:
    before = _worker_folders()
    local, local_events = _run(tmp_path, None, "local")
    remote, remote_events = _run(tmp_path, node, "remote")
    assert (remote.status, local.status) == ("failed", "failed")  # pc-bad fails, on both
    assert _host_results(remote_events) == _host_results(local_events)
    assert ("runner_on_failed", "pc-bad", "Fail on the host told to") in _host_results(remote_events)
    assert (tmp_path / "remote" / "artifacts" / "remote" / "stdout").is_file()  # streamed back
    assert _worker_folders() == before  # the worker's private folder is gone (--delete)


def test_stray_output_of_the_node_on_stderr_does_not_corrupt_the_stream(
    node: ExecutionNode, tmp_path: Path
) -> None:
    noisy = "echo 'Welcome to the recovery VLAN {not json' >&2; echo '}}}' >&2; "
    venv = _node_venv(tmp_path / "noisy-venv", runner_prelude=noisy)
    remote, events = _run(tmp_path, replace(node, venv=str(venv)), "noisy")
    assert remote.status == "failed"
    assert {host for _, host, _ in _host_results(events)} == {"pc-ok", "pc-bad"}


def test_an_unreachable_node_starts_nothing_and_says_why(node: ExecutionNode, tmp_path: Path) -> None:
    closed = _free_port()
    gone = replace(node, port=closed, known_hosts=node.known_hosts.replace(f":{node.port} ", f":{closed} "))
    with pytest.raises(RebuildError, match=rf"execution node .*:{closed}: unreachable.*no batch was started"):
        _run(tmp_path, gone, "unreachable")
    assert not (tmp_path / "unreachable" / "artifacts").exists()


def test_a_node_with_another_host_key_is_refused(node: ExecutionNode, tmp_path: Path) -> None:
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    impostor = replace(node, known_hosts=f"[127.0.0.1]:{node.port} {other}")
    with pytest.raises(RebuildError, match="Host key verification failed"):
        _run(tmp_path, impostor, "impostor")


def test_a_node_with_another_project_version_is_refused(node: ExecutionNode, tmp_path: Path) -> None:
    old = tmp_path / "old-venv" / "bin"
    old.mkdir(parents=True)
    (old / "python").write_text("#!/bin/sh\necho 0.0.1\n", encoding="utf-8")
    (old / "python").chmod(0o755)
    with pytest.raises(RebuildError, match=r"its rebuild is version '0\.0\.1'"):
        _run(tmp_path, replace(node, venv=str(old.parent)), "old")


def test_cancel_stops_the_run_on_the_node(node: ExecutionNode, tmp_path: Path) -> None:
    inventory = tmp_path / "slow.yml"
    inventory.write_text(
        INVENTORY.read_text(encoding="utf-8").replace("pc-ok: {}", "pc-ok: {node_smoke_pause: 30}")
    )
    before = _worker_folders()
    started = time.monotonic()
    outcome, _ = _run(
        tmp_path,
        node,
        "cancel",
        inventory=inventory,
        cancel_callback=lambda: time.monotonic() - started > 5,
    )
    assert outcome.status == "canceled"
    assert time.monotonic() - started < 25  # the 30 s task did not run to its end
    assert _worker_folders() == before  # the worker stopped and deleted its folder
    assert not [
        line
        for line in _processes()
        if "ansible-runner worker --private-data-dir /tmp/rebuild-worker-" in line
    ]


def test_a_cut_connection_stops_the_worker_on_the_node(node: ExecutionNode, tmp_path: Path) -> None:
    """The controller's ssh is killed mid-run: the run fails with the reason here (the journal
    keeps the hosts where they were), and the worker on the node stops and deletes its folder."""
    inventory = tmp_path / "slow.yml"
    inventory.write_text(
        INVENTORY.read_text(encoding="utf-8").replace("pc-ok: {}", "pc-ok: {node_smoke_pause: 30}")
    )
    before = _worker_folders()
    cut: list[str] = []

    def cut_ssh_once_started(event: Mapping[str, Any]) -> bool:
        if event.get("event") == "runner_on_start" and not cut:
            mine = [line.split(None, 1) for line in _processes(with_pid=True) if f"-p {node.port}" in line]
            ssh = [pid for pid, args in mine if args.startswith("ssh ") and "worker" in args]
            cut.extend(ssh)
            for pid in ssh:
                os.kill(int(pid), 9)
        return True

    with pytest.raises(RebuildError, match=r"execution node .*worker stream"):
        _run(tmp_path, node, "cut", inventory=inventory, event_handler=cut_ssh_once_started)
    assert len(cut) == 1
    deadline = time.monotonic() + 20
    while _worker_folders() != before or _worker_processes():
        assert time.monotonic() < deadline, "the worker outlived its connection"
        time.sleep(0.5)


def test_a_playbook_outside_the_project_is_not_sent(node: ExecutionNode, tmp_path: Path) -> None:
    """The node runs its own copy of the project's playbooks: a path it could not map is refused."""
    stray = tmp_path / "elsewhere.yml"
    stray.write_text(PLAYBOOK.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(RebuildError, match="is not in the project"):
        _run(tmp_path, node, "stray", playbook=stray)
    assert not (tmp_path / "stray" / "artifacts").exists()


def test_gates_cross_on_the_batch_session_opened_or_cancelled(node: ExecutionNode, tmp_path: Path) -> None:
    """A slot opened and one cancelled before the worker even runs (they wait in the channel,
    in order): the first host goes on, the second leaves untouched with the reason."""
    channel = NodeChannel()
    slots = contract.slot_dir(Path(channel.gates), "t1-b001")
    channel.open(contract.slot_file(slots, "pc-ok"))
    channel.cancel(contract.slot_file(slots, "pc-bad"), "the site is stopping - breaker")
    outcome, events = _run(
        tmp_path,
        node,
        "gates",
        playbook=DATA / "node-gate.yml",
        extravars={contract.SLOT_DIR_VAR: str(slots)},
        channel=channel,
    )
    results = {
        str(e["event_data"]["host"]): e for e in events if str(e.get("event", "")).startswith("runner_on_")
    }
    assert results["pc-ok"]["event"] == "runner_on_ok"
    refused = results["pc-bad"]["event_data"]["res"]
    assert results["pc-bad"]["event"] == "runner_on_failed" and refused[contract.NOT_STARTED_KEY] is True
    assert "the site is stopping - breaker" in refused["msg"]
    assert outcome.status == "failed"
    assert not Path(channel.folder).exists()
    channel.open(contract.slot_file(slots, "late"))  # after the batch: dropped, nothing recreated
    assert not Path(channel.folder).exists()
