"""The lab's SIMULATED images and the host states they produce.

Two things live here:

- the lab's image repository: one small deterministic file per catalogue entry under
  `<lab_dir>/images/` standing in for a WIM (marked SIMULATED in its first line), and the
  lab's image catalogue `<lab_dir>/images.yml` in the product catalogue's format
  (`images: {<os key>: {image_id, build, caption, file, sha256}}`, `file` relative to the
  image share, which in the lab is `<lab_dir>`). The image's id, build and caption are read
  back from the applied file's header, as DISM reads a WIM's metadata, so applying the
  wrong or a tampered file shows in the stamp.
- the states a twin can be in: `compromised_state` (the encrypted, persisted-on disk every
  twin starts with) and `clean_state` (the OS's clean-install defaults plus what the
  answer file set plus the rebuild stamp of the image actually applied).

Registry keys are written `HKLM:\\PATH` (PowerShell drive form, case preserved); DWORDs are
ints, REG_SZ str, REG_MULTI_SZ lists. Values are the Windows defaults of that OS, never
"already hardened": only the reimage, harden and redeploy phases change them.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PureWindowsPath
from typing import Any

import yaml

from rebuild.lab.answerfile import AnswerFile
from rebuild.lab.context import TwinRecord
from rebuild.lab.state import (
    RANSOM_NOTE,
    LocalUser,
    Phase,
    ScheduledTask,
    Service,
    TwinState,
)

SIMULATED_BANNER = "SIMULATED WINDOWS IMAGE - rebuild lab stand-in for a WIM, contains no Windows"
PRODUCT_CATALOGUE = Path(__file__).resolve().parents[2] / "inventories" / "data" / "images.yml"
STAMP_KEY = "HKLM:\\SOFTWARE\\GHAL\\Rebuild"
PRE_INCIDENT_DOMAIN = "ghal.lan"

# What the attackers left behind (names also listed for verification's IOC list).
MALICIOUS_SERVICE = "WinDefSync"
MALICIOUS_BINARY = "C:\\ProgramData\\WinDefSync\\svcupd.exe"
MALICIOUS_TASK = "\\Microsoft\\Windows\\Maintenance\\SysHealthCheck"
UNKNOWN_ADMIN = "HelpDeskAdm"
RANSOM_NOTES = (RANSOM_NOTE, "C:\\Restore-My-Files.txt", "C:\\Users\\Public\\Documents\\Restore-My-Files.txt")
ENCRYPTED_FILES = (
    "C:\\Users\\Public\\Documents\\planning-gardes.xlsx.lockbit",
    "C:\\Users\\Public\\Documents\\procedures-urgences.docx.lockbit",
)
RANSOM_TEXT = (
    "SIMULATED ransom note (rebuild lab).\r\n"
    "All your important files are stolen and encrypted! Restore-My-Files.txt\r\n"
)


class ImageError(Exception):
    """An image file is missing, unreadable or not an image (install fails)."""


@dataclass(frozen=True)
class OsProfile:
    os_key: str
    caption: str
    build: str
    server: bool
    edition_id: str
    display_version: str
    product_name: str  # registry ProductName (Windows 11 still says "Windows 10")
    ubr: int
    smb1_default: bool  # SMB1 installed by a clean install of this OS
    has_wdag_account: bool


_PROFILES = {
    "windows-server-2016": OsProfile(
        "windows-server-2016",
        "Microsoft Windows Server 2016 Standard",
        "14393",
        True,
        "ServerStandard",
        "1607",
        "Windows Server 2016 Standard",
        7515,
        True,
        False,
    ),
    "windows-server-2019": OsProfile(
        "windows-server-2019",
        "Microsoft Windows Server 2019 Standard",
        "17763",
        True,
        "ServerStandard",
        "1809",
        "Windows Server 2019 Standard",
        6414,
        False,
        True,
    ),
    "windows-server-2022": OsProfile(
        "windows-server-2022",
        "Microsoft Windows Server 2022 Standard",
        "20348",
        True,
        "ServerStandard",
        "21H2",
        "Windows Server 2022 Standard",
        2849,
        False,
        True,
    ),
    "windows-10": OsProfile(
        "windows-10",
        "Microsoft Windows 10 Enterprise",
        "19045",
        False,
        "Enterprise",
        "22H2",
        "Windows 10 Enterprise",
        5131,
        False,
        True,
    ),
    "windows-11": OsProfile(
        "windows-11",
        "Microsoft Windows 11 Enterprise",
        "22631",
        False,
        "Enterprise",
        "23H2",
        "Windows 10 Enterprise",
        4460,
        False,
        True,
    ),
}


def os_profile(os_key: str, where: str = "") -> OsProfile:
    """The OS family of a catalogue key (e.g. windows-11-23h2 -> windows-11)."""
    for prefix, profile in _PROFILES.items():
        if os_key == prefix or os_key.startswith(prefix + "-"):
            return profile
    raise ValueError(
        f"{where or 'twin'}: unknown OS key {os_key!r} (known: {', '.join(sorted(_PROFILES))}-*)"
    )


# --- the image repository -------------------------------------------------------------


@dataclass(frozen=True)
class LabImage:
    os: str
    image_id: str
    build: str
    caption: str
    file: str  # relative to the image share (<lab_dir>), e.g. images/ws2022-std-2026.11.wim
    path: Path
    sha256: str
    ui_languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class AppliedImage:
    """What Setup applied: the header of the file it read and that file's SHA-256."""

    image_id: str
    os: str
    build: str
    caption: str
    sha256: str
    path: Path
    ui_languages: tuple[str, ...] = ()  # installed UI language packs (DISM /Get-ImageInfo Languages)


def image_content(
    os_key: str, image_id: str, build: str, caption: str, ui_languages: tuple[str, ...] = ("en-US",)
) -> bytes:
    """Deterministic bytes of a simulated image: a readable header and filler."""
    header = (
        f"{SIMULATED_BANNER}\nimage_id: {image_id}\nos: {os_key}\nbuild: {build}\ncaption: {caption}\n"
        f"ui_languages: {','.join(ui_languages)}\nindex: 1\n---\n"
    ).encode()
    seed = hashlib.sha256(header).digest()
    filler = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(256))  # 8 KiB
    return header + filler


def read_image(path: Path) -> AppliedImage:
    """Read an image file as DISM would read a WIM's metadata; raise ImageError if it is none."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"image {path}: cannot be read ({exc.strerror})") from None
    head, sep, _ = data.partition(b"\n---\n")
    lines = head.decode("utf-8", "replace").splitlines()
    if not sep or not lines or lines[0] != SIMULATED_BANNER:
        raise ImageError(f"image {path}: not an image file (no image header)")
    meta = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    missing = [k for k in ("image_id", "os", "build", "caption", "ui_languages") if k not in meta]
    if missing:
        raise ImageError(f"image {path}: header lacks {', '.join(missing)}")
    languages = tuple(lang.strip() for lang in meta["ui_languages"].split(",") if lang.strip())
    return AppliedImage(
        meta["image_id"],
        meta["os"],
        meta["build"],
        meta["caption"],
        hashlib.sha256(data).hexdigest(),
        path,
        languages,
    )


def images_dir(lab_dir: Path) -> Path:
    return lab_dir / "images"


def catalogue_path(lab_dir: Path) -> Path:
    return lab_dir / "images.yml"


def share_path(lab_dir: Path, relative: str) -> Path:
    """Resolve a catalogue `file` (relative to the image share) inside the lab; no escaping."""
    parts = PureWindowsPath(relative.replace("/", "\\")).parts
    if not parts or PureWindowsPath(relative).is_absolute() or any(p in ("..", "") for p in parts):
        raise ImageError(f"image path {relative!r} is not inside the image share")
    return lab_dir.joinpath(*parts)


def ensure_repository(lab_dir: Path, product_catalogue: Path = PRODUCT_CATALOGUE) -> dict[str, LabImage]:
    """Write the simulated images and the lab catalogue from the product catalogue's entries.

    Ids, builds, captions and file names are the product's; the SHA-256 values are those of
    the lab's files (the product's describe real WIMs the lab does not have). Existing image
    files are kept, so a test can tamper with one and it stays tampered.
    """
    try:
        raw = yaml.safe_load(product_catalogue.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ImageError(f"image catalogue {product_catalogue}: cannot be read ({exc})") from None
    entries = raw.get("images") if isinstance(raw, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ImageError(f"image catalogue {product_catalogue}: no 'images' mapping")
    images: dict[str, LabImage] = {}
    for os_key, entry in entries.items():
        for key in ("image_id", "build", "caption", "file", "ui_languages"):
            if not isinstance(entry, dict) or not entry.get(key):
                raise ImageError(f"image catalogue {product_catalogue}: {os_key}: missing {key}")
        languages = entry["ui_languages"]
        if not isinstance(languages, list) or not all(isinstance(x, str) and x for x in languages):
            raise ImageError(f"image catalogue {product_catalogue}: {os_key}: ui_languages is not a list")
        path = share_path(lab_dir, str(entry["file"]))
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(
                image_content(
                    os_key, entry["image_id"], str(entry["build"]), entry["caption"], tuple(languages)
                )
            )
            tmp.replace(path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        images[os_key] = LabImage(
            os_key,
            entry["image_id"],
            str(entry["build"]),
            entry["caption"],
            str(entry["file"]),
            path,
            sha,
            tuple(languages),
        )
    catalogue = {
        "images": {
            k: {
                "image_id": i.image_id,
                "build": i.build,
                "caption": i.caption,
                "file": i.file,
                "sha256": i.sha256,
                "ui_languages": list(i.ui_languages),
                # The lab makes its images itself: built the day their file was written (a lab
                # kept for months has images that old, and the stale-image rule says so).
                "built": dt.date.fromtimestamp(i.path.stat().st_mtime).isoformat(),
            }
            for k, i in images.items()
        }
    }
    text = "# SIMULATED image catalogue of the rebuild lab (written at lab up; hashes of the lab's files)\n"
    out = catalogue_path(lab_dir)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text + yaml.safe_dump(catalogue, sort_keys=True))
    tmp.replace(out)
    return images


# --- states ---------------------------------------------------------------------------


def _registry(p: OsProfile, hostname: str, domain: str) -> dict[str, dict[str, Any]]:
    """Registry values of a clean install of this OS (the values the harden baseline checks)."""
    return {
        "HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion": {
            "ProductName": p.product_name,
            "EditionID": p.edition_id,
            "InstallationType": "Server" if p.server else "Client",
            "CurrentBuild": p.build,
            "CurrentBuildNumber": p.build,
            "DisplayVersion": p.display_version,
            "ReleaseId": p.display_version
            if p.display_version[0].isdigit() and "H" not in p.display_version
            else "2009",
            "UBR": p.ubr,
            "CurrentMajorVersionNumber": 10,
            "CurrentMinorVersionNumber": 0,
            "CurrentVersion": "6.3",
        },
        "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\ComputerName\\ComputerName": {
            "ComputerName": hostname.upper()
        },
        "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters": {
            "Hostname": hostname,
            "Domain": domain,
        },
        # SMB: no SMB1 value (its presence/feature decides), signing not required (defaults).
        "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters": {
            "RequireSecuritySignature": 0,
            "EnableSecuritySignature": 0,
            "RestrictNullSessAccess": 1,
            "AutoDisconnect": 15,
        },
        "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters": {
            "RequireSecuritySignature": 0,
            "EnableSecuritySignature": 1,
            "EnablePlainTextPassword": 0,
        },
        # LSA: LmCompatibilityLevel and RunAsPPL absent = OS defaults (NTLMv2 response only is 3).
        "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa": {
            "LimitBlankPasswordUse": 1,
            "NoLmHash": 1,
            "RestrictAnonymous": 0,
            "RestrictAnonymousSAM": 1,
            "EveryoneIncludesAnonymous": 0,
            "DisableDomainCreds": 0,
            "ForceGuest": 0,
        },
        "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa\\MSV1_0": {
            "NTLMMinClientSec": 536870912,
            "NTLMMinServerSec": 536870912,
        },
        "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System": {
            "EnableLUA": 1,
            "ConsentPromptBehaviorAdmin": 5,
            "ConsentPromptBehaviorUser": 3,
            "PromptOnSecureDesktop": 1,
            "EnableInstallerDetection": 1,
            "EnableVirtualization": 1,
            "DontDisplayLastUserName": 0,
            "LegalNoticeCaption": "",
            "LegalNoticeText": "",
        },
        "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server": {"fDenyTSConnections": 1},
        "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp": {
            "UserAuthentication": 1,
            "SecurityLayer": 2,
            "MinEncryptionLevel": 2,
        },
        "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest": {},
        "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows Defender": {},
        "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run": {
            "SecurityHealth": "%windir%\\system32\\SecurityHealthSystray.exe"
        },
        "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Security": {
            "MaxSize": 20971520,
            "Retention": 0,
        },
        "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\System": {"MaxSize": 20971520, "Retention": 0},
        "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application": {
            "MaxSize": 20971520,
            "Retention": 0,
        },
    }


def _services(p: OsProfile) -> dict[str, Service]:
    def s(
        name: str, display: str, mode: str = "Automatic", state: str = "Running", path: str = ""
    ) -> Service:
        return Service(name, display, mode, state, path or "C:\\Windows\\system32\\svchost.exe -k netsvcs")

    services = [
        s(
            "WinDefend",
            "Microsoft Defender Antivirus Service",
            path='"C:\\ProgramData\\Microsoft\\Windows Defender\\platform\\4.18.24090.11-0\\MsMpEng.exe"',
        ),
        s("WdNisSvc", "Microsoft Defender Antivirus Network Inspection Service", "Manual", "Running"),
        s(
            "mpssvc",
            "Windows Defender Firewall",
            path="C:\\Windows\\system32\\svchost.exe -k LocalServiceNoNetworkFirewall -p",
        ),
        s("EventLog", "Windows Event Log"),
        s("LanmanServer", "Server"),
        s("LanmanWorkstation", "Workstation"),
        s("Dnscache", "DNS Client"),
        s(
            "W32Time",
            "Temps Windows",
            "Manual" if not p.server else "Automatic",
            "Stopped" if not p.server else "Running",
        ),
        s("wuauserv", "Windows Update", "Manual", "Stopped"),
        s("Spooler", "Print Spooler", path="C:\\Windows\\System32\\spoolsv.exe"),
        s("RemoteRegistry", "Remote Registry", "Automatic" if p.server else "Disabled", "Stopped"),
        s("TermService", "Remote Desktop Services", "Manual", "Stopped"),
        # The images' UI language is French: Windows shows localised display names, so every
        # Get-Service read carries accented text (a 437 shell turns it into invalid UTF-8).
        s("SSDPSRV", "Découverte SSDP", "Manual" if not p.server else "Disabled", "Stopped"),
        s(
            "WinRM",
            "Windows Remote Management (WS-Management)",
            "Automatic" if p.server else "Manual",
            "Running" if p.server else "Stopped",
        ),
        s("Sense", "Windows Defender Advanced Threat Protection Service", "Manual", "Stopped"),
    ]
    # Per-user services: a template per service plus one instance `<template>_<LUID>` per logged-on
    # user (Microsoft Learn, "Per-user services in Windows"); the LUID suffix is per logon session.
    unistack = "C:\\Windows\\system32\\svchost.exe -k UnistackSvcGroup"
    for template, display in PER_USER_SERVICES.items():
        services.append(s(template, display, "Manual", "Stopped", unistack))
        services.append(s(f"{template}_4f2a1", f"{display}_4f2a1", "Automatic", "Running", unistack))
    return {svc.name: svc for svc in services}


PER_USER_SERVICES = {
    "cbdhsvc": "Clipboard User Service",
    "CredentialEnrollmentManagerUserSvc": "CredentialEnrollmentManagerUserSvc",
    "BluetoothUserService": "Bluetooth User Support Service",
    "PrintWorkflowUserSvc": "PrintWorkflow",
    "UdkUserSvc": "Udk User Service",
}


def _users(p: OsProfile) -> dict[str, LocalUser]:
    # Nobody knows these passwords: a random one makes any guess fail, as on a real host.
    users = [
        LocalUser(
            "Administrator",
            enabled=p.server,
            groups=["Administrators"],
            password=secrets.token_urlsafe(24),
            description="Built-in account for administering the computer/domain",
            sid_suffix=500,
        ),
        LocalUser(
            "Guest",
            enabled=False,
            groups=["Guests"],
            password="",
            description="Built-in account for guest access to the computer/domain",
            sid_suffix=501,
        ),
        LocalUser(
            "DefaultAccount",
            enabled=False,
            groups=["System Managed Accounts Group"],
            password="",
            description="A user account managed by the system.",
            sid_suffix=503,
        ),
    ]
    if p.has_wdag_account:
        users.append(
            LocalUser(
                "WDAGUtilityAccount",
                enabled=False,
                groups=[],
                password=secrets.token_urlsafe(24),
                description="A user account managed and used by the system for Windows Defender "
                "Application Guard scenarios.",
                sid_suffix=504,
            )
        )
    return {u.name: u for u in users}


def _groups(users: dict[str, LocalUser]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {
        "Administrators": [],
        "Users": ["NT AUTHORITY\\INTERACTIVE", "NT AUTHORITY\\Authenticated Users"],
        "Guests": [],
        "Remote Desktop Users": [],
        "Remote Management Users": [],
        "Backup Operators": [],
        "System Managed Accounts Group": [],
    }
    for user in users.values():
        for g in user.groups:
            groups.setdefault(g, []).append(user.name)
    return groups


def _tasks() -> dict[str, ScheduledTask]:
    tasks = [
        ScheduledTask(
            "\\Microsoft\\Windows\\Windows Defender\\Windows Defender Scheduled Scan",
            '"C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24090.11-0\\MpCmdRun.exe" '
            "Scan -ScheduleJob -ScanTrigger 55",
            True,
            "Microsoft Corporation",
        ),
        ScheduledTask(
            "\\Microsoft\\Windows\\UpdateOrchestrator\\Schedule Scan",
            "%systemroot%\\system32\\usoclient.exe StartScan",
            True,
            "Microsoft Corporation",
        ),
        ScheduledTask(
            "\\Microsoft\\Windows\\Time Synchronization\\SynchronizeTime",
            "%windir%\\system32\\sc.exe start w32time task_started",
            True,
            "Microsoft Corporation",
        ),
    ]
    return {t.name: t for t in tasks}


def _firewall() -> dict[str, dict[str, Any]]:
    return {
        name: {
            "Enabled": True,
            "DefaultInboundAction": "NotConfigured",  # Get-NetFirewallProfile: Block in effect
            "DefaultOutboundAction": "NotConfigured",
            "LogAllowed": False,
            "LogBlocked": False,
            "LogFileName": "%systemroot%\\system32\\LogFiles\\Firewall\\pfirewall.log",
            "LogMaxSizeKilobytes": 4096,
        }
        for name in ("Domain", "Private", "Public")
    }


def _defender(enabled: bool, signature_date: str, signature_version: str) -> dict[str, Any]:
    """Get-MpComputerStatus fields verification reads."""
    return {
        "AMServiceEnabled": enabled,
        "AntispywareEnabled": enabled,
        "AntivirusEnabled": enabled,
        "RealTimeProtectionEnabled": enabled,
        "BehaviorMonitorEnabled": enabled,
        "IoavProtectionEnabled": enabled,
        "OnAccessProtectionEnabled": enabled,
        "NISEnabled": enabled,
        "IsTamperProtected": enabled,
        "AMRunningMode": "Normal" if enabled else "Not running",
        "AntivirusSignatureLastUpdated": signature_date,
        "AntivirusSignatureVersion": signature_version,
        "AMProductVersion": "4.18.24090.11",
        "QuickScanAge": 4294967295,  # never scanned since install: Windows reports UInt32.MaxValue
        "FullScanAge": 4294967295,
    }


def _audit_policy(p: OsProfile) -> dict[str, str]:
    # auditpol /get /category:* on a clean install.
    return {
        "Credential Validation": "Success" if p.server else "No Auditing",
        "Security Group Management": "Success",
        "User Account Management": "Success",
        "Process Creation": "No Auditing",
        "Account Lockout": "Success",
        "Logoff": "Success",
        "Logon": "Success and Failure",
        "Special Logon": "Success",
        "Other Logon/Logoff Events": "No Auditing",
        "Audit Policy Change": "Success",
        "Authentication Policy Change": "Success",
        "Sensitive Privilege Use": "No Auditing",
        "Security State Change": "Success",
        "Security System Extension": "No Auditing",
        "System Integrity": "Success and Failure",
        "Removable Storage": "No Auditing",
        "File Share": "No Auditing",
    }


def _user_rights(p: OsProfile) -> dict[str, list[str]]:
    return {
        "SeNetworkLogonRight": ["Everyone", "Administrators", "Users", "Backup Operators"],
        "SeInteractiveLogonRight": ["Administrators", "Users", "Backup Operators"]
        + ([] if p.server else ["Guest"]),
        "SeRemoteInteractiveLogonRight": ["Administrators", "Remote Desktop Users"],
        "SeDenyNetworkLogonRight": [],
        "SeDenyRemoteInteractiveLogonRight": [],
        "SeDenyInteractiveLogonRight": [],
        "SeDebugPrivilege": ["Administrators"],
        "SeBackupPrivilege": ["Administrators", "Backup Operators"],
        "SeShutdownPrivilege": ["Administrators", "Backup Operators"] + ([] if p.server else ["Users"]),
        "SeTakeOwnershipPrivilege": ["Administrators"],
    }


def _security_policy(p: OsProfile) -> dict[str, Any]:
    # secedit /export of a clean workgroup install.
    return {
        "System Access": {
            "MinimumPasswordAge": 0,
            "MaximumPasswordAge": 42,
            "MinimumPasswordLength": 0,
            "PasswordComplexity": 0,
            "PasswordHistorySize": 0,
            "LockoutBadCount": 0,
            "RequireLogonToChangePassword": 0,
            "ForceLogoffWhenHourExpire": 0,
            "NewAdministratorName": "Administrator",
            "NewGuestName": "Guest",
            "ClearTextPassword": 0,
            "LSAAnonymousNameLookup": 0,
            "EnableAdminAccount": 1 if p.server else 0,
            "EnableGuestAccount": 0,
        },
    }


def _base_state(p: OsProfile, hostname: str, kind: str, domain: str, caption: str, build: str) -> TwinState:
    users = _users(p)
    return TwinState(
        hostname=hostname,
        kind=kind,
        os_caption=caption,
        os_build=build,
        image_id="",
        image_sha256="",
        domain=domain,
        registry=_registry(p, hostname, domain if domain != "WORKGROUP" else ""),
        services=_services(p),
        features={
            "SMB1Protocol": p.smb1_default,
            "MicrosoftWindowsPowerShellV2": True,
            "TelnetClient": False,
            "TFTP": False,
        },
        firewall=_firewall(),
        users=users,
        groups=_groups(users),
        applications={},
        files={
            "C:\\Windows\\System32\\drivers\\etc\\hosts": "# Copyright (c) 1993-2009 Microsoft Corp.\r\n",
            # The Default User profile's hive, copied into every new profile (reg load/unload reach it).
            "C:\\Users\\Default\\NTUSER.DAT": "SIMULATED registry hive file",
        },
        tasks=_tasks(),
        defender=_defender(True, "", ""),
        audit_policy=_audit_policy(p),
        user_rights=_user_rights(p),
        security_policy=_security_policy(p),
    )


@cache
def _compromised_template(os_key: str, kind: str) -> TwinState:
    p = os_profile(os_key)
    state = _base_state(p, "TEMPLATE", kind, PRE_INCIDENT_DOMAIN, p.caption, p.build)
    state.domain_joined = True
    state.groups["Administrators"].append("GHAL\\Domain Admins")
    # What the attackers did: Defender off (policy + service), SMB1 back on, RDP open,
    # WDigest clear-text credentials, persistence (service, task, Run key), their own admin,
    # a remote tool, notes and encrypted files.
    state.defender = _defender(False, "2026-10-14T03:12:00", "1.419.212.0")
    state.services["WinDefend"].state = "Stopped"
    state.services["WinDefend"].start_mode = "Disabled"
    state.services["WdNisSvc"].state = "Stopped"
    state.registry["HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows Defender"] = {"DisableAntiSpyware": 1}
    state.registry["HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\Real-Time Protection"] = {
        "DisableRealtimeMonitoring": 1,
        "DisableBehaviorMonitoring": 1,
    }
    state.features["SMB1Protocol"] = True
    state.registry["HKLM:\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters"]["SMB1"] = 1
    state.registry["HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server"]["fDenyTSConnections"] = 0
    state.services["TermService"].start_mode = "Automatic"
    state.services["TermService"].state = "Running"
    state.registry["HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest"] = {
        "UseLogonCredential": 1
    }
    state.firewall["Domain"]["Enabled"] = False
    state.registry["HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run"][MALICIOUS_SERVICE] = (
        MALICIOUS_BINARY
    )
    state.services[MALICIOUS_SERVICE] = Service(
        MALICIOUS_SERVICE, "Windows Defender Sync", "Automatic", "Running", MALICIOUS_BINARY
    )
    state.tasks[MALICIOUS_TASK] = ScheduledTask(MALICIOUS_TASK, f"{MALICIOUS_BINARY} -k -path C:\\", True, "")
    state.users[UNKNOWN_ADMIN] = LocalUser(
        UNKNOWN_ADMIN, True, ["Administrators"], secrets.token_urlsafe(24), "", 1003
    )
    state.groups["Administrators"].append(UNKNOWN_ADMIN)
    state.applications["AnyDesk"] = "7.0.14"
    state.files[MALICIOUS_BINARY] = "SIMULATED malware stand-in (rebuild lab); not executable"
    for note in RANSOM_NOTES:
        state.files[note] = RANSOM_TEXT
    for enc in ENCRYPTED_FILES:
        state.files[enc] = "SIMULATED encrypted file (rebuild lab)"
    # Pre-incident management: WinRM on, with an HTTPS listener, for the old rb-admin.
    state.services["WinRM"].start_mode = "Automatic"
    state.services["WinRM"].state = "Running"
    state.registry.update(_winrm_listener_keys())
    state.registry["HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System"][
        "LocalAccountTokenFilterPolicy"
    ] = 1
    return state


def _winrm_listener_keys() -> dict[str, dict[str, Any]]:
    return {
        "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WSMAN\\Listener\\*+HTTPS": {
            "Port": 5986,
            "hostname": "",
            "certThumbprint": "",
            "uriprefix": "wsman",
        },
    }


def machine_disks(record: TwinRecord) -> list[dict[str, Any]]:
    """The disks WinPE sees, in its numbering. A physical server's SAN LUN (data) enumerates
    before its local RAID volume (system), as it can on real hardware: "disk 0" is not the system."""
    if record.kind == "server" and record.platform == "physical":
        return [
            {
                "number": 0,
                "bus": "Fibre Channel",
                "size_gb": 2048,
                "serial": f"SAN-{record.name}",
                "holds": "data",
            },
            {"number": 1, "bus": "RAID", "size_gb": 480, "serial": f"RAID-{record.name}", "holds": "system"},
        ]
    if record.platform == "virtual":
        return [{"number": 0, "bus": "SCSI", "size_gb": 127, "serial": "", "holds": "system"}]
    return [{"number": 0, "bus": "NVMe", "size_gb": 512, "serial": f"NVME-{record.name}", "holds": "system"}]


def compromised_state(record: TwinRecord, rb_admin_password: str) -> TwinState:
    """The state every twin starts in: its old disk, as the attackers left it.

    `rb_admin_password` is the pre-incident management account's password (seeded by the
    lab so tests can show the old credential stops working after the rebuild).
    """
    if not rb_admin_password:
        raise ValueError(f"twin {record.name}: the pre-incident rb-admin password must not be empty")
    os_profile(record.os, f"twin {record.name}")
    state = copy.deepcopy(_compromised_template(record.os, record.kind))
    state.hostname = record.name
    state.registry["HKLM:\\SYSTEM\\CurrentControlSet\\Control\\ComputerName\\ComputerName"][
        "ComputerName"
    ] = record.name.upper()
    state.registry["HKLM:\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters"]["Hostname"] = record.name
    state.users["rb-admin"] = LocalUser(
        "rb-admin", True, ["Administrators"], rb_admin_password, "rebuild management account", 1001
    )
    state.groups["Administrators"].append("rb-admin")
    # Fresh random passwords per twin for accounts nobody knows.
    for name in ("Administrator", "WDAGUtilityAccount", UNKNOWN_ADMIN):
        if name in state.users:
            state.users[name].password = secrets.token_urlsafe(24)
    state.disks = machine_disks(record)
    state.phase = Phase.COMPROMISED
    return state


def _signature_date(image_id: str) -> str:
    found = re.search(r"(20\d\d)\.(\d\d)$", image_id)
    return f"{found.group(1)}-{found.group(2)}-01T00:00:00" if found else ""


def clean_state(record: TwinRecord, answer: AnswerFile, image: AppliedImage) -> TwinState:
    """The first boot of a freshly applied image, configured by the answer file.

    Clean-install defaults of the applied image's OS, then what Setup took from the
    answer file (computer name, accounts, locale, time zone, workgroup/domain). The
    first-logon commands (the rebuild stamp, the WinRM HTTPS listener) run through the PowerShell
    evaluator once the twin holds this state (`rebuild.lab.first_logon.run_first_logon`).
    """
    p = os_profile(image.os, f"image {image.path}")
    domain = answer.join_domain or "WORKGROUP"
    state = _base_state(p, answer.computer_name, record.kind, domain, image.caption, image.build)
    state.domain_joined = bool(answer.join_domain)
    state.defender = _defender(True, _signature_date(image.image_id), "1.421.0.0")
    state.time_zone = answer.time_zone
    state.locale = answer.user_locale
    if answer.administrator_password is not None:
        state.users["Administrator"].password = answer.administrator_password
    rid = 1000
    for account in answer.accounts:
        state.users[account.name] = LocalUser(
            account.name, True, list(account.groups), account.password, account.description, rid
        )
        rid += 1
        for g in account.groups:
            state.groups.setdefault(g, []).append(account.name)
    if answer.auto_logon_user:
        # AutoLogon's session, open while the commands run (Microsoft Learn, "AutoLogon",
        # "FirstLogonCommands": nothing ends it afterwards unless a command logs off).
        state.console_session = answer.auto_logon_user
    state.phase = Phase.CLEAN
    return state


def initial_state(record: TwinRecord, rb_admin_password: str) -> TwinState:
    """A twin as the lab starts it: the morning after the attack.

    Containment shut the PCs down (servers still run their compromised disk). A PC is then
    reachable only by Wake-on-LAN, as a real network card wakes only a machine that is off;
    the disk it would boot is still the compromised one.
    """
    state = compromised_state(record, rb_admin_password)
    if record.kind == "workstation":
        state.phase = Phase.OFF
        state.history.append(
            {"at": time.time(), "event": "power_off", "via": "containment", "disk": str(Phase.COMPROMISED)}
        )
    return state
