"""The SecureBoot cmdlets on a twin (rebuild/lab/exec/twin_firmware.py), on both paths that run
PowerShell in the lab: verification's reads (powershell.exe, the read subset) and the evaluator.

Microsoft Learn, SecureBoot module: Confirm-SecureBootUEFI is True/False on UEFI and fails with
"Cmdlet not supported on this platform." on a BIOS machine; Get-SecureBootUEFI -Name is mandatory
and validated against its set of variable names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_exec_verify_reads import Host
from twins import SERVER, two_twin_lab

from rebuild.lab.context import Lab
from rebuild.lab.exec import execute
from rebuild.lab.exec.twin_host import TwinHost
from rebuild.lab.ps import Evaluator
from rebuild.lab.state import TwinState
from rebuild.verify.windows import SecureBootState, WindowsReads


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with two_twin_lab(tmp_path, "pw") as lab:
        yield lab


def _state(lab: Lab) -> SecureBootState:
    return WindowsReads(Host(lab)).secure_boot()


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ((), SecureBootState(uefi=True, enabled=True, uefi_ca_2023=True)),
        (("db_2011_only",), SecureBootState(uefi=True, enabled=True, uefi_ca_2023=False)),
        (("secure_boot_off",), SecureBootState(uefi=True, enabled=False, uefi_ca_2023=True)),
        (("legacy_bios",), SecureBootState(uefi=False, enabled=False, uefi_ca_2023=False)),
    ],
)
def test_verification_reads_the_firmware_the_faults_leave(lab: Lab, faults: tuple[str, ...], expected):
    for fault in faults:
        lab.faults.setdefault(SERVER.name, {})[fault] = {}
    assert _state(lab) == expected


def test_the_twins_firmware_state_is_what_the_cmdlets_read(lab: Lab) -> None:
    def legacy(state: TwinState) -> None:
        state.firmware["mode"] = "bios"

    lab.update(SERVER.name, legacy)
    assert _state(lab).uefi is False


def test_bios_machine_gets_windows_own_error(lab: Lab) -> None:
    lab.faults.setdefault(SERVER.name, {})["legacy_bios"] = {}
    rc, out, err = execute(lab, SERVER, "powershell.exe -NoProfile -Command Get-SecureBootUEFI db", [], b"")
    assert (rc, out) == (1, b"")
    assert err.decode().startswith("Get-SecureBootUEFI : Cmdlet not supported on this platform.")


def test_get_securebootuefi_validates_the_variable_name(lab: Lab) -> None:
    rc, _, err = execute(lab, SERVER, "powershell.exe -Command Get-SecureBootUEFI -Name kek2", [], b"")
    assert rc == 1 and 'The argument "kek2" does not belong to the set "PK,KEK,db,' in err.decode()


def test_the_evaluator_runs_microsofts_documented_check(lab: Lab) -> None:
    """Through the evaluator's cmdlet layer (twin_host bridges the same cmdlets)."""
    check = (
        "try { Confirm-SecureBootUEFI; (Get-SecureBootUEFI -Name db).Bytes.Count -gt 0 } "
        "catch { $_.Exception.Message }"
    )
    ev = Evaluator(TwinHost(lab, lab.twins[SERVER.name]))
    ev.global_scope.vars["erroractionpreference"] = "Stop"
    assert ev.run(check, "check.ps1").output == [True, True]
    lab.faults.setdefault(SERVER.name, {})["legacy_bios"] = {}
    ev = Evaluator(TwinHost(lab, lab.twins[SERVER.name]))
    ev.global_scope.vars["erroractionpreference"] = "Stop"
    assert ev.run(check, "check.ps1").output == ["Cmdlet not supported on this platform."]
