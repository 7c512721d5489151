"""shutdown.exe /r as the lab simulates it: what ansible.windows.win_reboot asks for.

win_reboot (plugin_utils/_reboot.py) sends a PowerShell script that removes the LogonUI marker
key, runs `shutdown.exe /r /t <n> /c <msg>` and prints `{"stdout","stderr","rc"}`; the script
runs through the evaluator like any other, and only the program is simulated here. The twin
records a `reboot` event (its LastBootUpTime moves once the delay has passed) and LogonUI
recreates the volatile marker key on the way back up.

shutdown options (Microsoft Learn, "shutdown", windows-commands/shutdown): /r full shutdown
and restart, /t xxx delay in seconds (0-315360000, default 30), /c "comment" (at most 512
characters). Any other option fails loudly here.

Fault `restart_refused_once` (rebuild/lab/faults.py): the next `shutdown /r` is refused and the
fault is spent. shutdown.exe exits with the Win32 error of the refused request and prints its system
message followed by the code in parentheses, as win_reboot expects ("... (1190)"): here
ERROR_ACCESS_DENIED, "Access is denied.(5)", what InitiateShutdown returns when the caller lacks the
shutdown privilege (Microsoft Learn, InitiateShutdownW, Return value). Nothing restarts, so volatile
keys stay; win_reboot fails the task "Reboot command failed" on any exit code but 0 and 1190
(ansible.windows plugin_utils/_reboot.py, _perform_reboot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rebuild.lab import faults
from rebuild.lab.ps.errors import NotSimulated
from rebuild.lab.state import TwinState

if TYPE_CHECKING:
    from rebuild.lab.exec.twin_host import TwinHost
    from rebuild.lab.ps.evaluator import NativeResult

LOGON_UI_KEY = "HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon\\AutoLogonChecked"
MAX_DELAY = 315360000  # shutdown /t: "The valid range is 0-315360000 (10 years)"
MAX_COMMENT = 512
ERROR_ACCESS_DENIED = 5


def _log_off(host: TwinHost, rest: list[str]) -> NativeResult | None:
    """`shutdown /l [/f]` (Microsoft Learn, "shutdown"): logs the current user off at once, /f
    closing running applications without warning. Only the console session is simulated (a
    WinRM session's log-off is not): the console is left at the logon screen."""
    from rebuild.lab.ps.evaluator import NativeResult

    if any(opt.lower() not in ("/f", "-f") for opt in rest):
        return None
    if not host.console:
        raise NotSimulated("shutdown /l outside the console session")

    def closed(state: TwinState) -> None:
        state.console_session = ""

    host.write("shutdown /l", closed)
    return NativeResult(0, [], [])


def shutdown(host: TwinHost, args: list[str]) -> NativeResult | None:
    """`shutdown /r [/t N] [/c msg]`, `shutdown /l [/f]`; None (not simulated) for anything else."""
    from rebuild.lab.ps.evaluator import NativeResult

    if args and args[0].lower() in ("/l", "-l"):
        return _log_off(host, args[1:])
    restart, delay, comment = False, 30, ""
    i = 0
    while i < len(args):
        opt = args[i].lower()
        if opt in ("/r", "-r"):
            restart = True
        elif opt in ("/t", "-t") and i + 1 < len(args) and args[i + 1].isdigit():
            delay = int(args[i + 1])
            i += 1
        elif opt in ("/c", "-c") and i + 1 < len(args):
            comment = args[i + 1]
            i += 1
        else:
            return None
        i += 1
    if not restart:
        return None
    if delay > MAX_DELAY or len(comment) > MAX_COMMENT:
        return NativeResult(87, [], ["The parameter is incorrect.(87)"])

    if _refused_once(host):
        return NativeResult(ERROR_ACCESS_DENIED, [], [f"Access is denied.({ERROR_ACCESS_DENIED})"])

    def logon_ui_marker(state: TwinState) -> None:
        # LogonUI writes the volatile marker again when the logon screen comes up after the restart.
        state.registry[LOGON_UI_KEY] = {}

    host.write("shutdown /r", logon_ui_marker)
    host.lab.record(host.twin.name, "reboot", delay=delay, via="shutdown.exe /r")
    return NativeResult(0, [], [])


def _refused_once(host: TwinHost) -> bool:
    """Consume the fault `restart_refused_once` of this twin: True once, when it is set."""
    if host.lab.fault(host.twin.name, "restart_refused_once") is None:
        return False
    faults.clear(host.lab.faults, host.twin.name, "restart_refused_once")
    host.lab.record(host.twin.name, "restart_refused", fault="restart_refused_once")
    return True
