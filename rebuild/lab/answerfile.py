"""Read a rendered unattend.xml the way Windows Setup would, for a SIMULATED install.

Windows Setup is unforgiving: an answer file that does not parse, lacks what an
unattended install needs (EULA, disk layout, image source, target partition, computer
name, the admin account) or carries a value Setup rejects stops the install. The lab
does the same: `parse_answer_file` raises `AnswerFileError` naming the pass, component
and setting, and the twin's imaging fails instead of inventing a default.

Supported subset (what rebuild's reimage role renders):
- windowsPE / Microsoft-Windows-International-Core-WinPE: SetupUILanguage/UILanguage,
  InputLocale, SystemLocale, UILanguage, UserLocale
- windowsPE / Microsoft-Windows-Setup: UserData/AcceptEula, DiskConfiguration/Disk
  (DiskID, WillWipeDisk, CreatePartitions), ImageInstall/OSImage (InstallFrom/Path +
  MetaData /IMAGE/INDEX|NAME, InstallTo DiskID/PartitionID)
- specialize / Microsoft-Windows-Shell-Setup: ComputerName, TimeZone
- specialize / Microsoft-Windows-UnattendedJoin: Identification JoinDomain|JoinWorkgroup
- specialize|oobeSystem / Microsoft-Windows-International-Core: locales
- oobeSystem / Microsoft-Windows-Shell-Setup: TimeZone, UserAccounts (AdministratorPassword,
  LocalAccounts), FirstLogonCommands (SynchronousCommand/CommandLine)
Anything else in the file is accepted and ignored, as Setup ignores components it does
not need for a pass.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from rebuild.errors import RebuildError

NS = "urn:schemas-microsoft-com:unattend"
WCM = "http://schemas.microsoft.com/WMIConfig/2002/State"

# Windows time zone ids (tzutil /l). Setup rejects an id it does not know. Each with the IANA zone
# of the same rules (CLDR windowsZones.xml, territory 001): the clock a twin's Get-Date shows
# (rebuild/lab/exec/twin_host.py).
WINDOWS_TIME_ZONES = {
    "Romance Standard Time": "Europe/Paris",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "UTC": "UTC",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Russian Standard Time": "Europe/Moscow",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "Tokyo Standard Time": "Asia/Tokyo",
    "China Standard Time": "Asia/Shanghai",
    "India Standard Time": "Asia/Calcutta",
    "AUS Eastern Standard Time": "Australia/Sydney",
}

_LOCALE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")
_INPUT_LOCALE = re.compile(r"^([a-z]{2,3}-[A-Z]{2}|[0-9a-fA-F]{4}:[0-9a-fA-F]{8})(;.*)?$")
# NetBIOS computer name: 1-15 chars, no spaces or these characters, not only digits.
_BAD_NAME_CHARS = set("\\/:*?\"<>|,~!@#$%^&'(){}_ .")


class AnswerFileError(RebuildError):
    """Windows Setup would stop on this answer file."""


@dataclass(frozen=True)
class Partition:
    order: int
    type: str  # EFI | MSR | Primary
    size_mb: int | None
    extend: bool


@dataclass(frozen=True)
class LocalAccount:
    name: str
    groups: tuple[str, ...]
    password: str = field(repr=False)
    display_name: str = ""
    description: str = ""


@dataclass(frozen=True)
class AnswerFile:
    """What Setup takes from the answer file. The password fields never print."""

    source: str  # where it came from (path), for error messages
    computer_name: str
    time_zone: str
    setup_ui_language: str  # windowsPE SetupUILanguage/UILanguage: the language Setup itself runs in
    ui_language: str
    input_locale: str
    system_locale: str
    user_locale: str
    disk_id: int
    wipe_disk: bool
    partitions: tuple[Partition, ...]
    install_from: str  # InstallFrom/Path as written
    # InstallFrom/Credentials (domain, user, password) Setup opens the share with; None: as guest
    install_credentials: tuple[str, str, str] | None = field(repr=False)
    image_index: int | None
    image_name: str | None
    install_to_partition: int
    accounts: tuple[LocalAccount, ...]
    administrator_password: str | None = field(repr=False)
    join_domain: str = ""
    join_workgroup: str = ""
    first_logon_commands: tuple[str, ...] = ()
    auto_logon_user: str = ""  # who logs on first (runs FirstLogonCommands); "" = nobody


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


class _Reader:
    def __init__(self, root: ET.Element, source: str) -> None:
        self.root = root
        self.source = source

    def fail(self, where: str, what: str) -> AnswerFileError:
        return AnswerFileError(f"answer file {self.source}: {where}: {what} (Windows Setup would stop here)")

    def component(self, pass_name: str, name: str) -> ET.Element | None:
        for settings in self.root.findall(_q("settings")):
            if settings.get("pass") != pass_name:
                continue
            for comp in settings.findall(_q("component")):
                if comp.get("name") == name:
                    arch = comp.get("processorArchitecture")
                    if arch not in ("amd64", None):
                        raise self.fail(
                            f"{pass_name}/{name}", f"processorArchitecture {arch!r} on an amd64 machine"
                        )
                    return comp
        return None

    def text(self, elem: ET.Element | None, path: str) -> str | None:
        if elem is None:
            return None
        found = elem.find("/".join(_q(p) for p in path.split("/")))
        if found is None or found.text is None:
            return None
        return found.text.strip()


def _bool(reader: _Reader, where: str, value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    raise reader.fail(where, f"{value!r} is not true or false")


def _int(reader: _Reader, where: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise reader.fail(where, f"{value!r} is not a number") from None


def decode_password(value: str, plain_text: bool, suffix: str) -> str:
    """Setup's 'hidden' passwords: base64 of UTF-16LE(password + suffix)."""
    if plain_text:
        return value
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not a valid encoded password") from exc
    if not decoded.endswith(suffix):
        raise ValueError("encoded password lacks its suffix")
    return decoded[: -len(suffix)]


def _password(reader: _Reader, elem: ET.Element | None, where: str, suffix: str) -> str | None:
    if elem is None:
        return None
    value = reader.text(elem, "Value")
    if value is None:
        raise reader.fail(where, "Password without Value")
    plain = _bool(reader, where + "/PlainText", reader.text(elem, "PlainText"))
    try:
        return decode_password(value, plain if plain is not None else True, suffix)
    except ValueError as exc:
        raise reader.fail(where, str(exc)) from None


def _check_computer_name(reader: _Reader, name: str | None) -> str:
    where = "specialize/Microsoft-Windows-Shell-Setup/ComputerName"
    if not name:
        raise reader.fail(where, "missing (Setup would make up a random name)")
    if name == "*":
        raise reader.fail(where, "'*' asks Setup for a random name; a rebuilt host needs its own")
    if len(name) > 15 or name.isdigit() or set(name) & _BAD_NAME_CHARS:
        raise reader.fail(
            where, f"{name!r} is not a valid computer name (1-15 characters, no spaces/symbols)"
        )
    return name


def parse_answer_file(text: str | bytes, source: str = "<answer file>") -> AnswerFile:
    """Parse and check an answer file; raise AnswerFileError where Setup would stop."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise AnswerFileError(
            f"answer file {source}: not well-formed XML ({exc}) (Windows Setup would stop here)"
        ) from None
    r = _Reader(root, source)
    if root.tag != _q("unattend"):
        raise r.fail("root", f"root element is {root.tag!r}, not unattend in namespace {NS}")

    # windowsPE: language of Setup itself, then the disk and the image.
    winpe_intl = r.component("windowsPE", "Microsoft-Windows-International-Core-WinPE")
    if winpe_intl is None:
        raise r.fail(
            "windowsPE/Microsoft-Windows-International-Core-WinPE", "missing: Setup would ask for a language"
        )
    setup = r.component("windowsPE", "Microsoft-Windows-Setup")
    if setup is None:
        raise r.fail(
            "windowsPE/Microsoft-Windows-Setup", "missing: nothing tells Setup what to install where"
        )
    eula = _bool(
        r, "windowsPE/Microsoft-Windows-Setup/UserData/AcceptEula", r.text(setup, "UserData/AcceptEula")
    )
    if eula is not True:
        raise r.fail(
            "windowsPE/Microsoft-Windows-Setup/UserData/AcceptEula",
            "not true: Setup would wait on the licence page",
        )

    disk = setup.find(f"{_q('DiskConfiguration')}/{_q('Disk')}")
    where = "windowsPE/Microsoft-Windows-Setup/DiskConfiguration/Disk"
    if disk is None:
        raise r.fail(where, "missing: the old disk would not be wiped and repartitioned")
    disk_id = _int(r, where + "/DiskID", r.text(disk, "DiskID"))
    if disk_id is None:
        raise r.fail(where + "/DiskID", "missing")
    wipe = _bool(r, where + "/WillWipeDisk", r.text(disk, "WillWipeDisk"))
    if wipe is not True:
        raise r.fail(where + "/WillWipeDisk", "not true: the compromised disk would be kept")
    partitions = []
    for p in disk.findall(f"{_q('CreatePartitions')}/{_q('CreatePartition')}"):
        order = _int(r, where + "/CreatePartition/Order", r.text(p, "Order"))
        ptype = r.text(p, "Type")
        size = _int(r, where + "/CreatePartition/Size", r.text(p, "Size"))
        extend = _bool(r, where + "/CreatePartition/Extend", r.text(p, "Extend")) or False
        if order is None or ptype not in ("EFI", "MSR", "Primary", "Logical", "Extended"):
            raise r.fail(
                where + "/CreatePartition", f"needs Order and a Type (got Order={order}, Type={ptype!r})"
            )
        if size is None and not extend:
            raise r.fail(where + f"/CreatePartition[{order}]", "needs Size or Extend true")
        partitions.append(Partition(order, ptype, size, extend))
    if not partitions:
        raise r.fail(where + "/CreatePartitions", "missing: a wiped disk has no partition to install to")
    if not any(p.type == "EFI" for p in partitions):
        raise r.fail(
            where + "/CreatePartitions", "no EFI partition: this UEFI machine cannot boot the install"
        )

    osimage = setup.find(f"{_q('ImageInstall')}/{_q('OSImage')}")
    where = "windowsPE/Microsoft-Windows-Setup/ImageInstall/OSImage"
    if osimage is None:
        raise r.fail(where, "missing: Setup does not know which image to apply")
    install_from = r.text(osimage, "InstallFrom/Path")
    if not install_from:
        raise r.fail(where + "/InstallFrom/Path", "missing: which image to apply is not said")
    credentials: tuple[str, str, str] | None = None
    creds = osimage.find(f"{_q('InstallFrom')}/{_q('Credentials')}")
    if creds is not None:
        credentials = (
            r.text(creds, "Domain") or "",
            r.text(creds, "Username") or "",
            r.text(creds, "Password") or "",
        )
    image_index: int | None = None
    image_name: str | None = None
    for md in osimage.findall(f"{_q('InstallFrom')}/{_q('MetaData')}"):
        key = (r.text(md, "Key") or "").upper()
        value = r.text(md, "Value")
        if key == "/IMAGE/INDEX":
            image_index = _int(r, where + "/InstallFrom/MetaData", value)
        elif key == "/IMAGE/NAME":
            image_name = value
        else:
            raise r.fail(where + "/InstallFrom/MetaData", f"unknown key {key!r}")
    target_disk = _int(r, where + "/InstallTo/DiskID", r.text(osimage, "InstallTo/DiskID"))
    target_part = _int(r, where + "/InstallTo/PartitionID", r.text(osimage, "InstallTo/PartitionID"))
    if target_disk is None or target_part is None:
        raise r.fail(where + "/InstallTo", "DiskID and PartitionID are required")
    if target_disk != disk_id:
        raise r.fail(where + "/InstallTo/DiskID", f"disk {target_disk} is not the configured disk {disk_id}")
    if (
        not 1 <= target_part <= len(partitions)
        or partitions_sorted(partitions)[target_part - 1].type != "Primary"
    ):
        raise r.fail(
            where + "/InstallTo/PartitionID", f"partition {target_part} is not a Primary partition created"
        )

    # specialize: identity of the new machine.
    shell_spec = r.component("specialize", "Microsoft-Windows-Shell-Setup")
    computer_name = _check_computer_name(r, r.text(shell_spec, "ComputerName"))
    shell_oobe = r.component("oobeSystem", "Microsoft-Windows-Shell-Setup")
    time_zone = r.text(shell_spec, "TimeZone") or r.text(shell_oobe, "TimeZone")
    if not time_zone:
        raise r.fail("specialize|oobeSystem/Microsoft-Windows-Shell-Setup/TimeZone", "missing")
    if time_zone not in WINDOWS_TIME_ZONES:
        raise r.fail("Microsoft-Windows-Shell-Setup/TimeZone", f"{time_zone!r} is not a Windows time zone id")

    # Locales: the full International-Core (specialize/oobeSystem) wins over the WinPE one.
    intl = r.component("oobeSystem", "Microsoft-Windows-International-Core") or r.component(
        "specialize", "Microsoft-Windows-International-Core"
    )
    locales: dict[str, str] = {}
    for key in ("InputLocale", "SystemLocale", "UILanguage", "UserLocale"):
        value = r.text(intl, key) or r.text(winpe_intl, key)
        if not value:
            raise r.fail(f"Microsoft-Windows-International-Core/{key}", "missing")
        pattern = _INPUT_LOCALE if key == "InputLocale" else _LOCALE
        if not pattern.match(value):
            raise r.fail(f"Microsoft-Windows-International-Core/{key}", f"{value!r} is not a locale")
        locales[key] = value

    # Setup's own language (required for an unattended install; docs: SetupUILanguage).
    where = "windowsPE/Microsoft-Windows-International-Core-WinPE/SetupUILanguage/UILanguage"
    setup_ui_language = r.text(winpe_intl, "SetupUILanguage/UILanguage")
    if not setup_ui_language:
        raise r.fail(where, "missing: Setup would ask for its language")
    if not _LOCALE.match(setup_ui_language):
        raise r.fail(where, f"{setup_ui_language!r} is not a language tag")

    join = r.component("specialize", "Microsoft-Windows-UnattendedJoin")
    join_domain = r.text(join, "Identification/JoinDomain") or ""
    join_workgroup = r.text(join, "Identification/JoinWorkgroup") or ""
    if join_domain and not r.text(join, "Identification/Credentials/Username"):
        raise r.fail("specialize/Microsoft-Windows-UnattendedJoin", "JoinDomain without Credentials")

    # oobeSystem: accounts and first logon commands.
    where = "oobeSystem/Microsoft-Windows-Shell-Setup/UserAccounts"
    accounts: list[LocalAccount] = []
    admin_password: str | None = None
    users = shell_oobe.find(_q("UserAccounts")) if shell_oobe is not None else None
    if users is not None:
        admin_password = _password(
            r,
            users.find(_q("AdministratorPassword")),
            where + "/AdministratorPassword",
            "AdministratorPassword",
        )
        for acc in users.findall(f"{_q('LocalAccounts')}/{_q('LocalAccount')}"):
            name = r.text(acc, "Name")
            if not name:
                raise r.fail(where + "/LocalAccount", "Name missing")
            password = _password(
                r, acc.find(_q("Password")), f"{where}/LocalAccount[{name}]/Password", "Password"
            )
            if password is None:
                raise r.fail(f"{where}/LocalAccount[{name}]", "Password missing")
            groups = tuple(g.strip() for g in (r.text(acc, "Group") or "").split(";") if g.strip())
            accounts.append(
                LocalAccount(
                    name, groups, password, r.text(acc, "DisplayName") or "", r.text(acc, "Description") or ""
                )
            )
    if not accounts:
        raise r.fail(where + "/LocalAccounts", "no local account: OOBE would ask for one")

    commands: list[tuple[int, str]] = []
    if shell_oobe is not None:
        for cmd in shell_oobe.findall(f"{_q('FirstLogonCommands')}/{_q('SynchronousCommand')}"):
            order = _int(r, "oobeSystem/FirstLogonCommands/SynchronousCommand/Order", r.text(cmd, "Order"))
            line = r.text(cmd, "CommandLine")
            if order is None or not line:
                raise r.fail(
                    "oobeSystem/FirstLogonCommands/SynchronousCommand", "needs Order and CommandLine"
                )
            commands.append((order, line))
    # FirstLogonCommands run at the first logon: on an unattended machine only AutoLogon
    # makes that happen. Without it Setup still finishes, but the commands never run.
    auto_logon_user = ""
    if shell_oobe is not None and _bool(
        r, "oobeSystem/AutoLogon/Enabled", r.text(shell_oobe, "AutoLogon/Enabled")
    ):
        auto_logon_user = r.text(shell_oobe, "AutoLogon/Username") or ""
        if not auto_logon_user:
            raise r.fail("oobeSystem/Microsoft-Windows-Shell-Setup/AutoLogon", "Enabled without Username")
    orders = [o for o, _ in commands]
    if len(set(orders)) != len(orders):
        raise r.fail("oobeSystem/FirstLogonCommands", "duplicate Order")

    return AnswerFile(
        source=source,
        computer_name=computer_name,
        time_zone=time_zone,
        setup_ui_language=setup_ui_language,
        ui_language=locales["UILanguage"],
        input_locale=locales["InputLocale"],
        system_locale=locales["SystemLocale"],
        user_locale=locales["UserLocale"],
        disk_id=disk_id,
        wipe_disk=True,
        partitions=tuple(partitions_sorted(partitions)),
        install_from=install_from,
        install_credentials=credentials,
        image_index=image_index,
        image_name=image_name,
        install_to_partition=target_part,
        accounts=tuple(accounts),
        administrator_password=admin_password,
        join_domain=join_domain,
        join_workgroup=join_workgroup,
        first_logon_commands=tuple(line for _, line in sorted(commands)),
        auto_logon_user=auto_logon_user,
    )


def partitions_sorted(partitions: list[Partition] | tuple[Partition, ...]) -> list[Partition]:
    return sorted(partitions, key=lambda p: p.order)


def read_answer_file(path: Path) -> AnswerFile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnswerFileError(
            f"answer file {path}: cannot be read ({exc.strerror}) (Windows Setup would stop here)"
        ) from None
    return parse_answer_file(data, str(path))
