"""Windows LAPS manages the local administrator of a joined host (condition `laps`).

Policy in effect: the LAPS Group Policy root backs passwords up to Active Directory
(BackupDirectory 2, whoever wrote it: the redeploy step or, later, the domain's own LAPS GPO).
Rotation after the rebuild: the LAPS event log holds 10018 (Active Directory has the new password)
and 10020 (the local account has it); the log begins with this installation, which the rebuild
made on a wiped disk, so any confirmation in it is one after the rebuild (Microsoft Learn, "Use
Windows LAPS event logs"). Skipped, naming why, for a workgroup host or an OS without Windows LAPS:
those keep the rebuild secret.
"""

# mypy: disable-error-code="no-untyped-def"
# (pytest test functions: fixtures are typed by name in rebuild/verify/plugin.py)

from __future__ import annotations

import pytest

from rebuild.laps import BACKUP_DIRECTORIES, EVENT_AD_UPDATED, EVENT_LOCAL_UPDATED, EVENT_LOG, POLICY_ROOT
from rebuild.verify.windows import WindowsReads


def test_laps(win: WindowsReads, expect):
    if not expect.laps_managed:
        pytest.skip(f"Windows LAPS does not manage this host's local administrator: {expect.laps_reason}")
    policy = win.registry_key(POLICY_ROOT)
    if policy is None:
        pytest.fail(f"Windows LAPS policy not in effect: {POLICY_ROOT} does not exist")
    backup = policy.get("BackupDirectory")
    assert backup == BACKUP_DIRECTORIES["active_directory"], (
        f"Windows LAPS policy not in effect: BackupDirectory is {backup!r} under {POLICY_ROOT}, "
        f"not {BACKUP_DIRECTORIES['active_directory']} (Active Directory)"
    )
    wanted = (EVENT_AD_UPDATED, EVENT_LOCAL_UPDATED)
    seen = {int(e.get("Id", 0)) for e in win.laps_rotations(EVENT_LOG, wanted)}
    missing = [str(i) for i in wanted if i not in seen]
    assert not missing, (
        f"no Windows LAPS rotation since the rebuild: event(s) {', '.join(missing)} not in {EVENT_LOG} "
        "(the redeploy log says why Reset-LapsPassword was not confirmed)"
    )
