"""The cmdlets of the read subset: what each returns from a twin's state, in Windows' shapes.

Each source cmdlet binds its parameters like PowerShell (unknown ones fail) and returns a list
of values (PSObj with the real property names and enums as real enum values). Property sets
are the ones listed in docs/lab-powershell.md, not every property Windows has.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ntpath
import re
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rebuild.lab.exec import native, twin_firmware
from rebuild.lab.exec.psobjects import PSDate, PSEnum, PSObj
from rebuild.lab.exec.winenv import DIRECTORY, children, find_path, is_dir, is_file, norm_path
from rebuild.lab.firewall import effective_profile
from rebuild.lab.state import TwinState

if TYPE_CHECKING:
    from rebuild.lab.exec.powershell import Session

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


def _ps() -> types.ModuleType:  # late import: powershell imports this module
    from rebuild.lab.exec import powershell

    return powershell


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
    for name, version in state.applications.items():
        key = f"{UNINSTALL_KEYS[0]}\\{name}"
        if not any(k.lower() == key.lower() for k in view):
            view[key] = {"DisplayName": name, "DisplayVersion": version}
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
        raise _ps().not_simulated(f"wildcards above the last registry path element ({key})")
    rx = re.compile("^" + re.escape(leaf).replace("\\*", ".*").replace("\\?", ".") + "$", re.I)
    return [k for k in reg_subkeys(view, parent) if rx.match(k.rsplit("\\", 1)[-1])]


def _path_arg(command: str, b: dict[str, Any]) -> str:
    path = b.get("LiteralPath", b.get("Path"))
    if path is None:
        raise _ps().PSError(
            command,
            "Cannot process command because of one or more missing mandatory parameters: Path.",
            terminating=True,
        )
    if isinstance(path, list):
        if len(path) != 1:
            raise _ps().not_simulated(f"{command} with several paths")
        path = path[0]
    return str(path)


def _missing(command: str, path: str) -> Exception:
    error: Exception = _ps().PSError(command, f"Cannot find path '{path}' because it does not exist.")
    return error


def get_item_property(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind("Get-ItemProperty", args, ["Path", "LiteralPath", "Name"], ["Path", "Name"])
    raw = _path_arg("Get-ItemProperty", b)
    key = reg_canonical(raw)
    if key is None:
        raise _ps().not_simulated(f"Get-ItemProperty on file system paths ({raw})")
    state = s.lab.state(s.twin.name)
    view = registry_view(state)
    keys = _expand_wild(view, key) if "LiteralPath" not in b else [key]
    if not keys or not all(reg_exists(view, k) for k in keys):
        raise _missing("Get-ItemProperty", raw)
    names = [str(n) for n in _ps().as_list(b.get("Name"))]
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
                    raise _ps().PSError(
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


def get_item_property_value(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind("Get-ItemPropertyValue", args, ["Path", "LiteralPath", "Name"], ["Path", "Name"])
    raw = _path_arg("Get-ItemPropertyValue", b)
    key = reg_canonical(raw)
    if key is None:
        raise _ps().not_simulated(f"Get-ItemPropertyValue on file system paths ({raw})")
    view = registry_view(s.lab.state(s.twin.name))
    stored = reg_find(view, key)
    if not reg_exists(view, key):
        raise _missing("Get-ItemPropertyValue", raw)
    values = view.get(stored, {}) if stored else {}
    out: list[Any] = []
    for n in _ps().as_list(b.get("Name")):
        hit = next((vn for vn in values if vn.lower() == str(n).lower()), None)
        if hit is None:
            raise _ps().PSError(
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
        raise _ps().not_simulated(
            f"{command} on {raw!r} (only absolute file system paths like C:\\... and registry paths)"
        )
    return raw


def test_path(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind(
        "Test-Path", args, ["Path", "LiteralPath", "PathType", "IsValid"], ["Path"], switches=("IsValid",)
    )
    raw = _path_arg("Test-Path", b)
    kind = str(b.get("PathType", "Any")).lower()
    state = s.lab.state(s.twin.name)
    key = reg_canonical(raw)
    if b.get("IsValid"):
        raise _ps().not_simulated("Test-Path -IsValid")
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


def get_item(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind(
        "Get-Item",
        args,
        ["Path", "LiteralPath", "Force", "ReadOnly"],
        ["Path"],
        switches=("Force", "ReadOnly"),
    )
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


def get_child_item(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind(
        "Get-ChildItem",
        args,
        ["Path", "LiteralPath", "Filter", "File", "Directory", "Force", "Name"],
        ["Path", "Filter"],
        switches=("File", "Directory", "Force", "Name"),
    )
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


def get_content(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind(
        "Get-Content",
        args,
        ["Path", "LiteralPath", "Raw", "Encoding", "TotalCount", "Tail"],
        ["Path"],
        switches=("Raw",),
    )
    raw = _path_arg("Get-Content", b)
    if reg_canonical(raw) is not None:
        raise _ps().PSError(
            "Get-Content",
            "Cannot use interface. The IContentCmdletProvider interface is not implemented by this provider.",
        )
    state = s.lab.state(s.twin.name)
    path = _fs_path("Get-Content", raw)
    if is_dir(state, path):
        raise _ps().PSError(
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


def remove_item(s: Session, args: list[Any]) -> list[Any]:
    """Only for Ansible's own temp-dir cleanup (`Remove-Item '<tmp>' -Force -Recurse`)."""
    b = _ps().bind(
        "Remove-Item",
        args,
        ["Path", "LiteralPath", "Force", "Recurse", "ErrorAction"],
        ["Path"],
        switches=("Force", "Recurse"),
    )
    raw = _path_arg("Remove-Item", b)
    if reg_canonical(raw) is not None:
        raise _ps().not_simulated("Remove-Item on registry keys (use win_regedit)")
    state = s.lab.state(s.twin.name)
    path = _fs_path("Remove-Item", raw)
    if not (is_file(state, path) or is_dir(state, path)):
        raise _missing("Remove-Item", raw)
    key = norm_path(path)
    victims = [p for p in state.files if norm_path(p) == key or norm_path(p).startswith(key + "\\")]
    if is_dir(state, path) and len(victims) > 1 and not b.get("Recurse"):
        raise _ps().not_simulated(
            "Remove-Item of a non-empty directory without -Recurse (Windows would prompt)"
        )

    def drop(st: TwinState) -> None:
        for p in victims:
            st.files.pop(p, None)

    s.lab.update(s.twin.name, drop)
    return []


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


def get_service(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind("Get-Service", args, ["Name", "DisplayName"], ["Name"])
    state = s.lab.state(s.twin.name)
    if "Name" not in b and "DisplayName" not in b:
        return [_service_obj(v) for _, v in sorted(state.services.items(), key=lambda kv: kv[0].lower())]
    out: list[Any] = []
    field = "Name" if "Name" in b else "DisplayName"
    for wanted in _ps().as_list(b[field]):
        w = str(wanted)
        rx = re.compile("^" + re.escape(w).replace("\\*", ".*").replace("\\?", ".") + "$", re.I)
        hits = [v for v in state.services.values() if rx.match(v.name if field == "Name" else v.display_name)]
        if field == "Name" and not hits:
            hits = [v for v in state.services.values() if v.display_name.lower() == w.lower()]
        if not hits and "*" not in w:
            what = "service name" if field == "Name" else "display name"
            raise _ps().PSError("Get-Service", f"Cannot find any service with {what} '{w}'.")
        out.extend(_service_obj(v) for v in sorted(hits, key=lambda v: v.name.lower()))
    return out


FEATURE_STATE = {
    True: PSEnum("Enabled", 2, "Microsoft.Dism.Commands.FeatureState"),
    False: PSEnum("Disabled", 0, "Microsoft.Dism.Commands.FeatureState"),
}


def get_windows_optional_feature(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind(
        "Get-WindowsOptionalFeature", args, ["Online", "FeatureName", "Path"], [], switches=("Online",)
    )
    if not b.get("Online"):
        raise _ps().not_simulated("Get-WindowsOptionalFeature on offline images (use -Online)")
    state = s.lab.state(s.twin.name)
    names = [str(n) for n in _ps().as_list(b.get("FeatureName"))] or sorted(state.features, key=str.lower)
    out: list[Any] = []
    for n in names:
        hit = next((f for f in state.features if f.lower() == n.lower()), None)
        if hit is None:
            raise _ps().PSError("Get-WindowsOptionalFeature", f"Feature name {n} is unknown.")
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


def get_windows_feature(s: Session, args: list[Any]) -> list[Any]:
    state = s.lab.state(s.twin.name)
    if state.kind != "server":
        raise _ps().PSError(
            "",
            "Get-WindowsFeature : The term 'Get-WindowsFeature' is not recognized as the name of a "
            "cmdlet, function, script file, or operable program.",
            terminating=True,
        )
    b = _ps().bind("Get-WindowsFeature", args, ["Name"], ["Name"])
    reverse = {v.lower(): k for k, v in SERVER_FEATURE_ALIASES.items()}
    out: list[Any] = []
    for n in [str(x) for x in _ps().as_list(b.get("Name"))] or [
        reverse.get(f.lower(), f) for f in state.features
    ]:
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


def get_net_firewall_profile(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind(
        "Get-NetFirewallProfile", args, ["Name", "Profile", "PolicyStore", "All"], ["Name"], switches=("All",)
    )
    state = s.lab.state(s.twin.name)
    wanted = [str(n) for n in _ps().as_list(b.get("Name", b.get("Profile")))] or list(state.firewall)
    out: list[Any] = []
    for n in wanted:
        hit = next((p for p in state.firewall if p.lower() == n.lower()), None)
        if hit is None:
            raise _ps().PSError(
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


def get_local_user(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind("Get-LocalUser", args, ["Name", "SID"], ["Name"])
    state = s.lab.state(s.twin.name)
    names = [str(n) for n in _ps().as_list(b.get("Name"))]
    users = sorted(state.users.values(), key=lambda u: u.name.lower())
    if names:
        picked = []
        for n in names:
            hit = next((u for u in users if u.name.lower() == n.lower()), None)
            if hit is None:
                raise _ps().PSError("Get-LocalUser", f"User {n} was not found.")
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


def get_local_group(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind("Get-LocalGroup", args, ["Name"], ["Name"])
    state = s.lab.state(s.twin.name)
    names = [str(n) for n in _ps().as_list(b.get("Name"))] or sorted(state.groups, key=str.lower)
    out: list[Any] = []
    for n in names:
        hit = next((g for g in state.groups if g.lower() == n.lower()), None)
        if hit is None:
            raise _ps().PSError("Get-LocalGroup", f"Group {n} was not found.")
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


def get_local_group_member(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind("Get-LocalGroupMember", args, ["Group", "Name", "Member", "SID"], ["Group", "Member"])
    state = s.lab.state(s.twin.name)
    group = str(b.get("Group", b.get("Name", "")))
    if "SID" in b:  # -SID: well-known builtin groups by SID (locale-proof; added for verification)
        sid = str(b["SID"]).upper()
        group = _BUILTIN_GROUP_SIDS.get(sid, "")
        if not group:
            raise _ps().PSError("Get-LocalGroupMember", f"Group {b['SID']} was not found.")
    hit = next((g for g in state.groups if g.lower() == group.lower()), None)
    if hit is None:
        raise _ps().PSError("Get-LocalGroupMember", f"Group {group} was not found.")
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
            raise _ps().PSError("Get-LocalGroupMember", f"Principal {b['Member']} was not found.")
    return out


# --- applications, tasks, Defender -------------------------------------------------------------


def get_package(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind("Get-Package", args, ["Name", "ProviderName"], ["Name"])
    state = s.lab.state(s.twin.name)
    names = [str(n) for n in _ps().as_list(b.get("Name"))]
    apps = sorted(state.applications.items(), key=lambda kv: kv[0].lower())
    out: list[Any] = []
    for n in names or [a for a, _ in apps]:
        rx = re.compile("^" + re.escape(n).replace("\\*", ".*") + "$", re.I)
        hits = [(a, v) for a, v in apps if rx.match(a)]
        if not hits:
            raise _ps().PSError("Get-Package", f"No package found for '{n}'.")
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


def get_scheduled_task(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind("Get-ScheduledTask", args, ["TaskName", "TaskPath"], ["TaskName", "TaskPath"])
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
            wanted = [str(x) for x in _ps().as_list(b[field])]
            rxs = [re.compile("^" + re.escape(w).replace("\\*", ".*") + "$", re.I) for w in wanted]
            out = [o for o in out if any(rx.match(o.props[field]) for rx in rxs)]
            if not out and not any("*" in w for w in wanted):
                raise _ps().PSError(
                    "Get-ScheduledTask",
                    f"No MSFT_ScheduledTask objects found with property '{field}' equal "
                    f"to '{wanted[0]}'.  Verify the value of the property and retry.",
                )
    return out


def _as_date(text: Any) -> Any:
    if isinstance(text, str) and text:
        try:
            return PSDate(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC))
        except ValueError:
            return text
    return None if text == "" else text


def get_mp_computer_status(s: Session, args: list[Any]) -> list[Any]:
    _ps().bind("Get-MpComputerStatus", args, [], [])
    d = s.lab.state(s.twin.name).defender
    props = {k: (_as_date(v) if k.endswith(("Updated", "Time")) else v) for k, v in d.items()}
    return [
        PSObj(
            "Microsoft.Management.Infrastructure.CimInstance#ROOT/Microsoft/Windows/Defender/MSFT_MpComputerStatus",
            props,
            "MSFT_MpComputerStatus",
        )
    ]


def get_mp_preference(s: Session, args: list[Any]) -> list[Any]:
    _ps().bind("Get-MpPreference", args, [], [])
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


def get_cim_instance(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind(
        "Get-CimInstance", args, ["ClassName", "Class", "Property", "Namespace", "Filter"], ["ClassName"]
    )
    if "Filter" in b:
        raise _ps().not_simulated("Get-CimInstance -Filter")
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
            "LastBootUpTime": _ps().boot_time(s.lab, s.twin),
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
        raise _ps().not_simulated(f"the CIM class {b.get('ClassName', b.get('Class'))}")
    wanted = [str(p) for p in _ps().as_list(b.get("Property"))]
    if wanted:
        props = {k: (v if any(k.lower() == w.lower() for w in wanted) else None) for k, v in props.items()}
    return [PSObj(f"Microsoft.Management.Infrastructure.CimInstance#root/cimv2/{name}", props, name)]


def get_computer_info(s: Session, args: list[Any]) -> list[Any]:
    b = _ps().bind("Get-ComputerInfo", args, ["Property"], ["Property"])
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
    wanted = [str(p) for p in _ps().as_list(b.get("Property"))]
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


def get_time_zone(s: Session, args: list[Any]) -> list[Any]:
    _ps().bind("Get-TimeZone", args, [], [])
    tz = s.lab.state(s.twin.name).time_zone
    return [PSObj("System.TimeZoneInfo", {"Id": tz, "StandardName": tz}, tz)]


def get_win_system_locale(s: Session, args: list[Any]) -> list[Any]:
    _ps().bind("Get-WinSystemLocale", args, [], [])
    loc = s.lab.state(s.twin.name).locale
    return [PSObj("System.Globalization.CultureInfo", {"Name": loc}, loc)]


def _native(name: str) -> Callable[[Session, list[Any]], list[Any]]:
    def run(s: Session, args: list[Any]) -> list[Any]:
        line = " ".join([name, *[str(a) if not isinstance(a, _ps().Param) else "-" + a.name for a in args]])
        rc, out, err = native.run_native(s.lab, s.twin, line)
        if rc != 0:
            raise _ps().PSError("", err.decode().strip() or f"{name} exited with {rc}")
        return out.decode().replace("\r\n", "\n").rstrip("\n").split("\n") if out else []

    return run


SOURCES = {
    "get-itemproperty": get_item_property,
    "gp": get_item_property,
    "get-itempropertyvalue": get_item_property_value,
    "gpv": get_item_property_value,
    "test-path": test_path,
    "get-item": get_item,
    "gi": get_item,
    "get-childitem": get_child_item,
    "gci": get_child_item,
    "dir": get_child_item,
    "ls": get_child_item,
    "get-content": get_content,
    "gc": get_content,
    "type": get_content,
    "cat": get_content,
    "remove-item": remove_item,
    "get-service": get_service,
    "gsv": get_service,
    "get-windowsoptionalfeature": get_windows_optional_feature,
    "get-windowsfeature": get_windows_feature,
    "get-netfirewallprofile": get_net_firewall_profile,
    "get-localuser": get_local_user,
    "get-localgroup": get_local_group,
    "get-localgroupmember": get_local_group_member,
    "get-package": get_package,
    "get-scheduledtask": get_scheduled_task,
    "get-mpcomputerstatus": get_mp_computer_status,
    "get-mppreference": get_mp_preference,
    "confirm-securebootuefi": twin_firmware.confirm_secure_boot_uefi,
    "get-securebootuefi": twin_firmware.get_secure_boot_uefi,
    "get-ciminstance": get_cim_instance,
    "get-wmiobject": get_cim_instance,
    "gwmi": get_cim_instance,
    "get-computerinfo": get_computer_info,
    "get-timezone": get_time_zone,
    "get-winsystemlocale": get_win_system_locale,
    "hostname": _native("hostname"),
    "hostname.exe": _native("hostname"),
    "whoami": _native("whoami"),
    "whoami.exe": _native("whoami"),
    "systeminfo": _native("systeminfo"),
    "systeminfo.exe": _native("systeminfo"),
    "auditpol": _native("auditpol"),
    "auditpol.exe": _native("auditpol"),
}


def run_source(session: Session, name: str, args: list[Any]) -> list[Any]:
    fn = SOURCES.get(name.lower())
    if fn is None:
        raise _ps().not_simulated(f"the command {name} (see docs/lab-powershell.md for the read subset)")
    b_ea = next(
        (
            args[i + 1]
            for i, a in enumerate(args[:-1])
            if isinstance(a, _ps().Param) and a.name.lower() in ("erroraction", "ea")
        ),
        None,
    )
    try:
        return fn(session, args)
    except _ps().PSError as exc:
        action = str(b_ea).lower() if b_ea is not None else ""
        if action in ("silentlycontinue", "ignore") and not exc.terminating:
            raise _ps().PSError(exc.command, "", False) from None
        if action == "stop":
            exc.terminating = True
        raise


__all__ = ["DIRECTORY", "SOURCES", "reg_canonical", "registry_view", "run_source"]
