"""The read cmdlets: what each returns from a twin's state, in Windows' shapes.

Each function is registered with its parameters and Learn page (`@read_cmdlet`, read_cmdlets.py);
the PowerShell evaluator binds them (twin_host.py: unknown parameters fail there, as PowerShell's
binder does), and the function gets the bound values and returns a list of values (PSObj with the
real property names, enums as real enum values). Property sets are the ones listed in
docs/lab-powershell.md, not every property Windows has.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ntpath
import re
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from rebuild.lab.answerfile import WINDOWS_TIME_ZONES
from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.exec.psobjects import PSDate, PSEnum, PSObj, local_zone
from rebuild.lab.exec.read_cmdlets import read_cmdlet
from rebuild.lab.exec.winenv import DIRECTORY, children, find_path, is_dir, is_file
from rebuild.lab.firewall import effective_profile
from rebuild.lab.ps.binding import Param
from rebuild.lab.ps.errors import NotSimulated
from rebuild.lab.state import TwinState

UNINSTALL_KEYS = (
    "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
    "HKLM:\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
)
HIVES = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}
_LONG_TO_SHORT = {v: k for k, v in HIVES.items()}

SERVICE_STATUS = {
    "Stopped": 1,
    "StartPending": 2,
    "StopPending": 3,
    "Running": 4,
    "ContinuePending": 5,
    "PausePending": 6,
    "Paused": 7,
}
START_TYPE = {"Boot": 0, "System": 1, "Automatic": 2, "Manual": 3, "Disabled": 4}


Bound = dict[str, Any]  # parameter name -> value, as the evaluator bound them


@dataclass
class ReadContext:
    """The lab and the twin a read cmdlet answers for."""

    lab: Lab
    twin: TwinRecord


class ReadError(Exception):
    """A PowerShell error record of a read cmdlet: `Cmdlet : message`; terminating or not."""

    def __init__(self, command: str, message: str, terminating: bool = False) -> None:
        super().__init__(message)
        self.command = command
        self.message = message
        self.terminating = terminating


def not_simulated(what: str) -> NotSimulated:
    return NotSimulated(what)  # the twin host adds the script line


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def twin_time_zone(state: TwinState) -> str:
    """The twin's time zone (its answer file's TimeZone) as the IANA zone of the same rules: the
    clock its Local dates show (Get-Date, CIM dates)."""
    zone = WINDOWS_TIME_ZONES.get(state.time_zone)
    if zone is None:
        raise NotSimulated(
            f"the clock of time zone {state.time_zone!r} (not in rebuild/lab/answerfile.py)", ""
        )
    try:
        local_zone(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise NotSimulated(
            f"the clock of time zone {state.time_zone!r} (no tz database on this machine)", ""
        ) from None
    return zone


def local_date(state: TwinState, when: dt.datetime) -> PSDate:
    """A DateTime of Kind Local on the twin: CIM and Defender return their dates converted to the
    machine's time (learn.microsoft.com/dotnet/api/system.datetime.kind)."""
    return PSDate(when.astimezone(dt.UTC), "Local", twin_time_zone(state))


def boot_time(lab: Lab, twin: TwinRecord) -> PSDate:
    """Last boot: the latest boot-like event in the twin's history (a fixed date before any)."""
    state = lab.state(twin.name)
    now = time.time()
    booted: float | None = None
    for entry in state.history:
        event = str(entry.get("event", "")).lower()
        if any(word in event for word in ("boot", "reset", "reimage", "power")):
            # A restart requested with a delay (shutdown /r /t N) boots N seconds later, and a
            # machine boots after its previous boot: each restart moves the boot time forward
            # by at least a second (the WMI value's resolution), as on a real host.
            at = float(entry["at"]) + float(entry.get("delay") or 0)
            if at > now:
                continue  # restart scheduled, not happened yet: still the previous boot
            booted = at if booted is None else max(at, int(booted) + 1.0)
    if booted is None:
        return local_date(state, dt.datetime(2026, 1, 5, 7, 30, tzinfo=dt.UTC))
    return local_date(state, dt.datetime.fromtimestamp(booted, tz=dt.UTC).replace(microsecond=0))


# --- registry ----------------------------------------------------------------------------------


def reg_canonical(path: str) -> str | None:
    """`HKLM:\\X`, `HKLM:X`, `Registry::HKEY_LOCAL_MACHINE\\X` -> `HKLM:\\X`; None if not a registry path."""
    p = path.strip().replace("/", "\\")
    p = re.sub(r"^(Microsoft\.PowerShell\.Core\\)?Registry::", "", p, flags=re.I)
    m = re.match(r"^(HKEY_[A-Z_]+)(\\.*)?$", p, re.I)
    if m:
        short = _LONG_TO_SHORT.get(m.group(1).upper())
        return None if short is None else f"{short}:\\" + (m.group(2) or "").strip("\\")
    m = re.match(r"^(HKLM|HKCU|HKCR|HKU|HKCC):\\?(.*)$", p, re.I)
    if m:
        return f"{m.group(1).upper()}:\\" + m.group(2).strip("\\")
    return None


def registry_view(state: TwinState) -> dict[str, dict[str, Any]]:
    """The twin's registry plus the Uninstall entries its installed applications imply."""
    view = dict(state.registry)
    if not state.applications:
        return view
    present = {k.lower() for k in view}  # keys compare case-insensitively
    for name, version in state.applications.items():
        key = f"{UNINSTALL_KEYS[0]}\\{name}"
        if key.lower() not in present:
            view[key] = {"DisplayName": name, "DisplayVersion": version}
            present.add(key.lower())
    return view


def reg_find(view: dict[str, dict[str, Any]], key: str) -> str | None:
    low = key.rstrip("\\").lower()
    return next((k for k in view if k.rstrip("\\").lower() == low), None)


def reg_exists(view: dict[str, dict[str, Any]], key: str) -> bool:
    low = key.rstrip("\\").lower()
    if re.fullmatch(r"[a-z]+:", low):
        return True
    return any(k.lower() == low or k.lower().startswith(low + "\\") for k in view)


def reg_subkeys(view: dict[str, dict[str, Any]], key: str) -> list[str]:
    prefix = key.rstrip("\\").lower() + "\\"
    names: dict[str, str] = {}
    for k in view:
        if k.lower().startswith(prefix):
            head = k[len(prefix) :].split("\\", 1)[0]
            names.setdefault(head.lower(), key.rstrip("\\") + "\\" + head)
    return sorted(names.values(), key=str.lower)


def _long(key: str) -> str:
    hive, _, rest = key.partition(":\\")
    return HIVES[hive] + ("\\" + rest if rest else "")


def _ps_meta(key: str) -> dict[str, Any]:
    hive, _, rest = key.partition(":\\")
    parent = f"{hive}:\\" + rest.rsplit("\\", 1)[0] if "\\" in rest else f"{hive}:\\"
    return {
        "PSPath": "Microsoft.PowerShell.Core\\Registry::" + _long(key),
        "PSParentPath": "Microsoft.PowerShell.Core\\Registry::" + _long(parent),
        "PSChildName": rest.rsplit("\\", 1)[-1] if rest else HIVES[hive],
        "PSDrive": PSObj(
            "System.Management.Automation.PSDriveInfo", {"Name": hive, "Root": HIVES[hive]}, hive
        ),
        "PSProvider": PSObj(
            "System.Management.Automation.ProviderInfo",
            {"Name": "Registry"},
            "Microsoft.PowerShell.Core\\Registry",
        ),
    }


def _reg_value(v: Any) -> Any:
    if isinstance(v, list) and v and all(isinstance(x, int) for x in v):
        return v  # REG_BINARY as a byte array
    return v


def _expand_wild(view: dict[str, dict[str, Any]], key: str) -> list[str]:
    if "*" not in key and "?" not in key:
        return [key]
    parent, _, leaf = key.rpartition("\\")
    if "*" in parent or "?" in parent:
        raise not_simulated(f"wildcards above the last registry path element ({key})")
    rx = re.compile("^" + re.escape(leaf).replace("\\*", ".*").replace("\\?", ".") + "$", re.I)
    return [k for k in reg_subkeys(view, parent) if rx.match(k.rsplit("\\", 1)[-1])]


def _path_arg(command: str, b: dict[str, Any]) -> str:
    path = b.get("LiteralPath", b.get("Path"))
    if path is None:
        raise ReadError(
            command,
            "Cannot process command because of one or more missing mandatory parameters: Path.",
            terminating=True,
        )
    if isinstance(path, list):
        if len(path) != 1:
            raise not_simulated(f"{command} with several paths")
        path = path[0]
    return str(path)


def _missing(command: str, path: str) -> Exception:
    error: Exception = ReadError(command, f"Cannot find path '{path}' because it does not exist.")
    return error


@read_cmdlet(
    "Get-ItemProperty",
    "microsoft.powershell.management/get-itemproperty",
    Param("Path", ("PSPath",), position=0),
    Param("LiteralPath", ("LP",)),
    Param("Name", position=1),
)
def get_item_property(s: ReadContext, b: Bound) -> list[Any]:
    raw = _path_arg("Get-ItemProperty", b)
    key = reg_canonical(raw)
    if key is None:
        raise not_simulated(f"Get-ItemProperty on file system paths ({raw})")
    state = s.lab.state(s.twin.name)
    view = registry_view(state)
    keys = _expand_wild(view, key) if "LiteralPath" not in b else [key]
    if not keys or not all(reg_exists(view, k) for k in keys):
        raise _missing("Get-ItemProperty", raw)
    names = [str(n) for n in as_list(b.get("Name"))]
    out: list[Any] = []
    for k in keys:
        stored = reg_find(view, k)
        values = view.get(stored, {}) if stored else {}
        if names:
            picked = {}
            for n in names:
                hit = next((vn for vn in values if vn.lower() == n.lower()), None)
                if hit is None:
                    if "*" in n:
                        rx = re.compile("^" + re.escape(n).replace("\\*", ".*") + "$", re.I)
                        picked.update({vn: values[vn] for vn in values if rx.match(vn)})
                        continue
                    raise ReadError(
                        "Get-ItemProperty", f"Property {n} does not exist at path {_long(stored or k)}."
                    )
                picked[hit] = values[hit]
            values = picked
        if not values and not names:
            continue  # a key without values yields no object, as on Windows
        out.append(
            PSObj(
                "System.Management.Automation.PSCustomObject",
                {**{n: _reg_value(v) for n, v in values.items()}, **_ps_meta(stored or k)},
            )
        )
    return out


@read_cmdlet(
    "Get-ItemPropertyValue",
    "microsoft.powershell.management/get-itempropertyvalue",
    Param("Path", ("PSPath",), position=0),
    Param("LiteralPath", ("LP",)),
    Param("Name", position=1),
)
def get_item_property_value(s: ReadContext, b: Bound) -> list[Any]:
    raw = _path_arg("Get-ItemPropertyValue", b)
    key = reg_canonical(raw)
    if key is None:
        raise not_simulated(f"Get-ItemPropertyValue on file system paths ({raw})")
    view = registry_view(s.lab.state(s.twin.name))
    stored = reg_find(view, key)
    if not reg_exists(view, key):
        raise _missing("Get-ItemPropertyValue", raw)
    values = view.get(stored, {}) if stored else {}
    out: list[Any] = []
    for n in as_list(b.get("Name")):
        hit = next((vn for vn in values if vn.lower() == str(n).lower()), None)
        if hit is None:
            raise ReadError(
                "Get-ItemPropertyValue", f"Property {n} does not exist at path {_long(stored or key)}."
            )
        out.append(_reg_value(values[hit]))
    return out


# --- files -------------------------------------------------------------------------------------


def _file_obj(state: TwinState, path: str) -> PSObj:
    stored = find_path(state.files, path)
    shown = (stored or path).replace("/", "\\")
    if len(shown) > 3:
        shown = shown.rstrip("\\")
    name = ntpath.basename(shown) or shown
    if is_dir(state, path):
        return PSObj(
            "System.IO.DirectoryInfo",
            {
                "Name": name,
                "FullName": shown,
                "Parent": ntpath.basename(ntpath.dirname(shown)),
                "Exists": True,
                "Mode": "d-----",
                "Attributes": PSEnum("Directory", 16, "System.IO.FileAttributes"),
            },
            name,
        )
    content = state.files[stored] if stored else ""
    return PSObj(
        "System.IO.FileInfo",
        {
            "Name": name,
            "FullName": shown,
            "DirectoryName": ntpath.dirname(shown),
            "Length": len(content.encode("utf-8")),
            "Extension": ntpath.splitext(name)[1],
            "Exists": True,
            "IsReadOnly": False,
            "Mode": "-a----",
            "Attributes": PSEnum("Archive", 32, "System.IO.FileAttributes"),
        },
        shown,
    )


def _fs_path(command: str, raw: str) -> str:
    if not re.match(r"^[A-Za-z]:[\\/]", raw):
        raise not_simulated(
            f"{command} on {raw!r} (only absolute file system paths like C:\\... and registry paths)"
        )
    return raw


@read_cmdlet(
    "Test-Path",
    "microsoft.powershell.management/test-path",
    Param("Path", position=0),
    Param("LiteralPath", ("LP", "PSPath")),
    Param("PathType"),
    Param("IsValid", switch=True),
)
def test_path(s: ReadContext, b: Bound) -> list[Any]:
    raw = _path_arg("Test-Path", b)
    kind = str(b.get("PathType", "Any")).lower()
    state = s.lab.state(s.twin.name)
    key = reg_canonical(raw)
    if b.get("IsValid"):
        raise not_simulated("Test-Path -IsValid")
    if key is not None:
        view = registry_view(state)
        keys = _expand_wild(view, key) if "LiteralPath" not in b else [key]
        exists = bool(keys) and all(reg_exists(view, k) for k in keys)
        return [exists and kind in ("any", "container")]
    path = _fs_path("Test-Path", raw)
    if kind == "leaf":
        return [is_file(state, path)]
    if kind == "container":
        return [is_dir(state, path)]
    return [is_file(state, path) or is_dir(state, path)]


@read_cmdlet(
    "Get-Item",
    "microsoft.powershell.management/get-item",
    Param("Path", position=0),
    Param("LiteralPath", ("LP", "PSPath")),
    Param("Force", switch=True),
)
def get_item(s: ReadContext, b: Bound) -> list[Any]:
    raw = _path_arg("Get-Item", b)
    state = s.lab.state(s.twin.name)
    key = reg_canonical(raw)
    if key is not None:
        view = registry_view(state)
        if not reg_exists(view, key):
            raise _missing("Get-Item", raw)
        stored = reg_find(view, key) or key
        values = view.get(stored, {})
        return [
            PSObj(
                "Microsoft.Win32.RegistryKey",
                {
                    "Name": _long(stored),
                    "Property": list(values),
                    "SubKeyCount": len(reg_subkeys(view, stored)),
                    "ValueCount": len(values),
                    **_ps_meta(stored),
                },
                _long(stored),
            )
        ]
    path = _fs_path("Get-Item", raw)
    if not (is_file(state, path) or is_dir(state, path)):
        raise _missing("Get-Item", raw)
    return [_file_obj(state, path)]


@read_cmdlet(
    "Get-ChildItem",
    "microsoft.powershell.management/get-childitem",
    Param("Path", position=0),
    Param("LiteralPath", ("LP", "PSPath")),
    Param("Filter", position=1),
    Param("File", switch=True),
    Param("Directory", switch=True),
    Param("Name", switch=True),
    Param("Force", switch=True),
)
def get_child_item(s: ReadContext, b: Bound) -> list[Any]:
    raw = _path_arg("Get-ChildItem", b)
    state = s.lab.state(s.twin.name)
    key = reg_canonical(raw)
    if key is not None:
        view = registry_view(state)
        if not reg_exists(view, key):
            raise _missing("Get-ChildItem", raw)
        return [
            PSObj(
                "Microsoft.Win32.RegistryKey",
                {"Name": _long(k), "Property": list(view.get(reg_find(view, k) or k, {})), **_ps_meta(k)},
                _long(k),
            )
            for k in reg_subkeys(view, key)
        ]
    path = _fs_path("Get-ChildItem", raw)
    if is_file(state, path):
        return [_file_obj(state, path)]
    if not is_dir(state, path):
        raise _missing("Get-ChildItem", raw)
    flt = b.get("Filter")
    rx = (
        re.compile("^" + re.escape(str(flt)).replace("\\*", ".*").replace("\\?", ".") + "$", re.I)
        if flt
        else None
    )
    out: list[Any] = []
    base = path.replace("/", "\\").rstrip("\\")
    for name, directory in children(state, path):
        if (
            (b.get("File") and directory)
            or (b.get("Directory") and not directory)
            or (rx and not rx.match(name))
        ):
            continue
        out.append(name if b.get("Name") else _file_obj(state, base + "\\" + name))
    return out


@read_cmdlet(
    "Get-Content",
    "microsoft.powershell.management/get-content",
    Param("Path", position=0),
    Param("LiteralPath", ("LP", "PSPath")),
    Param("Raw", switch=True),
    Param("TotalCount", ("First", "Head")),
    Param("Tail", ("Last",)),
)
def get_content(s: ReadContext, b: Bound) -> list[Any]:
    raw = _path_arg("Get-Content", b)
    if reg_canonical(raw) is not None:
        raise ReadError(
            "Get-Content",
            "Cannot use interface. The IContentCmdletProvider interface is not implemented by this provider.",
        )
    state = s.lab.state(s.twin.name)
    path = _fs_path("Get-Content", raw)
    if is_dir(state, path):
        raise ReadError(
            "Get-Content",
            f"Unable to get content because it is a directory: '{raw}'. Please use 'Get-ChildItem' instead.",
        )
    if not is_file(state, path):
        raise _missing("Get-Content", raw)
    text = state.files[find_path(state.files, path) or path]
    if b.get("Raw"):
        return [text]
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "TotalCount" in b:
        lines = lines[: int(b["TotalCount"])]
    if "Tail" in b:
        lines = lines[-int(b["Tail"]) :]
    return list(lines)


# --- services, features, firewall ---------------------------------------------------------------


def _service_obj(svc: Any) -> PSObj:
    status = svc.state if svc.state in SERVICE_STATUS else "Stopped"
    start = svc.start_mode.split(" ")[0] if svc.start_mode.split(" ")[0] in START_TYPE else "Manual"
    return PSObj(
        "System.ServiceProcess.ServiceController",
        {
            "Name": svc.name,
            "DisplayName": svc.display_name,
            "Status": PSEnum(status, SERVICE_STATUS[status], "System.ServiceProcess.ServiceControllerStatus"),
            "StartType": PSEnum(start, START_TYPE[start], "System.ServiceProcess.ServiceStartMode"),
            "ServiceName": svc.name,
            "CanStop": status == "Running",
            "CanPauseAndContinue": False,
        },
        "System.ServiceProcess.ServiceController",
    )


@read_cmdlet(
    "Get-Service",
    "microsoft.powershell.management/get-service",
    Param("Name", ("ServiceName",), position=0),
    Param("DisplayName"),
)
def get_service(s: ReadContext, b: Bound) -> list[Any]:
    state = s.lab.state(s.twin.name)
    if "Name" not in b and "DisplayName" not in b:
        return [_service_obj(v) for _, v in sorted(state.services.items(), key=lambda kv: kv[0].lower())]
    out: list[Any] = []
    field = "Name" if "Name" in b else "DisplayName"
    for wanted in as_list(b[field]):
        w = str(wanted)
        rx = re.compile("^" + re.escape(w).replace("\\*", ".*").replace("\\?", ".") + "$", re.I)
        hits = [v for v in state.services.values() if rx.match(v.name if field == "Name" else v.display_name)]
        if field == "Name" and not hits:
            hits = [v for v in state.services.values() if v.display_name.lower() == w.lower()]
        if not hits and "*" not in w:
            what = "service name" if field == "Name" else "display name"
            raise ReadError("Get-Service", f"Cannot find any service with {what} '{w}'.")
        out.extend(_service_obj(v) for v in sorted(hits, key=lambda v: v.name.lower()))
    return out


FEATURE_STATE = {
    True: PSEnum("Enabled", 2, "Microsoft.Dism.Commands.FeatureState"),
    False: PSEnum("Disabled", 0, "Microsoft.Dism.Commands.FeatureState"),
}


@read_cmdlet(
    "Get-WindowsOptionalFeature",
    "dism/get-windowsoptionalfeature",
    Param("Online", switch=True),
    Param("FeatureName"),
)
def get_windows_optional_feature(s: ReadContext, b: Bound) -> list[Any]:
    if not b.get("Online"):
        raise not_simulated("Get-WindowsOptionalFeature on offline images (use -Online)")
    state = s.lab.state(s.twin.name)
    names = [str(n) for n in as_list(b.get("FeatureName"))] or sorted(state.features, key=str.lower)
    out: list[Any] = []
    for n in names:
        hit = next((f for f in state.features if f.lower() == n.lower()), None)
        if hit is None:
            raise ReadError("Get-WindowsOptionalFeature", f"Feature name {n} is unknown.")
        out.append(
            PSObj(
                "Microsoft.Dism.Commands.AdvancedFeatureObject",
                {
                    "FeatureName": hit,
                    "State": FEATURE_STATE[bool(state.features[hit])],
                    "Online": True,
                    "RestartNeeded": False,
                },
                "Microsoft.Dism.Commands.AdvancedFeatureObject",
            )
        )
    return out


SERVER_FEATURE_ALIASES = {
    "fs-smb1": "SMB1Protocol",
    "powershell-v2": "MicrosoftWindowsPowerShellV2",
    "telnet-client": "TelnetClient",
    "tftp-client": "TFTP",
}


@read_cmdlet("Get-WindowsFeature", "servermanager/get-windowsfeature", Param("Name", position=0))
def get_windows_feature(s: ReadContext, b: Bound) -> list[Any]:
    state = s.lab.state(s.twin.name)
    if state.kind != "server":
        raise ReadError(
            "Get-WindowsFeature",
            "The term 'Get-WindowsFeature' is not recognized as the name of a "
            "cmdlet, function, script file, or operable program.",
            terminating=True,
        )
    reverse = {v.lower(): k for k, v in SERVER_FEATURE_ALIASES.items()}
    out: list[Any] = []
    for n in [str(x) for x in as_list(b.get("Name"))] or [reverse.get(f.lower(), f) for f in state.features]:
        name = SERVER_FEATURE_ALIASES.get(n.lower(), n)
        hit = next((f for f in state.features if f.lower() == name.lower()), None)
        if hit is None:
            continue  # Get-WindowsFeature returns nothing for an unknown name
        on = bool(state.features[hit])
        shown = reverse.get(hit.lower(), hit).upper() if reverse.get(hit.lower()) else hit
        out.append(
            PSObj(
                "Microsoft.Windows.ServerManager.Commands.Feature",
                {
                    "Name": shown,
                    "DisplayName": shown,
                    "Installed": on,
                    "InstallState": PSEnum(
                        "Installed" if on else "Available",
                        1 if on else 0,
                        "Microsoft.Windows.ServerManager.Commands.InstallState",
                    ),
                },
            )
        )
    return out


GPO_BOOL = {True: PSEnum("True", 1), False: PSEnum("False", 0), None: PSEnum("NotConfigured", 2)}
FW_ACTION = {"NotConfigured": 0, "Allow": 2, "Block": 4}


@read_cmdlet(
    "Get-NetFirewallProfile",
    "netsecurity/get-netfirewallprofile",
    Param("Name", ("Profile",), position=0),
    Param("PolicyStore"),
    Param("All", switch=True),
)
def get_net_firewall_profile(s: ReadContext, b: Bound) -> list[Any]:
    state = s.lab.state(s.twin.name)
    wanted = [str(n) for n in as_list(b.get("Name", b.get("Profile")))] or list(state.firewall)
    out: list[Any] = []
    for n in wanted:
        hit = next((p for p in state.firewall if p.lower() == n.lower()), None)
        if hit is None:
            raise ReadError(
                "Get-NetFirewallProfile",
                f"No MSFT_NetFirewallProfile objects found with property 'Name' "
                f"equal to '{n}'.  Verify the value of the property and retry.",
            )
        # -PolicyStore ActiveStore: local settings merged with Group Policy (rebuild.lab.firewall);
        # without it, the PersistentStore (local) as Windows' default.
        store = str(b.get("PolicyStore") or "PersistentStore")
        p = effective_profile(state, hit) if store.lower() == "activestore" else state.firewall[hit]
        props: dict[str, Any] = {"Name": hit, "Profile": hit}
        for k, v in p.items():
            if k == "Enabled" or isinstance(v, bool):
                props[k] = GPO_BOOL.get(v if isinstance(v, bool) else None, GPO_BOOL[None])
            elif k in ("DefaultInboundAction", "DefaultOutboundAction"):
                props[k] = PSEnum(str(v), FW_ACTION.get(str(v), 0))
            else:
                props[k] = v
        out.append(
            PSObj(
                "Microsoft.Management.Infrastructure.CimInstance#root/standardcimv2/MSFT_NetFirewallProfile",
                props,
                f'MSFT_NetFirewallProfile (Name = "{hit}")',
            )
        )
    return out


# --- users and groups --------------------------------------------------------------------------


def machine_sid(state: TwinState) -> str:
    digest = hashlib.sha256(state.hostname.lower().encode()).digest()
    parts = [int.from_bytes(digest[i : i + 4], "little") for i in (0, 4, 8)]
    return "S-1-5-21-" + "-".join(str(p) for p in parts)


def member_sid(state: TwinState, member: str) -> str | None:
    """The SID of a group member as the twin keeps it: a local user (machine SID + RID), a BUILTIN
    group, or a domain account (a SID derived from the domain name; Domain Admins has RID 512)."""
    if "\\" not in member:
        user = state.users.get(member)
        if user is not None:
            return f"{machine_sid(state)}-{user.sid_suffix}"
        return next(
            (sid for sid, name in _BUILTIN_GROUP_SIDS.items() if name.lower() == member.lower()), None
        )
    domain, _, account = member.partition("\\")
    digest = hashlib.sha256(domain.lower().encode()).digest()
    parts = [int.from_bytes(digest[i : i + 4], "little") for i in (0, 4, 8)]
    rid = (
        512
        if account.lower() == "domain admins"
        else 1100 + int.from_bytes(hashlib.sha256(account.lower().encode()).digest()[:2], "little")
    )
    return "S-1-5-21-" + "-".join(str(p) for p in parts) + f"-{rid}"


def _sid(value: str) -> PSObj:
    return PSObj(
        "System.Security.Principal.SecurityIdentifier",
        {
            "BinaryLength": 28 if value.startswith("S-1-5-21-") else 16,
            "AccountDomainSid": value.rsplit("-", 1)[0] if value.startswith("S-1-5-21-") else None,
            "Value": value,
        },
        value,
    )


@read_cmdlet(
    "Get-LocalUser",
    "microsoft.powershell.localaccounts/get-localuser",
    Param("Name", position=0),
    Param("SID"),
)
def get_local_user(s: ReadContext, b: Bound) -> list[Any]:
    state = s.lab.state(s.twin.name)
    names = [str(n) for n in as_list(b.get("Name"))]
    users = sorted(state.users.values(), key=lambda u: u.name.lower())
    if names:
        picked = []
        for n in names:
            hit = next((u for u in users if u.name.lower() == n.lower()), None)
            if hit is None:
                raise ReadError("Get-LocalUser", f"User {n} was not found.")
            picked.append(hit)
        users = picked
    return [
        PSObj(
            "Microsoft.PowerShell.Commands.LocalUser",
            {
                "Name": u.name,
                "Enabled": u.enabled,
                "Description": u.description,
                "FullName": "",
                "SID": _sid(f"{machine_sid(state)}-{u.sid_suffix}"),
                "PrincipalSource": PSEnum("Local", 1),
                "ObjectClass": "User",
            },
            u.name,
        )
        for u in users
    ]


@read_cmdlet(
    "Get-LocalGroup",
    "microsoft.powershell.localaccounts/get-localgroup",
    Param("Name", position=0),
    Param("SID"),
)
def get_local_group(s: ReadContext, b: Bound) -> list[Any]:
    state = s.lab.state(s.twin.name)
    names = [str(n) for n in as_list(b.get("Name"))] or sorted(state.groups, key=str.lower)
    out: list[Any] = []
    for n in names:
        hit = next((g for g in state.groups if g.lower() == n.lower()), None)
        if hit is None:
            raise ReadError("Get-LocalGroup", f"Group {n} was not found.")
        out.append(
            PSObj(
                "Microsoft.PowerShell.Commands.LocalGroup",
                {
                    "Name": hit,
                    "Description": "",
                    "PrincipalSource": PSEnum("Local", 1),
                    "ObjectClass": "Group",
                },
                hit,
            )
        )
    return out


_BUILTIN_GROUP_SIDS = {
    "S-1-5-32-544": "Administrators",
    "S-1-5-32-545": "Users",
    "S-1-5-32-546": "Guests",
    "S-1-5-32-555": "Remote Desktop Users",
}


@read_cmdlet(
    "Get-LocalGroupMember",
    "microsoft.powershell.localaccounts/get-localgroupmember",
    Param("Group", ("Name",), position=0),
    Param("Member", position=1),
    Param("SID"),
)
def get_local_group_member(s: ReadContext, b: Bound) -> list[Any]:
    state = s.lab.state(s.twin.name)
    group = str(b.get("Group", b.get("Name", "")))
    if "SID" in b:  # -SID: well-known builtin groups by SID (locale-proof; added for verification)
        sid = str(b["SID"]).upper()
        group = _BUILTIN_GROUP_SIDS.get(sid, "")
        if not group:
            raise ReadError("Get-LocalGroupMember", f"Group {b['SID']} was not found.")
    hit = next((g for g in state.groups if g.lower() == group.lower()), None)
    if hit is None:
        raise ReadError("Get-LocalGroupMember", f"Group {group} was not found.")
    host = state.hostname.upper()[:15]
    out: list[Any] = []
    for member in state.groups[hit]:
        local = "\\" not in member
        user = state.users.get(member) if local else None
        cls = "User" if (user is not None or (not local and "admins" not in member.lower())) else "Group"
        if local and user is None and member in state.groups:
            cls = "Group"
        name = f"{host}\\{member}" if local else member
        sid = member_sid(state, member) or "S-1-5-21-0-0-0-512"
        out.append(
            PSObj(
                "Microsoft.PowerShell.Commands.LocalPrincipal",
                {
                    "Name": name,
                    "SID": _sid(sid),
                    "PrincipalSource": PSEnum("Local" if local else "ActiveDirectory", 1 if local else 2),
                    "ObjectClass": cls,
                },
                name,
            )
        )
    if "Member" in b:
        m = str(b["Member"]).lower()
        out = [o for o in out if o.props["Name"].lower() in (m, f"{host.lower()}\\{m}")]
        if not out:
            raise ReadError("Get-LocalGroupMember", f"Principal {b['Member']} was not found.")
    return out


# --- applications, tasks, Defender -------------------------------------------------------------


@read_cmdlet(
    "Get-Package",
    "packagemanagement/get-package",
    Param("Name", position=0),
    Param("ProviderName", ("Provider",)),
)
def get_package(s: ReadContext, b: Bound) -> list[Any]:
    state = s.lab.state(s.twin.name)
    names = [str(n) for n in as_list(b.get("Name"))]
    apps = sorted(state.applications.items(), key=lambda kv: kv[0].lower())
    out: list[Any] = []
    for n in names or [a for a, _ in apps]:
        rx = re.compile("^" + re.escape(n).replace("\\*", ".*") + "$", re.I)
        hits = [(a, v) for a, v in apps if rx.match(a)]
        if not hits:
            raise ReadError("Get-Package", f"No package found for '{n}'.")
        out.extend(
            PSObj(
                "Microsoft.PackageManagement.Packaging.SoftwareIdentity",
                {"Name": a, "Version": v, "ProviderName": "Programs", "Status": "Installed"},
                a,
            )
            for a, v in hits
        )
    return out


TASK_STATE = {"Disabled": 1, "Ready": 3, "Running": 4}


@read_cmdlet(
    "Get-ScheduledTask",
    "scheduledtasks/get-scheduledtask",
    Param("TaskName", position=0),
    Param("TaskPath", position=1),
)
def get_scheduled_task(s: ReadContext, b: Bound) -> list[Any]:
    state = s.lab.state(s.twin.name)
    out: list[Any] = []
    for t in sorted(state.tasks.values(), key=lambda t: t.name.lower()):
        path, _, name = t.name.rpartition("\\")
        path = path + "\\"
        out.append(
            PSObj(
                "Microsoft.Management.Infrastructure.CimInstance#Root/Microsoft/Windows/TaskScheduler/MSFT_ScheduledTask",
                {
                    "TaskName": name,
                    "TaskPath": path,
                    "State": PSEnum(
                        "Ready" if t.enabled else "Disabled", TASK_STATE["Ready" if t.enabled else "Disabled"]
                    ),
                    "Author": t.author,
                    "Description": "",
                    "Actions": [
                        PSObj(
                            "MSFT_TaskExecAction",
                            {
                                "Execute": t.command.split(" ")[0],
                                "Arguments": t.command.partition(" ")[2] or None,
                            },
                            "MSFT_TaskExecAction",
                        )
                    ],
                },
                f'MSFT_ScheduledTask (TaskName = "{name}", TaskPath = "{path}")',
            )
        )
    for field in ("TaskName", "TaskPath"):
        if field in b:
            wanted = [str(x) for x in as_list(b[field])]
            rxs = [re.compile("^" + re.escape(w).replace("\\*", ".*") + "$", re.I) for w in wanted]
            out = [o for o in out if any(rx.match(o.props[field]) for rx in rxs)]
            if not out and not any("*" in w for w in wanted):
                raise ReadError(
                    "Get-ScheduledTask",
                    f"No MSFT_ScheduledTask objects found with property '{field}' equal "
                    f"to '{wanted[0]}'.  Verify the value of the property and retry.",
                )
    return out


def _as_date(state: TwinState, text: Any) -> Any:
    """A Defender date the twin keeps as UTC ISO text, as the Local DateTime the cmdlet returns."""
    if isinstance(text, str) and text:
        try:
            return local_date(state, dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC))
        except ValueError:
            return text
    return None if text == "" else text


@read_cmdlet("Get-MpComputerStatus", "defender/get-mpcomputerstatus")
def get_mp_computer_status(s: ReadContext, b: Bound) -> list[Any]:
    state = s.lab.state(s.twin.name)
    props = {
        k: (_as_date(state, v) if k.endswith(("Updated", "Time")) else v) for k, v in state.defender.items()
    }
    return [
        PSObj(
            "Microsoft.Management.Infrastructure.CimInstance#ROOT/Microsoft/Windows/Defender/MSFT_MpComputerStatus",
            props,
            "MSFT_MpComputerStatus",
        )
    ]


@read_cmdlet("Get-MpPreference", "defender/get-mppreference")
def get_mp_preference(s: ReadContext, b: Bound) -> list[Any]:
    state = s.lab.state(s.twin.name)
    d = state.defender
    policy = registry_view(state)
    rtp = next(
        (
            v
            for k, v in policy.items()
            if k.lower() == "hklm:\\software\\policies\\microsoft\\windows defender\\real-time protection"
        ),
        {},
    )
    props = {
        "DisableRealtimeMonitoring": bool(rtp.get("DisableRealtimeMonitoring", 0))
        or not d.get("RealTimeProtectionEnabled", False),
        "DisableBehaviorMonitoring": bool(rtp.get("DisableBehaviorMonitoring", 0))
        or not d.get("BehaviorMonitorEnabled", False),
        "DisableIOAVProtection": bool(rtp.get("DisableIOAVProtection", 0))
        or not d.get("IoavProtectionEnabled", False),
        "DisableScriptScanning": False,
    }
    return [
        PSObj(
            "Microsoft.Management.Infrastructure.CimInstance#ROOT/Microsoft/Windows/Defender/MSFT_MpPreference",
            props,
            "MSFT_MpPreference",
        )
    ]


# --- OS information ----------------------------------------------------------------------------


def os_version(state: TwinState) -> str:
    return f"10.0.{state.os_build}"


def _product_type(state: TwinState) -> int:
    return 3 if state.kind == "server" else 1


@read_cmdlet(
    "Get-CimInstance",
    "cimcmdlets/get-ciminstance",
    Param("ClassName", ("Class",), position=0),
    Param("Property"),
    Param("Filter"),
)
def get_cim_instance(s: ReadContext, b: Bound) -> list[Any]:
    if "Filter" in b:
        raise not_simulated("Get-CimInstance -Filter")
    cls = str(b.get("ClassName", b.get("Class", ""))).lower()
    state = s.lab.state(s.twin.name)
    host = state.hostname.upper()[:15]
    if cls == "win32_operatingsystem":
        props = {
            "Caption": state.os_caption,
            "Version": os_version(state),
            "BuildNumber": state.os_build,
            "CSName": host,
            "OSArchitecture": "64-bit",
            "ProductType": _product_type(state),
            "LastBootUpTime": boot_time(s.lab, s.twin),
            "Locale": state.locale,
        }
        name = "Win32_OperatingSystem"
    elif cls == "win32_computersystem":
        props = {
            "Name": host,
            "DNSHostName": state.hostname,
            "Domain": state.domain if state.domain_joined else "WORKGROUP",
            "PartOfDomain": state.domain_joined,
            "Workgroup": None if state.domain_joined else state.domain,
            "DomainRole": (3 if state.domain_joined else 2)
            if state.kind == "server"
            else (1 if state.domain_joined else 0),
        }
        name = "Win32_ComputerSystem"
    else:
        raise not_simulated(f"the CIM class {b.get('ClassName', b.get('Class'))}")
    wanted = [str(p) for p in as_list(b.get("Property"))]
    if wanted:
        props = {k: (v if any(k.lower() == w.lower() for w in wanted) else None) for k, v in props.items()}
    return [PSObj(f"Microsoft.Management.Infrastructure.CimInstance#root/cimv2/{name}", props, name)]


@read_cmdlet(
    "Get-ComputerInfo",
    "microsoft.powershell.management/get-computerinfo",
    Param("Property", position=0),
)
def get_computer_info(s: ReadContext, b: Bound) -> list[Any]:
    state = s.lab.state(s.twin.name)
    host = state.hostname.upper()[:15]
    props = {
        "WindowsProductName": state.os_caption.replace("Microsoft ", ""),
        "OsName": state.os_caption,
        "OsVersion": os_version(state),
        "OsBuildNumber": state.os_build,
        "CsName": host,
        "CsDomain": state.domain if state.domain_joined else "WORKGROUP",
        "CsPartOfDomain": state.domain_joined,
        "TimeZone": state.time_zone,
        "OsLocale": state.locale,
    }
    wanted = [str(p) for p in as_list(b.get("Property"))]
    if wanted:
        props = {
            k: v
            for k, v in props.items()
            if any(re.match("^" + re.escape(w).replace("\\*", ".*") + "$", k, re.I) for w in wanted)
        }
    return [
        PSObj(
            "Microsoft.PowerShell.Commands.ComputerInfo", props, "Microsoft.PowerShell.Commands.ComputerInfo"
        )
    ]


@read_cmdlet("Get-TimeZone", "microsoft.powershell.management/get-timezone")
def get_time_zone(s: ReadContext, b: Bound) -> list[Any]:
    tz = s.lab.state(s.twin.name).time_zone
    return [PSObj("System.TimeZoneInfo", {"Id": tz, "StandardName": tz}, tz)]


@read_cmdlet("Get-WinSystemLocale", "international/get-winsystemlocale")
def get_win_system_locale(s: ReadContext, b: Bound) -> list[Any]:
    loc = s.lab.state(s.twin.name).locale
    return [PSObj("System.Globalization.CultureInfo", {"Name": loc}, loc)]


__all__ = [
    "DIRECTORY",
    "ReadContext",
    "ReadError",
    "boot_time",
    "reg_canonical",
    "registry_view",
]
