"""Why a reimaged host has no WinRM HTTPS listener, in its own words (issue 12 item 8).

The first logon keeps the HTTP listener (5985) until the HTTPS one works, and writes its failure
(e.g. Get-Certificate's error) to the stamp key as `WinRMHttpsError`. The controller reads that
value over HTTP with the host's new credential: NTLM, every message sealed ([MS-WSMV] 2.2.9.1.1),
so neither the credential nor the answer crosses the network in clear text, and the host needs
no AllowUnencrypted.
"""

from __future__ import annotations

import base64

from winrm.exceptions import WinRMError
from winrm.protocol import Protocol

from rebuild.verify.windows import STAMP_KEY, ps_quote

VALUE = "WinRMHttpsError"
MAX_CHARS = 500  # the reason goes into a task failure and the journal: keep it readable


def https_setup_error_script(key: str = STAMP_KEY) -> str:
    """PowerShell printing the host's recorded HTTPS-setup failure, or nothing."""
    return f"(Get-ItemProperty -Path {ps_quote(key)} -ErrorAction SilentlyContinue).{VALUE}"


def read_https_setup_error(
    address: str, port: int, user: str, password: str, key: str = STAMP_KEY, timeout: int = 20
) -> str:
    """The host's `WinRMHttpsError` read over its WinRM HTTP listener, "" when it has none or the
    read fails (the caller keeps waiting then: a host still finishing its first logon, say)."""
    protocol = Protocol(
        f"http://{address}:{port}/wsman",
        transport="ntlm",
        username=user,
        password=password,
        message_encryption="always",
        read_timeout_sec=timeout + 10,
        operation_timeout_sec=timeout,
    )
    encoded = base64.b64encode(https_setup_error_script(key).encode("utf-16-le")).decode()
    try:
        shell = protocol.open_shell(codepage=65001)  # UTF-8: a French host's message keeps its accents
        try:
            command = protocol.run_command(
                shell, "powershell", ["-NoProfile", "-NonInteractive", "-EncodedCommand", encoded]
            )
            stdout, _stderr, rc = protocol.get_command_output(shell, command)
            protocol.cleanup_command(shell, command)
        finally:
            protocol.close_shell(shell)
    except (WinRMError, OSError, ValueError):
        return ""
    if rc != 0:
        return ""
    return " ".join(stdout.decode("utf-8", errors="replace").split())[:MAX_CHARS]
