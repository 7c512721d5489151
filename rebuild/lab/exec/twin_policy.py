"""Local security policy on a twin for scripts: auditpol.exe, secedit.exe, accounts by SID (SIMULATION).

Part of `TwinHost` (twin_host.py). The programs read and write the twin's `audit_policy`,
`user_rights` and `security_policy` through files, as on Windows: `auditpol /backup` writes the
CSV `Import-Csv` reads, `secedit /export` writes a UTF-16 INF, `secedit /configure` applies one.
The files a script creates live in the run's scratch space (`TwinHost.scratch`), not in the
twin's state: writing a temporary file is not a configuration change (check mode allows it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from rebuild.lab.exec import cmdlets
from rebuild.lab.exec.native import AUDIT_CATEGORIES
from rebuild.lab.ps.evaluator import NativeResult
from rebuild.lab.state import TwinState

if TYPE_CHECKING:
    from rebuild.lab.exec.twin_host import TwinHost

# Audit subcategory GUIDs (MS-GPAC 2.2.1.2 "Subcategory and SubcategoryGUID"; Microsoft Learn
# "Auditing Constants"): {0CCE92xx-69AE-11D9-BED3-505054503030}, locale independent.
_AUDIT_GUID_SUFFIX = {
    "Security State Change": "10", "Security System Extension": "11", "System Integrity": "12",
    "IPsec Driver": "13", "Other System Events": "14", "Logon": "15", "Logoff": "16",
    "Account Lockout": "17", "IPsec Main Mode": "18", "IPsec Quick Mode": "19",
    "IPsec Extended Mode": "1A", "Special Logon": "1B", "Other Logon/Logoff Events": "1C",
    "File System": "1D", "Registry": "1E", "Kernel Object": "1F", "SAM": "20",
    "Certification Services": "21", "Application Generated": "22", "Handle Manipulation": "23",
    "File Share": "24", "Filtering Platform Packet Drop": "25", "Filtering Platform Connection": "26",
    "Other Object Access Events": "27", "Sensitive Privilege Use": "28",
    "Non Sensitive Privilege Use": "29", "Other Privilege Use Events": "2A", "Process Creation": "2B",
    "Process Termination": "2C", "DPAPI Activity": "2D", "RPC Events": "2E",
    "Audit Policy Change": "2F", "Authentication Policy Change": "30",
    "Authorization Policy Change": "31", "MPSSVC Rule-Level Policy Change": "32",
    "Filtering Platform Policy Change": "33", "Other Policy Change Events": "34",
    "User Account Management": "35", "Computer Account Management": "36",
    "Security Group Management": "37", "Distribution Group Management": "38",
    "Application Group Management": "39", "Other Account Management Events": "3A",
    "Directory Service Access": "3B", "Directory Service Changes": "3C",
    "Directory Service Replication": "3D", "Detailed Directory Service Replication": "3E",
    "Credential Validation": "3F", "Kerberos Service Ticket Operations": "40",
    "Other Account Logon Events": "41", "Kerberos Authentication Service": "42",
    "Network Policy Server": "43", "Detailed File Share": "44", "Removable Storage": "45",
    "Central Policy Staging": "46", "User / Device Claims": "47", "Plug and Play Events": "48",
    "Group Membership": "49", "Token Right Adjusted Events": "4A",
}  # fmt: skip
AUDIT_GUIDS = {name: f"{{0CCE92{x}-69AE-11D9-BED3-505054503030}}" for name, x in _AUDIT_GUID_SUFFIX.items()}
_SUBCATEGORY_BY_GUID = {g.upper(): name for name, g in AUDIT_GUIDS.items()}
# auditpol's "Setting Value": the POLICY_AUDIT_EVENT_SUCCESS (1) / _FAILURE (2) bits.
AUDIT_SETTINGS = ["No Auditing", "Success", "Failure", "Success and Failure"]

# Well-known SIDs (Microsoft Learn "Well-known SIDs"; the BUILTIN groups' English names).
WELL_KNOWN_SIDS = {
    "S-1-1-0": "Everyone",
    "S-1-5-113": "Local account",
    "S-1-5-114": "Local account and member of Administrators group",
    "S-1-5-32-544": "Administrators",
    "S-1-5-32-545": "Users",
    "S-1-5-32-546": "Guests",
    "S-1-5-32-551": "Backup Operators",
    "S-1-5-32-555": "Remote Desktop Users",
    "S-1-5-32-580": "Remote Management Users",
}


def account_sid(state: TwinState, name: str) -> str | None:
    """NTAccount.Translate(SecurityIdentifier): a well-known group or a local user; None if unknown."""
    short = name.split("\\")[-1].lower()
    domain = name.split("\\")[0].lower() if "\\" in name else ""
    for sid, known in WELL_KNOWN_SIDS.items():
        if known.lower() == short and domain in ("", "builtin", "nt authority"):
            return sid
    if domain and domain != state.hostname.lower()[:15]:
        return None
    user = next((u for u in state.users.values() if u.name.lower() == short), None)
    if user is None:
        return None
    return f"{cmdlets.machine_sid(state)}-{user.sid_suffix}"


def sid_account(state: TwinState, sid: str) -> str | None:
    """SecurityIdentifier.Translate(NTAccount): BUILTIN\\group, HOST\\user; None if unknown."""
    sid = sid.upper()
    if sid in WELL_KNOWN_SIDS:
        name = WELL_KNOWN_SIDS[sid]
        if sid.startswith("S-1-5-32-"):
            return f"BUILTIN\\{name}"
        return name if sid == "S-1-1-0" else f"NT AUTHORITY\\{name}"
    prefix = cmdlets.machine_sid(state).upper() + "-"
    if sid.startswith(prefix):
        rid = int(sid[len(prefix) :])
        user = next((u for u in state.users.values() if u.sid_suffix == rid), None)
        if user is not None:
            return f"{state.hostname.upper()[:15]}\\{user.name}"
    return None


# --- auditpol.exe ------------------------------------------------------------------------------


def auditpol(host: TwinHost, args: list[str]) -> NativeResult | None:
    """`auditpol /backup /file:<f>` and `auditpol /set /subcategory:<GUID> /success:… /failure:…`
    (Microsoft Learn, auditpol backup / auditpol set). An unknown subcategory or option is
    error 0x00000057 (The parameter is incorrect)."""
    if not args:
        return None
    verb = args[0].lower()
    opts = {}
    for a in args[1:]:
        m = re.fullmatch(r"/([a-z]+):(.*)", a, re.I)
        if not m:
            return _bad_parameter()
        opts[m.group(1).lower()] = m.group(2).strip('"')
    if verb == "/backup":
        if set(opts) != {"file"}:
            return _bad_parameter()
        state = host.state()
        header = "Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting"
        rows = [header + ",Setting Value"]
        machine = state.hostname.upper()[:15]
        for subs in AUDIT_CATEGORIES.values():
            for sub in subs:
                setting = next(
                    (x for k, x in state.audit_policy.items() if k.lower() == sub.lower()), "No Auditing"
                )
                value = AUDIT_SETTINGS.index(setting)
                rows.append(f"{machine},System,Audit {sub},{AUDIT_GUIDS[sub]},{setting},,{value}")
        host.scratch[opts["file"].lower()] = ("\r\n".join(rows) + "\r\n").encode("ascii")
        return NativeResult(0, ["The command was successfully executed."], [])
    if verb == "/set":
        if "subcategory" not in opts or not set(opts) <= {"subcategory", "success", "failure"}:
            return _bad_parameter()
        if any(opts.get(k, "enable").lower() not in ("enable", "disable") for k in ("success", "failure")):
            return _bad_parameter()
        raw = opts["subcategory"]
        found = _SUBCATEGORY_BY_GUID.get(raw.upper()) or next(
            (s for subs in AUDIT_CATEGORIES.values() for s in subs if s.lower() == raw.lower()), None
        )
        if found is None:
            return _bad_parameter()
        sub = found
        state = host.state()
        current = next((x for k, x in state.audit_policy.items() if k.lower() == sub.lower()), "No Auditing")
        bits = AUDIT_SETTINGS.index(current)
        for flag, bit in (("success", 1), ("failure", 2)):
            if flag in opts:
                bits = bits | bit if opts[flag].lower() == "enable" else bits & ~bit
        setting = AUDIT_SETTINGS[bits]

        def put(s: TwinState) -> None:
            stored = next((k for k in s.audit_policy if k.lower() == sub.lower()), sub)
            s.audit_policy[stored] = setting

        host.write(f"auditpol /set {sub}", put)
        return NativeResult(0, ["The command was successfully executed."], [])
    return None


def _bad_parameter() -> NativeResult:
    return NativeResult(87, ["Error 0x00000057 occurred:", "The parameter is incorrect.", ""], [])


# --- secedit.exe -------------------------------------------------------------------------------

AREAS = {"user_rights", "securitypolicy"}


def secedit(host: TwinHost, args: list[str]) -> NativeResult | None:
    """`secedit /export /cfg <inf> [/areas …] [/quiet]` and `secedit /configure /db <sdb> /cfg <inf>
    [/areas …] [/quiet]` (Microsoft Learn, secedit export / secedit configure). The INF is UTF-16
    ("[Unicode] Unicode=yes"); user rights list accounts as *SID where they resolve."""
    if not args:
        return None
    verb = args[0].lower()
    opts: dict[str, list[str]] = {}
    current: list[str] | None = None
    for a in args[1:]:
        if a.startswith("/"):
            current = opts.setdefault(a[1:].lower(), [])
        elif current is not None:
            current.append(a)
        else:
            return _secedit_usage()
    areas = {a.lower() for a in opts.get("areas", ["user_rights", "securitypolicy"])}
    if not areas <= AREAS:
        # The other areas (GROUP_MGMT, REGKEYS, FILESTORE, SERVICES) hold what the lab does not model.
        return None
    cfg = (opts.get("cfg") or [""])[0]
    if verb == "/export" and cfg and set(opts) <= {"cfg", "areas", "quiet", "log"}:
        host.scratch[cfg.lower()] = _export(host.state(), areas).encode("utf-16")
        return NativeResult(0, [] if "quiet" in opts else ["The task has completed successfully."], [])
    if (
        verb == "/configure"
        and cfg
        and opts.get("db")
        and set(opts) <= {"db", "cfg", "areas", "quiet", "log", "overwrite"}
    ):
        data = host.scratch.get(cfg.lower())
        if data is None:
            return NativeResult(3, ["An error occurred while opening the configuration file.", ""], [])
        try:
            sections = _parse_inf(data.decode("utf-16"))
        except (UnicodeDecodeError, ValueError):
            return NativeResult(1, ["The configuration file is not a valid security template.", ""], [])
        return _configure(host, sections, areas, quiet="quiet" in opts)
    return _secedit_usage()


def _secedit_usage() -> NativeResult:
    return NativeResult(87, ["The parameter is incorrect.", ""], [])


def _member_token(state: TwinState, member: str) -> str:
    if member.startswith("*"):
        return member.upper()
    sid = account_sid(state, member)
    return f"*{sid}" if sid else member


def _export(state: TwinState, areas: set[str]) -> str:
    lines = ["[Unicode]", "Unicode=yes"]
    if "securitypolicy" in areas:
        for section, values in state.security_policy.items():
            lines.append(f"[{section}]")
            for key, value in values.items():
                lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {int(value)}")
    if "user_rights" in areas:
        lines.append("[Privilege Rights]")
        for right, members in state.user_rights.items():
            if members:  # an empty right is absent from the export
                lines.append(f"{right} = " + ",".join(_member_token(state, m) for m in members))
    lines += ["[Version]", 'signature="$CHICAGO$"', "Revision=1"]
    return "\r\n".join(lines) + "\r\n"


def _parse_inf(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    section: dict[str, str] | None = None
    for raw in text.lstrip("\ufeff").splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        m = re.fullmatch(r"\[(.+)\]", line)
        if m:
            section = sections.setdefault(m.group(1), {})
            continue
        if section is None or "=" not in line:
            raise ValueError(line)
        key, _, value = line.partition("=")
        section[key.strip()] = value.strip()
    return sections


def _configure(
    host: TwinHost, sections: dict[str, dict[str, str]], areas: set[str], quiet: bool
) -> NativeResult | None:
    state = host.state()
    rights: dict[str, list[str]] = {}
    if "user_rights" in areas:
        for right, value in sections.get("Privilege Rights", {}).items():
            members = []
            for token in (t.strip() for t in value.split(",") if t.strip()):
                if token.startswith("*"):
                    members.append(sid_account_short(state, token[1:]) or token.upper())
                elif account_sid(state, token) is not None:
                    members.append(token.split("\\")[-1])
                else:
                    # What secedit does with a name it cannot map is not modelled: fail loudly.
                    return None
            rights[right] = members
    policy: dict[str, dict[str, Any]] = {}
    if "securitypolicy" in areas:
        for section in ("System Access", "Event Audit", "Registry Values", "Kerberos Policy"):
            for key, value in sections.get(section, {}).items():
                policy.setdefault(section, {})[key] = (
                    value.strip('"') if value.startswith('"') else _number(value)
                )

    def apply(s: TwinState) -> None:
        s.user_rights.update(rights)
        for section, values in policy.items():
            s.security_policy.setdefault(section, {}).update(values)

    host.write("secedit /configure", apply)
    return NativeResult(0, [] if quiet else ["The task has completed successfully."], [])


def sid_account_short(state: TwinState, sid: str) -> str | None:
    """How the twin keeps an account in its user rights: the group or user name."""
    full = sid_account(state, sid)
    return None if full is None else full.split("\\")[-1]


def _number(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        return value


# --- NTAccount / SecurityIdentifier ------------------------------------------------------------

NTACCOUNT = "System.Security.Principal.NTAccount"
SECURITY_IDENTIFIER = "System.Security.Principal.SecurityIdentifier"


def identity(state: TwinState, type_name: str, value: str) -> Any:
    """An NTAccount or SecurityIdentifier whose Translate(type) maps it on this host
    (learn.microsoft.com/dotnet/api/system.security.principal.ntaccount.translate): what the host
    cannot map throws IdentityNotMappedException "Some or all identity references could not be
    translated."; a malformed SID string is an ArgumentException at construction."""
    from rebuild.lab.ps import values as v
    from rebuild.lab.ps.errors import ErrorRecord, PSRuntimeError

    def fail(message: str, exception: str, count: int, method: str) -> PSRuntimeError:
        return PSRuntimeError(
            ErrorRecord(
                f'Exception calling "{method}" with "{count}" argument(s): "{message}"',
                "System.Management.Automation.MethodInvocationException",
            )
        )

    if type_name == SECURITY_IDENTIFIER and not re.fullmatch(r"S-1-\d+(-\d+)+", value, re.I):
        raise fail("Value was invalid.\r\nParameter name: sddlForm", "System.ArgumentException", 1, ".ctor")

    def translate(args: list[Any]) -> Any:
        target = getattr(args[0], "name", "") if len(args) == 1 else ""
        if target == type_name:
            return identity(state, type_name, value)
        if type_name == NTACCOUNT and target == SECURITY_IDENTIFIER:
            sid = account_sid(state, value)
            if sid is not None:
                return identity(state, SECURITY_IDENTIFIER, sid)
        elif type_name == SECURITY_IDENTIFIER and target == NTACCOUNT:
            name = sid_account(state, value)
            if name is not None:
                return identity(state, NTACCOUNT, name)
        else:
            raise fail(
                "The argument must be a type derived from IdentityReference.",
                "System.ArgumentException",
                1,
                "Translate",
            )
        raise fail(
            "Some or all identity references could not be translated.",
            "System.Security.Principal.IdentityNotMappedException",
            1,
            "Translate",
        )

    return v.DotNetObject(
        type_name,
        {"Value": value.upper() if type_name == SECURITY_IDENTIFIER else value},
        {"translate": translate, "tostring": lambda args: value},
    )
