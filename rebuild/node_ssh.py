"""The SSH pipe to an execution node: `ansible-runner worker` reads the job on stdin and writes
its event stream on stdout (ansible-runner's "Remote job execution"; AWX carries the same
stream over Receptor). rebuild.launcher packs (transmit) and unpacks (process) it.

Every connection: BatchMode (never a password prompt), the node's host key pinned from
sites.yml in a file of this connection only (StrictHostKeyChecking=yes: an unknown or changed
key is refused, never learned), and ssh's stderr kept apart from the event stream, so a banner
or a warning cannot corrupt it (AWX's known failure with stray output on the worker's stream).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import rebuild
from rebuild.errors import RebuildError
from rebuild.execution_node import ExecutionNode

CONNECT_TIMEOUT_S = 10
# The worker's PID, written on its stderr first: cancelling signals exactly that process.
_PID_LINE = "rebuild-worker-pid="
_PID = re.compile(rb"^" + _PID_LINE.encode() + rb"(\d+)$", re.MULTILINE)


@contextmanager
def pinned_host_key(node: ExecutionNode) -> Iterator[Path]:
    """A known_hosts file holding only the node's line from sites.yml, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="rebuild-ssh-") as folder:
        path = Path(folder) / "known_hosts"
        path.write_text(node.known_hosts + "\n", encoding="utf-8")
        yield path


def ssh_argv(node: ExecutionNode, known_hosts: Path, remote: list[str]) -> list[str]:
    """ssh running `remote` (quoted for the node's shell) on the node."""
    argv = [
        "ssh",
        "-o", "BatchMode=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
        "-o", "ServerAliveInterval=15",
        "-o", "ForwardAgent=no",
        "-p", str(node.port),
        "-l", node.user,
    ]  # fmt: skip
    if node.identity_file is not None:
        argv += ["-i", str(node.identity_file), "-o", "IdentitiesOnly=yes"]
    return [*argv, "--", node.host, shlex.join(remote)]


def check_node(node: ExecutionNode, known_hosts: Path) -> None:
    """Before a batch: the node answers and runs this project's version, else a RebuildError."""
    probe = [f"{node.venv}/bin/python", "-c", "import rebuild; print(rebuild.__version__)"]
    try:
        done = subprocess.run(
            ssh_argv(node, known_hosts, probe),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CONNECT_TIMEOUT_S * 3,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RebuildError(
            f"execution node {node.label}: unreachable ({exc}); no batch was started"
        ) from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"ssh exit code {done.returncode}"])[-1]
        raise RebuildError(
            f"execution node {node.label}: unreachable or not set up ({why}); no batch was started"
        )
    answered = done.stdout.strip().splitlines()[-1:] or ["nothing"]
    if answered != [rebuild.__version__]:
        raise RebuildError(
            f"execution node {node.label}: its rebuild is version {answered[0]!r}, this controller's is "
            f"{rebuild.__version__!r}; install the same version on the node; no batch was started"
        )


# Runs the worker on the node and stops it (SIGTERM: ansible-runner's own cancel, then --delete)
# when the ssh session that started it is gone, e.g. the connection was cut or the controller
# killed: without a tty sshd sends no SIGHUP, and the worker would otherwise run on. The job
# reaches it on fd 3 (a non-interactive shell gives a background command /dev/null as stdin).
_WORKER_SCRIPT = f"""exec 3<&0
"$@" <&3 3<&- &
w=$!
echo "{_PID_LINE}$w" >&2
session=$PPID
( while [ -d "/proc/$session" ]; do sleep {{poll}}; done; kill -TERM "$w" ) </dev/null >/dev/null 2>&1 &
watchdog=$!
wait "$w"
rc=$?
kill "$watchdog" 2>/dev/null
exit "$rc"
"""
SESSION_POLL_S = 2


def start_worker(
    node: ExecutionNode, known_hosts: Path, job: IO[bytes], stderr: IO[bytes]
) -> subprocess.Popen[bytes]:
    """`ansible-runner worker --delete` on the node reading `job`; its stdout is the event stream.

    The worker unpacks the job into a fresh folder of its own and deletes it when the job ends
    (`--delete`), so the run's files, extravars included, do not stay on the node. Its PID is
    written first on stderr, for stop_worker."""
    folder = f"/tmp/rebuild-worker-{secrets.token_hex(8)}"
    runner = [f"{node.venv}/bin/ansible-runner", "worker", "--private-data-dir", folder, "--delete"]
    remote = ["sh", "-c", _WORKER_SCRIPT.format(poll=SESSION_POLL_S), "sh", *runner]
    return subprocess.Popen(
        ssh_argv(node, known_hosts, remote), stdin=job, stdout=subprocess.PIPE, stderr=stderr
    )


def stop_worker(node: ExecutionNode, known_hosts: Path, stderr: IO[bytes]) -> bool:
    """Cancel the worker as ansible-runner cancels a run: SIGTERM to it (its signal handler stops
    ansible-playbook, reports `canceled` on the stream, and --delete removes its folder).
    False when its PID is not known yet (it has not started: ending ssh is enough)."""
    found = _PID.search(os.pread(stderr.fileno(), 4096, 0))  # pread: the file offset stays ssh's
    if found is None:
        return False
    kill = ["kill", "-TERM", found.group(1).decode()]
    try:
        subprocess.run(
            ssh_argv(node, known_hosts, kill),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=CONNECT_TIMEOUT_S * 3,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return True
