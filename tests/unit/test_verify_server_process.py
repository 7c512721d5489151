"""The verification server without a host: where its socket lives and who may use it, a bad
request, a client that hangs up, and its stop at the end of a run however the run ends.
(Verification through it, on twins: tests/integration/test_verify_server.py.)"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_verify_runner import HOSTVARS as RADIOLOGY_PC
from verify_processes import verify_server_pids

from rebuild.orchestrator.verify_server import verification_server
from rebuild.verify.client import (
    ServerUnavailable,
    check_socket_folder,
    recv_frame,
    send_frame,
    verify_through_server,
)
from rebuild.verify.server import running_server


def wait_for(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_the_secret_goes_only_to_a_private_folder_of_this_user(tmp_path: Path) -> None:
    with pytest.raises(ServerUnavailable, match="No such file or directory"):
        check_socket_folder(tmp_path / "absent" / "sock")
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    with pytest.raises(ServerUnavailable, match=r"shared is not private to this user \(0700\)"):
        check_socket_folder(shared / "sock")
    with pytest.raises(ServerUnavailable, match="not private"):  # nothing is sent: no connect
        verify_through_server(
            shared / "sock", host="H", kind="server", junit=tmp_path / "j.xml", timeout_s=5, config={}
        )


def test_socket_in_the_run_folder_or_a_private_temporary_one(tmp_path: Path) -> None:
    with running_server(tmp_path / "run") as path:
        assert path == tmp_path / "run" / "verify-server" / "sock"
        assert (path.parent.stat().st_mode & 0o777) == 0o700 and path.is_socket()
    assert not path.parent.exists()
    deep = tmp_path / ("d" * 120) / "run"  # longer than a unix socket path may be
    with running_server(deep) as path:
        assert len(str(path)) < 100 and (path.parent.stat().st_mode & 0o777) == 0o700
        assert (deep / "verify" / "server.log").exists()
    assert not path.parent.exists()


def test_a_bad_request_is_refused_and_the_server_goes_on(tmp_path: Path) -> None:
    with running_server(tmp_path / "run") as path:
        with pytest.raises(ServerUnavailable, match=r"bad request: verification suite.*test_kind_toaster"):
            verify_through_server(
                path, host="H", kind="toaster", junit=tmp_path / "j.xml", timeout_s=5, config={}
            )
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(path))
            send_frame(conn, b"not json")
            assert b"bad request" in recv_frame(conn)
        log = (tmp_path / "run" / "verify" / "server.log").read_text()
        assert log.count("request refused") == 2 and verify_server_pids(str(path))


def test_a_client_that_hangs_up_has_its_child_killed(tmp_path: Path) -> None:
    """A cancelled Ansible worker closes its connection: the host's pytest must not run on."""
    import json

    from rebuild.verify import VerifyTarget, build_expectations

    expect = build_expectations(RADIOLOGY_PC, with_hardening=False)
    # Nothing listens on port 1: the checks retry their reads for a while.
    target = VerifyTarget(host="ARL-RAD-0001", address="127.0.0.1", port=1, scheme="http")
    config = {"target": target.__dict__, "password": "pw", "expect": expect.to_dict()}
    log = tmp_path / "run" / "verify" / "server.log"
    with running_server(tmp_path / "run") as path:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(path))
            request = {"host": target.host, "kind": "workstation", "junit": str(tmp_path / "j.xml"),
                       "timeout_s": 600, "config": config}  # fmt: skip
            send_frame(conn, json.dumps(request).encode())
            wait_for(lambda: "ARL-RAD-0001: pid" in log.read_text(), "the server never forked")
        wait_for(lambda: "hung up" in log.read_text(), "the server did not notice the hang-up")
        match = re.search(r"killing pid (\d+): its client hung up", log.read_text())
        assert match
        wait_for(lambda: re.search(rf"pid {match[1]} exited -9", log.read_text()), "child not reaped")


@pytest.mark.parametrize("ending", [KeyboardInterrupt, RuntimeError])
def test_the_run_hook_stops_the_server_however_the_run_ends(tmp_path: Path, ending: type) -> None:
    batches = SimpleNamespace(verify_socket=None)
    with pytest.raises(ending), verification_server(tmp_path, batches, wanted=True, say=print):  # type: ignore[arg-type]
        path = batches.verify_socket
        assert path is not None and verify_server_pids(str(path))
        raise ending("stop")
    assert batches.verify_socket is None
    assert not verify_server_pids(str(path)) and not path.parent.exists()
    assert (tmp_path / "verify" / "server.log").read_text().rstrip().endswith("stopped")


def test_no_server_for_a_run_that_does_not_verify_here(tmp_path: Path) -> None:
    batches = SimpleNamespace(verify_socket=None)
    with verification_server(tmp_path, batches, wanted=False, say=print):  # type: ignore[arg-type]
        assert batches.verify_socket is None
    assert not (tmp_path / "verify").exists()


def test_the_server_stops_when_its_site_run_is_killed(tmp_path: Path) -> None:
    """kill -9 of `rebuild site` runs no cleanup: the server sees its stdin close and exits."""
    import signal
    import subprocess
    import sys

    script = (
        "import pathlib, sys, time\n"
        "from rebuild.verify.server import running_server\n"
        "with running_server(pathlib.Path(sys.argv[1])) as path:\n"
        "    print(path, flush=True)\n"
        "    time.sleep(600)\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert run.stdout is not None
        path = run.stdout.readline().strip()
        assert len(verify_server_pids(path)) == 1
        run.send_signal(signal.SIGKILL)
        run.wait()
        wait_for(lambda: not verify_server_pids(path), "the server outlived its site run")
        assert (tmp_path / "run" / "verify" / "server.log").read_text().rstrip().endswith("stopped")
    finally:
        run.kill()
        run.wait()
