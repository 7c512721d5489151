"""The verification servers running on this machine (rebuild.verify.server), for the tests that
check one is started, used and stopped."""

from __future__ import annotations

from pathlib import Path


def verify_server_pids(needle: str) -> list[int]:
    """Processes running rebuild.verify.server whose command line contains `needle`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"rebuild.verify.server" in cmdline and needle.encode() in cmdline:
                found.append(int(entry.name))
    return found
