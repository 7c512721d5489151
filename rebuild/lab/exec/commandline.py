"""The command line a WinRS command carries, as cmd.exe and powershell.exe would take it.

WinRS runs the command line through cmd.exe: `%VAR%` is expanded and `|` pipes between
programs. The lab recognises only the programs of the read subset (powershell, hostname,
whoami, systeminfo, echo, auditpol, net, findstr as a pipe filter). A Unix command or a bare
cmdlet name gets cmd's own "is not recognized" error with exit code 1, which is what
testinfra's `uname -s` probe gets from a real host over WinRM (pytest-testinfra issue #330
shows the record). Any other program fails saying the lab does not simulate it.
"""

from __future__ import annotations

import re

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.exec.winenv import environment, expand

Output = tuple[int, bytes, bytes]

# Programs that do not exist on Windows: cmd.exe's own error, never a lab message.
UNIX_ONLY = {
    "uname",
    "cat",
    "ls",
    "id",
    "test",
    "which",
    "command",
    "sh",
    "bash",
    "grep",
    "awk",
    "sed",
    "stat",
    "readlink",
    "getent",
    "systemctl",
    "service",
    "rpm",
    "dpkg",
    "dpkg-query",
    "apt",
    "yum",
    "ps",
    "sudo",
    "true",
    "false",
    "env",
    "head",
    "tail",
    "pwsh",
}


_CMDLET_NAME = re.compile(r"^[a-z]+-[a-z]+$")


def not_recognized(name: str) -> Output:
    msg = (
        f"'{name}' is not recognized as an internal or external command,\r\n"
        "operable program or batch file.\r\n"
    )
    return 1, b"", msg.encode()  # over WinRS the shell reports 1, not cmd's interactive 9009


def lab_refuses(what: str) -> Output:
    msg = f"the rebuild lab (a simulation) does not simulate {what}\r\n"
    return 1, b"", msg.encode()


def split_args(text: str) -> list[str]:
    """CommandLineToArgvW: how a Windows program (powershell.exe included) splits its command line."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        buf: list[str] = []
        quoted = False
        while i < n and (quoted or text[i] not in " \t"):
            c = text[i]
            if c == "\\":
                j = i
                while j < n and text[j] == "\\":
                    j += 1
                count = j - i
                if j < n and text[j] == '"':
                    buf.append("\\" * (count // 2))
                    if count % 2:
                        buf.append('"')
                        i = j + 1
                    else:
                        i = j
                    continue
                buf.append("\\" * count)
                i = j
                continue
            if c == '"':
                if quoted and i + 1 < n and text[i + 1] == '"':
                    buf.append('"')
                    i += 2
                    continue
                quoted = not quoted
                i += 1
                continue
            buf.append(c)
            i += 1
        args.append("".join(buf))
    return args


def split_cmd_pipeline(line: str) -> list[str] | None:
    """Split on cmd.exe's unquoted `|`; None when the line uses cmd syntax the lab does not simulate."""
    stages: list[str] = []
    buf: list[str] = []
    quoted = False
    i = 0
    while i < len(line):
        c = line[i]
        if c == '"':
            quoted = not quoted
        elif not quoted and c in "&<>^":
            return None
        elif not quoted and c == "|":
            if line[i + 1 : i + 2] == "|":
                return None
            stages.append("".join(buf).strip())
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    stages.append("".join(buf).strip())
    return stages


def program_name(token: str) -> str:
    name = token.strip('"').replace("/", "\\").rsplit("\\", 1)[-1].lower()
    return name[:-4] if name.endswith(".exe") else name


def run_command_line(lab: Lab, twin: TwinRecord, line: str, stdin: bytes, console: bool = False) -> Output:
    """Run `line` as cmd.exe would; `console`: in the interactive console session (the first
    logon's), not a WinRS one."""
    from rebuild.lab.exec import native, powershell_exe

    state = lab.state(twin.name)
    line = expand(line, environment(state, twin))
    stages = split_cmd_pipeline(line)
    if stages is None or any(not s for s in stages):
        return lab_refuses(f"this cmd.exe syntax (only simple commands and '|' into findstr): {line[:200]!r}")
    first = stages[0]
    prog = program_name(split_args(first)[0]) if split_args(first) else ""
    if prog in UNIX_ONLY or _CMDLET_NAME.match(prog):
        # cmd.exe knows no cmdlets: testinfra's host.service() sends `Get-Service ...` bare and
        # gets exactly this from a real host too.
        return not_recognized(split_args(first)[0])
    if prog == "powershell":
        if len(stages) > 1:
            return lab_refuses("piping powershell output into another program")
        return powershell_exe.run_powershell_exe(lab, twin, split_args(first)[1:], stdin)
    rc, out, err = native.run_native(lab, twin, first, console)
    for stage in stages[1:]:
        rc, out, err2 = native.filter_stage(stage, out)
        err += err2
    return rc, out, err


def quote_argv(argv: list[str]) -> str:
    """Join arguments so that CommandLineToArgvW gives them back (as win_command's argv does)."""
    out = []
    for a in argv:
        if a and not any(c in a for c in ' \t"'):
            out.append(a)
            continue
        buf, slashes = ['"'], 0
        for c in a:
            if c == "\\":
                slashes += 1
                continue
            if c == '"':
                buf.append("\\" * (slashes * 2 + 1) + '"')
            else:
                buf.append("\\" * slashes + c)
            slashes = 0
        buf.append("\\" * (slashes * 2) + '"')
        out.append("".join(buf))
    return " ".join(out)
