"""Get-Tpm and the BitLocker cmdlets on a twin's OS volume, run as PowerShell through the evaluator.

Each test feeds a Windows PowerShell 5.1 script and checks what the cited Microsoft Learn page
documents (rebuild/lab/exec/twin_bitlocker.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from rebuild.lab import directory, faults
from rebuild.lab.context import Lab
from rebuild.lab.exec.twin_bitlocker import ESCROW_REFUSED
from rebuild.lab.exec.twin_host import CheckModeWrite
from rebuild.lab.ps import NotSimulated
from rebuild.verify.suites import test_bitlocker as suite
from rebuild.verify.windows import WindowsReads
from tests.lab.twins import RX_PC, ReadHost, bare_state, one_twin_lab, run_ps

TWIN = RX_PC.name
STAMP = "HKLM:\\SOFTWARE\\GHAL\\Rebuild"
ENABLE = (
    "Enable-BitLocker -MountPoint C: -EncryptionMethod XtsAes256 -UsedSpaceOnly "
    "-SkipHardwareTest -TpmProtector"
)
PROTECT = (
    f"$null = {ENABLE}\n"
    "$rp = Add-BitLockerKeyProtector -MountPoint C: -RecoveryPasswordProtector\n"
    "$id = ($rp.KeyProtector | Where-Object { $_.KeyProtectorType -eq 'RecoveryPassword' }).KeyProtectorId\n"
)


def lab_of(tmp_path: Path, joined: bool = True) -> Lab:
    return one_twin_lab(
        tmp_path, bare_state(domain="ghal.local" if joined else "WORKGROUP", domain_joined=joined)
    )


def test_get_tpm_ready_by_default_and_absent_with_the_no_tpm_fault(tmp_path: Path) -> None:
    """Get-Tpm (TrustedPlatformModule/get-tpm): TpmPresent, TpmReady."""
    lab = lab_of(tmp_path)
    src = '$t = Get-Tpm\n"$($t.TpmPresent) $($t.TpmReady)"'
    assert run_ps(lab, src).output == ["True True"]
    faults.apply(lab.faults, {TWIN: {"no_tpm": {}}})
    assert run_ps(lab, src).output == ["False False"]


def test_enable_encrypts_the_os_volume_with_a_tpm_protector(tmp_path: Path) -> None:
    """Enable-BitLocker -TpmProtector (bitlocker/enable-bitlocker); encryption takes a simulated 0 s."""
    lab = lab_of(tmp_path)
    src = (
        "$v = Get-BitLockerVolume -MountPoint C:\n"
        '"$($v.VolumeStatus) $($v.ProtectionStatus) $($v.EncryptionPercentage) $($v.KeyProtector.Count)"\n'
        f"$null = {ENABLE}\n"
        "$v = Get-BitLockerVolume C:\n"
        '"$($v.VolumeStatus) $($v.ProtectionStatus) $($v.EncryptionPercentage) $($v.EncryptionMethod)"\n'
        "($v.KeyProtector | ForEach-Object { $_.KeyProtectorType }) -join ','\n"
    )
    out = run_ps(lab, src).output
    assert out == ["FullyDecrypted Off 0 0", "FullyEncrypted On 100 XtsAes256", "Tpm"]
    assert lab.state(TWIN).bitlocker["used_space_only"] is True


def test_enable_without_a_tpm_fails_as_windows_does_and_changes_nothing(tmp_path: Path) -> None:
    """No TPM: TBS_E_TPM_NOT_FOUND 0x8028400F, the volume stays decrypted."""
    lab = lab_of(tmp_path)
    faults.apply(lab.faults, {TWIN: {"no_tpm": {}}})
    src = f"try {{ {ENABLE} }} catch {{ $_.Exception.Message }}\n(Get-BitLockerVolume C:).ProtectionStatus"
    out = run_ps(lab, src).output
    assert "0x8028400F" in str(out[0]) and "Trusted Platform Module" in str(out[0])
    assert str(out[1]) == "Off" and lab.state(TWIN).bitlocker == {}


def test_recovery_password_protector_is_48_digits_and_backed_up_to_the_directory(tmp_path: Path) -> None:
    """Add-BitLockerKeyProtector -RecoveryPasswordProtector, Backup-BitLockerKeyProtector -KeyProtectorId."""
    lab = lab_of(tmp_path)
    out = run_ps(
        lab, PROTECT + "Backup-BitLockerKeyProtector -MountPoint C: -KeyProtectorId $id | Out-Null\n$id"
    ).output
    (protector_id,) = out
    stored = [p for p in lab.state(TWIN).bitlocker["protectors"] if p["type"] == "RecoveryPassword"]
    assert [p["id"] for p in stored] == [protector_id]
    groups = stored[0]["password"].split("-")
    assert len(groups) == 8 and all(re.fullmatch(r"\d{6}", g) and int(g) % 11 == 0 for g in groups)
    assert directory.escrowed_protector_ids(directory.load(tmp_path), TWIN) == [protector_id]


def test_backup_on_a_computer_outside_the_domain_fails_and_escrows_nothing(tmp_path: Path) -> None:
    """Event ID 514: recovery information cannot reach AD DS from a non-member computer."""
    lab = lab_of(tmp_path, joined=False)
    src = (
        PROTECT
        + "try { Backup-BitLockerKeyProtector -MountPoint C: -KeyProtectorId $id }\n"
        + "catch { $_.Exception.Message }"
    )
    (message,) = run_ps(lab, src).output
    assert "0x8007054B" in str(message)
    assert not directory.path_in(tmp_path).exists()


def test_backup_the_directory_refuses_fails_as_windows_does_and_escrows_nothing(tmp_path: Path) -> None:
    """Fault escrow_refused: E_ACCESSDENIED (Event ID 514, domain not configured to store recovery
    information); the protector stays on C:, nothing reaches the directory."""
    lab = lab_of(tmp_path)
    faults.apply(lab.faults, {TWIN: {"escrow_refused": {}}})
    src = (
        PROTECT
        + "try { Backup-BitLockerKeyProtector -MountPoint C: -KeyProtectorId $id }\n"
        + "catch { $_.Exception.Message }"
    )
    (message,) = run_ps(lab, src).output
    assert "0x80070005" in str(message) and "Access is denied" in str(message)
    assert not directory.path_in(tmp_path).exists()


def test_check_mode_refuses_the_write_and_other_volumes_fail_loudly(tmp_path: Path) -> None:
    lab = lab_of(tmp_path)
    with pytest.raises(CheckModeWrite):
        run_ps(lab, ENABLE, check_mode=True)
    with pytest.raises(NotSimulated, match="only C:"):
        run_ps(lab, "Get-BitLockerVolume -MountPoint D:")
    with pytest.raises(NotSimulated, match="SkipHardwareTest"):
        run_ps(lab, "Enable-BitLocker -MountPoint C: -TpmProtector")


# --- the redeploy step's script (roles/redeploy/tasks/bitlocker.yml), run on a twin -------------


def step_script(timeout_minutes: int = 240) -> str:
    """The win_shell script of the redeploy step, rendered as Ansible would for one host."""
    import jinja2
    import yaml

    from rebuild.datadir import PROJECT_ROOT

    tasks = yaml.safe_load((PROJECT_ROOT / "roles/redeploy/tasks/bitlocker.yml").read_text(encoding="utf-8"))
    (task,) = [t for t in tasks if "ansible.windows.win_shell" in t]
    settings = {"encryption_method": "XtsAes256", "used_space_only": True}
    settings["encryption_timeout_minutes"] = timeout_minutes
    return jinja2.Template(task["ansible.windows.win_shell"]).render(redeploy__bitlocker=settings)


def test_redeploy_step_protects_escrows_and_is_idempotent(tmp_path: Path) -> None:
    lab = lab_of(tmp_path)
    assert run_ps(lab, step_script()).output == ["changed=True"]
    state = lab.state(TWIN).bitlocker
    assert sorted(p["type"] for p in state["protectors"]) == ["RecoveryPassword", "Tpm"]
    assert state["encryption_method"] == "XtsAes256" and state["used_space_only"] is True
    (recovery,) = [p for p in state["protectors"] if p["type"] == "RecoveryPassword"]
    assert directory.escrowed_protector_ids(directory.load(tmp_path), TWIN) == [recovery["id"]]
    assert lab.state(TWIN).registry[STAMP]["BitLockerEscrowedProtectors"] == recovery["id"]
    assert run_ps(lab, step_script()).output == ["changed=False"]
    assert lab.state(TWIN).bitlocker == state


def test_redeploy_step_without_a_tpm_fails_naming_it_and_leaves_c_decrypted(tmp_path: Path) -> None:
    lab = lab_of(tmp_path)
    faults.apply(lab.faults, {TWIN: {"no_tpm": {}}})
    result = run_ps(lab, "try {\n" + step_script() + "\n} catch { 'failed: ' + $_.Exception.Message }")
    assert result.output == [
        "failed: no ready TPM (TpmPresent False, TpmReady False): C: cannot get a TPM protector"
    ]
    assert lab.state(TWIN).bitlocker == {}


def test_redeploy_step_whose_escrow_is_refused_fails_and_records_no_escrow(tmp_path: Path) -> None:
    lab = lab_of(tmp_path)
    faults.apply(lab.faults, {TWIN: {"escrow_refused": {}}})
    result = run_ps(lab, "try {\n" + step_script() + "\n} catch { 'failed: ' + $_.Exception.Message }")
    assert result.output == [f"failed: {ESCROW_REFUSED}"]
    assert sorted(p["type"] for p in lab.state(TWIN).bitlocker["protectors"]) == ["RecoveryPassword", "Tpm"]
    assert "BitLockerEscrowedProtectors" not in lab.state(TWIN).registry.get(STAMP, {})


# --- the verification suite (rebuild/verify/suites/test_bitlocker.py) on a twin -------------------


def _suite_outcome(lab: Lab, check: Callable[..., None]) -> str:
    """'passed', or the failure message the journal and report would show."""
    try:
        check(WindowsReads(ReadHost(lab)), SimpleNamespace(bitlocker_required=True))
    except (AssertionError, pytest.fail.Exception) as exc:
        return str(exc)
    return "passed"


@pytest.mark.parametrize(
    ("fault", "protected", "escrowed"),
    [
        (None, "passed", "passed"),
        ("escrow_refused", "passed", "recovery password not escrowed to Active Directory"),
        ("no_tpm", "not BitLocker-protected", "C: has no recovery password protector"),
    ],
)
def test_suite_holds_back_an_unprotected_or_unescrowed_volume(
    tmp_path: Path, fault: str | None, protected: str, escrowed: str
) -> None:
    lab = lab_of(tmp_path)
    if fault:
        faults.apply(lab.faults, {TWIN: {fault: {}}})
    run_ps(lab, "try {\n" + step_script() + "\n} catch { }")
    assert protected in _suite_outcome(lab, suite.test_bitlocker)
    assert escrowed in _suite_outcome(lab, suite.test_bitlocker_escrowed)
