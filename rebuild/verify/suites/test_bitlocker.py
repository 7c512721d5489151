"""The OS volume is BitLocker-protected, and its recovery password escrowed, where the policy
requires it (condition `bitlocker`).

Protection: on, with a TPM protector and a recovery password protector (Get-BitLockerVolume).
Escrow: every recovery password protector on C: is listed in the record the redeploy step writes
(HKLM:\\SOFTWARE\\GHAL\\Rebuild, BitLockerEscrowedProtectors) only after Backup-BitLockerKeyProtector
succeeded for each (roles/redeploy/tasks/bitlocker.yml). Verification reads the host, not the
directory: it holds no directory credential, and the local administrator it connects as cannot
read msFVE-RecoveryInformation (docs/recovery-guidance.md, "BitLocker escrow").
"""

# mypy: disable-error-code="no-untyped-def"
# (pytest test functions: fixtures are typed by name in rebuild/verify/plugin.py)

from __future__ import annotations

import pytest

from rebuild.verify.windows import STAMP_KEY, WindowsReads, as_list

ESCROW_RECORD = "BitLockerEscrowedProtectors"


def _required(expect) -> None:
    if not expect.bitlocker_required:
        pytest.skip("BitLocker not required for this host by inventories/data/bitlocker.yml")


def test_bitlocker(win: WindowsReads, expect):
    _required(expect)
    volume = win.bitlocker_volume()
    types = sorted({str(p.get("KeyProtectorType", "")) for p in as_list(volume.get("KeyProtector"))})
    status = f"C: {volume.get('VolumeStatus')}, protection {volume.get('ProtectionStatus')}"
    if volume.get("ProtectionStatus") != "On":
        tpm = win.tpm()  # read only for the message: a missing TPM is the usual cause
        ready = f"TPM present {tpm.get('TpmPresent')}, ready {tpm.get('TpmReady')}"
        pytest.fail(f"not BitLocker-protected: {status} ({ready})")
    assert "Tpm" in types, f"not BitLocker-protected: no TPM protector on C: (protectors: {types})"
    assert "RecoveryPassword" in types, (
        f"not BitLocker-protected: no recovery password protector on C: (protectors: {types})"
    )


def test_bitlocker_escrowed(win: WindowsReads, expect):
    _required(expect)
    recovery = sorted(
        str(p.get("KeyProtectorId", "")).upper()
        for p in as_list(win.bitlocker_volume().get("KeyProtector"))
        if p.get("KeyProtectorType") == "RecoveryPassword"
    )
    if not recovery:
        pytest.fail("recovery password not escrowed: C: has no recovery password protector to escrow")
    record = str((win.registry_key(STAMP_KEY) or {}).get(ESCROW_RECORD) or "")
    escrowed = {part.strip().upper() for part in record.split(";") if part.strip()}
    missing = [pid for pid in recovery if pid not in escrowed]
    assert not missing, (
        f"recovery password not escrowed to Active Directory: protector(s) {', '.join(missing)} of C: "
        "have no successful Backup-BitLockerKeyProtector on record (see the redeploy log for the "
        "directory's refusal)"
    )
