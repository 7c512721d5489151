"""The registry keys one host's verification reads, known before any check runs.

The suites read each key through `WindowsReads.registry_key`; the `win` fixture plans these so
the first of those reads fetches all of them in one command (or a few, as the command line
allows) instead of one command per key. A key missing here is still read, by its own command.
"""

from __future__ import annotations

from rebuild.laps import POLICY_ROOT
from rebuild.verify.expect import Expectations
from rebuild.verify.windows import STAMP_KEY

# Written by plugins/modules/win_rebuild_baseline.ps1 (value Controls: the control ids).
RESTART_PENDING_KEY = r"HKLM:\SOFTWARE\GHAL\Rebuild\Harden\RestartPending"
PRINTER_KEY = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Print\\Printers\\{name}"


def registry_keys_read(expect: Expectations) -> list[str]:
    """Each key once, in the order the suites read them: the compiled baseline's registry
    settings (exceptions applied), the restart-pending key, the printers', the EDR agents', the
    LAPS policy root where LAPS manages the host, the rebuild stamp where BitLocker is required."""
    keys = [s["path"] for c in expect.hardening for s in c["settings"] if s["type"] == "registry"]
    keys.append(RESTART_PENDING_KEY)
    keys += [PRINTER_KEY.format(name=p["name"]) for p in expect.printers]
    keys += [str(e["registry_key"]) for e in expect.edr]
    if expect.laps_managed:
        keys.append(POLICY_ROOT)
    if expect.bitlocker_required:
        keys.append(STAMP_KEY)
    return list(dict.fromkeys(keys))
