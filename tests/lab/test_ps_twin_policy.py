"""Local security policy through auditpol.exe and secedit.exe and their files, run as PowerShell.

Each test runs a small Windows PowerShell 5.1 script on a twin through the lab's evaluator and
checks what the cited Microsoft page documents.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.lab.context import Lab
from rebuild.lab.exec.twin_host import CheckModeWrite
from rebuild.lab.ps import NotSimulated
from rebuild.lab.ps.evaluator import RunResult
from rebuild.lab.state import LocalUser
from tests.lab.twins import RX_PC, bare_state, one_twin_lab, run_ps

TWIN = RX_PC.name
LOGON = "{0CCE9215-69AE-11D9-BED3-505054503030}"  # MS-GPAC 2.2.1.2: the Logon subcategory


@pytest.fixture()
def lab(tmp_path: Path) -> Lab:
    state = bare_state(
        audit_policy={"Logon": "Success"},
        user_rights={"SeRemoteInteractiveLogonRight": ["Administrators", "Remote Desktop Users"]},
        security_policy={"System Access": {"LockoutBadCount": 0, "NewGuestName": "Guest"}},
        users={"Guest": LocalUser("Guest", False, ["Guests"], "", "", 501)},
    )
    return one_twin_lab(tmp_path, state)


def run(lab: Lab, src: str, check_mode: bool = False) -> RunResult:
    return run_ps(lab, src, check_mode=check_mode)


BACKUP = (
    "$f = [IO.Path]::GetTempFileName()\n"
    '$null = & auditpol.exe /backup "/file:$f"\n'
    f"$row = Import-Csv -LiteralPath $f | Where-Object {{ $_.'Subcategory GUID' -eq '{LOGON}' }}\n"
    "Remove-Item -LiteralPath $f -Force\n"
    "\"$($row.Subcategory)=$($row.'Setting Value')\"\n"
)


def test_auditpol_backup_is_a_csv_import_csv_reads(lab: Lab) -> None:
    """auditpol /backup writes one row per subcategory with its GUID and the setting bits
    (1 success, 2 failure); Import-Csv makes each row an object named by the header."""
    assert run(lab, BACKUP).output == ["Audit Logon=1"]


def test_auditpol_set_by_guid_changes_one_flag_and_check_mode_refuses(lab: Lab) -> None:
    """auditpol /set /subcategory:{GUID} /failure:enable keeps the success flag as it was."""
    src = f"& auditpol.exe /set '/subcategory:{LOGON}' /failure:enable; $LASTEXITCODE\n"
    assert run(lab, src).output == ["The command was successfully executed.", 0]
    assert lab.state(TWIN).audit_policy["Logon"] == "Success and Failure"
    with pytest.raises(CheckModeWrite):
        run(lab, src, check_mode=True)
    # The backup it reads in check mode is a temporary file, not a change of the twin.
    assert run(lab, BACKUP, check_mode=True).output == ["Audit Logon=3"]


def test_auditpol_unknown_subcategory_is_the_parameter_is_incorrect(lab: Lab) -> None:
    unknown = "{00000000-0000-0000-0000-000000000000}"
    src = f"$o = & auditpol.exe /set '/subcategory:{unknown}' /success:enable; $LASTEXITCODE"
    assert run(lab, src).output == [87]


SECEDIT_EXPORT = (
    "$f = [IO.Path]::GetTempFileName()\n"
    "$null = & secedit.exe /export /cfg $f /areas USER_RIGHTS SECURITYPOLICY /quiet\n"
    "Get-Content -LiteralPath $f -Encoding Unicode |\n"
    "  Where-Object { $_ -match '^(SeRemote|LockoutBad|NewGuest)' }\n"
)


def test_secedit_export_is_utf16_with_rights_as_sids(lab: Lab) -> None:
    """secedit /export writes a Unicode INF; accounts in user rights as *SID (Well-known SIDs),
    strings quoted."""
    assert run(lab, SECEDIT_EXPORT).output == [
        "LockoutBadCount = 0",
        'NewGuestName = "Guest"',
        "SeRemoteInteractiveLogonRight = *S-1-5-32-544,*S-1-5-32-555",
    ]


def test_secedit_configure_applies_an_inf_written_with_set_content(lab: Lab) -> None:
    """secedit /configure /db /cfg applies the template's [System Access] and [Privilege Rights]."""
    src = (
        "$inf = [IO.Path]::GetTempFileName()\n"
        "$lines = @('[Unicode]', 'Unicode=yes', '[System Access]', 'LockoutBadCount = 5', "
        "'[Privilege Rights]', 'SeRemoteInteractiveLogonRight = *S-1-5-32-544', "
        "'[Version]', 'signature=\"$CHICAGO$\"', 'Revision=1')\n"
        "Set-Content -LiteralPath $inf -Value $lines -Encoding Unicode\n"
        "$null = & secedit.exe /configure /db C:\\Windows\\Temp\\x.sdb /cfg $inf "
        "/areas USER_RIGHTS SECURITYPOLICY /quiet\n"
        "$LASTEXITCODE\n"
    )
    assert run(lab, src).output == [0]
    state = lab.state(TWIN)
    assert state.security_policy["System Access"]["LockoutBadCount"] == 5
    assert state.user_rights["SeRemoteInteractiveLogonRight"] == ["Administrators"]


def test_secedit_configure_of_an_ansi_file_is_not_a_template(lab: Lab) -> None:
    """The template must be Unicode as declared; Set-Content's 5.1 default is ANSI."""
    src = (
        "$inf = [IO.Path]::GetTempFileName()\n"
        "Set-Content -LiteralPath $inf -Value @('[Unicode]', 'Unicode=yes')\n"
        "$null = & secedit.exe /configure /db C:\\x.sdb /cfg $inf /quiet\n"
        "$LASTEXITCODE\n"
    )
    assert run(lab, src).output == [1]


def test_a_windows_cmdlet_the_lab_lacks_is_loud_even_inside_try(lab: Lab) -> None:
    """A script's catch must not take "not recognized" for what Windows would have run."""
    with pytest.raises(NotSimulated, match="the cmdlet Get-Process"):
        run(lab, "try { Get-Process } catch { 'caught' }")
    out = run(lab, "try { Get-NoSuchThing } catch { $_.FullyQualifiedErrorId }").output
    assert out == ["CommandNotFoundException"]


def test_string_startswith_with_string_comparison(lab: Lab) -> None:
    """String.StartsWith(value, StringComparison): OrdinalIgnoreCase ignores case, Ordinal does not."""
    src = "'ARL-RX\\x'.StartsWith('arl-rx\\', 'OrdinalIgnoreCase'); 'ARL'.StartsWith('arl', 'Ordinal')"
    assert run(lab, src).output == [True, False]
