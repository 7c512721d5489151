"""The first logon of a fresh install: AutoLogon's session runs the answer file's FirstLogonCommands.

SIMULATION. Microsoft Learn, "FirstLogonCommands" (Microsoft-Windows-Shell-Setup): each
SynchronousCommand's CommandLine runs in Order, in the session of the account AutoLogon
logged on, each after the previous one ended; a command that fails does not stop the next
one. The lab runs each command line as a WinRS command line runs (cmd.exe's expansion, then
the program: powershell.exe's options, then the PowerShell evaluator on the new twin's state,
`rebuild.lab.exec.commandline`), so the product's own first-logon PowerShell executes.

Every command runs so, the WinRM HTTPS listener one among them (`rebuild.lab.exec.twin_remoting`).
"""

from __future__ import annotations

import re

from rebuild.lab.answerfile import AnswerFile
from rebuild.lab.context import Lab
from rebuild.lab.images import STAMP_KEY
from rebuild.lab.state import TwinState

_AFTER_LOG_OFF = (
    "the rebuild lab (a simulation) does not simulate first-logon commands after one logged the session off"
)


def run_first_logon(lab: Lab, name: str, answer: AnswerFile) -> None:
    """Run the first-logon commands on twin `name` (already installed from `answer`)."""
    from rebuild.lab.exec.commandline import run_command_line

    if not answer.auto_logon_user:
        return  # nobody logs on: the commands never run
    twin = lab.twins[name]
    for order, line in enumerate(answer.first_logon_commands, start=1):
        if not lab.state(name).console_session:
            # A command logged the session off: what Windows does with the commands left is not known here.
            lab.record(name, "first_logon_command", order=order, exit_code=1, stderr=_AFTER_LOG_OFF)
            continue
        code, _, err = run_command_line(lab, twin, line, b"", console=True)
        stderr = _redacted(err, answer, line)
        lab.record(name, "first_logon_command", order=order, exit_code=code, stderr=stderr)
    lab.update(name, _image_from_stamp)


def _image_from_stamp(state: TwinState) -> None:
    """The lab's note of which image the host says it runs: what the stamp key holds."""
    stamp = state.registry.get(STAMP_KEY, {})
    state.image_id = str(stamp.get("ImageId") or "")
    state.image_sha256 = str(stamp.get("ImageSha256") or "")


# A password the command line itself carries (the enrolment account's, for Get-Certificate).
_PLAIN_TEXT_SECRET = re.compile(r"ConvertTo-SecureString\s+'((?:[^']|'')*)'", re.IGNORECASE)


def _redacted(err: bytes, answer: AnswerFile, line: str) -> str:
    """A command's error output for the twin's history, with the answer file's passwords and the
    command's own plain-text password masked (PowerShell's error position echoes the line)."""
    text = err.decode("utf-8", "replace").strip()[:2000]
    secrets = [answer.administrator_password or "", *(a.password for a in answer.accounts)]
    secrets += [found.replace("''", "'") for found in _PLAIN_TEXT_SECRET.findall(line)]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text
