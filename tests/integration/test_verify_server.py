"""The warm verification server (rebuild.verify.server) on the lab: a site run verifies through
it and stops it; a fork of the server and a new Python give the same JUnit and the same result
for a clean and a re-infected twin; a hung twin is killed on the deadline; a server that is gone
leaves verification to a new Python, with the same result; no secret reaches the server's
argv, environment, log or the JUnit.

One site run of two PCs (`rebuild site arlon --rehearsal`, SIMULATED lab) keeps both twins'
rb-admin (host_vars: rebuild_retire_rebuild_secret: false) so they can be verified again.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from verify_processes import verify_server_pids

from rebuild.journal import Journal, Phase
from rebuild.verify.runner import VerifyResult, run_verification
from rebuild.verify.server import running_server

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]

CLEAN, DRIFTED = "ARL-URG-0002", "ARL-URG-0001"


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import _running_lab, rehearsal_site_argv
    from verify_request import keep_admin

    base = tmp_path_factory.mktemp("verify-server-lab")
    with _running_lab(base / "lab", site="arlon", imaging_seconds=0) as lab:
        keep_admin(lab, CLEAN, DRIFTED)
        lab.client.set_fault(DRIFTED, "drift_after_redeploy", changes=["defender_off", "ransom_note"])
        proc = subprocess.run(
            rehearsal_site_argv(lab, [CLEAN, DRIFTED], "verification server test: no directory in it"),
            env={**os.environ, **lab.env},
            capture_output=True,
            text=True,
            timeout=800,
        )
        yield lab, proc


def request(lab: Any, host: str) -> tuple[Callable[..., VerifyResult], str, str]:
    """run_verification of `host` as rebuild_verify would call it (target, expectations and both
    passwords bound; run_dir, server, timeout and notices left to each test), and both passwords."""
    from verify_request import verify_request

    target, expect, password, previous = verify_request(lab, "arlon", host)
    verify = functools.partial(
        run_verification, target, expect, password=password, previous_password=previous
    )
    return verify, password, previous


def comparable(result: VerifyResult) -> dict[str, Any]:
    """The journal's blob without what differs by nature between two runs: paths and duration."""
    blob = result.to_dict()
    for key in ("junit", "log", "duration_s"):
        blob.pop(key)
    return blob


def junit_text(result: VerifyResult) -> str:
    return re.sub(r' (time|timestamp|hostname)="[^"]*"', "", Path(result.junit).read_text())


def test_site_run_verifies_through_its_server_and_stops_it(rehearsal: tuple[Any, Any]) -> None:
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as journal:
        clean, drifted = journal.host(CLEAN), journal.host(DRIFTED)
    assert clean.phase is Phase.VERIFIED, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert drifted.phase is Phase.QUARANTINED, proc.stdout[-3000:]
    (run_dir,) = [p for p in (lab.state_dir / "runs").iterdir() if p.is_dir()]
    log = (run_dir / "verify" / "server.log").read_text()
    # Both hosts went through a fork of the server, none through the fallback.
    assert re.search(rf"{CLEAN}: pid \d+ exited 0 ", log) and re.search(rf"{DRIFTED}: pid \d+ exited 1 ", log)
    stdout = [p.read_text() for p in (run_dir / "artifacts").glob("*/stdout")]
    assert stdout and not [text for text in stdout if "verified by a new Python process" in text]
    assert log.rstrip().endswith("stopped")
    # Stopped with the run: no server process left, its socket folder gone.
    assert not verify_server_pids(str(run_dir)) and not (run_dir / "verify-server").exists()


@pytest.mark.parametrize("host", [CLEAN, DRIFTED])
def test_server_and_new_python_give_the_same_result(
    rehearsal: tuple[Any, Any], tmp_path: Path, host: str
) -> None:
    lab, _ = rehearsal
    run, _, _ = request(lab, host)

    def verify(run_dir: Path, server: Path | None) -> VerifyResult:
        notices: list[str] = []
        result = run(run_dir=run_dir, server=server, notices=notices)
        assert not notices
        return result

    alone = verify(tmp_path / "alone", None)
    with running_server(tmp_path / "served") as socket:
        served = verify(tmp_path / "served", socket)
    assert comparable(served) == comparable(alone)
    assert junit_text(served) == junit_text(alone)
    assert alone.tests >= 40
    if host == CLEAN:
        assert alone.passed and not alone.failed_checks
    else:
        assert not alone.passed
        assert any(c["check"] == "test_defender_realtime_protection_on" for c in alone.failed_checks)


def test_hung_host_is_killed_on_its_deadline_through_the_server(
    rehearsal: tuple[Any, Any], tmp_path: Path
) -> None:
    lab, _ = rehearsal
    verify, _, _ = request(lab, CLEAN)
    lab.client.set_fault(CLEAN, "slow_host", delay=120)
    try:
        with running_server(tmp_path / "run") as socket:
            result = verify(run_dir=tmp_path / "run", timeout_s=4, server=socket)
            assert not result.passed and result.duration_s < 30
            assert {"check": "verification", "message": "did not finish within 4 s"} in result.failed_checks
            log = (tmp_path / "run" / "verify" / "server.log").read_text()
            assert re.search(rf"{CLEAN}: killing pid \d+: past its deadline", log)
            lab.client.clear_fault(CLEAN)
            again = verify(run_dir=tmp_path / "run", server=socket)  # it serves the next host as before
            assert again.passed
    finally:
        lab.client.clear_fault(CLEAN)


def test_a_server_gone_leaves_verification_to_a_new_python(
    rehearsal: tuple[Any, Any], tmp_path: Path
) -> None:
    lab, _ = rehearsal
    verify, _, _ = request(lab, CLEAN)
    with running_server(tmp_path / "run") as socket:
        (pid,) = verify_server_pids(str(socket))
        os.kill(pid, signal.SIGKILL)  # a crash: its socket file stays, nobody listens
        notices: list[str] = []
        result = verify(run_dir=tmp_path / "run", server=socket, notices=notices)
    assert result.passed and result.tests >= 40
    assert len(notices) == 1 and notices[0].startswith(f"{CLEAN}: verification server at {socket}")
    assert notices[0].endswith("verified by a new Python process instead")


def test_no_secret_in_the_servers_argv_environment_log_or_junit(
    rehearsal: tuple[Any, Any], tmp_path: Path
) -> None:
    lab, _ = rehearsal
    verify, password, previous = request(lab, DRIFTED)
    assert password and previous and password != previous
    with running_server(tmp_path / "run") as socket:
        (pid,) = verify_server_pids(str(socket))
        result = verify(run_dir=tmp_path / "run", server=socket)
        exposed = [Path(f"/proc/{pid}/cmdline").read_bytes(), Path(f"/proc/{pid}/environ").read_bytes()]
    assert result.tests >= 40 and not result.redacted
    exposed += [p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(b"verify-" + DRIFTED.encode() in text for text in exposed)  # the JUnit is among them
    for text in exposed:
        assert password.encode() not in text and previous.encode() not in text
