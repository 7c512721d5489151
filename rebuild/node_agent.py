"""What runs on an execution node for one batch: `python -m rebuild.node_agent FOLDER RUNNER`.

The controller starts it over ssh (rebuild.node_ssh) and talks to it only through that session's
stdin; it answers only through the worker's event stream on stdout (and notes on stderr). Nothing
on the node listens on a port, and only the run's own ssh session can open its gates.

stdin, in order:
1. one JSON line, the header: `job_bytes` (size of the packed job), `key` (the batch's own vault
   key, or null) and `secrets` ({file name: vault text}: the batch's hosts' and its site's
   entries, encrypted with that key);
2. `job_bytes` bytes: the job `ansible-runner transmit` packed, fed to `ansible-runner worker`;
3. control lines, one JSON object each, until the controller closes stdin:
   {"open": "t1-b001"} or {"open": "t1-b001-slots/PC"}: create that gate or slot file;
   {"cancel": "t1-b001-slots/PC", "reason": "..."}: create its `.cancel` file with the reason;
   {"stop": true}: cancel the run (SIGTERM to the worker: ansible-runner's own cancel).
   End of stdin (the controller closed it, or the connection was cut, or the controller died)
   also stops a worker that is still running: without a tty sshd sends no SIGHUP.

FOLDER (made here, mode 0700, refused if it exists) holds `job/` (the worker's private data dir,
`worker --delete`), `gates/` and `state/` (the batch's secret store and key: the form a local run
uses, REBUILD_STATE_DIR and REBUILD_VAULT_PASSWORD_FILE point at them). The whole folder is removed
when the worker ends, and checked: the last stderr line says `rebuild-node-removed=FOLDER`, or
why it could not be removed.

Only the standard library and rebuild's leaf modules: it must start fast and stay small.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from rebuild import atomicfile, contract

REMOVED_LINE = "rebuild-node-removed="
NOT_REMOVED_LINE = "rebuild-node-not-removed="
STATE = "state"
KEY_FILE = "vault-key"
GATES = "gates"
JOB = "job"
# A gate or slot: `<batch>` or `<batch>-slots/<host>`, names as contract.py builds them.
_GATE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?\Z")
# A store file: `<host or site-x>.<secret name>.vault` (rebuild.secrets.SecretStore._path).
_SECRET_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\.[a-z0-9_]+\.vault\Z")


def state_dir(folder: str) -> str:
    return f"{folder}/{STATE}"


def key_file(folder: str) -> str:
    return f"{folder}/{STATE}/{KEY_FILE}"


def gates_dir(folder: str) -> str:
    return f"{folder}/{GATES}"


def job_dir(folder: str) -> str:
    return f"{folder}/{JOB}"


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _write_secrets(folder: Path, header: dict[str, Any]) -> None:
    """The batch's store: its entries and its key, mode 0600, as rebuild.secrets reads them."""
    secrets = header.get("secrets") or {}
    key = header.get("key")
    store = folder / STATE / "secrets"
    store.mkdir(parents=True, mode=0o700)
    if key is None:
        return
    for name, sealed in secrets.items():
        if not _SECRET_FILE.match(name):
            raise ValueError(f"secret file name {name!r} refused")
        atomicfile.write_text(store / name, str(sealed), mode=atomicfile.PRIVATE)
    atomicfile.write_text(folder / STATE / KEY_FILE, str(key), mode=atomicfile.PRIVATE)


def _gate_path(folder: Path, name: Any) -> Path:
    if not isinstance(name, str) or not _GATE.match(name) or ".." in name:
        raise ValueError(f"gate {name!r} refused")
    return folder / GATES / name


def _control(message: dict[str, Any], folder: Path, worker: subprocess.Popen[bytes]) -> None:
    """One control line: open a gate or slot, cancel a wait, or stop the run."""
    if "open" in message:
        path = _gate_path(folder, message["open"])
        path.parent.mkdir(exist_ok=True)
        path.touch()
    elif "cancel" in message:
        path = _gate_path(folder, message["cancel"])
        path.parent.mkdir(exist_ok=True)
        atomicfile.write_text(contract.cancel_file(path), str(message.get("reason", "")) + "\n")
    elif message.get("stop"):
        _stop(worker)
    else:
        raise ValueError("unknown control message")


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)


def _listen(control: IO[bytes], folder: Path, worker: subprocess.Popen[bytes]) -> None:
    """Control lines until stdin ends; then the session is gone and a running worker stops."""
    for line in control:
        try:
            _control(json.loads(line), folder, worker)
        except (ValueError, OSError) as exc:  # a bad line is refused, never half-applied
            _say(f"rebuild-node: control line refused: {exc}")
    _stop(worker)


def run(folder: Path, runner: str, stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """The batch on this node, from its header to the removal of its folder; the worker's rc."""
    os.umask(0o077)
    folder.mkdir(mode=0o700)  # an existing folder is not ours: refused (FileExistsError)
    rc = 1
    worker: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, frame: object) -> None:
        """Stopped from the node (kill, shutdown): the worker stops, the folder still goes."""
        if worker is None:
            raise SystemExit(1)
        _stop(worker)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        header = json.loads(stdin.readline())
        _write_secrets(folder, header)
        (folder / GATES).mkdir(mode=0o700)
        worker = subprocess.Popen(
            [runner, "worker", "--private-data-dir", str(folder / JOB), "--delete"],
            stdin=subprocess.PIPE,
            stdout=stdout,  # the event stream, straight to the controller
        )
        assert worker.stdin is not None
        left = int(header["job_bytes"])
        with worker.stdin:
            while left > 0:
                chunk = stdin.read(min(left, 1 << 16))
                if not chunk:
                    break  # the session ended mid-job: the worker reports a broken stream
                worker.stdin.write(chunk)
                left -= len(chunk)
        threading.Thread(target=_listen, args=(stdin, folder, worker), daemon=True).start()
        rc = worker.wait()
    finally:
        if worker is not None and worker.poll() is None:  # this agent failed: the run stops too
            _stop(worker)
            worker.wait()
        shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():
            _say(f"{NOT_REMOVED_LINE}{folder}")
            rc = rc or 1
        else:
            _say(f"{REMOVED_LINE}{folder}")
    return rc


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[0].startswith("/tmp/rebuild-worker-"):
        _say("usage: python -m rebuild.node_agent /tmp/rebuild-worker-<random> ANSIBLE_RUNNER")
        return 2
    try:
        return run(Path(argv[0]), argv[1], sys.stdin.buffer, sys.stdout.buffer)
    except (OSError, ValueError, KeyError) as exc:
        _say(f"rebuild-node: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stderr.flush()
    # Not sys.exit: the control thread may still be blocked reading stdin, and interpreter
    # shutdown would wait on that stream's lock.
    os._exit(code)
