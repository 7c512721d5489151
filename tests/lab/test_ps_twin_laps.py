"""Windows LAPS on a twin: Reset-LapsPassword and the LAPS event log (Get-WinEvent), the redeploy
step's script (roles/redeploy/tasks/laps.yml) and the verification suite (rebuild/verify/suites/
test_laps.py), run as PowerShell through the evaluator (rebuild/lab/exec/twin_laps.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from rebuild.datadir import PROJECT_ROOT
from rebuild.lab import directory, faults
from rebuild.lab.context import Lab
from rebuild.lab.exec.twin_host import CheckModeWrite
from rebuild.lab.ps import NotSimulated
from rebuild.lab.state import LocalUser
from rebuild.laps import host_settings, load_laps_policy
from rebuild.verify.suites import test_laps as suite
from rebuild.verify.windows import WindowsReads
from tests.lab.twins import RX_PC, ReadHost, bare_state, one_twin_lab, run_ps

TWIN = RX_PC.name
ROOT = "HKLM:\\Software\\Microsoft\\Windows\\CurrentVersion\\Policies\\LAPS"
LOG = "Microsoft-Windows-LAPS/Operational"
POLICY = f"$null = New-Item -Path '{ROOT}' -Force\n" + (
    f"$null = New-ItemProperty -Path '{ROOT}' -Name BackupDirectory -Value 2 -PropertyType DWord -Force\n"
)
EVENTS = (
    "try {{ Get-WinEvent -FilterHashtable @{{LogName = '{log}'; Id = {ids}}} "
    "| ForEach-Object {{ $_.Id }} }} catch {{ $_.Exception.Message }}"
)


def lab_of(tmp_path: Path, joined: bool = True) -> Lab:
    tmp_path.mkdir(parents=True, exist_ok=True)
    users = {
        "rb-admin": LocalUser("rb-admin", groups=["Administrators"], password="rebuild-secret"),
        # the built-in Administrator, renamed and disabled by the harden baseline (GHAL-ACC-001)
        "ghal-localadm": LocalUser("ghal-localadm", enabled=False, password="image-random", sid_suffix=500),
    }
    state = bare_state(domain="ghal.local" if joined else "WORKGROUP", domain_joined=joined, users=users)
    return one_twin_lab(tmp_path, state)


def events(lab: Lab, ids: str = "10017,10018,10020") -> list[object]:
    return run_ps(lab, EVENTS.format(log=LOG, ids=ids)).output


def test_reset_rotates_the_built_in_administrator_and_logs_the_confirmations(tmp_path: Path) -> None:
    """Reset-LapsPassword (laps/reset-lapspassword) returns nothing; the events say what happened
    ("Use Windows LAPS event logs": 10018 Active Directory updated, 10020 local account updated)."""
    lab = lab_of(tmp_path)
    assert run_ps(lab, POLICY + "Reset-LapsPassword").output == []
    users = lab.state(TWIN).users
    assert users["ghal-localadm"].password not in ("", "image-random")
    assert len(users["ghal-localadm"].password) == 14  # PasswordLength unset: Microsoft's default 14
    assert users["rb-admin"].password == "rebuild-secret"  # never the account rebuild connects as
    assert events(lab) == [10020, 10018]  # newest first
    assert directory.laps_expiration(directory.load(tmp_path), TWIN) is not None


def test_rotation_refused_by_the_directory_is_only_in_the_event_log(tmp_path: Path) -> None:
    """Fault laps_rotation_fails: 10017 (failed to update Active Directory), the password is kept."""
    lab = lab_of(tmp_path)
    faults.apply(lab.faults, {TWIN: {"laps_rotation_fails": {}}})
    assert run_ps(lab, POLICY + "Reset-LapsPassword").output == []
    assert lab.state(TWIN).users["ghal-localadm"].password == "image-random"
    assert events(lab) == [10017]
    assert events(lab, "10018") == ["No events were found that match the specified selection criteria."]
    assert not directory.path_in(tmp_path).exists()


@pytest.mark.parametrize(
    ("build", "ubr", "has_laps"),
    [
        ("22631", 0, True),
        ("20348", 1662, False),
        ("20348", 1663, True),
        ("17763", 4244, True),
        ("14393", 9999, False),
    ],
)
def test_windows_laps_exists_only_from_the_april_2023_update(
    tmp_path: Path, build: str, ubr: int, has_laps: bool
) -> None:
    """LAPS CSP "Applicable OS": 20348.1663, 17763.4244, …; Windows Server 2016 (14393) never."""
    lab = lab_of(tmp_path)
    version = "HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
    lab.store.put(
        TWIN, replace(lab.state(TWIN), registry={version: {"CurrentBuildNumber": build, "UBR": ubr}})
    )
    src = (
        POLICY
        + "try { Reset-LapsPassword; 'rotated' } catch { $_.Exception.Message }\n"
        + EVENTS.format(log=LOG, ids="10018")
    )
    out = [str(x) for x in run_ps(lab, src).output]
    if has_laps:
        assert out == ["rotated", "10018"]
    else:
        assert out[0].startswith("The term 'Reset-LapsPassword' is not recognized")
        assert out[1] == f'There is not an event log on the localhost computer that matches "{LOG}".'


def test_what_the_lab_cannot_know_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(NotSimulated, match="BackupDirectory 2"):
        run_ps(lab_of(tmp_path / "a"), "Reset-LapsPassword")
    with pytest.raises(NotSimulated, match="outside a domain"):
        run_ps(lab_of(tmp_path / "b", joined=False), POLICY + "Reset-LapsPassword")
    with pytest.raises(NotSimulated, match="only Microsoft-Windows-LAPS/Operational"):
        run_ps(lab_of(tmp_path / "c"), "Get-WinEvent -FilterHashtable @{LogName = 'System'}")
    with pytest.raises(CheckModeWrite):
        run_ps(lab_of(tmp_path / "d"), POLICY, check_mode=True)


# --- the redeploy step's script (roles/redeploy/tasks/laps.yml), run on a twin -------------------


def step_script() -> str:
    """The win_shell script of the redeploy step, rendered as Ansible would for one host."""
    import jinja2
    import yaml

    tasks = yaml.safe_load((PROJECT_ROOT / "roles/redeploy/tasks/laps.yml").read_text(encoding="utf-8"))
    (task,) = [t for t in tasks if "ansible.windows.win_shell" in t]
    settings = host_settings(load_laps_policy(), "windows-11-23h2", "ghal.local")
    return jinja2.Template(task["ansible.windows.win_shell"]).render(redeploy__laps=settings)


def test_redeploy_step_applies_the_policy_rotates_once_and_is_idempotent(tmp_path: Path) -> None:
    lab = lab_of(tmp_path)
    assert run_ps(lab, step_script()).output == ["changed=True"]
    state = lab.state(TWIN)
    policy = load_laps_policy()
    assert {k: state.registry[ROOT][k] for k in policy.registry_values()} == policy.registry_values()
    rotated = state.users["ghal-localadm"].password
    assert len(rotated) == policy.password_length
    assert run_ps(lab, step_script()).output == ["changed=False"]
    assert lab.state(TWIN).users["ghal-localadm"].password == rotated  # not rotated again


def test_redeploy_step_whose_rotation_is_refused_fails_naming_the_event(tmp_path: Path) -> None:
    lab = lab_of(tmp_path)
    faults.apply(lab.faults, {TWIN: {"laps_rotation_fails": {}}})
    result = run_ps(lab, "try {\n" + step_script() + "\n} catch { 'failed: ' + $_.Exception.Message }")
    assert result.output == [
        "failed: Windows LAPS rotation failed (event 10017): LAPS failed to update Active Directory "
        "with the new password.\n\nError code: 80070005"
    ]


# --- the verification suite (rebuild/verify/suites/test_laps.py) on a twin ------------------------


def _suite_outcome(lab: Lab, managed: bool = True) -> str:
    """'passed', 'skipped: …', or the failure message the journal and report would show."""
    expect = SimpleNamespace(laps_managed=managed, laps_reason="not domain-joined")
    try:
        suite.test_laps(WindowsReads(ReadHost(lab)), expect)
    except pytest.skip.Exception as exc:
        return f"skipped: {exc}"
    except (AssertionError, pytest.fail.Exception) as exc:
        return str(exc)
    return "passed"


def test_suite_passes_a_rotated_host_and_holds_back_the_others(tmp_path: Path) -> None:
    rotated = lab_of(tmp_path / "rotated")
    run_ps(rotated, step_script())
    assert _suite_outcome(rotated) == "passed"

    refused = lab_of(tmp_path / "refused")
    faults.apply(refused.faults, {TWIN: {"laps_rotation_fails": {}}})
    run_ps(refused, "try {\n" + step_script() + "\n} catch { }")
    assert "no Windows LAPS rotation since the rebuild: event(s) 10018, 10020 not in" in _suite_outcome(
        refused
    )

    untouched = lab_of(tmp_path / "untouched")
    assert "Windows LAPS policy not in effect" in _suite_outcome(untouched)
    assert _suite_outcome(untouched, managed=False).startswith("skipped: Windows LAPS does not manage")
