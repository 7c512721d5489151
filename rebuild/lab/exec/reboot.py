"""What ansible.windows.win_reboot sends (plugin_utils/_reboot.py), recognised as a whole.

The reboot script removes the LogonUI marker key, runs `shutdown.exe /r /t <n> /c <msg>` and
prints `{"stdout","stderr","rc"}` as compressed JSON. The twin records a `reboot` event (its
LastBootUpTime moves to now) and LogonUI recreates the marker key on the way back up. The
boot-time probe and the `Get-Item <marker>` test command are ordinary read-subset commands.
"""

from __future__ import annotations

import json
import re

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.state import TwinState

LOGON_UI_KEY = "HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon\\AutoLogonChecked"

_REBOOT = re.compile(
    r"^\$ErrorActionPreference = 'Continue'\s*"
    r"if \(\$(?P<remove>True|False)\) \{\s*"
    r"Remove-Item -LiteralPath '(?P<key>[^']*)' -Force -ErrorAction SilentlyContinue\s*\}\s*"
    r"\$stdout = \$null\s*"
    r"\$stderr = \. \{ C:\\Windows\\System32\\shutdown\.exe /r /t (?P<delay>\d+) "
    r"/c (?P<msg>'(?:[^']|'')*') \| Set-Variable stdout \} 2>&1 \| ForEach-Object ToString\s*"
    r"ConvertTo-Json -Compress -InputObject @\{\s*"
    r"stdout = \(@\(\$stdout\) -join \"`n\"\)\s*"
    r"stderr = \(@\(\$stderr\) -join \"`n\"\)\s*"
    r"rc = \$LASTEXITCODE\s*\}\s*"
    r"(?:;\s*If \(-not \$\?\).*)?$",
    re.S,
)


def match_reboot_script(script: str) -> re.Match[str] | None:
    return _REBOOT.match(script.strip())


def run_reboot_script(lab: Lab, twin: TwinRecord, m: re.Match[str]) -> tuple[int, bytes, bytes]:
    def reboot(state: TwinState) -> None:
        if m.group("remove") == "True":
            state.registry.pop(
                next((k for k in state.registry if k.lower() == m.group("key").lower()), ""), None
            )
        # LogonUI writes the volatile marker again when the logon screen comes up after the restart.
        state.registry[LOGON_UI_KEY] = {}

    lab.update(twin.name, reboot)
    lab.record(twin.name, "reboot", delay=int(m.group("delay")), via="shutdown.exe /r")
    out = json.dumps({"stdout": "", "stderr": "", "rc": 0}, separators=(",", ":"))
    return 0, (out + "\r\n").encode(), b""
