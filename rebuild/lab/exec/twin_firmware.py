"""The SecureBoot cmdlets on a twin's firmware (SIMULATION): Confirm-SecureBootUEFI, Get-SecureBootUEFI.

The firmware they read is rebuild/lab/firmware.py (state, faults, the simulated db bytes).

Rules (Microsoft Learn, powershell/module/secureboot; docs/lab-windows-rules.md, "Secure Boot"):
* Confirm-SecureBootUEFI returns $True (Secure Boot on) or $False (supported, off); on a BIOS
  (non-UEFI) computer it fails with "Cmdlet not supported on this platform."
* Get-SecureBootUEFI -Name <variable> (mandatory, position 1, accepted values PK, KEK, db, dbx,
  SetupMode, SecureBoot, PKDefault, KEKDefault, dbDefault, dbxDefault, dbt, dbtDefault) returns a
  UEFIEnvironmentVariable {Name, Bytes, Attributes}; same error on BIOS. Of its variables the lab
  holds db and SecureBoot; the others fail as not simulated.
The db bytes are SIMULATED: one EFI_SIGNATURE_LIST-shaped record per certificate whose subject
CN is in ASCII, as in a DER certificate, so Microsoft's documented check
(`[System.Text.Encoding]::ASCII.GetString((Get-SecureBootUEFI db).bytes) -match 'Windows UEFI CA 2023'`)
answers as on a real machine. Not simulated: the certificates' signatures, KEK/PK/dbx contents,
Set-SecureBootUEFI (`the rebuild lab (a simulation) does not simulate ...`).
"""

from __future__ import annotations

from typing import Any

from rebuild.lab.exec.cmdlets import Bound, ReadContext, ReadError, not_simulated
from rebuild.lab.exec.psobjects import PSObj
from rebuild.lab.exec.read_cmdlets import read_cmdlet
from rebuild.lab.firmware import db_bytes, effective_firmware
from rebuild.lab.ps.binding import Param

VARIABLES = (
    "PK",
    "KEK",
    "db",
    "dbx",
    "SetupMode",
    "SecureBoot",
    "PKDefault",
    "KEKDefault",
    "dbDefault",
    "dbxDefault",
    "dbt",
    "dbtDefault",
)
NOT_SUPPORTED = "Cmdlet not supported on this platform."


def _firmware(s: ReadContext) -> dict[str, Any]:
    return effective_firmware(s.lab, s.twin.name, s.lab.state(s.twin.name).firmware)


@read_cmdlet("Confirm-SecureBootUEFI", "secureboot/confirm-securebootuefi")
def confirm_secure_boot_uefi(s: ReadContext, bound: Bound) -> list[Any]:
    firmware = _firmware(s)
    if firmware["mode"] != "uefi":
        raise ReadError("Confirm-SecureBootUEFI", NOT_SUPPORTED)
    return [bool(firmware["secure_boot"])]


@read_cmdlet(
    "Get-SecureBootUEFI",
    "secureboot/get-securebootuefi",
    Param("Name", position=0, mandatory=True),
    Param("OutputFilePath"),
)
def get_secure_boot_uefi(s: ReadContext, bound: Bound) -> list[Any]:
    # -Name is mandatory: the evaluator's binder refuses a call without it, as PowerShell does.
    if "OutputFilePath" in bound:
        raise not_simulated("Get-SecureBootUEFI -OutputFilePath")
    name = str(bound["Name"])
    match = next((v for v in VARIABLES if v.lower() == name.lower()), None)
    if match is None:
        raise ReadError(
            "Get-SecureBootUEFI",
            f"Cannot validate argument on parameter 'Name'. The argument \"{name}\" does not belong to the "
            f'set "{",".join(VARIABLES)}" specified by the ValidateSet attribute.',
            terminating=True,
        )
    firmware = _firmware(s)
    if firmware["mode"] != "uefi":
        raise ReadError("Get-SecureBootUEFI", NOT_SUPPORTED)
    if match == "db":
        data = db_bytes([str(c) for c in firmware["db"]])
    elif match == "SecureBoot":
        data = [1 if firmware["secure_boot"] else 0]
    else:
        raise not_simulated(f"the UEFI variable {match} (only db and SecureBoot are)")
    return [
        PSObj(
            "Microsoft.SecureBoot.Commands.UEFIEnvironmentVariable",
            {
                "Name": match,
                "Bytes": data,
                "Attributes": "NON VOLATILE, BOOTSERVICE ACCESS, RUNTIME ACCESS, "
                "TIME BASED AUTHENTICATED WRITE ACCESS",
            },
            "Microsoft.SecureBoot.Commands.UEFIEnvironmentVariable",
        )
    ]
