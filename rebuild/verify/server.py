"""A warm verification server: pytest, testinfra, pywinrm and the suites imported once per site
run, one forked child per host.

Starting `python -m pytest` per host cost ~0.4 of its ~0.9 CPU s on the controller before the
first check (interpreter start, imports, plugin set-up, assertion-rewriting and collecting the
suites; docs/site-run.md, bench/bench_verify.py). The site
run starts this server once (rebuild.orchestrator.verify_server); it imports everything and
collects both kinds' suites once (`--collect-only`, so the suite modules sit in sys.modules
already assertion-rewritten by pytest's own hook), then serves requests on a unix socket in a
0700 folder. Per request it forks: the child runs `pytest.main` in-process on the warm modules
with the same arguments as the subprocess path (runner.pytest_args), so the JUnit and the
result are the same. What this relies on, from pytest's docs on calling pytest.main repeatedly
in one process: test modules stay cached in sys.modules (wanted here: the suites do not change
during a run; pytest's prepend import mode returns the cached module), and plugins registered by
one session stay registered in that process - each session runs in a fresh fork of the warm
parent, so nothing a session registers or leaves behind reaches the next host.

Guarantees kept from the subprocess path (runner.py):
- isolation: one process per host (a fork); its failures, fixtures and imports die with it;
- deadline: the server kills a child past its request's deadline, and one whose client hung up
  (the Ansible worker was cancelled); a child whose server died exits (the lifeline pipe);
- secrets: the configuration (with the password) travels over the socket and, inside the child,
  an in-memory pipe named by descriptor - never argv, the environment, a file or the server's
  log (which names hosts, exit codes and durations only). The client scans the output and JUnit
  for the secret as before.

The wire format and the client: rebuild.verify.client. Started and stopped by `running_server`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rebuild.errors import RebuildError
from rebuild.verify.client import recv_frame, send_frame
from rebuild.verify.runner import SUITES, pytest_args, pytest_env, suite_files

_REQUEST_READ_S = 10.0  # a client sends its request at once; a silent one is dropped
CHILD_LOST_SERVER = 70  # a child's exit code when its server is gone
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on BSD and macOS


# -- server ------------------------------------------------------------------------------------


@dataclass
class _Job:
    host: str
    pid: int
    conn: socket.socket
    output: int  # read end of the child's stdout+stderr pipe
    deadline: float
    started: float
    chunks: list[bytes] = field(default_factory=list)
    timed_out: bool = False
    client_gone: bool = False


def _warm_config(kind: str) -> dict[str, Any]:
    """A configuration with nothing to parametrize: collection imports the suites, reads no host."""
    from rebuild.verify.expect import Expectations

    empty = Expectations(
        host="warm-up", kind=kind, service="", site="", os="", image_id="", image_sha256="",
        build="", caption="", domain="", admin_name="", admin_allowed=[], applications=[],
        certificates=[], printers=[], defender_max_signature_age_hours=0.0,
        iocs={"note_folders": [], "note_names": [], "file_extensions": []}, hardening=[],
    )  # fmt: skip
    return {"target": {"user": "", "address": "", "port": 0, "scheme": ""}, "expect": empty.to_dict()}


def _config_pipe(config: bytes) -> int:
    """A pipe carrying `config`, fed by a thread; returns the read end for --rebuild-config-fd."""
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), os.fdopen(write_fd, "wb") as pipe:
            pipe.write(config)

    threading.Thread(target=feed, daemon=True).start()
    return read_fd


def warm_up() -> None:
    """Import what every child needs and collect both kinds' suites once, output discarded."""
    import pytest
    import testinfra.host  # noqa: F401  (imported by the windows_host fixture in every child)
    import winrm.protocol  # noqa: F401

    # Not rebuild.verify.plugin: pytest imports it (`-p`) under its assertion-rewriting hook, as
    # in a new Python; imported before, every child would warn that it cannot be rewritten.
    import rebuild.verify.session  # noqa: F401

    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        for kind in ("server", "workstation"):
            fd = _config_pipe(json.dumps(_warm_config(kind)).encode())
            pytest.main([*pytest_args(kind, "warm-up", None, fd), "--collect-only"])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


class VerifyServer:
    def __init__(self, path: Path, log: IO[str]) -> None:
        self.path = path
        self.log = log
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        os.chmod(path, 0o600)
        self.listener.listen(128)
        self.jobs: dict[int, _Job] = {}  # by output fd
        self.selector = selectors.DefaultSelector()
        # The children hold the read end; it reads EOF when this process is gone, whatever the way.
        self.lifeline_read, self.lifeline_write = os.pipe()

    def say(self, text: str) -> None:
        self.log.write(f"{time.strftime('%H:%M:%S')} {text}\n")
        self.log.flush()

    def serve(self, stop_fd: int) -> None:
        """Until `stop_fd` reads EOF (the site run closed it, or died)."""
        self.selector.register(stop_fd, selectors.EVENT_READ, "stop")
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        while True:
            now = time.monotonic()
            for job in self.jobs.values():
                if not job.timed_out and now >= job.deadline:
                    job.timed_out = True
                    self._kill(job, "past its deadline")
            wait = min((j.deadline - now for j in self.jobs.values() if not j.timed_out), default=None)
            for key, _ in self.selector.select(None if wait is None else max(wait, 0.0)):
                if key.data == "stop":
                    if not os.read(stop_fd, 4096):
                        return
                elif key.data == "accept":
                    self._accept()
                elif isinstance(key.data, _Job):
                    self._client_event(key.data)
                else:
                    self._output(self.jobs[key.data])

    def close(self) -> None:
        for job in list(self.jobs.values()):
            self._kill(job, "the site run stopped the server")
            with contextlib.suppress(ChildProcessError):
                os.waitpid(job.pid, 0)
            job.conn.close()
            os.close(job.output)
        self.jobs.clear()
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _kill(self, job: _Job, why: str) -> None:
        self.say(f"{job.host}: killing pid {job.pid}: {why}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(job.pid, signal.SIGKILL)

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        try:
            conn.settimeout(_REQUEST_READ_S)
            request = json.loads(recv_frame(conn))
            host, kind = str(request["host"]), str(request["kind"])
            junit = Path(str(request["junit"]))
            timeout_s = float(request["timeout_s"])
            suite_files(kind)  # an unknown kind is refused here, not in a child
            config = json.dumps(request.pop("config")).encode()
        except (OSError, ValueError, KeyError, TypeError) as exc:  # FileNotFoundError is an OSError
            self.say(f"request refused: {type(exc).__name__}")
            with contextlib.suppress(OSError):
                send_frame(conn, json.dumps({"error": f"bad request: {exc}"}).encode())
                send_frame(conn, b"")
            conn.close()
            return
        del request
        out_read, out_write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            self._child(kind, host, junit, config, out_write)
        del config
        os.close(out_write)
        started = time.monotonic()
        job = _Job(host, pid, conn, out_read, started + timeout_s, started)
        self.jobs[out_read] = job
        self.selector.register(out_read, selectors.EVENT_READ, out_read)
        self.selector.register(conn, selectors.EVENT_READ, job)
        self.say(f"{host}: pid {pid}")

    def _child(self, kind: str, host: str, junit: Path, config: bytes, out_write: int) -> None:
        code = 3
        try:
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(out_write, 1)
            os.dup2(out_write, 2)
            # Close every socket, pipe and log of the server (other children's too) but the lifeline.
            os.closerange(3, self.lifeline_read)
            os.closerange(self.lifeline_read + 1, 1 << 16)
            lifeline = self.lifeline_read

            def watch() -> None:
                os.read(lifeline, 1)  # EOF: the server is gone; nobody would read this result
                os._exit(CHILD_LOST_SERVER)

            threading.Thread(target=watch, daemon=True).start()
            os.chdir(SUITES)
            args = pytest_args(kind, host, junit, _config_pipe(config))
            del config
            import pytest

            code = int(pytest.main(args))
        except BaseException:  # the traceback goes to the output, which the client keeps (scrubbed)
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def _client_event(self, job: _Job) -> None:
        """The client only waits: readable means it hung up (its worker was cancelled)."""
        self.selector.unregister(job.conn)
        job.client_gone = True
        self._kill(job, "its client hung up")

    def _output(self, job: _Job) -> None:
        chunk = os.read(job.output, 1 << 16)
        if chunk:
            job.chunks.append(chunk)
            return
        self.selector.unregister(job.output)
        os.close(job.output)
        del self.jobs[job.output]
        _, status = os.waitpid(job.pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        took = time.monotonic() - job.started
        self.say(f"{job.host}: pid {job.pid} exited {rc} after {took:.1f} s")
        if not job.client_gone:
            self.selector.unregister(job.conn)
            with contextlib.suppress(OSError):
                job.conn.settimeout(30.0)
                head = {"rc": None if job.timed_out else rc, "timed_out": job.timed_out, "error": ""}
                send_frame(job.conn, json.dumps(head).encode())
                send_frame(job.conn, b"".join(job.chunks))
        job.conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rebuild.verify.server")
    parser.add_argument("--socket", required=True, type=Path, help="unix socket to listen on")
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the site run stops this server (closes stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = VerifyServer(args.socket, sys.stderr)
    print("listening", flush=True)  # the site run waits for this line; requests queue meanwhile
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    started = time.process_time()
    warm_up()
    gc.freeze()  # the warm objects stay out of the children's collections: fewer copied pages
    server.say(f"warm after {time.process_time() - started:.2f} CPU s")
    try:
        server.serve(sys.stdin.fileno())
    finally:
        server.close()
        server.say("stopped")
    return 0


def _socket_folder(run_dir: Path) -> Path:
    """<run_dir>/verify-server (0700), or a private temporary folder when that path is too long
    for a unix socket."""
    folder = run_dir / "verify-server"
    if len(str(folder / "sock")) <= _SOCKET_PATH_MAX:
        folder.mkdir(mode=0o700, parents=True, exist_ok=False)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
        return folder
    return Path(tempfile.mkdtemp(prefix="rebuild-verify-"))  # created 0700


@contextlib.contextmanager
def running_server(run_dir: Path) -> Iterator[Path]:
    """Start the server for one site run; yields its socket; stops it on the way out, whatever
    the way (end of run, breaker, Ctrl-C). Its log: <run_dir>/verify/server.log."""
    folder = _socket_folder(run_dir)
    path = folder / "sock"
    log_path = run_dir / "verify" / "server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rebuild.verify.server", "--socket", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=pytest_env(),  # its forks inherit it: the same as the subprocess path's pytest
            cwd=str(SUITES),
        )
    try:
        _wait_listening(proc, log_path)
        yield path
    finally:
        _stop(proc)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()


def _wait_listening(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as ready:
        ready.register(proc.stdout, selectors.EVENT_READ)
        line = proc.stdout.readline() if ready.select(START_TIMEOUT_S) else b""
    proc.stdout.close()
    if line.strip() != b"listening":
        raise RebuildError(
            f"the verification server did not start within {START_TIMEOUT_S:g} s (its log: {log_path})"
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Closing its stdin stops it (it kills its children first); a server that does not stop is killed."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
