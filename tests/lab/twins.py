"""Twins for the lab tests: one server and one PC record, and an in-process two-twin lab for
tests that call `rebuild.lab.exec.execute` directly, as the WinRM transport would, no socket."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuild.lab import images
from rebuild.lab.context import Lab, LabConfig, TwinRecord
from rebuild.lab.exec import execute
from rebuild.lab.exec.payloads import encoded_command
from rebuild.lab.exec.twin_host import TwinHost
from rebuild.lab.ps import Evaluator
from rebuild.lab.ps.evaluator import RunResult
from rebuild.lab.state import StateStore, TwinState


def server_twin(address: str) -> TwinRecord:
    """A physical Windows Server 2022 of the emergency service at Arlon, on `address`."""
    return TwinRecord(
        "ARL-SRV-0001", address, "94:40:c9:00:01:01", "server", "physical", "arlon",
        "windows-server-2022", "emergency",
    )  # fmt: skip


def pc_twin(address: str) -> TwinRecord:
    """A physical Windows 11 PC of the emergency service at Arlon, on `address`."""
    return TwinRecord(
        "ARL-PC-0001", address, "94:40:c9:00:01:02", "workstation", "physical", "arlon",
        "windows-11-23h2", "emergency",
    )  # fmt: skip


# In-process tests open no socket: the addresses are never bound.
SERVER = server_twin("127.250.0.2")
PC = pc_twin("127.250.0.3")


@contextmanager
def two_twin_lab(directory: Path, admin_password: str) -> Iterator[Lab]:
    """Both twins as found the morning after (compromised, pre-incident local admin password)."""
    store = StateStore(directory / "twins.sqlite")
    store.put_many({t.name: images.compromised_state(t, admin_password) for t in (SERVER, PC)})
    try:
        yield Lab(LabConfig(lab_dir=directory), store, {SERVER.name: SERVER, PC.name: PC})
    finally:
        store.close()


def ps(lab: Lab, script: str, twin: TwinRecord = SERVER) -> tuple[int, str, str]:
    """Run a PowerShell script as `powershell -EncodedCommand` on a twin: (rc, stdout, stderr)."""
    command, arguments = encoded_command(script)
    rc, out, err = execute(lab, twin, command, arguments, b"")
    return rc, out.decode(), err.decode()


# --- one twin for the PowerShell evaluator's tests ------------------------------------------------

RX_PC = TwinRecord(
    "ARL-RX-PC01", "127.77.0.2", "aa:bb:cc:00:00:01", "workstation", "physical", "arlon",
    "windows-11-23h2", "radiology",
)  # fmt: skip


def bare_state(**fields: Any) -> TwinState:
    """A Windows 11 twin with nothing but what the test gives it."""
    return TwinState(
        hostname=RX_PC.name, kind="workstation", os_caption="Microsoft Windows 11 Enterprise",
        os_build="22631", image_id="w11", image_sha256="0" * 64, phase="clean", **fields,
    )  # fmt: skip


def one_twin_lab(directory: Path, state: TwinState, record: TwinRecord = RX_PC) -> Lab:
    store = StateStore(directory / "state.sqlite")
    store.put(record.name, state)
    return Lab(config=LabConfig(lab_dir=directory), store=store, twins={record.name: record})


def run_ps(lab: Lab, src: str, *, check_mode: bool = False, user: str | None = "rb-admin") -> RunResult:
    """Run a script on the lab's only twin through the evaluator, as Ansible runs modules
    ($ErrorActionPreference = 'Stop'), the WinRM session being `user`'s."""
    (twin,) = lab.twins.values()
    ev = Evaluator(TwinHost(lab, twin, check_mode=check_mode, session_user=user))
    ev.global_scope.vars["erroractionpreference"] = "Stop"
    return ev.run(src, "rule.ps1")


@dataclass
class ReadResult:
    rc: int
    stdout: str
    stderr: str


class ReadHost:
    """What verification's WindowsReads talks to (testinfra's winrm backend: the whole command line
    is the WinRS command), answered by one twin of a lab in process."""

    def __init__(self, lab: Lab, twin: TwinRecord = RX_PC) -> None:
        self.lab = lab
        self.twin = twin

    def run(self, command: str, *args: str) -> ReadResult:
        assert not args
        rc, out, err = execute(self.lab, self.twin, command, [], b"")
        return ReadResult(rc, out.decode(), err.decode())
