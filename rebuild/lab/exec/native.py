"""Native Windows programs of the read subset, with their console output formats.

hostname, whoami, systeminfo, echo, auditpol /get, net user <name>, net localgroup <name>;
findstr / find as the filter after a `|`. Output is what these programs print on an
English-language Windows (the twin's locale is reported, not used for messages).
"""

from __future__ import annotations

import re

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.exec.winenv import environment, lookup
from rebuild.lab.state import TwinState

Output = tuple[int, bytes, bytes]

AUDIT_CATEGORIES = {
    "System": [
        "Security State Change",
        "Security System Extension",
        "System Integrity",
        "IPsec Driver",
        "Other System Events",
    ],
    "Logon/Logoff": [
        "Logon",
        "Logoff",
        "Account Lockout",
        "IPsec Main Mode",
        "IPsec Quick Mode",
        "IPsec Extended Mode",
        "Special Logon",
        "Other Logon/Logoff Events",
        "Network Policy Server",
        "User / Device Claims",
        "Group Membership",
    ],
    "Object Access": [
        "File System",
        "Registry",
        "Kernel Object",
        "SAM",
        "Certification Services",
        "Application Generated",
        "Handle Manipulation",
        "File Share",
        "Filtering Platform Packet Drop",
        "Filtering Platform Connection",
        "Other Object Access Events",
        "Detailed File Share",
        "Removable Storage",
        "Central Policy Staging",
    ],
    "Privilege Use": ["Non Sensitive Privilege Use", "Other Privilege Use Events", "Sensitive Privilege Use"],
    "Detailed Tracking": [
        "Process Creation",
        "Process Termination",
        "DPAPI Activity",
        "RPC Events",
        "Plug and Play Events",
        "Token Right Adjusted Events",
    ],
    "Policy Change": [
        "Audit Policy Change",
        "Authentication Policy Change",
        "Authorization Policy Change",
        "MPSSVC Rule-Level Policy Change",
        "Filtering Platform Policy Change",
        "Other Policy Change Events",
    ],
    "Account Management": [
        "Computer Account Management",
        "Security Group Management",
        "Distribution Group Management",
        "Application Group Management",
        "Other Account Management Events",
        "User Account Management",
    ],
    "DS Access": [
        "Directory Service Access",
        "Directory Service Changes",
        "Directory Service Replication",
        "Detailed Directory Service Replication",
    ],
    "Account Logon": [
        "Kerberos Service Ticket Operations",
        "Other Account Logon Events",
        "Kerberos Authentication Service",
        "Credential Validation",
    ],
}


def _ok(text: str) -> Output:
    return 0, text.encode("utf-8"), b""


def _refuse(what: str) -> Output:
    return 1, b"", f"the rebuild lab (a simulation) does not simulate {what}\r\n".encode()


def run_native(lab: Lab, twin: TwinRecord, line: str, console: bool = False) -> Output:
    from rebuild.lab.exec.commandline import split_args
    from rebuild.lab.exec.twin_host import run_writing_program

    argv = split_args(line)
    if not argv:
        return _refuse("an empty command")
    prog = argv[0].replace("/", "\\").rsplit("\\", 1)[-1].lower()
    prog = prog[:-4] if prog.endswith(".exe") else prog
    args = argv[1:]
    if prog == "echo":
        rest = line.strip()[len(argv[0]) :].strip()
        return _ok((rest if rest else "ECHO is on.") + "\r\n")
    answer = run_writing_program(lab, twin, prog, args, console)
    if answer is None:
        answer = read_program(lab.state(twin.name), prog, args)
    if answer is not None:
        return answer
    from rebuild.lab.exec.commandline import UNIX_ONLY, not_recognized

    if prog in UNIX_ONLY:
        return not_recognized(prog)
    return _refuse(f"the program {argv[0]!r} (see docs/lab-powershell.md for the read subset)")


def read_program(state: TwinState, prog: str, args: list[str]) -> Output | None:
    """hostname, whoami, systeminfo, auditpol /get, net (`prog` without `.exe`, lower case) on the
    twin, for cmd.exe and for a PowerShell script (the twin host); None for any other program."""
    if prog == "hostname":
        return _ok(state.hostname.upper()[:15] + "\r\n") if not args else _refuse("hostname with arguments")
    if prog == "whoami":
        if args:
            return _refuse(f"whoami {' '.join(args)}")
        return _ok(f"{state.hostname.lower()[:15]}\\{_logon_user(state).lower()}\r\n")
    if prog == "systeminfo":
        return _ok(systeminfo(state)) if not args else _refuse(f"systeminfo {' '.join(args)}")
    if prog == "auditpol":
        return auditpol(state, args)
    if prog == "net":
        return net(state, args)
    return None


def _logon_user(state: TwinState) -> str:
    admins = state.groups.get("Administrators", [])
    return next(
        (u for u in admins if u in state.users and u not in ("Administrator",) and state.users[u].enabled),
        "Administrator",
    )


def systeminfo(state: TwinState) -> str:
    from rebuild.lab.exec.cmdlets import os_version

    domain = state.domain if state.domain_joined else "WORKGROUP"
    rows = [
        ("Host Name", state.hostname.upper()[:15]),
        ("OS Name", state.os_caption),
        ("OS Version", f"{os_version(state)} N/A Build {state.os_build}"),
        ("OS Manufacturer", "Microsoft Corporation"),
        (
            "OS Configuration",
            ("Member Server" if state.domain_joined else "Standalone Server")
            if state.kind == "server"
            else ("Member Workstation" if state.domain_joined else "Standalone Workstation"),
        ),
        ("OS Build Type", "Multiprocessor Free"),
        ("System Manufacturer", "rebuild lab (SIMULATED)"),
        ("System Model", "Simulated twin"),
        ("System Type", "x64-based PC"),
        ("Windows Directory", "C:\\Windows"),
        ("System Directory", "C:\\Windows\\system32"),
        ("System Locale", state.locale),
        ("Time Zone", state.time_zone),
        ("Domain", domain),
    ]
    return "\r\n" + "".join(f"{(k + ':').ljust(27)}{v}\r\n" for k, v in rows)


def auditpol(state: TwinState, args: list[str]) -> Output:
    opts = [a.lower() for a in args]
    if not opts or opts[0] != "/get":
        return _refuse(f"auditpol {' '.join(args)} (only /get is simulated)")
    wanted_cat: list[str] = []
    wanted_sub: list[str] = []
    for a in args[1:]:
        m = re.match(r"/(category|subcategory):(.*)$", a, re.I)
        if not m:
            return _refuse(f"auditpol option {a}")
        names = [n.strip().strip('"') for n in m.group(2).split(",")]
        (wanted_cat if m.group(1).lower() == "category" else wanted_sub).extend(names)
    if not wanted_cat and not wanted_sub:
        return 87, b"", b"The parameter is incorrect.\r\n"
    lines = ["System audit policy", "Category/Subcategory                      Setting"]
    cats = list(AUDIT_CATEGORIES) if "*" in wanted_cat else []
    for c in wanted_cat:
        if c == "*":
            continue
        hit = next((k for k in AUDIT_CATEGORIES if k.lower() == c.lower()), None)
        if hit is None:
            return 87, b"", b"Error 0x00000057 occurred:\r\nThe parameter is incorrect.\r\n"
        cats.append(hit)
    for cat in cats:
        lines.append(cat)
        for sub in AUDIT_CATEGORIES[cat]:
            lines.append(f"  {sub.ljust(40)}{_audit(state, sub)}")
    for sub in wanted_sub:
        found: str | None = next(
            (k for k, subs in AUDIT_CATEGORIES.items() if any(s.lower() == sub.lower() for s in subs)), None
        )
        if found is None:
            return 87, b"", b"Error 0x00000057 occurred:\r\nThe parameter is incorrect.\r\n"
        real = next(s for s in AUDIT_CATEGORIES[found] if s.lower() == sub.lower())
        lines.append(found)
        lines.append(f"  {real.ljust(40)}{_audit(state, real)}")
    return _ok("".join(line + "\r\n" for line in lines) + "\r\n")


def _audit(state: TwinState, sub: str) -> str:
    return next((v for k, v in state.audit_policy.items() if k.lower() == sub.lower()), "No Auditing")


def net(state: TwinState, args: list[str]) -> Output:
    if len(args) == 2 and args[0].lower() == "user":
        user = next((u for u in state.users.values() if u.name.lower() == args[1].lower()), None)
        if user is None:
            return (
                2,
                b"",
                b"The user name could not be found.\r\n\r\n"
                b"More help is available by typing NET HELPMSG 2221.\r\n\r\n",
            )
        groups = [g for g, members in state.groups.items() if user.name in members]
        rows = [
            ("User name", user.name),
            ("Full Name", ""),
            ("Comment", user.description),
            ("User's comment", ""),
            ("Country/region code", "000 (System Default)"),
            ("Account active", "Yes" if user.enabled else "No"),
            ("Account expires", "Never"),
            ("", ""),
            ("Local Group Memberships", "  ".join("*" + g for g in groups)),
            ("Global Group memberships", "*None"),
        ]
        body = "".join((f"{k.ljust(29)}{v}".rstrip() if k else "") + "\r\n" for k, v in rows)
        return _ok(body + "The command completed successfully.\r\n\r\n")
    if len(args) == 2 and args[0].lower() == "localgroup":
        group = next((g for g in state.groups if g.lower() == args[1].lower()), None)
        if group is None:
            return (
                2,
                b"",
                b"The specified local group does not exist.\r\n\r\n"
                b"More help is available by typing NET HELPMSG 3780.\r\n\r\n",
            )
        body = (
            f"Alias name     {group}\r\nComment        \r\n\r\nMembers\r\n\r\n"
            + "-" * 79
            + "\r\n"
            + "".join(m + "\r\n" for m in state.groups[group])
            + "The command completed successfully.\r\n\r\n"
        )
        return _ok(body)
    return _refuse(f"net {' '.join(args)} (only 'net user <name>' and 'net localgroup <name>')")


def filter_stage(stage: str, text: bytes) -> Output:
    """findstr / find reading the previous program's output."""
    from rebuild.lab.exec.commandline import split_args

    argv = split_args(stage)
    prog = argv[0].lower().removesuffix(".exe") if argv else ""
    if prog not in ("findstr", "find"):
        return _refuse(f"piping into {argv[0] if argv else 'nothing'} (only findstr/find)")
    begin = False
    needles: list[str] = []
    insensitive = False
    for a in argv[1:]:
        low = a.lower()
        if low == "/b":
            if prog == "find":
                return 2, b"", b"FIND: Invalid switch\r\n"
            begin = True
        elif low == "/i":
            insensitive = True
        elif low.startswith("/c:"):
            needles.append(a[3:])
        elif a.startswith("/"):
            return _refuse(f"{prog} option {a}")
        else:
            needles.extend(a.split(" ") if prog == "findstr" else [a])
    if not needles:
        return 2, b"", b"FINDSTR: Bad command line\r\n"
    lines = text.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    hits = []
    for line in lines:
        hay = line.lower() if insensitive else line
        for n in needles:
            n2 = n.lower() if insensitive else n
            if hay.startswith(n2) if begin else n2 in hay:
                hits.append(line)
                break
    if not hits:
        return 1, b"", b""
    return 0, "".join(h + "\r\n" for h in hits).encode("utf-8"), b""


__all__ = ["environment", "filter_stage", "lookup", "run_native", "systeminfo"]
