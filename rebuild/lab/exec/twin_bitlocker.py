"""The TrustedPlatformModule and BitLocker cmdlets on a twin's OS volume C: (SIMULATION).

Part of `TwinHost` (twin_host.py). The volume's state is `TwinState.bitlocker`; the TPM is present
and ready unless the fault `no_tpm` is injected. Encryption takes a simulated duration of 0: the
volume is FullyEncrypted as soon as Enable-BitLocker returns. Each rule follows its Microsoft Learn
page (docs/lab-powershell.md, docs/lab-windows-rules.md); what the lab cannot know fails loudly.
"""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from rebuild.lab import directory
from rebuild.lab.exec.psobjects import PSObj
from rebuild.lab.exec.twin_call import host_of
from rebuild.lab.ps import values as v
from rebuild.lab.state import TwinState

if TYPE_CHECKING:
    from rebuild.lab.exec.twin_host import TwinHost
    from rebuild.lab.ps.evaluator import Call

OS_VOLUME = "C:"
# TBS_E_TPM_NOT_FOUND (Microsoft Learn, "TBS return codes"): what Enable-BitLocker -TpmProtector
# reports on a machine without a TPM.
NO_TPM = (
    "A compatible Trusted Platform Module (TPM) Security Device cannot be found on this computer. "
    "(Exception from HRESULT: 0x8028400F)"
)
# ERROR_NO_SUCH_DOMAIN: a computer outside a domain cannot reach a domain controller to back up to
# (Microsoft Learn, Event ID 514 "BitLocker Recovery Password Backup": the computer is not a member
# of an AD DS domain).
NOT_JOINED = (
    "The specified domain either does not exist or could not be contacted. "
    "(Exception from HRESULT: 0x8007054B)"
)
# E_ACCESSDENIED: the domain was not prepared to let computers write their recovery information
# (Microsoft Learn, Event ID 514 "BitLocker Recovery Password Backup": "The AD DS domain has not been
# properly configured to store recovery information"; the computer object's SELF needs the right to
# create msFVE-RecoveryInformation children). Fault `escrow_refused`.
ESCROW_REFUSED = "Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))"
COM_EXCEPTION = "System.Runtime.InteropServices.COMException"


def tpm_ready(host: TwinHost) -> bool:
    return host.lab.fault(host.twin.name, "no_tpm") is None


def _mount_point(c: Call) -> str:
    """-MountPoint: only the OS volume C: is simulated (a twin has no other BitLocker volume)."""
    points = [v.to_string(p).rstrip("\\").upper() for p in v.as_list(c.bound.get("MountPoint"))]
    if points != [OS_VOLUME]:
        raise c.not_simulated(f"{c.name} -MountPoint {', '.join(points) or '(none)'} (only C: is simulated)")
    return OS_VOLUME


def recovery_password() -> str:
    """48 digits in 8 groups of 6, each group a multiple of 11 below 720896 (the 16-bit block it
    encodes times 11), as manage-bde and Add-BitLockerKeyProtector generate them."""
    return "-".join(f"{secrets.randbelow(65536) * 11:06d}" for _ in range(8))


def _protector(p: dict[str, Any]) -> PSObj:
    # BitLockerVolumeKeyProtector (Microsoft Learn, Get-BitLockerVolume: KeyProtector).
    return PSObj(
        "Microsoft.BitLocker.Structures.BitLockerVolumeKeyProtector",
        {
            "KeyProtectorId": p["id"],
            "AutoUnlockProtector": None,
            "KeyProtectorType": p["type"],
            "KeyFileName": "",
            "RecoveryPassword": p.get("password", ""),
            "KeyCertificateType": None,
            "Thumbprint": "",
        },
        p["type"],
    )


def volume(state: TwinState) -> PSObj:
    """The BitLockerVolume object (Microsoft Learn, Get-BitLockerVolume)."""
    bl = state.bitlocker
    protectors = list(bl.get("protectors", []))
    encrypted = bool(bl.get("encryption_method"))
    # Protection is on once the volume is encrypted and has a key protector (suspended otherwise).
    protected = encrypted and bool(protectors)
    return PSObj(
        "Microsoft.BitLocker.Structures.BitLockerVolume",
        {
            "ComputerName": state.hostname,
            "MountPoint": OS_VOLUME,
            "VolumeType": "OperatingSystem",
            "EncryptionMethod": bl.get("encryption_method") or "None",
            "AutoUnlockEnabled": None,
            "MetadataVersion": 2,
            "VolumeStatus": "FullyEncrypted" if encrypted else "FullyDecrypted",
            "ProtectionStatus": "On" if protected else "Off",
            "LockStatus": "Unlocked",
            "EncryptionPercentage": 100 if encrypted else 0,
            "WipePercentage": 0,
            "KeyProtector": [_protector(p) for p in protectors],
        },
        OS_VOLUME,
    )


def get_tpm(c: Call) -> list[Any]:
    """Get-Tpm (Microsoft Learn, TrustedPlatformModule/Get-Tpm)."""
    ready = tpm_ready(host_of(c))
    return [
        PSObj(
            "Microsoft.Tpm.Commands.TpmObject",
            {
                "TpmPresent": ready,
                "TpmReady": ready,
                "TpmEnabled": ready,
                "TpmActivated": ready,
                "TpmOwned": ready,
                "RestartPending": False,
                "ManufacturerIdTxt": "MSFT" if ready else "",
                "ManagedAuthLevel": "Full",
                "OwnerClearDisabled": True,
                "AutoProvisioning": "Enabled",
                "LockedOut": False,
            },
        )
    ]


def get_bitlocker_volume(c: Call) -> list[Any]:
    """Get-BitLockerVolume -MountPoint C: (Microsoft Learn, BitLocker/Get-BitLockerVolume)."""
    _mount_point(c)
    return [volume(host_of(c).state())]


def enable_bitlocker(c: Call) -> list[Any]:
    """Enable-BitLocker -MountPoint C: -EncryptionMethod M [-UsedSpaceOnly] -SkipHardwareTest
    -TpmProtector (Microsoft Learn, BitLocker/Enable-BitLocker): without a TPM the TPM protector
    cannot be added and nothing changes."""
    host = host_of(c)
    _mount_point(c)
    if not v.truthy(c.bound.get("TpmProtector")):
        raise c.not_simulated("Enable-BitLocker with a key protector other than -TpmProtector")
    if not v.truthy(c.bound.get("SkipHardwareTest")):
        # Without it the encryption waits for the hardware test at the next restart.
        raise c.not_simulated("Enable-BitLocker without -SkipHardwareTest (the hardware test at restart)")
    if host.state().bitlocker.get("encryption_method"):
        raise c.not_simulated("Enable-BitLocker on a volume that is already encrypted")
    method = v.to_string(c.bound.get("EncryptionMethod") or "XtsAes128")  # Windows 10+ default
    if not tpm_ready(host):
        c.write_error(NO_TPM, COM_EXCEPTION, "NotSpecified", "Enable-BitLocker", OS_VOLUME)
        return []
    if c.whatif():
        return []
    used_space_only = v.truthy(c.bound.get("UsedSpaceOnly"))

    def enable(s: TwinState) -> None:
        s.bitlocker = {
            "encryption_method": method,
            "used_space_only": used_space_only,
            "protectors": [{"id": "{" + str(uuid.uuid4()).upper() + "}", "type": "Tpm"}],
        }

    host.write("Enable-BitLocker C:", enable)
    return [volume(host.state())]


def add_key_protector(c: Call) -> list[Any]:
    """Add-BitLockerKeyProtector -MountPoint C: -RecoveryPasswordProtector (Microsoft Learn,
    BitLocker/Add-BitLockerKeyProtector): Windows generates the 48-digit recovery password."""
    host = host_of(c)
    _mount_point(c)
    if not v.truthy(c.bound.get("RecoveryPasswordProtector")) or c.bound.get("RecoveryPassword"):
        raise c.not_simulated("Add-BitLockerKeyProtector other than -RecoveryPasswordProtector")
    if not host.state().bitlocker.get("encryption_method"):
        raise c.not_simulated("Add-BitLockerKeyProtector on a volume BitLocker was never enabled on")
    if c.whatif():
        return []
    protector = {"id": "{" + str(uuid.uuid4()).upper() + "}", "type": "RecoveryPassword"}
    protector["password"] = recovery_password()

    def add(s: TwinState) -> None:
        s.bitlocker.setdefault("protectors", []).append(dict(protector))

    host.write("Add-BitLockerKeyProtector C:", add)
    return [volume(host.state())]


def backup_key_protector(c: Call) -> list[Any]:
    """Backup-BitLockerKeyProtector -MountPoint C: -KeyProtectorId id (Microsoft Learn,
    BitLocker/Backup-BitLockerKeyProtector): saves a recovery password protector to AD DS, which
    a computer outside the domain cannot reach and a directory that refuses the write (fault
    `escrow_refused`) does not keep."""
    host = host_of(c)
    _mount_point(c)
    wanted = v.to_string(c.bound.get("KeyProtectorId")).strip().upper()
    state = host.state()
    found = next((p for p in state.bitlocker.get("protectors", []) if p["id"].upper() == wanted), None)
    if found is None or found["type"] != "RecoveryPassword":
        raise c.not_simulated(f"Backup-BitLockerKeyProtector of {wanted}, not a recovery password protector")
    if not state.domain_joined:
        c.write_error(NOT_JOINED, COM_EXCEPTION, "NotSpecified", "Backup-BitLockerKeyProtector", OS_VOLUME)
        return []
    if host.lab.fault(host.twin.name, "escrow_refused") is not None:
        c.write_error(
            ESCROW_REFUSED, COM_EXCEPTION, "NotSpecified", "Backup-BitLockerKeyProtector", OS_VOLUME
        )
        return []
    if c.whatif():
        return []
    if host.check_mode:
        host.write("Backup-BitLockerKeyProtector C:", lambda s: None)  # refuses in check mode
    directory.escrow_recovery_password(
        host.lab.config.lab_dir, state.hostname, found["id"], found["password"]
    )
    return [volume(state)]
