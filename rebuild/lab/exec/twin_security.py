"""The .NET members and registry writes the hardening module needs, on a twin (SIMULATION).

Part of `TwinHost` (twin_host.py): static members the hardening script calls, registry keys as
`Microsoft.Win32.RegistryKey` objects (`GetValueNames`, `GetValue`, `Close`) and the registry
provider's writes (`New-Item` of a key, `New-ItemProperty`). Each follows its Microsoft Learn page
(listed in docs/lab-powershell.md); what the lab cannot know fails loudly.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import TYPE_CHECKING, Any

from rebuild.lab.exec import cmdlets
from rebuild.lab.exec.psobjects import PSDate, PSEnum, PSObj
from rebuild.lab.exec.twin_call import host_of, single_path
from rebuild.lab.ps import values as v
from rebuild.lab.ps.errors import ErrorRecord, NotSimulated, PSRuntimeError
from rebuild.lab.state import TwinState

if TYPE_CHECKING:
    from rebuild.lab.exec.twin_host import TwinHost
    from rebuild.lab.ps.evaluator import Call, Evaluator
    from rebuild.lab.ps.parser import Node

_UNHANDLED = object()


def _method_error(method: str, count: int, message: str, exception: str) -> PSRuntimeError:
    """A .NET exception thrown by a method, as PowerShell wraps it (MethodInvocationException)."""
    return PSRuntimeError(
        ErrorRecord(
            f'Exception calling "{method}" with "{count}" argument(s): "{message}"',
            "System.Management.Automation.MethodInvocationException",
        )
    )


# --- static members -----------------------------------------------------------------------------


def static(
    host: TwinHost, ev: Evaluator, type_name: str, member: str, args: list[Any] | None, node: Node
) -> Any:
    """One static member, or _UNHANDLED."""
    t, m = type_name.lower(), member.lower()
    if t == "system.security.principal.windowsidentity" and m == "getcurrent" and args == []:
        # WindowsIdentity.GetCurrent: the account the WinRM session authenticated as.
        if not host.session_user:
            raise NotSimulated(
                "the Windows identity of this session (the lab was not told the WinRM account)",
                ev.where(node),
            )
        return v.DotNetObject(
            "System.Security.Principal.WindowsIdentity",
            {"Name": f"{host.env()['COMPUTERNAME']}\\{host.session_user}", "AuthenticationType": "NTLM"},
        )
    if t == "system.bitconverter" and args is not None:
        return _bitconverter(m, args, ev, node)
    if t == "system.globalization.cultureinfo" and m == "invariantculture" and args is None:
        return v.DotNetObject("System.Globalization.CultureInfo", {"Name": ""})
    if t == "system.globalization.datetimestyles" and args is None and m in _DATETIME_STYLES:
        return PSEnum(_DATETIME_STYLES[m][0], _DATETIME_STYLES[m][1], "System.Globalization.DateTimeStyles")
    if t == "system.datetime" and m == "parse" and args is not None and len(args) == 3:
        return _parse_roundtrip(args)
    if t == "microsoft.win32.registry" and m == "localmachine" and args is None:
        return _registry_root(host, "HKLM:\\")
    if t in _REGISTRY_ENUMS and args is None and m in _REGISTRY_ENUMS[t]:
        name, value = _REGISTRY_ENUMS[t][m]
        return PSEnum(name, value, type_name)
    if t == "system.io.path" and m == "gettempfilename" and args == []:
        return _temp_file(host)
    if t == "system.io.path" and m == "changeextension" and args is not None and len(args) == 2:
        # Path.ChangeExtension: the extension after the last dot of the file name is replaced.
        path, ext = v.to_string(args[0]), v.to_string(args[1]).lstrip(".")
        head, _, name = path.rpartition("\\")
        stem = name.rsplit(".", 1)[0] if "." in name else name
        return (head + "\\" if head else "") + stem + "." + ext
    return _UNHANDLED


# DateTimeStyles (learn.microsoft.com/dotnet/api/system.globalization.datetimestyles)
_DATETIME_STYLES = {"none": ("None", 0), "roundtripkind": ("RoundtripKind", 128)}


def _parse_roundtrip(args: list[Any]) -> PSDate:
    """DateTime.Parse(s, InvariantCulture, RoundtripKind) of an ISO 8601 ('o') string; a string it
    cannot read throws FormatException (learn.microsoft.com/dotnet/api/system.datetime.parse)."""
    text = v.to_string(args[0]).strip()
    style = args[2]
    if not isinstance(style, PSEnum) or style.value != 128:
        raise NotSimulated("DateTime.Parse with styles other than RoundtripKind", "")
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?", text)
    if not m:
        raise _method_error(
            "Parse", 3, "String was not recognized as a valid DateTime.", "System.FormatException"
        )
    when = dt.datetime.fromisoformat(m.group(1) + (m.group(2) or ""))
    zone = m.group(3)
    if zone and zone != "Z":
        when = when.replace(tzinfo=dt.datetime.strptime(zone.replace(":", ""), "%z").tzinfo)
    return PSDate(when.replace(tzinfo=when.tzinfo or dt.UTC).astimezone(dt.UTC))


def _bitconverter(m: str, args: list[Any], ev: Evaluator, node: Node) -> Any:
    """BitConverter.GetBytes / ToInt32 / ToUInt32 / ToInt64 / ToUInt64, little-endian.

    The lab's integers carry no .NET width, so GetBytes gives the 8 bytes of the value's
    two's complement; To*(bytes, 0) read the first 4 or 8 of them, as .NET does."""
    if m == "getbytes" and len(args) == 1 and isinstance(args[0], int) and not isinstance(args[0], bool):
        return v.DotNetObject("System.Byte[]", {"bytes": (args[0] & (2**64 - 1)).to_bytes(8, "little")})
    widths = {"toint32": (4, True), "touint32": (4, False), "toint64": (8, True), "touint64": (8, False)}
    if (
        m in widths
        and len(args) == 2
        and isinstance(args[0], v.DotNetObject)
        and args[0].type_name == "System.Byte[]"
    ):
        size, signed = widths[m]
        data: bytes = args[0].data["bytes"]
        start = v.to_int(args[1])
        return int.from_bytes(data[start : start + size], "little", signed=signed)
    raise NotSimulated(f"the .NET member [System.BitConverter]::{m}", ev.where(node))


def _temp_file(host: TwinHost) -> str:
    """Path.GetTempFileName creates an empty tmpXXXX.tmp file in the user's temp folder and
    returns its path (learn.microsoft.com/dotnet/api/system.io.path.gettempfilename)."""
    path = f"{host.env()['TEMP']}\\tmp{secrets.token_hex(2).upper()}.tmp"
    host.scratch[path.lower()] = b""
    return path


# --- registry key objects ----------------------------------------------------------------------


def registry_key(host: TwinHost, obj: PSObj) -> v.DotNetObject:
    """A Microsoft.Win32.RegistryKey from the provider (Get-Item, Get-ChildItem on a key), with the
    methods of learn.microsoft.com/dotnet/api/microsoft.win32.registrykey. A key under a loaded
    hive holds a handle until closed (or finalized)."""
    key = cmdlets.reg_canonical(str(obj.props.get("PSPath", obj.props.get("Name", "")))) or ""
    hive = key[5:].split("\\", 1)[0].lower() if key.upper().startswith("HKU:\\") else ""
    state = {"open": True}
    if hive:
        host.key_handles[hive] = host.key_handles.get(hive, 0) + 1

    def values() -> dict[str, Any]:
        if not state["open"]:
            raise _method_error(
                "GetValue", 1, "Cannot access a closed registry key.", "System.ObjectDisposedException"
            )
        view = cmdlets.registry_view(host.state())
        stored = cmdlets.reg_find(view, key)
        return dict(view.get(stored, {})) if stored else {}

    def get_value_names(args: list[Any]) -> list[str]:
        return list(values())

    def get_value(args: list[Any]) -> Any:
        if not 1 <= len(args) <= 3:
            raise NotSimulated(f"RegistryKey.GetValue with {len(args)} arguments", "")
        if len(args) == 3 and v.to_string(args[2]).lower() != "donotexpandenvironmentnames":
            raise NotSimulated(f"RegistryKey.GetValue option {v.to_string(args[2])}", "")
        found = values()
        name = v.to_string(args[0]).lower()
        match = next((n for n in found if n.lower() == name), None)
        return found[match] if match is not None else (args[1] if len(args) > 1 else None)

    def close(args: list[Any]) -> None:
        if state["open"] and hive:
            host.key_handles[hive] = max(0, host.key_handles.get(hive, 0) - 1)
        state["open"] = False

    return v.DotNetObject(
        "Microsoft.Win32.RegistryKey",
        dict(obj.props),
        {"getvaluenames": get_value_names, "getvalue": get_value, "close": close, "dispose": close},
    )


# --- volatile keys: RegistryKey.CreateSubKey(String, RegistryKeyPermissionCheck, RegistryOptions) ---

# learn.microsoft.com/dotnet/api/microsoft.win32.registryoptions, .../registrykeypermissioncheck
REGISTRY_OPTIONS = "Microsoft.Win32.RegistryOptions"
PERMISSION_CHECK = "Microsoft.Win32.RegistryKeyPermissionCheck"
_REGISTRY_ENUMS = {
    REGISTRY_OPTIONS.lower(): {"none": ("None", 0), "volatile": ("Volatile", 1)},
    PERMISSION_CHECK.lower(): {
        "default": ("Default", 0),
        "readsubtree": ("ReadSubTree", 1),
        "readwritesubtree": ("ReadWriteSubTree", 2),
    },
}
# System error 1021 (ERROR_CHILD_MUST_BE_VOLATILE), as .NET's IOException carries it.
CHILD_MUST_BE_VOLATILE = "Cannot create a stable subkey under a volatile parent key."


def _registry_root(host: TwinHost, root: str) -> v.DotNetObject:
    """[Microsoft.Win32.Registry]::LocalMachine: only CreateSubKey is simulated on it."""

    def create_subkey(args: list[Any]) -> v.DotNetObject:
        return create_subkey_3(host, root, args)

    return v.DotNetObject(
        "Microsoft.Win32.RegistryKey", {"Name": "HKEY_LOCAL_MACHINE"}, {"createsubkey": create_subkey}
    )


def create_subkey_3(host: TwinHost, root: str, args: list[Any]) -> v.DotNetObject:
    """RegistryKey.CreateSubKey(String, RegistryKeyPermissionCheck, RegistryOptions) (.NET Framework
    4.0+, so Windows PowerShell 5.1 has it): creates the key and any missing parents, or opens it.
    RegCreateKeyEx (REG_OPTION_VOLATILE): every key the call creates is volatile (gone at restart);
    the option is ignored for keys that already exist; a non-volatile key cannot be created under a
    volatile one (ERROR_CHILD_MUST_BE_VOLATILE, an IOException in .NET)."""
    if (
        len(args) != 3
        or not isinstance(args[1], PSEnum)
        or args[1].type_name != PERMISSION_CHECK
        or not isinstance(args[2], PSEnum)
        or args[2].type_name != REGISTRY_OPTIONS
    ):
        raise NotSimulated(
            "RegistryKey.CreateSubKey other than (String, RegistryKeyPermissionCheck, RegistryOptions)", ""
        )
    volatile = args[2].value == 1
    parts = [p for p in v.to_string(args[0]).split("\\") if p]
    state = host.state()
    view = cmdlets.registry_view(state)
    created: list[str] = []
    key = root.rstrip("\\")
    for part in parts:
        key = f"{key}\\{part}"
        if cmdlets.reg_exists(view, key):
            continue
        if not volatile and state.volatile_key_holding(key.rsplit("\\", 1)[0]):
            raise _method_error("CreateSubKey", 3, CHILD_MUST_BE_VOLATILE, "System.IO.IOException")
        created.append(key)
    if created:

        def create(s: TwinState) -> None:
            for k in created:
                s.registry.setdefault(k, {})
            if volatile:
                s.volatile_keys.append(created[0])  # its subkeys are volatile with it

        host.write(f"CreateSubKey {key}{' (volatile)' if volatile else ''}", create)
    return registry_key(host, PSObj("Microsoft.Win32.RegistryKey", {"PSPath": key, "Name": key}))


# --- registry writes ---------------------------------------------------------------------------

# New-ItemProperty -PropertyType (learn.microsoft.com/powershell/module/microsoft.powershell.management/
# new-itemproperty): RegistryValueKind names.
PROPERTY_TYPES = {"string", "expandstring", "binary", "dword", "multistring", "qword"}


def new_registry_key(c: Call, host: TwinHost, path: str, key: str) -> list[Any]:
    """New-Item <registry key> [-Force]: -Force creates missing parents; without it a missing
    parent is an error, and an existing key is 'already exists'.

    With -Force an existing key is DELETED (its values and subkeys) and created again empty:
    PowerShell's registry provider (RegistryProvider.NewItem in PowerShell's source, the same in
    Windows PowerShell 5.1) calls RemoveItem on the existing key before CreateSubKey. A script
    that means "make sure the key exists" must test for it first (Test-Path)."""
    view = cmdlets.registry_view(host.state())
    parent = key.rsplit("\\", 1)[0]
    forced = v.truthy(c.bound.get("Force"))
    low = key.rstrip("\\").lower()
    existing = [k for k in host.state().registry if k.lower() == low or k.lower().startswith(low + "\\")]
    if existing and forced:

        def recreate(s: TwinState) -> None:
            for k in existing:
                s.registry.pop(k, None)
            s.volatile_keys = [k for k in s.volatile_keys if k not in existing]
            s.registry[key] = {}

        host.write(f"New-Item -Force {key} (the existing key is deleted and created again)", recreate)
        return [registry_key(host, PSObj("Microsoft.Win32.RegistryKey", {"PSPath": key, "Name": key}))]
    if cmdlets.reg_exists(view, key) and not v.truthy(c.bound.get("Force")):
        c.write_error(
            "A key at this path already exists.",
            "System.IO.IOException",
            "ResourceExists",
            "System.IO.IOException,Microsoft.PowerShell.Commands.NewItemCommand",
            path,
        )
        return []
    if not cmdlets.reg_exists(view, parent) and not v.truthy(c.bound.get("Force")):
        c.write_error(
            f"Cannot find path '{path}' because it does not exist.",
            "System.Management.Automation.ItemNotFoundException",
            "ObjectNotFound",
            "PathNotFound,Microsoft.PowerShell.Commands.NewItemCommand",
            path,
        )
        return []
    if cmdlets.reg_find(view, key) is None:
        if host.state().volatile_key_holding(parent):
            # The registry provider creates non-volatile keys: refused under a volatile key.
            c.write_error(
                CHILD_MUST_BE_VOLATILE,
                "System.IO.IOException",
                "NotSpecified",
                "System.IO.IOException,Microsoft.PowerShell.Commands.NewItemCommand",
                path,
            )
            return []

        def create(s: TwinState) -> None:
            s.registry.setdefault(key, {})

        host.write(f"New-Item {key}", create)
    return [registry_key(host, PSObj("Microsoft.Win32.RegistryKey", {"PSPath": key, "Name": key}))]


def _key_not_found(c: Call, path: str) -> None:
    """The non-terminating ItemNotFound of a registry cmdlet on a key that does not exist."""
    c.write_error(
        f"Cannot find path '{path}' because it does not exist.",
        "System.Management.Automation.ItemNotFoundException",
        "ObjectNotFound",
        f"PathNotFound,Microsoft.PowerShell.Commands.{c.name.replace('-', '')}Command",
        path,
    )


def set_item_property(c: Call) -> list[Any]:
    """Set-ItemProperty -Path <key> -Name -Value (Microsoft Learn, "Set-ItemProperty"): the key
    must exist; the value is created when missing (REG_DWORD for an integer, REG_SZ otherwise,
    the .NET type's RegistryValueKind) and keeps its kind when it exists. No output without -PassThru."""
    host = host_of(c)
    path = single_path(c)
    key = cmdlets.reg_canonical(path)
    if key is None:
        raise c.not_simulated(f"Set-ItemProperty outside the registry ({path})")
    name = v.to_string(c.bound.get("Name"))
    value = c.bound.get("Value")
    view = cmdlets.registry_view(host.state())
    stored = cmdlets.reg_find(view, key)
    if stored is None and cmdlets.reg_exists(view, key):
        stored = key  # a parent New-Item -Force created on the way to a subkey: it exists, with no values
        view[stored] = {}
    if stored is None:
        _key_not_found(c, path)
        return []
    existing = next((n for n in view[stored] if n.lower() == name.lower()), None)
    as_number = isinstance(view[stored].get(existing), int) if existing else isinstance(value, int)
    data: Any = v.to_int(value) if as_number and not isinstance(value, bool) else v.to_string(value)

    def put(s: TwinState) -> None:
        s.registry.setdefault(stored, {})[existing or name] = data

    host.write(f"Set-ItemProperty {stored}\\{name}", put)
    return []


def new_item_property(c: Call) -> list[Any]:
    """New-ItemProperty -LiteralPath <key> -Name -PropertyType -Value [-Force]: the key must exist;
    an existing value is an error unless -Force overwrites it."""
    host = host_of(c)
    path = single_path(c)
    key = cmdlets.reg_canonical(path)
    if key is None:
        raise c.not_simulated(f"New-ItemProperty outside the registry ({path})")
    kind = v.to_string(c.bound.get("PropertyType") or "String")
    if kind.lower() not in PROPERTY_TYPES:
        raise c.fail(
            f"Cannot bind parameter 'PropertyType'. Cannot convert value \"{kind}\" to type "
            '"Microsoft.Win32.RegistryValueKind".',
            "System.Management.Automation.ParameterBindingException",
        )
    name = v.to_string(c.bound.get("Name"))
    value = c.bound.get("Value")
    data: Any
    if kind.lower() == "multistring":
        data = [v.to_string(x) for x in v.as_list(value)]
    elif kind.lower() in ("dword", "qword"):
        number = v.to_int(value)
        bits = 32 if kind.lower() == "dword" else 64
        if not -(2 ** (bits - 1)) <= number < 2**bits:
            raise c.fail(
                f'Cannot convert value "{v.to_string(value)}" to type "System.Int{bits}".',
                "System.Management.Automation.PSInvalidCastException",
            )
        data = number & (2**bits - 1)  # stored as the registry holds it: unsigned
    else:
        data = v.to_string(value)
    view = cmdlets.registry_view(host.state())
    stored = cmdlets.reg_find(view, key)
    if stored is None:
        _key_not_found(c, path)
        return []
    existing = next((n for n in view[stored] if n.lower() == name.lower()), None)
    if existing is not None and not v.truthy(c.bound.get("Force")):
        c.write_error(
            "The property already exists.",
            "System.IO.IOException",
            "ResourceExists",
            "System.IO.IOException,Microsoft.PowerShell.Commands.NewItemPropertyCommand",
            path,
        )
        return []

    from rebuild.lab.exec import twin_firewall, twin_system

    def put(s: TwinState) -> None:
        values = s.registry.setdefault(stored, {})
        values[existing or name] = data
        if stored.lower().startswith(twin_system.DEFENDER_POLICY.lower()):
            twin_system.sync_defender(s)  # Defender follows its policy keys

    host.write(f"New-ItemProperty {stored}\\{name}", put)
    if twin_firewall.is_device_guard_key(stored):
        twin_firewall.device_guard_written(host)  # applies from the next boot
    return [PSObj("System.Management.Automation.PSCustomObject", {name: data, "PSPath": stored})]
