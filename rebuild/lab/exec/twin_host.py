"""The Windows a script sees in the lab: cmdlets and .NET members on a twin's state (SIMULATION).

`TwinHost` plugs the twin into the PowerShell evaluator (`rebuild.lab.ps`). Read cmdlets reuse
the read subset's implementations in `cmdlets.py` (same objects, same errors); the cmdlets our
product modules write with are here, each following its Microsoft Learn page (listed in
docs/lab-powershell.md). Every write goes through `TwinHost.write`, which refuses in check mode:
a module that writes while Ansible asked for check mode fails loudly instead of changing the twin.

Installer files the script stages are kept in memory for the run (the twin's files hold text);
a simulated installer's content says which catalogue entry and version it installs
(`rebuild.lab.installers.simulated_content`), so what gets installed is what the file is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable
from typing import Any

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.exec import (
    cmdlets,
    native,
    reboot,
    twin_bitlocker,
    twin_firewall,
    twin_laps,
    twin_policy,
    twin_remoting,
    twin_security,
    twin_system,
)
from rebuild.lab.exec.psobjects import PSDate, PSObj
from rebuild.lab.exec.read_cmdlets import READ_CMDLETS
from rebuild.lab.exec.twin_call import single_path as _path
from rebuild.lab.exec.winenv import DIRECTORY, environment, find_path
from rebuild.lab.installers import EDR_AGENT_ID, SIMULATED_BANNER, edr_install_effects, local_path
from rebuild.lab.ps import ansible_basic
from rebuild.lab.ps import values as v
from rebuild.lab.ps.binding import Param, Signature
from rebuild.lab.ps.commands import Call, Cmdlet, Host, NativeResult
from rebuild.lab.ps.errors import ErrorRecord, NotSimulated, PSRuntimeError
from rebuild.lab.ps.evaluator import Evaluator
from rebuild.lab.ps.parser import Node
from rebuild.lab.ps.values import TypeRef
from rebuild.lab.state import TwinState

# Imported for their @read_cmdlet registrations in READ_CMDLETS (cmdlets.py is imported above).
from rebuild.lab.exec import twin_firmware  # noqa: F401  isort: skip

LEARN = "https://learn.microsoft.com/powershell/module/"
CERT_KEY = twin_remoting.CERT_KEY
PRINTER_KEY = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Print\\Printers\\{name}"
PORT_KEY = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Print\\Monitors\\Standard TCP/IP Port\\Ports\\{name}"
# Drivers present on a clean Windows install (our module adds queues, not drivers).
INBOX_DRIVERS = {
    "Microsoft IPP Class Driver",
    "Microsoft Print To PDF",
    "Microsoft XPS Document Writer v4",
    "Generic / Text Only",
}


NOT_SIMULATED = "the rebuild lab (a simulation) does not simulate "


class CheckModeWrite(Exception):
    """A module tried to change the twin while running in check mode."""


class ScriptHangs(Exception):  # what Windows would do: wait forever
    """The script waits for something that never ends on Windows; the task would time out."""


class TwinHost(Host):
    def __init__(
        self,
        lab: Lab,
        twin: TwinRecord,
        *,
        complex_args: dict[str, Any] | None = None,
        module_name: str = "",
        check_mode: bool = False,
        session_user: str | None = None,
        console: bool = False,
    ) -> None:
        self.lab = lab
        # Runs in the interactive console session (AutoLogon's first logon), not a WinRM one.
        self.console = console
        self.twin = twin
        self.complex_args = complex_args or {}
        self.module_name = module_name
        self.check_mode = check_mode
        self.module: ansible_basic.AnsibleModule | None = None
        self.staged: dict[str, bytes] = {}  # lower-cased Windows path -> bytes written this run
        self.writes: list[str] = []
        # The lab's WinRM accepts only NTLM and Basic (rebuild/lab/auth.py): no Kerberos delegation,
        # no CredSSP, so a module never has network credentials for a UNC path.
        self.network_credentials = False
        # [Net.ServicePointManager]::SecurityProtocol: .NET Framework 4.7+ on Windows 10/Server 2016+
        # defaults to SystemDefault (0), letting the OS choose (learn.microsoft.com/dotnet/framework/
        # network-programming/tls).
        self.security_protocol = 0
        # Registry handles into loaded hives (HKU\<name>) this PowerShell session still holds: the
        # RegistryKey objects the registry provider hands out are closed only when .NET finalizes them.
        self.hive_handles: dict[str, int] = {}
        # Handles of the RegistryKey objects the script holds (closed by .Close() or by finalizers).
        self.key_handles: dict[str, int] = {}
        self.gc_collected = False
        self.mounted_in_run: set[str] = set()
        self._state: TwinState | None = None
        self._pending: list[Callable[[TwinState], None]] = []
        # The account the WinRM session authenticated as ([Security.Principal.WindowsIdentity]::GetCurrent).
        self.session_user = session_user
        # Temporary files the script creates ([IO.Path]::GetTempFileName): lower-cased path -> bytes.
        self.scratch: dict[str, bytes] = {}
        self._env = environment(lab.peek(twin.name), twin)  # reads the name only: no copy

    # --- plumbing ---

    def state(self) -> TwinState:
        """The twin as this run sees it: read once, then kept current by this run's own writes (a
        module run is the only writer of its twin while it runs)."""
        if self._state is None:
            self._state = self.lab.state(self.twin.name)
        return self._state

    def write(self, what: str, change: Callable[[TwinState], None]) -> None:
        if self.check_mode:
            raise CheckModeWrite(f"{self.module_name or 'the script'} changed the twin in check mode: {what}")
        self.writes.append(what)
        self._apply(change)

    def _apply(self, change: Callable[[TwinState], None]) -> None:
        """Change the run's view now; the twin's store gets every change of the run at `flush`
        (replayed in order on the stored state: one store write per run instead of one per cmdlet)."""
        change(self.state())
        self._pending.append(change)

    def finish(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Store what the run changed (called when the run ends, however it ends)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []

        def replay(s: TwinState) -> None:
            for change in pending:
                change(s)

        self._state = self.lab.update(self.twin.name, replay)

    def mount(self, what: str, hive: str, loaded: bool, change: Callable[[TwinState], None]) -> None:
        """Load or unload a registry hive: allowed in check mode (reading a hive needs it loaded), as
        long as the run leaves it as it found it (`left_mounted`)."""
        self.writes.append(what)
        if hive in self.mounted_in_run and not loaded:
            self.mounted_in_run.discard(hive)
        elif loaded:
            self.mounted_in_run.add(hive)
        self._apply(change)

    def left_mounted(self) -> list[str]:
        """Hives this run loaded and did not unload (in check mode, a change the run leaves behind)."""
        return sorted(self.mounted_in_run)

    def env(self) -> dict[str, str]:
        return self._env

    def time_zone(self) -> str:
        return cmdlets.twin_time_zone(self.state())

    def cmdlet(self, name: str) -> Cmdlet | None:
        return _CMDLETS.get(name.lower())

    def native(self, call: Call, name: str, args: list[str]) -> NativeResult | None:
        program = name.lower().rsplit("\\", 1)[-1]
        if program in ("reg", "reg.exe") and args and args[0].lower() in ("load", "unload"):
            return _reg_hive(self, args)
        if program in ("reg", "reg.exe") and args and args[0].lower() == "add":
            return _reg_add(self, args)
        if program in ("auditpol", "auditpol.exe") and (policy := twin_policy.auditpol(self, args)):
            return policy  # /backup, /set; /get is a read below
        if program in ("secedit", "secedit.exe"):
            return twin_policy.secedit(self, args)
        if program in ("shutdown", "shutdown.exe"):
            return reboot.shutdown(self, args)
        answer = native.read_program(self.state(), program.removesuffix(".exe"), args)
        if answer is not None:
            rc, out, err = answer
            refused = err.decode("utf-8", "replace").strip()
            if refused.startswith(NOT_SIMULATED):
                raise call.not_simulated(refused.removeprefix(NOT_SIMULATED))
            return NativeResult(rc, _lines(out), _lines(err))
        return None

    def touch_registry(self, path: str) -> None:
        """A provider cmdlet opened a key: a key under a loaded user hive keeps a handle open."""
        key = cmdlets.reg_canonical(path)
        if key is None or not key.upper().startswith("HKU:\\"):
            return
        hive = key[5:].split("\\", 1)[0].lower()
        if hive:
            self.hive_handles[hive] = self.hive_handles.get(hive, 0) + 1
            self.gc_collected = False

    def static(self, ev: Evaluator, type_name: str, member: str, args: list[Any] | None, node: Node) -> Any:
        t, m = type_name.lower(), member.lower()
        if t == "ansible.basic.ansiblemodule" and m == "create" and args is not None and len(args) == 2:
            module = ansible_basic.create(ev, self.complex_args, args[1], self.module_name, self._env)
            self.module = module
            return module
        if t == "system.net.servicepointmanager" and m == "securityprotocol" and args is None:
            return self.security_protocol
        if t == "system.gc" and m == "collect" and args == []:
            self.gc_collected = True  # unreachable RegistryKey objects now wait for their finalizers
            return None
        if t == "system.gc" and m == "waitforpendingfinalizers" and args == []:
            if self.gc_collected:
                self.hive_handles.clear()  # finalizers ran: the provider's key handles are closed
                self.key_handles.clear()
            return None
        value = twin_security.static(self, ev, type_name, member, args, node)
        if value is not twin_security._UNHANDLED:
            return value
        return super().static(ev, type_name, member, args, node)

    def static_set(self, ev: Evaluator, type_name: str, member: str, value: Any, node: Node) -> None:
        if type_name.lower() == "system.net.servicepointmanager" and member.lower() == "securityprotocol":
            self.security_protocol = v.to_int(value)
            return
        super().static_set(ev, type_name, member, value, node)

    def new_object(self, c: Call, tref: TypeRef, args: list[Any]) -> Any:
        """New-Object Security.Principal.NTAccount <name> / SecurityIdentifier <sid string> /
        System.Management.Automation.PSCredential(<user>, <SecureString>)."""
        if tref.name in (twin_policy.NTACCOUNT, twin_policy.SECURITY_IDENTIFIER) and len(args) == 1:
            return twin_policy.identity(self.state(), tref.name, v.to_string(args[0]))
        if tref.name == twin_remoting.PS_CREDENTIAL:
            return twin_remoting.new_credential(c, args)
        return None

    def file_bytes(self, path: str) -> bytes | None:
        if path.lower() in self.staged:
            return self.staged[path.lower()]
        state = self.state()
        stored = find_path(state.files, path)
        if stored is None or state.files[stored] == DIRECTORY:
            return None
        return state.files[stored].encode("utf-8")


def _lines(data: bytes) -> list[str]:
    """A program's output as the lines PowerShell reads from it."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n").removesuffix("\n")
    return text.split("\n") if text else []


def _host(c: Call) -> TwinHost:
    host = c.ev.host
    assert isinstance(host, TwinHost)
    return host


def _not_found(c: Call, path: str) -> None:
    c.write_error(
        f"Cannot find path '{path}' because it does not exist.",
        "System.Management.Automation.ItemNotFoundException",
        "ObjectNotFound",
        "PathNotFound",
        path,
    )


# --- the read subset, bridged ------------------------------------------------------------------


def _bridge(name: str) -> Callable[[Call], list[Any]]:
    """Run a registered read cmdlet (read_cmdlets.py) with the parameters the evaluator bound."""
    read = READ_CMDLETS[name].read

    def run(c: Call) -> list[Any]:
        # Several -Path values: each path is processed in turn, with its own errors (as PowerShell does).
        for pname in ("Path", "LiteralPath"):
            paths = c.bound.get(pname)
            if isinstance(paths, list) and len(paths) > 1:
                out: list[Any] = []
                for one in paths:
                    single = Call(
                        c.ev,
                        c.name,
                        type(c.bound)({**c.bound.values, pname: one}),
                        c.input,
                        c.has_input,
                        c.node,
                    )
                    out.extend(run(single))
                return out
        host = _host(c)
        for pname in ("Path", "LiteralPath"):
            if pname in c.bound:
                host.touch_registry(v.to_string(c.bound.get(pname)))
        context = cmdlets.ReadContext(_RunLab(host), host.twin)  # type: ignore[arg-type]
        switches = {p.name for p in READ_CMDLETS[name].signature.params if p.switch}
        bound = {
            pname: (v.truthy(value) if pname in switches else _read_value(value))
            for pname, value in c.bound.values.items()
            if pname not in ("ErrorAction", "WarningAction", "ErrorVariable", "OutVariable")
        }
        try:
            return [
                twin_security.registry_key(host, x)
                if isinstance(x, PSObj) and x.type_name == "Microsoft.Win32.RegistryKey"
                else x
                for x in read(context, bound)
            ]
        except cmdlets.ReadError as exc:
            if exc.terminating:
                raise PSRuntimeError(ErrorRecord(exc.message, command=c.name)) from None
            c.write_error(
                exc.message,
                "System.Management.Automation.ItemNotFoundException"
                if "does not exist" in exc.message
                else "System.Exception",
                "ObjectNotFound",
            )
            return []
        except NotSimulated as exc:
            if exc.where:
                raise
            raise NotSimulated(exc.what, c.ev.where(c.node)) from None

    return run


class _RunLab:
    """The lab as a bridged read cmdlet sees it during a run: the run's view of its twin."""

    def __init__(self, host: TwinHost) -> None:
        self._host = host

    def state(self, name: str) -> TwinState:
        if name != self._host.twin.name:
            return self._host.lab.state(name)
        return self._host.state()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host.lab, name)


def _read_value(value: Any) -> Any:
    if isinstance(value, list):
        return [v.to_string(x) if not isinstance(x, int | bool) else x for x in value]
    return value if isinstance(value, int | bool) else v.to_string(value)


# --- files -------------------------------------------------------------------------------------


def _test_path(c: Call) -> list[Any]:
    """Test-Path: Cert:\\LocalMachine\\<store>\\<thumbprint> is a certificate in that store."""
    path = _path(c)
    m = re.fullmatch(r"cert:\\localmachine\\([^\\]+)\\([0-9a-f]+)", path, re.I)
    if m:
        key = CERT_KEY.format(store=m.group(1).upper(), thumb=m.group(2).upper())
        return [cmdlets.reg_exists(cmdlets.registry_view(_host(c).state()), key)]
    if path.lower() in _host(c).staged:
        return [True]
    return _bridge("Test-Path")(c)


# Encodings of Set-Content/Get-Content -Encoding in Windows PowerShell 5.1 (FileSystemCmdletProviderEncoding):
# Default is the system's ANSI code page (Windows-1252 on our images), Unicode is UTF-16LE with a BOM.
_ENCODINGS = {
    "unicode": "utf-16",
    "bigendianunicode": "utf-16-be",
    "utf8": "utf-8-sig",
    "utf7": "utf-7",
    "utf32": "utf-32",
    "ascii": "ascii",
    "default": "cp1252",
    "string": "utf-16",
    "oem": "cp437",
}


def _encoding(c: Call, default: str) -> str:
    name = v.to_string(c.bound.get("Encoding") or default).lower()
    if name not in _ENCODINGS:
        raise c.fail(
            f"Cannot bind parameter 'Encoding'. Cannot convert value \"{name}\" to type "
            '"Microsoft.PowerShell.Commands.FileSystemCmdletProviderEncoding".',
            "System.Management.Automation.ParameterBindingException",
        )
    return _ENCODINGS[name]


def _get_content(c: Call) -> list[Any]:
    """Get-Content: a temporary file of this run is decoded with -Encoding (default: ANSI); other
    files are the twin's (the read subset)."""
    host = _host(c)
    paths = v.as_list(c.bound.get("LiteralPath", c.bound.get("Path")))
    if len(paths) == 1 and v.to_string(paths[0]).lower() in host.scratch:
        data = host.scratch[v.to_string(paths[0]).lower()]
        try:
            text = data.decode(_encoding(c, "Default"))
        except UnicodeDecodeError:
            raise c.not_simulated("reading a file with the wrong -Encoding") from None
        if v.truthy(c.bound.get("Raw")):
            return [text]
        lines = text.replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return lines
    if "Encoding" in c.bound:
        raise c.not_simulated("Get-Content -Encoding on a file of the twin")
    return _bridge("Get-Content")(c)


def _set_content(c: Call) -> list[Any]:
    """Set-Content -LiteralPath -Value [-Encoding]: lines joined with CRLF, each ended by one (5.1).
    Only temporary files of this run (from [IO.Path]::GetTempFileName) are writable in the lab."""
    host = _host(c)
    path = _path(c)
    if path.lower() not in host.scratch:
        raise c.not_simulated(f"Set-Content on {path} (only temporary files of the run)")
    lines = [v.to_string(x) for x in v.as_list(c.bound.get("Value"))]
    host.scratch[path.lower()] = "".join(line + "\r\n" for line in lines).encode(_encoding(c, "Default"))
    return []


def _import_csv(c: Call) -> list[Any]:
    """Import-Csv -LiteralPath: the first line names the properties; one PSCustomObject per row
    (microsoft.powershell.utility/import-csv)."""
    import csv

    host = _host(c)
    path = _path(c)
    data = host.scratch.get(path.lower())
    if data is None:
        data = host.file_bytes(path)
    if data is None:
        _not_found(c, path)
        return []
    delimiter = v.to_string(c.bound.get("Delimiter") or ",")
    rows = list(csv.reader(data.decode(_encoding(c, "Default")).splitlines(), delimiter=delimiter))
    if not rows:
        return []
    header = rows[0]
    return [
        PSObj(
            "System.Management.Automation.PSCustomObject",
            {h: (row[i] if i < len(row) else None) for i, h in enumerate(header)},
        )
        for row in rows[1:]
        if row
    ]


def _get_cim_instance(c: Call) -> list[Any]:
    """Get-CimInstance: Win32_DeviceGuard in root\\Microsoft\\Windows\\DeviceGuard; root\\cimv2 classes
    as the read subset."""
    namespace = v.to_string(c.bound.get("Namespace") or "root\\cimv2").lower().strip("\\")
    cls = v.to_string(c.bound.get("ClassName")).lower()
    if namespace == "root\\microsoft\\windows\\deviceguard":
        if cls != "win32_deviceguard" or "Filter" in c.bound or "Property" in c.bound:
            raise c.not_simulated(f"Get-CimInstance {cls} in {namespace}")
        return [twin_firewall.win32_device_guard(_host(c))]
    if namespace != "root\\cimv2":
        raise c.not_simulated(f"Get-CimInstance -Namespace {namespace}")
    rest = type(c.bound)({k: x for k, x in c.bound.values.items() if k != "Namespace"})
    return _bridge("Get-CimInstance")(Call(c.ev, c.name, rest, c.input, c.has_input, c.node))


def _get_net_firewall_rule(c: Call) -> list[Any]:
    if "Name" in c.bound:
        raise c.not_simulated("Get-NetFirewallRule -Name")
    return twin_firewall.get_net_firewall_rule(c)


def _new_item(c: Call) -> list[Any]:
    """New-Item -ItemType Directory [-Force]: with -Force an existing directory is returned, not an error."""
    path = _path(c)
    if twin_remoting.is_listener_path(path):
        return twin_remoting.new_listener(c, path)
    for dynamic in twin_remoting.LISTENER_PARAMS:
        if dynamic in c.bound:  # the WSMan provider's dynamic parameters exist only under WSMan:
            raise _no_parameter(c, dynamic)
    key = cmdlets.reg_canonical(path)
    if key is not None and "ItemType" not in c.bound:
        return twin_security.new_registry_key(c, _host(c), path, key)
    kind = v.to_string(c.bound.get("ItemType") or "File").lower()
    if kind != "directory":
        raise c.not_simulated(f"New-Item -ItemType {kind}")
    host = _host(c)
    state = host.state()
    exists = find_path(state.files, path) is not None or any(
        k.lower().startswith(path.lower().rstrip("\\") + "\\") for k in state.files
    )
    if exists and not v.truthy(c.bound.get("Force")):
        c.write_error(
            f"An item with the specified name {path} already exists.",
            "System.IO.IOException",
            "ResourceExists",
            "DirectoryExist",
        )
        return []
    if not exists:

        def mkdir(s: TwinState) -> None:
            s.files[path] = DIRECTORY

        host.write(f"New-Item {path}", mkdir)
    return [PSObj("System.IO.DirectoryInfo", {"FullName": path, "Name": path.rsplit("\\", 1)[-1]})]


def _no_parameter(c: Call, name: str) -> PSRuntimeError:
    """What the binder says of a parameter the cmdlet does not have at this path."""
    return c.fail(
        f"A parameter cannot be found that matches parameter name '{name}'.",
        "System.Management.Automation.ParameterBindingException",
        "InvalidArgument",
    )


def _get_child_item(c: Call) -> list[Any]:
    path = v.to_string(c.bound.get("LiteralPath", c.bound.get("Path")))
    if twin_remoting.is_listener_path(path):
        return twin_remoting.get_listeners(c, path)
    return _bridge("Get-ChildItem")(c)


def _repository_file(c: Call, source: str) -> bytes | None:
    """The deployment share the lab serves: the catalogue's repository, backed by <lab_dir>/installers."""
    from rebuild.lab.installers import catalogue

    host = _host(c)
    root = catalogue().repository.rstrip("\\/")
    norm = source.replace("/", "\\") if source.startswith("\\\\") else source
    root_norm = root.replace("/", "\\") if root.startswith("\\\\") else root
    if not norm.lower().startswith(root_norm.lower() + ("\\" if root.startswith("\\\\") else "/")):
        return None
    relative = norm[len(root_norm) + 1 :]
    if root.startswith("https://"):
        import urllib.parse

        relative = urllib.parse.unquote(relative)
    _populate(host.lab)
    try:
        path = local_path(host.lab.config.lab_dir, relative)
    except ValueError:
        return None
    return path.read_bytes() if path.is_file() else None


def _populate(lab: Lab) -> None:
    from rebuild.lab.installers import catalogue, ensure_repository

    cat = catalogue()
    entries = [(a.id, a.version, a.installer) for a in cat.applications.values()]
    entries += [(x.id, x.version, x.file) for x in cat.certificates.values()]
    ensure_repository(lab.config.lab_dir, entries)


def _share_refused(c: Call, path: str, command_class: str) -> bool:
    """A UNC path read without a credential the file server accepts: "Access is denied."

    The second hop: a WinRM session authenticated with NTLM or Basic holds no credential the
    host can present to another server (learn.microsoft.com/powershell/scripting/security/remoting/
    ps-remoting-second-hop); a local account at first logon has none either. The file server
    sees an anonymous (guest) logon and refuses it (Microsoft Learn, "Guest access in SMB2 and
    SMB3 disabled by default in Windows").
    """
    if not path.startswith("\\\\") or _host(c).network_credentials:
        return False
    c.write_error(
        "Access is denied.",
        "System.UnauthorizedAccessException",
        "PermissionDenied",
        f"System.UnauthorizedAccessException,Microsoft.PowerShell.Commands.{command_class}",
        path,
    )
    return True


def _stage(c: Call, source: str, destination: str) -> list[Any]:
    host = _host(c)
    if _share_refused(c, source, "CopyItemCommand"):
        return []
    data = _repository_file(c, source) if source.startswith(("\\\\", "https://")) else host.file_bytes(source)
    if data is None:
        _not_found(c, source)
        return []
    if host.check_mode:
        raise CheckModeWrite(f"{host.module_name} copied {source} in check mode")
    host.staged[destination.lower()] = data
    host.writes.append(f"stage {destination}")
    return []


def _copy_item(c: Call) -> list[Any]:
    """Copy-Item -LiteralPath <src> -Destination <file>."""
    return _stage(c, _path(c), v.to_string(c.bound.get("Destination")))


def _invoke_web_request(c: Call) -> list[Any]:
    """Invoke-WebRequest -Uri <https> -OutFile <file>: only the lab's deployment share answers."""
    if "OutFile" not in c.bound:
        raise c.not_simulated("Invoke-WebRequest without -OutFile")
    uri = v.to_string(c.bound.get("Uri"))
    if _repository_file(c, uri) is None:
        raise c.fail("The remote server returned an error: (404) Not Found.", "System.Net.WebException")
    return _stage(c, uri, v.to_string(c.bound.get("OutFile")))


def _get_file_hash(c: Call) -> list[Any]:
    path = _path(c)
    algorithm = v.to_string(c.bound.get("Algorithm") or "SHA256").upper()
    if algorithm not in ("SHA256", "SHA1"):
        raise c.not_simulated(f"Get-FileHash -Algorithm {algorithm}")
    if _share_refused(c, path, "GetFileHashCommand"):
        return []
    data = _host(c).file_bytes(path)
    if data is None:
        _not_found(c, path)
        return []
    digest = hashlib.new(algorithm.lower().replace("sha", "sha"), data).hexdigest().upper()
    return [
        PSObj("Microsoft.Powershell.Utility.FileHash", {"Algorithm": algorithm, "Hash": digest, "Path": path})
    ]


def _remove_item(c: Call) -> list[Any]:
    host = _host(c)
    given = c.bound.get("LiteralPath", c.bound.get("Path"))
    if given is None and c.has_input:
        # -LiteralPath takes pipeline input by property name (PSPath): Learn, "Remove-Item".
        given = [x.props.get("PSPath") if isinstance(x, PSObj) else x for x in c.input]
        if not given:
            return []
    paths = [v.to_string(x) for x in v.as_list(given)]
    if len(paths) > 1:  # several paths: each removed in turn, with its own errors
        for one in paths:
            _remove_item(
                Call(
                    c.ev,
                    c.name,
                    type(c.bound)({**c.bound.values, "LiteralPath": one}),
                    c.input,
                    c.has_input,
                    c.node,
                )
            )
        return []
    path = v.to_string(paths[0]).rstrip("\\") if paths else _path(c).rstrip("\\")
    if twin_remoting.is_listener_path(path):
        return twin_remoting.remove_listener(c, path)
    key = cmdlets.reg_canonical(path)
    if key is not None:
        return _remove_registry_key(c, key, path)
    if path.lower() in host.scratch:
        del host.scratch[path.lower()]  # a temporary file of this run
        return []
    prefix = path.lower() + "\\"
    staged = [k for k in host.staged if k == path.lower() or k.startswith(prefix)]
    state = host.state()
    stored = [k for k in state.files if k.lower() == path.lower() or k.lower().startswith(prefix)]
    if not staged and not stored:
        _not_found(c, path)
        return []
    if len(staged) + len(stored) > 1 and not v.truthy(c.bound.get("Recurse")):
        raise c.not_simulated(
            "Remove-Item of a non-empty directory without -Recurse (Windows asks for confirmation)"
        )
    for k in staged:
        del host.staged[k]
    if stored:

        def remove(s: TwinState) -> None:
            for k in stored:
                s.files.pop(k, None)

        host.write(f"Remove-Item {path}", remove)
    return []


def _remove_registry_key(c: Call, key: str, path: str) -> list[Any]:
    """Remove-Item on a registry key: the key and its values; a key with subkeys needs -Recurse
    (without it Windows asks for confirmation, which a non-interactive session cannot give)."""
    host = _host(c)
    low = key.rstrip("\\").lower()
    stored = [k for k in host.state().registry if k.lower() == low or k.lower().startswith(low + "\\")]
    if not stored:
        if cmdlets.reg_exists(cmdlets.registry_view(host.state()), key):
            raise c.not_simulated(f"Remove-Item on {path} (a key derived from installed applications)")
        _not_found(c, path)
        return []
    if any(k.lower() != low for k in stored) and not v.truthy(c.bound.get("Recurse")):
        raise c.not_simulated(f"Remove-Item of the registry key {path} with subkeys without -Recurse")

    def remove(s: TwinState) -> None:
        for k in stored:
            s.registry.pop(k, None)

    host.write(f"Remove-Item {path}", remove)
    return []


# --- reg.exe load/unload ------------------------------------------------------------------------

HIVE_STORE = "HKLM:\\SYSTEM\\RebuildLab\\HiveFiles\\{file}"  # SIMULATION: a hive file's keys while unloaded


def run_writing_program(
    lab: Lab, twin: TwinRecord, prog: str, args: list[str], console: bool
) -> tuple[int, bytes, bytes] | None:
    """`reg add` and `shutdown` started by cmd.exe (`prog` without `.exe`): they change the twin;
    None for any other program."""
    if not ((prog == "reg" and args[:1] and args[0].lower() == "add") or prog == "shutdown"):
        return None
    host = TwinHost(lab, twin, console=console)
    try:
        result = _reg_add(host, args) if prog == "reg" else reboot.shutdown(host, args)
    except NotSimulated as exc:
        return 1, b"", f"{exc}\r\n".encode()
    finally:
        host.finish()
    if result is None:
        return 1, b"", f"{NOT_SIMULATED}shutdown {' '.join(args)}\r\n".encode()
    out = "".join(line + "\r\n" for line in result.stdout).encode()
    return result.rc, out, "".join(line + "\r\n" for line in result.stderr).encode()


_REG_ROOT = re.compile(r"^(HKLM|HKCU|HKCR|HKU|HKCC)(?=\\|$)", re.I)


def _reg_add(host: TwinHost, args: list[str]) -> NativeResult:
    """`reg add <key> [/v <name>] [/t REG_SZ|REG_DWORD] [/d <data>] [/f]` (Microsoft Learn, "reg add").

    The key and its parents are created; /t defaults to REG_SZ; REG_DWORD data is decimal or 0x
    hex and must fit 32 bits. Without /f an existing value makes reg ask "overwrite (Yes/No)?"
    on the console, which the lab does not simulate."""
    key = cmdlets.reg_canonical(_REG_ROOT.sub(r"\1:", args[1])) if len(args) > 1 else None
    if key is None:
        return NativeResult(1, [], ["ERROR: Invalid key name.", 'Type "REG ADD /?" for usage.'])
    options: dict[str, str] = {}
    i = 2
    while i < len(args):
        opt = args[i].lower()
        if opt == "/f":
            options["/f"] = ""
        elif opt in ("/v", "/t", "/d") and i + 1 < len(args) and opt not in options:
            options[opt] = args[i + 1]
            i += 1
        else:
            raise cmdlets.not_simulated(f"reg add {args[i]} (only /v /t /d /f)")
        i += 1
    kind = options.get("/t", "REG_SZ").upper()
    text = options.get("/d", "")
    data: Any
    if kind == "REG_SZ":
        data = text
    elif kind == "REG_DWORD":
        number = int(text, 16) if text.lower().startswith("0x") else int(text) if text.isdigit() else -1
        if not 0 <= number < 2**32:
            return NativeResult(1, [], ["ERROR: Invalid syntax.", 'Type "REG ADD /?" for usage.'])
        data = number
    else:
        raise cmdlets.not_simulated(f"reg add /t {kind}")
    view = cmdlets.registry_view(host.state())
    stored = cmdlets.reg_find(view, key) or key
    name = options.get("/v")
    existing = (
        None if name is None else next((n for n in view.get(stored, {}) if n.lower() == name.lower()), None)
    )
    if existing is not None and "/f" not in options:
        raise cmdlets.not_simulated("reg add's console prompt to overwrite an existing value (use /f)")

    def add(s: TwinState) -> None:
        values = s.registry.setdefault(stored, {})
        if name is not None:
            values[existing or name] = data

    host.write(f"reg add {stored}", add)
    return NativeResult(0, ["The operation completed successfully.", ""], [])


def _reg_hive(host: TwinHost, args: list[str]) -> NativeResult:
    """`reg load HKU\\<name> <file>` / `reg unload HKU\\<name>` (Microsoft Learn, reg load / reg unload).

    Unload fails with "Access is denied." while any handle into the hive is open (RegUnLoadKey:
    the key cannot be unloaded while handles to it are open); PowerShell's registry provider keeps
    a RegistryKey's handle until .NET finalizes it, i.e. after `[GC]::Collect()` and
    `[GC]::WaitForPendingFinalizers()` (issue 12 item 10). A hive still loaded cannot be loaded again."""
    verb = args[0].lower()
    m = re.fullmatch(r"(?:HKU|HKEY_USERS)\\([^\\]+)", args[1] if len(args) > 1 else "", re.I)
    if not m:
        return NativeResult(1, [], ["ERROR: Invalid key name.", f'Type "REG {verb.upper()} /?" for usage.'])
    name = m.group(1)
    mount = f"HKU:\\{name}"
    marker = f"HKLM:\\SYSTEM\\RebuildLab\\LoadedHives\\{name}"
    loaded = marker in host.state().registry
    if verb == "load":
        if len(args) != 3:
            return NativeResult(1, [], ["ERROR: Invalid syntax.", 'Type "REG LOAD /?" for usage.'])
        file = args[2]
        if host.file_bytes(file) is None and find_path(host.state().files, file) is None:
            return NativeResult(1, [], ["ERROR: The system cannot find the file specified."])
        if loaded:
            return NativeResult(
                1,
                [],
                ["ERROR: The process cannot access the file because it is being used by another process."],
            )
        store = HIVE_STORE.format(file=file.lower())

        def load(s: TwinState) -> None:
            s.registry[mount] = dict(s.registry.get(store, {}))
            for k, values in list(s.registry.items()):
                if k.lower().startswith(store.lower() + "\\"):
                    s.registry[mount + k[len(store) :]] = dict(values)
            s.registry[marker] = {"File": file, "Stored": int(store in s.registry)}

        host.mount(f"reg load {mount}", name.lower(), True, load)
        return NativeResult(0, ["The operation completed successfully.", ""], [])
    if not loaded:
        return NativeResult(1, [], ["ERROR: The parameter is incorrect."])
    if host.hive_handles.get(name.lower(), 0) > 0 or host.key_handles.get(name.lower(), 0) > 0:
        return NativeResult(1, [], ["ERROR: Access is denied."])
    file = str(host.state().registry[marker].get("File", name))
    store = HIVE_STORE.format(file=file.lower())

    def unload(s: TwinState) -> None:
        had_root = bool(s.registry.get(marker, {}).get("Stored", 1))
        for k in list(s.registry):
            if k.lower() == mount.lower() or k.lower().startswith(mount.lower() + "\\"):
                values = s.registry.pop(k)
                if k.lower() != mount.lower() or values or had_root:
                    s.registry[store + k[len(mount) :]] = values
        s.registry.pop(marker, None)

    host.mount(f"reg unload {mount}", name.lower(), False, unload)
    return NativeResult(0, ["The operation completed successfully.", ""], [])


# --- services ----------------------------------------------------------------------------------

# Protected services refuse configuration changes even from administrators (Microsoft Learn,
# "Protecting anti-malware services": Defender and Security Center run as protected services).
# SERVICE_LAUNCH_PROTECTED_INFO (learn.microsoft.com/windows/win32/api/winsvc/
# ns-winsvc-service_launch_protected_info):
# once the service is launched as protected, unprotected processes cannot call ChangeServiceConfig
# (Set-Service) or ControlService (Stop-Service) on it; StartService is not among them.
PROTECTED_SERVICES = {"wscsvc", "windefend", "securityhealthservice", "wdnissvc", "sense"}


def _service(c: Call) -> Any:
    name = v.to_string(c.bound.get("Name"))
    services = _host(c).state().services
    found = next((s for s in services.values() if s.name.lower() == name.lower()), None)
    if found is None:
        c.write_error(
            f"Cannot find any service with service name '{name}'.",
            "Microsoft.PowerShell.Commands.ServiceCommandException",
            "ObjectNotFound",
            "NoServiceFoundForGivenName",
            name,
        )
    return found


def _change_service(c: Call, what: str, change: Callable[[Any], None]) -> list[Any]:
    svc = _service(c)
    if svc is None:
        return []
    if svc.name.lower() in PROTECTED_SERVICES and svc.state == "Running" and c.name != "Start-Service":
        verb = {"Set-Service": "configured", "Stop-Service": "stopped"}[c.name]
        c.write_error(
            f"Service '{svc.display_name} ({svc.name})' cannot be {verb} due to the following error: "
            "Access is denied",
            "Microsoft.PowerShell.Commands.ServiceCommandException",
            "PermissionDenied",
            f"CouldNotSetService,Microsoft.PowerShell.Commands.{c.name.replace('-', '')}Command",
            svc.name,
        )
        return []
    name = svc.name

    def apply(s: TwinState) -> None:
        change(s.services[name])
        if name.lower() == "windefend":
            twin_system.sync_defender(s)  # Defender runs only while its service does

    _host(c).write(f"{c.name} {name} {what}", apply)
    return []


def _set_service(c: Call) -> list[Any]:
    """Set-Service -Name -StartupType (Automatic, Manual, Disabled)."""
    extra = set(c.bound.values) - {"Name", "StartupType", "ErrorAction"}
    if extra:
        raise c.not_simulated(f"Set-Service -{sorted(extra)[0]}")
    mode = v.to_string(c.bound.get("StartupType"))
    modes = {"automatic": "Automatic", "manual": "Manual", "disabled": "Disabled"}
    if mode.lower() not in modes:
        raise c.not_simulated(f"Set-Service -StartupType {mode}")

    def set_mode(svc: Any) -> None:
        svc.start_mode = modes[mode.lower()]

    return _change_service(c, modes[mode.lower()], set_mode)


def _stop_service(c: Call) -> list[Any]:
    def stop(svc: Any) -> None:
        svc.state = "Stopped"

    return _change_service(c, "stop", stop)


def _start_service(c: Call) -> list[Any]:
    """Start-Service: a Disabled service does not start (StartService: ERROR_SERVICE_DISABLED)."""
    svc = _service(c)
    if svc is None:
        return []
    if svc.start_mode == "Disabled":
        c.write_error(
            f"Service '{svc.display_name} ({svc.name})' cannot be started due to the following error: "
            f"Cannot start service {svc.name} on computer '.'.",
            "Microsoft.PowerShell.Commands.ServiceCommandException",
            "OpenError",
            "CouldNotStartService,Microsoft.PowerShell.Commands.StartServiceCommand",
            svc.name,
        )
        return []

    def start(svc: Any) -> None:
        svc.state = "Running"

    return _change_service(c, "start", start)


# --- installers --------------------------------------------------------------------------------


def _installed_by(data: bytes) -> tuple[str, str] | None:
    """(catalogue id, version) a simulated installer installs, None if it is not one."""
    text = data.decode("utf-8", "replace")
    if not text.startswith(SIMULATED_BANNER):
        return None
    fields = dict(line.split("=", 1) for line in text.splitlines()[1:] if "=" in line)
    if "id" not in fields or "version" not in fields:
        return None
    return fields["id"], fields["version"]


def _process(exit_code: int) -> v.DotNetObject:
    """A System.Diagnostics.Process that has run to its end (the simulated installer is instant)."""
    proc = v.DotNetObject(
        "System.Diagnostics.Process", {"Id": 4242, "ExitCode": exit_code, "HasExited": True, "Handle": 1288}
    )
    proc.methods = {"waitforexit": lambda args: True if args else None, "kill": lambda args: None}
    return proc


def _start_process(c: Call) -> list[Any]:
    """Start-Process -FilePath <installer|msiexec.exe> -ArgumentList ... [-Wait] [-PassThru].

    An msiexec `/i "<file>"` or an .exe installer the script staged runs the simulated
    installer: the catalogue application it names appears with its version (Uninstall key),
    exit code 0. A file that is not a simulated installer exits 1603 (fatal error during
    installation), as msiexec does for a corrupt package. `-Wait` waits for the process and
    every process it started (learn.microsoft.com/powershell/module/microsoft.powershell.management/
    start-process, -Wait): with the lab fault `installer_leaves_process` the installer leaves a
    child running, so `-Wait` never returns and the task would hang."""
    host = _host(c)
    file_path = v.to_string(c.bound.get("FilePath"))
    if "ArgumentList" in c.bound and v.to_string(c.bound.get("ArgumentList")) == "":
        raise c.fail(
            "Cannot validate argument on parameter 'ArgumentList'. The argument is null or empty. Provide an "
            "argument that is not null or empty, and then try the command again.",
            "System.Management.Automation.ParameterBindingValidationException",
        )
    arguments = " ".join(v.to_string(x) for x in v.as_list(c.bound.get("ArgumentList")))
    if file_path.lower().endswith("\\msiexec.exe") or file_path.lower() == "msiexec.exe":
        m = re.search(r'/i\s+"([^"]+)"|/i\s+(\S+)', arguments, re.I)
        if not m:
            raise c.not_simulated(f"msiexec {arguments}")
        package = m.group(1) or m.group(2)
    else:
        package = file_path
    data = host.file_bytes(package)
    if data is None:
        raise c.fail(
            "This command cannot be run because the input file cannot be found.",
            "System.InvalidOperationException",
        )
    exit_code = _run_installer(host, data)
    if (
        v.truthy(c.bound.get("Wait"))
        and host.lab.fault(host.twin.name, "installer_leaves_process") is not None
    ):
        raise ScriptHangs(
            f"Start-Process -Wait at {c.ev.where(c.node)} never returns: the installer left a child process "
            "running and Windows PowerShell 5.1 waits for the whole process tree; the task would hang"
        )
    return [_process(exit_code)] if v.truthy(c.bound.get("PassThru")) else []


def _run_installer(host: TwinHost, data: bytes) -> int:
    from rebuild.lab.installers import catalogue

    installs = _installed_by(data)
    app = catalogue().applications.get(installs[0]) if installs else None
    if installs is None or app is None:
        return 1603
    version = installs[1]

    onboarded = host.lab.fault(host.twin.name, "edr_not_onboarded") is None

    def install(s: TwinState) -> None:
        s.applications[app.name] = version
        if app.id == EDR_AGENT_ID:
            edr_install_effects(s, onboarded)

    host.write(f"install {app.name} {version}", install)
    host.lab.record(host.twin.name, "application_installed", application=app.id, version=version)
    return 0


def _import_certificate(c: Call) -> list[Any]:
    """Import-Certificate -FilePath -CertStoreLocation Cert:\\LocalMachine\\<store>; the thumbprint
    is the SHA-1 of the certificate's DER bytes."""
    host = _host(c)
    path = v.to_string(c.bound.get("FilePath"))
    location = v.to_string(c.bound.get("CertStoreLocation"))
    m = re.fullmatch(r"cert:\\localmachine\\([^\\]+)", location, re.I)
    if not m:
        raise c.not_simulated(f"Import-Certificate -CertStoreLocation {location}")
    data = host.file_bytes(path)
    if data is None:
        _not_found(c, path)
        return []
    thumb = hashlib.sha1(data).hexdigest().upper()
    key = CERT_KEY.format(store=m.group(1).upper(), thumb=thumb)

    def add(s: TwinState) -> None:
        s.registry[key] = {"Blob": "simulated"}

    host.write(f"Import-Certificate {key}", add)
    return [PSObj("System.Security.Cryptography.X509Certificates.X509Certificate2", {"Thumbprint": thumb})]


# --- printers ----------------------------------------------------------------------------------


def _get_printer(c: Call) -> list[Any]:
    name = v.to_string(c.bound.get("Name"))
    values = cmdlets.registry_view(_host(c).state()).get(PRINTER_KEY.format(name=name))
    if not values:
        c.write_error(
            "The specified printer was not found.",
            "Microsoft.Management.Infrastructure.CimException",
            "ObjectNotFound",
            "HRESULT 0x80070709,Get-Printer",
        )
        return []
    return [
        PSObj(
            "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_Printer",
            {"Name": name, "DriverName": values.get("Printer Driver"), "PortName": values.get("Port")},
        )
    ]


def _get_printer_port(c: Call) -> list[Any]:
    name = v.to_string(c.bound.get("Name"))
    values = cmdlets.registry_view(_host(c).state()).get(PORT_KEY.format(name=name))
    if values is None:
        c.write_error(
            "The specified port was not found.",
            "Microsoft.Management.Infrastructure.CimException",
            "ObjectNotFound",
            "HRESULT 0x80070709,Get-PrinterPort",
        )
        return []
    return [PSObj("MSFT_PrinterPort", {"Name": name, "PrinterHostAddress": values.get("HostName")})]


def _add_printer_port(c: Call) -> list[Any]:
    name = v.to_string(c.bound.get("Name"))
    address = v.to_string(c.bound.get("PrinterHostAddress"))

    def add(s: TwinState) -> None:
        s.registry[PORT_KEY.format(name=name)] = {"HostName": address, "PortNumber": 9100}

    _host(c).write(f"Add-PrinterPort {name}", add)
    return []


def _set_printer(c: Call, adding: bool) -> list[Any]:
    """Add-Printer / Set-Printer: the driver must be installed and the port must exist."""
    host = _host(c)
    name = v.to_string(c.bound.get("Name"))
    driver = v.to_string(c.bound.get("DriverName"))
    port = v.to_string(c.bound.get("PortName"))
    view = cmdlets.registry_view(host.state())
    if driver not in INBOX_DRIVERS:
        c.write_error(
            "The specified driver does not exist. Use add-printerdriver to add a new driver, or specify "
            "an existing driver.",
            "Microsoft.Management.Infrastructure.CimException",
            "ObjectNotFound",
        )
        return []
    if PORT_KEY.format(name=port) not in view:
        c.write_error(
            "The specified port does not exist. Use add-printerport to add a new port, or specify an "
            "existing port.",
            "Microsoft.Management.Infrastructure.CimException",
            "ObjectNotFound",
        )
        return []
    if adding and view.get(PRINTER_KEY.format(name=name)):
        c.write_error(
            "The specified printer already exists.",
            "Microsoft.Management.Infrastructure.CimException",
            "ResourceExists",
        )
        return []

    def put(s: TwinState) -> None:
        s.registry[PRINTER_KEY.format(name=name)] = {"Name": name, "Printer Driver": driver, "Port": port}

    host.write(f"{c.name} {name}", put)
    return []


# --- Defender ----------------------------------------------------------------------------------


def _set_mp_preference(c: Call) -> list[Any]:
    known = {"SignatureDefinitionUpdateFileSharesSources"}
    given = {k for k in c.bound.values if k not in ("ErrorAction",)}
    if given - known:
        raise c.not_simulated(f"Set-MpPreference -{sorted(given - known)[0]}")
    sources = v.to_string(c.bound.get("SignatureDefinitionUpdateFileSharesSources"))

    def put(s: TwinState) -> None:
        s.defender["SignatureDefinitionUpdateFileSharesSources"] = sources

    _host(c).write("Set-MpPreference", put)
    return []


def _update_mp_signature(c: Call) -> list[Any]:
    """Update-MpSignature: the twin's signatures become current (version bumped, date now)."""

    def update(s: TwinState) -> None:
        s.defender["AntivirusSignatureLastUpdated"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        parts = (str(s.defender.get("AntivirusSignatureVersion") or "1.421.0.0") + ".0.0.0").split(".")[:4]
        s.defender["AntivirusSignatureVersion"] = f"{parts[0]}.{parts[1]}.{int(parts[2]) + 80}.{parts[3]}"

    _host(c).write("Update-MpSignature", update)
    return []


def _sig(name: str, *params: Param, should_process: bool = False) -> Signature:
    return Signature(name, params, should_process=should_process)


def _table() -> dict[str, Cmdlet]:
    path = (Param("Path", position=0), Param("LiteralPath", ("LP", "PSPath")))
    entries: list[tuple[Signature, Callable[[Call], list[Any]], str]] = [
        (READ_CMDLETS["Test-Path"].signature, _test_path, "microsoft.powershell.management/test-path"),
        (
            _sig(
                "Get-CimInstance",
                Param("ClassName", ("Class",), position=0),
                Param("Namespace"),
                Param("Property"),
                Param("Filter"),
            ),
            _get_cim_instance,
            "cimcmdlets/get-ciminstance",
        ),
        (
            _sig(
                "Get-NetFirewallRule",
                Param("Name", ("ID",), position=0),
                Param("DisplayName"),
                Param("PolicyStore"),
            ),
            _get_net_firewall_rule,
            "netsecurity/get-netfirewallrule",
        ),
        (
            _sig(
                "Get-NetFirewallPortFilter",
                Param("AssociatedNetFirewallRule", pipeline=True),
                Param("PolicyStore"),
            ),
            twin_firewall.get_net_firewall_port_filter,
            "netsecurity/get-netfirewallportfilter",
        ),
        (
            _sig("Remove-NetFirewallRule", Param("InputObject", pipeline=True), should_process=True),
            twin_firewall.remove_net_firewall_rule,
            "netsecurity/remove-netfirewallrule",
        ),
        (
            READ_CMDLETS["Get-ChildItem"].signature,
            _get_child_item,
            "microsoft.powershell.management/get-childitem",
        ),
        (
            _sig(
                "Enable-PSRemoting",
                Param("Force", switch=True),
                Param("SkipNetworkProfileCheck", switch=True),
            ),
            twin_remoting.enable_psremoting,
            "microsoft.powershell.core/enable-psremoting",
        ),
        (
            _sig(
                "ConvertTo-SecureString",
                Param("String", position=0, mandatory=True, pipeline=True),
                Param("AsPlainText", switch=True),
                Param("Force", switch=True),
            ),
            twin_remoting.convert_to_secure_string,
            "microsoft.powershell.security/convertto-securestring",
        ),
        (
            _sig(
                "Get-Certificate",
                Param("Template", mandatory=True),
                Param("Url"),
                Param("Credential"),
                Param("DnsName"),
                Param("CertStoreLocation"),
            ),
            twin_remoting.get_certificate,
            "pki/get-certificate",
        ),
        (
            _sig("New-SelfSignedCertificate", Param("DnsName"), Param("CertStoreLocation")),
            twin_remoting.new_self_signed_certificate,
            "pki/new-selfsignedcertificate",
        ),
        (
            _sig(
                "New-NetFirewallRule",
                Param("DisplayName", mandatory=True),
                Param("Name"),
                Param("Description"),
                Param("Direction"),
                Param("Action"),
                Param("Protocol"),
                Param("LocalPort"),
                Param("Enabled"),
                Param("Profile"),
                should_process=True,
            ),
            twin_firewall.new_net_firewall_rule,
            "netsecurity/new-netfirewallrule",
        ),
        (
            _sig(
                "Set-NetFirewallProfile",
                Param("Name", ("Profile",), position=0),
                Param("Enabled"),
                Param("DefaultInboundAction"),
                Param("DefaultOutboundAction"),
                Param("LogAllowed"),
                Param("LogBlocked"),
                Param("LogMaxSizeKilobytes"),
                should_process=True,
            ),
            twin_firewall.set_net_firewall_profile,
            "netsecurity/set-netfirewallprofile",
        ),
        (
            _sig(
                "Enable-WindowsOptionalFeature",
                Param("FeatureName", position=0, mandatory=True),
                Param("Online", switch=True),
                Param("NoRestart", switch=True),
                Param("All", switch=True),
            ),
            lambda c: twin_system.set_optional_feature(c, True),
            "dism/enable-windowsoptionalfeature",
        ),
        (
            _sig(
                "Disable-WindowsOptionalFeature",
                Param("FeatureName", position=0, mandatory=True),
                Param("Online", switch=True),
                Param("NoRestart", switch=True),
                Param("Remove", switch=True),
            ),
            lambda c: twin_system.set_optional_feature(c, False),
            "dism/disable-windowsoptionalfeature",
        ),
        (
            _sig("Disable-ScheduledTask", Param("TaskName", position=0), Param("TaskPath", position=1)),
            twin_system.disable_scheduled_task,
            "scheduledtasks/disable-scheduledtask",
        ),
        (
            _sig(
                "Rename-LocalUser",
                Param("InputObject", position=0, pipeline=True),
                Param("Name"),
                Param("SID"),
                Param("NewName", position=1, mandatory=True),
                should_process=True,
            ),
            twin_system.rename_local_user,
            "microsoft.powershell.localaccounts/rename-localuser",
        ),
        (
            _sig(
                "Enable-LocalUser",
                Param("InputObject", position=0, pipeline=True),
                Param("Name"),
                Param("SID"),
                should_process=True,
            ),
            lambda c: twin_system.enable_local_user(c, True),
            "microsoft.powershell.localaccounts/enable-localuser",
        ),
        (
            _sig(
                "Disable-LocalUser",
                Param("InputObject", position=0, pipeline=True),
                Param("Name"),
                Param("SID"),
                should_process=True,
            ),
            lambda c: twin_system.enable_local_user(c, False),
            "microsoft.powershell.localaccounts/disable-localuser",
        ),
        (
            _sig(
                "Remove-LocalGroupMember",
                Param("Group", position=0),
                Param("Name"),
                Param("SID"),
                Param("Member", position=1, mandatory=True),
                should_process=True,
            ),
            twin_system.remove_local_group_member,
            "microsoft.powershell.localaccounts/remove-localgroupmember",
        ),
        (
            _sig("Start-Sleep", Param("Seconds", position=0), Param("Milliseconds", ("ms",))),
            twin_system.start_sleep,
            "microsoft.powershell.utility/start-sleep",
        ),
        (
            _sig(
                "Get-Content",
                *path,
                Param("Raw", switch=True),
                Param("Encoding"),
                Param("TotalCount", ("First", "Head")),
                Param("Tail", ("Last",)),
            ),
            _get_content,
            "microsoft.powershell.management/get-content",
        ),
        (
            _sig(
                "Set-Content",
                *path,
                Param("Value", position=1, mandatory=True),
                Param("Encoding"),
                Param("Force", switch=True),
                should_process=True,
            ),
            _set_content,
            "microsoft.powershell.management/set-content",
        ),
        (
            _sig("Import-Csv", *path, Param("Delimiter", position=1), Param("Encoding")),
            _import_csv,
            "microsoft.powershell.utility/import-csv",
        ),
        (
            _sig(
                "New-Item",
                *path,
                Param("ItemType", ("Type",)),
                Param("Name"),
                Param("Value", position=1),
                Param("Force", switch=True),
                *(Param(name) for name in twin_remoting.LISTENER_PARAMS),
                should_process=True,
            ),
            _new_item,
            "microsoft.powershell.management/new-item",
        ),
        (
            _sig(
                "New-ItemProperty",
                *path,
                Param("Name", position=1, mandatory=True),
                Param("PropertyType", ("Type",)),
                Param("Value", position=2),
                Param("Force", switch=True),
                should_process=True,
            ),
            twin_security.new_item_property,
            "microsoft.powershell.management/new-itemproperty",
        ),
        (
            _sig(
                "Set-ItemProperty",
                *path,
                Param("Name", position=1, mandatory=True),
                Param("Value", position=2),
                should_process=True,
            ),
            twin_security.set_item_property,
            "microsoft.powershell.management/set-itemproperty",
        ),
        (
            _sig(
                "Copy-Item",
                *path,
                Param("Destination", position=1),
                Param("Force", switch=True),
                Param("Recurse", switch=True),
                should_process=True,
            ),
            _copy_item,
            "microsoft.powershell.management/copy-item",
        ),
        (
            _sig(
                "Remove-Item",
                *path,
                Param("Force", switch=True),
                Param("Recurse", switch=True),
                should_process=True,
            ),
            _remove_item,
            "microsoft.powershell.management/remove-item",
        ),
        (
            _sig(
                "Invoke-WebRequest",
                Param("Uri", position=0, mandatory=True),
                Param("OutFile"),
                Param("UseBasicParsing", switch=True),
                Param("TimeoutSec"),
            ),
            _invoke_web_request,
            "microsoft.powershell.utility/invoke-webrequest",
        ),
        (
            _sig("Get-FileHash", *path, Param("Algorithm")),
            _get_file_hash,
            "microsoft.powershell.utility/get-filehash",
        ),
        (
            _sig(
                "Start-Process",
                Param("FilePath", ("PSPath", "Path"), position=0, mandatory=True),
                Param("ArgumentList", ("Args",), position=1),
                Param("Wait", switch=True),
                Param("PassThru", switch=True),
                Param("NoNewWindow", switch=True),
                Param("WorkingDirectory"),
                Param("Verb"),
            ),
            _start_process,
            "microsoft.powershell.management/start-process",
        ),
        (
            _sig(
                "Import-Certificate",
                Param("FilePath", position=0, mandatory=True),
                Param("CertStoreLocation"),
                should_process=True,
            ),
            _import_certificate,
            "pki/import-certificate",
        ),
        (
            _sig("Get-Printer", Param("Name", position=0), Param("ComputerName")),
            _get_printer,
            "printmanagement/get-printer",
        ),
        (
            _sig("Get-PrinterPort", Param("Name", position=0), Param("ComputerName")),
            _get_printer_port,
            "printmanagement/get-printerport",
        ),
        (
            _sig(
                "Add-PrinterPort",
                Param("Name", position=0, mandatory=True),
                Param("PrinterHostAddress", position=1),
            ),
            _add_printer_port,
            "printmanagement/add-printerport",
        ),
        (
            _sig(
                "Add-Printer",
                Param("Name", position=0, mandatory=True),
                Param("DriverName", position=1),
                Param("PortName", position=2),
            ),
            lambda c: _set_printer(c, True),
            "printmanagement/add-printer",
        ),
        (
            _sig(
                "Set-Printer",
                Param("Name", position=0, mandatory=True),
                Param("DriverName"),
                Param("PortName"),
                should_process=True,
            ),
            lambda c: _set_printer(c, False),
            "printmanagement/set-printer",
        ),
        (
            _sig(
                "Set-MpPreference",
                Param("SignatureDefinitionUpdateFileSharesSources"),
                Param("DisableRealtimeMonitoring"),
            ),
            _set_mp_preference,
            "defender/set-mppreference",
        ),
        (
            _sig("Update-MpSignature", Param("UpdateSource")),
            _update_mp_signature,
            "defender/update-mpsignature",
        ),
        (
            _sig(
                "Set-Service",
                Param("Name", ("ServiceName", "SN"), position=0, mandatory=True),
                Param("StartupType", ("StartMode", "SM", "ST")),
                Param("Status"),
                Param("DisplayName"),
                Param("Description"),
                should_process=True,
            ),
            _set_service,
            "microsoft.powershell.management/set-service",
        ),
        (
            _sig(
                "Stop-Service",
                Param("Name", ("ServiceName",), position=0),
                Param("Force", switch=True),
                Param("NoWait", switch=True),
                should_process=True,
            ),
            _stop_service,
            "microsoft.powershell.management/stop-service",
        ),
        (
            _sig("Start-Service", Param("Name", ("ServiceName",), position=0), should_process=True),
            _start_service,
            "microsoft.powershell.management/start-service",
        ),
        (_sig("Get-Tpm"), twin_bitlocker.get_tpm, "trustedplatformmodule/get-tpm"),
        (
            _sig("Get-BitLockerVolume", Param("MountPoint", position=0, pipeline=True)),
            twin_bitlocker.get_bitlocker_volume,
            "bitlocker/get-bitlockervolume",
        ),
        (
            _sig(
                "Enable-BitLocker",
                Param("MountPoint", position=0, mandatory=True, pipeline=True),
                Param("EncryptionMethod"),
                Param("HardwareEncryption", switch=True),
                Param("SkipHardwareTest", ("s",), switch=True),
                Param("UsedSpaceOnly", ("qe",), switch=True),
                Param("TpmProtector", switch=True),
                should_process=True,
            ),
            twin_bitlocker.enable_bitlocker,
            "bitlocker/enable-bitlocker",
        ),
        (
            _sig(
                "Add-BitLockerKeyProtector",
                Param("MountPoint", position=0, mandatory=True, pipeline=True),
                Param("RecoveryPasswordProtector", ("rpp",), switch=True),
                Param("RecoveryPassword", ("pw",), position=1),
                should_process=True,
            ),
            twin_bitlocker.add_key_protector,
            "bitlocker/add-bitlockerkeyprotector",
        ),
        (
            _sig(
                "Backup-BitLockerKeyProtector",
                Param("MountPoint", position=0, mandatory=True, pipeline=True),
                Param("KeyProtectorId", ("id",), position=1, mandatory=True),
                should_process=True,
            ),
            twin_bitlocker.backup_key_protector,
            "bitlocker/backup-bitlockerkeyprotector",
        ),
        (_sig("Reset-LapsPassword"), twin_laps.reset_laps_password, "laps/reset-lapspassword"),
        (
            _sig("Get-WinEvent", Param("FilterHashtable", mandatory=True)),
            twin_laps.get_win_event,
            "microsoft.powershell.diagnostics/get-winevent",
        ),
    ]
    # Every other read cmdlet runs as registered (a cmdlet above wraps the read of its name).
    own = {sig.name for sig, _, _ in entries}
    entries += [(r.signature, _bridge(n), r.learn) for n, r in READ_CMDLETS.items() if n not in own]
    return {sig.name.lower(): Cmdlet(sig, fn, LEARN + doc) for sig, fn, doc in entries}


_CMDLETS = _table()


def twin_cmdlets() -> dict[str, Cmdlet]:
    return dict(_CMDLETS)


def signature_age_hours(state: TwinState) -> float:
    text = str(state.defender.get("AntivirusSignatureLastUpdated") or "")
    try:
        when = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    except ValueError:
        return float("inf")
    return (dt.datetime.now(dt.UTC) - when).total_seconds() / 3600


__all__ = ["CheckModeWrite", "PSDate", "TwinHost", "TypeRef", "twin_cmdlets"]
