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
from rebuild.lab.exec import native, powershell_exe, twin_host
from rebuild.lab.exec.cmdwords import UNIX_ONLY, Output, lab_refuses, not_recognized, split_args
from rebuild.lab.exec.winenv import environment, expand

_CMDLET_NAME = re.compile(r"^[a-z]+-[a-z]+$")


_CMD_SPECIAL = re.compile(r'["&<>^|]')


def split_cmd_pipeline(line: str) -> list[str] | None:
    """Split on cmd.exe's unquoted `|`; None when the line uses cmd syntax the lab does not simulate.
    Only the characters that mean something to cmd are visited (a command line carries a long
    -EncodedCommand, which has none)."""
    stages: list[str] = []
    start = 0
    quoted = False
    for special in _CMD_SPECIAL.finditer(line):
        c, i = special.group(), special.start()
        if c == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif c != "|" or line[i + 1 : i + 2] == "|":
            return None  # & < > ^ or ||
        else:
            stages.append(line[start:i].strip())
            start = i + 1
    stages.append(line[start:].strip())
    return stages


def program_name(token: str) -> str:
    name = token.strip('"').replace("/", "\\").rsplit("\\", 1)[-1].lower()
    return name[:-4] if name.endswith(".exe") else name


def run_command_line(lab: Lab, twin: TwinRecord, line: str, stdin: bytes, console: bool = False) -> Output:
    """Run `line` as cmd.exe would; `console`: in the interactive console session (the first
    logon's), not a WinRS one."""
    line = expand(line, environment(lab.peek(twin.name), twin))  # reads the name only: no copy
    stages = split_cmd_pipeline(line)
    if stages is None or any(not s for s in stages):
        return lab_refuses(f"this cmd.exe syntax (only simple commands and '|' into findstr): {line[:200]!r}")
    first = stages[0]
    words = split_args(first)
    prog = program_name(words[0]) if words else ""
    if prog in UNIX_ONLY or _CMDLET_NAME.match(prog):
        # cmd.exe knows no cmdlets: testinfra's host.service() sends `Get-Service ...` bare and
        # gets exactly this from a real host too.
        return not_recognized(words[0])
    if prog == "powershell":
        if len(stages) > 1:
            return lab_refuses("piping powershell output into another program")
        return powershell_exe.run_powershell_exe(lab, twin, words[1:], stdin)
    # Programs that change the twin (reg add, shutdown) first, then the read-only ones.
    written = twin_host.run_writing_program(lab, twin, prog, words[1:], console)
    rc, out, err = written if written is not None else native.run_native(lab, twin, first)
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
