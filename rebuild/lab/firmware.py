"""A twin's firmware (SIMULATION): UEFI or legacy BIOS, Secure Boot, the db's certificates.

Hardware: `TwinState.firmware` is kept across reimages. The lab faults `legacy_bios`,
`secure_boot_off` and `db_2011_only` change what Windows sees for as long as they are set (an
operator fixing the firmware is the fault being cleared). Read by the SecureBoot cmdlets,
rebuild/lab/exec/twin_firmware.py.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rebuild.lab.context import Lab

WINDOWS_PCA_2011 = "Microsoft Windows Production PCA 2011"
UEFI_CA_2011 = "Microsoft Corporation UEFI CA 2011"
WINDOWS_UEFI_CA_2023 = "Windows UEFI CA 2023"
MICROSOFT_UEFI_CA_2023 = "Microsoft UEFI CA 2023"
DB_2011_ONLY = [WINDOWS_PCA_2011, UEFI_CA_2011]
DB_WITH_2023 = [*DB_2011_ONLY, WINDOWS_UEFI_CA_2023, MICROSOFT_UEFI_CA_2023]

_EFI_CERT_X509 = uuid.UUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")  # UEFI spec, EFI_CERT_X509_GUID
_MICROSOFT_OWNER = uuid.UUID("77fa9abd-0359-4d32-bd60-28f4e78f784b")  # SignatureOwner of Microsoft's entries


def default_firmware() -> dict[str, Any]:
    """The bundled fleet's machines: UEFI, Secure Boot on, db already holding the 2023 CAs."""
    return {"mode": "uefi", "secure_boot": True, "db": list(DB_WITH_2023)}


def effective_firmware(lab: Lab, host: str, firmware: dict[str, Any]) -> dict[str, Any]:
    """The twin's firmware as the injected faults leave it."""
    seen = {**default_firmware(), **firmware}
    if lab.fault(host, "legacy_bios") is not None:
        seen["mode"] = "bios"
    if lab.fault(host, "secure_boot_off") is not None:
        seen["secure_boot"] = False
    if lab.fault(host, "db_2011_only") is not None:
        seen["db"] = list(DB_2011_ONLY)
    return seen


def db_bytes(certificates: list[str]) -> list[int]:
    """SIMULATED db contents: per certificate, a signature list header and the subject CN."""
    out = bytearray()
    for name in certificates:
        cert = b"\x30\x82" + b"\x06\x03\x55\x04\x03\x0c" + bytes([len(name)]) + name.encode("ascii")
        size = 16 + len(cert)
        out += _EFI_CERT_X509.bytes_le + (28 + size).to_bytes(4, "little") + (0).to_bytes(4, "little")
        out += size.to_bytes(4, "little") + _MICROSOFT_OWNER.bytes_le + cert
    return list(out)
