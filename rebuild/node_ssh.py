"""The SSH pipe to an execution node: rebuild.node_agent there runs `ansible-runner worker`, which
reads the job and writes its event stream on stdout (ansible-runner's "Remote job execution"; AWX
carries the same stream over Receptor). rebuild.launcher packs (transmit) and unpacks (process)
it; the same session's stdin carries the batch's secrets and then its gates, slots and cancel
(NodeChannel).

Every connection: BatchMode (never a password prompt), the node's host key pinned from
sites.yml in a file of this connection only (StrictHostKeyChecking=yes: an unknown or changed
key is refused, never learned), and ssh's stderr kept apart from the event stream, so a banner
or a warning cannot corrupt it (AWX's known failure with stray output on the worker's stream).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath, PurePosixPath
from typing import IO

import rebuild
from rebuild import node_agent
from rebuild.errors import RebuildError
from rebuild.execution_node import ExecutionNode

CONNECT_TIMEOUT_S = 10


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


def check_reachable(node: ExecutionNode) -> None:
    """check_node with its own pinned connection: for the orchestrator, before a batch's hosts
    are let go (an unreachable node leaves them where the journal has them)."""
    with pinned_host_key(node) as known_hosts:
        check_node(node, known_hosts)


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


def start_agent(
    node: ExecutionNode, known_hosts: Path, folder: str, stderr: IO[bytes]
) -> subprocess.Popen[bytes]:
    """rebuild.node_agent on the node for one batch: it runs `ansible-runner worker --delete` in
    `folder` and removes the folder afterwards. Its stdin (the header, the job, then the control
    lines) is written by the caller; its stdout is the worker's event stream; its stderr (and
    ssh's) goes to `stderr`, never into the stream."""
    agent = [
        f"{node.venv}/bin/python", "-m", "rebuild.node_agent", folder, f"{node.venv}/bin/ansible-runner"
    ]  # fmt: skip
    return subprocess.Popen(
        ssh_argv(node, known_hosts, agent), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
    )


def agent_said(stderr: IO[bytes], line: str) -> bool:
    """Whether the agent wrote `line` on its stderr (read without moving ssh's file offset)."""
    size = os.fstat(stderr.fileno()).st_size
    tail = os.pread(stderr.fileno(), 65536, max(0, size - 65536))
    return re.search(rb"^" + re.escape(line.encode()) + rb"$", tail, re.MULTILINE) is not None


class NodeChannel:
    """One batch's control line to its node agent: the ssh session's stdin (rebuild.node_agent).

    The gates and imaging slots of a batch on a node are files in the agent's folder, which only
    this session can write: the folder name is random per batch (128 bits), made 0700 by the
    agent, and no message reaches it except through this stdin. Messages sent before the agent
    runs wait here, in order; after the session ends they are dropped (the folder is gone)."""

    def __init__(self) -> None:
        self.folder = f"/tmp/rebuild-worker-{secrets.token_hex(16)}"
        self.gates = PurePosixPath(node_agent.gates_dir(self.folder))
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._pipe: IO[bytes] | None = None
        self._ended = False

    def open(self, path: PurePath) -> None:
        """Create the gate or slot file `path` (under self.gates) on the node."""
        self._send({"open": self._name(path)})

    def cancel(self, path: PurePath, reason: str) -> None:
        """Create the wait's cancel file (contract.cancel_file) with `reason` on the node."""
        self._send({"cancel": self._name(path), "reason": reason})

    def stop(self) -> bool:
        """Cancel the run on the node; False when the agent cannot be told (not running, or gone)."""
        with self._lock:
            return self._pipe is not None and self._write(_line({"stop": True}))

    def attach(self, pipe: IO[bytes]) -> None:
        """The agent has its job: send what waited, then send as it comes."""
        with self._lock:
            self._pipe = pipe
            for message in self._pending:
                if not self._write(message):
                    break
            self._pending.clear()

    def end(self) -> None:
        """The batch is over: close the agent's stdin (a worker still running stops)."""
        with self._lock:
            self._ended = True
            pipe, self._pipe = self._pipe, None
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()

    def _name(self, path: PurePath) -> str:
        return PurePosixPath(path).relative_to(self.gates).as_posix()

    def _send(self, message: dict[str, object]) -> None:
        with self._lock:
            if self._ended:
                return
            if self._pipe is None:
                self._pending.append(_line(message))
            else:
                self._write(_line(message))

    def _write(self, data: bytes) -> bool:
        assert self._pipe is not None
        try:
            self._pipe.write(data)
            self._pipe.flush()
        except OSError:  # the session is gone: the stream's end says so to the launcher
            self._pipe = None
            self._ended = True
            return False
        return True


def _line(message: dict[str, object]) -> bytes:
    return json.dumps(message).encode() + b"\n"
