"""testinfra's WinRM backend with one WinRS shell for the whole verification of a host.

testinfra's own backend builds a new pywinrm Protocol and shell for every command: a TLS
and NTLM handshake plus create/command/receive/signal/delete, per read. Windows (and the
SIMULATED lab, which mirrors it) run any number of commands in one shell, as Ansible's winrm
connection does, so here the session opens one shell lazily and reuses it; a read that hits
a lost shell or a quota drops it and the caller's retry opens a fresh one.
"""

from __future__ import annotations

import contextlib
from typing import Any

from testinfra.backend import base
from testinfra.backend.winrm import WinRMBackend

UTF8_CODEPAGE = 65001


class SessionShellBackend(WinRMBackend):  # type: ignore[misc]  # testinfra is untyped
    """One pywinrm Protocol and one shell, opened on first use, closed by `close()`."""

    def __init__(self, hostspec: str, conn_args: dict[str, Any], no_ssl: bool) -> None:
        super().__init__(hostspec, no_ssl=no_ssl)
        # Credentials go straight into pywinrm's arguments, never into a URL (test ids, logs).
        self.conn_args = conn_args
        # The shell is opened with code page 65001 (below), so its output is UTF-8. Saying so
        # stops testinfra from probing the host's encoding with a `python -c` Windows lacks.
        self._encoding = "utf-8"
        self._protocol: Any = None
        self._shell_id: str | None = None
        self.shells_opened = 0

    def run_winrm(self, command: str) -> base.CommandResult:
        import winrm.protocol

        if self._protocol is None or self._shell_id is None:
            # pywinrm's default is code page 437 (OEM US): "Maternité" would come back as
            # b"Maternit\x82" and testinfra's strict UTF-8 decode would raise. WINRS_CODEPAGE
            # 65001 makes console output UTF-8, as Ansible's winrm connection does.
            self._protocol = winrm.protocol.Protocol(**self.conn_args)
            self._shell_id = self._protocol.open_shell(codepage=UTF8_CODEPAGE)
            self.shells_opened += 1
        protocol, shell_id = self._protocol, self._shell_id
        try:
            command_id = protocol.run_command(shell_id, command)
            stdout, stderr, rc = protocol.get_command_output(shell_id, command_id)
            protocol.cleanup_command(shell_id, command_id)
        except Exception:
            # Lost shell, quota or transport error: start clean on the next read (the caller retries).
            self._protocol, self._shell_id = None, None
            raise
        return self.result(rc, self.encode(command), stdout, stderr)

    def close(self) -> None:
        """Delete the shell (best effort: the host may be gone; Windows expires idle shells)."""
        protocol, shell_id = self._protocol, self._shell_id
        self._protocol, self._shell_id = None, None
        if protocol is not None and shell_id is not None:
            # Closing is housekeeping, never a verification result.
            with contextlib.suppress(Exception):
                protocol.close_shell(shell_id)
