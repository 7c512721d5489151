"""What a twin does with a WinRS command: Ansible payloads, module twins, PowerShell, cmd.

SIMULATION. The WinRM transport (rebuild/lab/server.py) calls `execute` once a command's stdin
is complete. The command is one of

* Ansible's bootstrap wrapper (`PowerShell ... -EncodedCommand <bootstrap_wrapper.ps1>`) with the
  exec wrapper payload on stdin -> a module twin (`modules/`) or an executor script
  (temp directory, home expansion, file copy);
* any other PowerShell script (`powershell_exe.py`): run by the lab's PowerShell evaluator
  (`rebuild.lab.ps`) on the twin, as testinfra, verification and win_reboot send them;
* a cmd.exe command line of the documented programs (`commandline.py`, `native.py`).

Anything else fails loudly with a message saying the lab does not simulate it. Module twins
are added by dropping a module in `modules/` (see `rebuild.lab.exec.modules`).
"""

from __future__ import annotations

import logging

from rebuild.lab.context import Lab, TwinRecord

_log = logging.getLogger(__name__)


def execute(
    lab: Lab, twin: TwinRecord, command: str, arguments: list[str], stdin: bytes
) -> tuple[int, bytes, bytes]:
    """Run one WinRS command on `twin`: returns (exit code, stdout, stderr) as Windows would."""
    from rebuild.lab.exec.commandline import run_command_line

    line = " ".join([command, *arguments]) if arguments else command
    try:
        return run_command_line(lab, twin, line, stdin)
    except Exception as exc:  # a bug in the simulation must fail the command, never pass it or kill the shell
        _log.exception("lab exec: internal error on %s", twin.name)
        msg = f"the rebuild lab (a simulation) failed internally on this command: {type(exc).__name__}\r\n"
        return 1, b"", msg.encode()
