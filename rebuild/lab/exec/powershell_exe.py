"""powershell.exe as a WinRS command or a win_shell task starts it: options, then the evaluator.

SIMULATION. powershell.exe's own command line is parsed as Windows PowerShell 5.1 parses it
(about_PowerShell_exe: any unambiguous prefix of a parameter, -EncodedCommand is base64 of
UTF-16LE, `-Command -` reads the script from stdin); Ansible's bootstrap wrapper goes to the
module runner; every other script runs through the PowerShell evaluator (`rebuild.lab.ps`)
on the twin (`TwinHost`), the same one that runs our product modules. What the evaluator does
not simulate fails with "the rebuild lab (a simulation) does not simulate X at <script>:<line>"
on stderr and exit code 1.

Exit code (about_PowerShell_exe, -Command): the number given to `exit`; otherwise 1 when the
last command failed (`$?` false, or a terminating error ended the script), else 0. Output is
what the console host prints: objects in list form, scalars one per line (psobjects.format_default);
each error record shown as `Command : message` on stderr.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.exec.ansible_payload import PayloadError, decode_encoded_command, is_bootstrap_wrapper
from rebuild.lab.exec.psobjects import PSObj, format_default
from rebuild.lab.ps import Evaluator, NotSimulated, PSParseError
from rebuild.lab.ps import values as v

Output = tuple[int, bytes, bytes]

_EXE_SWITCHES = ("noprofile", "noninteractive", "nologo", "noexit", "sta", "mta")
_EXE_VALUED = (
    "executionpolicy",
    "inputformat",
    "outputformat",
    "windowstyle",
    "version",
    "configurationname",
)
_EXE_ALIASES = {
    "ep": "executionpolicy",
    "ex": "executionpolicy",
    "exec": "executionpolicy",
    "ec": "encodedcommand",
    "e": "encodedcommand",
    "c": "command",
    "f": "file",
    "nop": "noprofile",
    "noni": "noninteractive",
}


def _exe_option(token: str, names: tuple[str, ...]) -> str | None:
    """powershell.exe accepts any unambiguous prefix of its parameter names (-NoP, -enc, -ep)."""
    word = token[1:].lower()
    if not word:
        return None
    if word in _EXE_ALIASES and _EXE_ALIASES[word] in names:
        return _EXE_ALIASES[word]
    hits = [n for n in names if n.startswith(word)]
    return hits[0] if len(hits) == 1 else None


def _refused(what: str) -> Output:
    return 1, b"", f"the rebuild lab (a simulation) does not simulate {what}\r\n".encode()


def run_powershell_exe(lab: Lab, twin: TwinRecord, args: list[str], stdin: bytes) -> Output:
    """Interpret powershell.exe's own arguments, then the script they name."""
    all_names = _EXE_SWITCHES + _EXE_VALUED + ("encodedcommand", "command", "file")
    script: str | None = None
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith(("-", "/")):
            script = " ".join(args[i:])  # bare text after the options is the command
            break
        name = _exe_option(tok, all_names)
        if name is None:
            message = f"-{tok[1:]} : The term '{tok}' is not recognized as a valid parameter of "
            message += "powershell.exe"
            return 1, b"", (message + "\r\n").encode()
        if name in _EXE_SWITCHES:
            i += 1
            continue
        if name in _EXE_VALUED:
            i += 2
            continue
        if name == "encodedcommand":
            if i + 1 >= len(args):
                return 1, b"", b"Cannot process the command because -EncodedCommand requires an argument.\r\n"
            try:
                script = decode_encoded_command(args[i + 1])
            except PayloadError as exc:
                message = (
                    "Cannot process the command because the value specified with -EncodedCommand "
                    f"is not properly encoded: {exc}"
                )
                return 1, b"", (message + "\r\n").encode()
            break
        if name == "command":
            rest = args[i + 1 :]
            script = stdin.decode("utf-8", "replace") if rest == ["-"] else " ".join(rest)
            break
        if name == "file":
            return _refused("powershell.exe -File (scripts on the twin's disk are not run)")
    if script is None:
        return _refused("an interactive powershell.exe session (no -Command/-EncodedCommand)")
    if is_bootstrap_wrapper(script):
        from rebuild.lab.exec.ansible_exec import run_bootstrap

        return run_bootstrap(lab, twin, stdin)
    return run_script(lab, twin, script)


def run_script(lab: Lab, twin: TwinRecord, script: str) -> Output:
    """Run `script` on the twin as `powershell.exe -Command` would: (exit code, stdout, stderr)."""
    from rebuild.lab.exec.twin_host import TwinHost

    host = TwinHost(lab, twin)
    ev = Evaluator(host)
    try:
        run = ev.run(script, "<command>")
    except (NotSimulated, PSParseError) as exc:
        # Whatever ran before the construct the lab cannot follow has been stored (`TwinHost.finish`).
        return 1, _lines(ev.host_lines), _lines([*ev.native_stderr, str(exc)])
    out = _lines(run.host_lines) + render(run.output).encode("utf-8")
    out += _lines(f"WARNING: {w}" for w in run.warnings)
    err = _lines([*run.native_stderr, *(rec.render() for rec in run.errors)])
    code = run.exit_code
    if code == 0 and not run.last_succeeded:
        code = 1
    return code, out, err


def _lines(lines: Iterable[str]) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


def render(values: list[Any]) -> str:
    """The console host's default output of the pipeline's objects."""
    shown: list[Any] = []
    for value in values:
        if isinstance(value, PSObj):
            shown.append(value)
        elif isinstance(value, v.Hashtable):
            raise NotSimulated("the console's table view of a hashtable (send it through ConvertTo-Json)")
        else:
            shown.append(v.to_string(value))
    return format_default(shown)
