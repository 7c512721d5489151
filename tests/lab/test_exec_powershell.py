"""PowerShell and cmd commands sent over WinRS: they run through the lab's PowerShell evaluator on
the twin (rebuild.lab.exec.powershell_exe); Windows' output shapes, its errors and exit codes, and
loud failure for what the lab does not simulate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from twins import PC, SERVER, ps, two_twin_lab

from rebuild.lab import images
from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.exec import execute
from rebuild.lab.state import TwinState


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with two_twin_lab(tmp_path, "pw") as lab:
        yield lab


def cmd(lab: Lab, line: str, twin: TwinRecord = SERVER) -> tuple[int, str, str]:
    rc, out, err = execute(lab, twin, line, [], b"")
    return rc, out.decode(), err.decode()


def test_convertto_json_single_object_vs_array_and_enum_as_int(lab: Lab) -> None:
    rc, out, _ = ps(lab, "Get-Service -Name WinRM | Select-Object Name,Status,StartType | ConvertTo-Json")
    assert rc == 0
    assert out == '{\r\n    "Name":  "WinRM",\r\n    "Status":  4,\r\n    "StartType":  2\r\n}\r\n'
    rc, out, _ = ps(
        lab, "Get-Service -Name WinRM,WinDefend | Select-Object Name,Status | ConvertTo-Json -Compress"
    )
    assert json.loads(out) == [{"Name": "WinRM", "Status": 4}, {"Name": "WinDefend", "Status": 1}]


def test_expand_property_prints_enum_names(lab: Lab) -> None:
    assert ps(lab, "Get-Service WinDefend | Select-Object -ExpandProperty StartType")[1] == "Disabled\r\n"
    assert ps(lab, "(Get-Service WinRM).Status")[1] == "Running\r\n"


def test_registry_reads_and_missing_paths(lab: Lab) -> None:
    key = r"HKLM:\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters"
    assert ps(lab, f"Get-ItemPropertyValue -Path '{key}' -Name SMB1")[1] == "1\r\n"
    rc, out, _ = ps(
        lab,
        f"Get-ItemProperty -Path 'Registry::HKEY_LOCAL_MACHINE{key[5:]}' -Name SMB1 "
        "| ConvertTo-Json -Compress",
    )
    data = json.loads(out)
    assert data["SMB1"] == 1 and data["PSChildName"] == "Parameters"
    assert data["PSPath"].endswith(
        r"Registry::HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters"
    )
    rc, out, err = ps(lab, r"Get-ItemProperty -Path 'HKLM:\SOFTWARE\Nope'")
    assert rc == 1 and out == ""
    assert err.startswith(
        r"Get-ItemProperty : Cannot find path 'HKLM:\SOFTWARE\Nope' because it does not exist."
    )
    rc, out, err = ps(lab, f"Get-ItemPropertyValue -Path '{key}' -Name Nope")
    assert rc == 1 and "Property Nope does not exist at path HKEY_LOCAL_MACHINE" in err
    assert ps(lab, r"Test-Path 'HKLM:\SOFTWARE\Nope'")[1] == "False\r\n"


def test_error_action_silently_continue_and_stop(lab: Lab) -> None:
    rc, out, err = ps(lab, "Get-Service -Name Nope -ErrorAction SilentlyContinue")
    assert (out, err) == ("", "") and rc == 1  # $? is false after the failed command
    rc, out, err = ps(lab, "Get-Service Nope -ErrorAction Stop; 'after'")
    assert rc == 1 and "after" not in out
    rc, out, err = ps(lab, "Get-Service Nope; 'after'")
    assert rc == 0 and out == "after\r\n" and "Cannot find any service" in err


def test_installed_applications_via_uninstall_keys_and_get_package(lab: Lab) -> None:
    script = (
        r"Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\*' | "
        r"Where-Object { $_.DisplayName -like 'Any*' } | Select-Object DisplayName,DisplayVersion | "
        r"ConvertTo-Json -Compress"
    )
    assert json.loads(ps(lab, script)[1]) == {"DisplayName": "AnyDesk", "DisplayVersion": "7.0.14"}
    assert ps(lab, "Get-Package -Name AnyDesk | Select-Object -ExpandProperty Version")[1] == "7.0.14\r\n"


def test_files(lab: Lab) -> None:
    note = images.RANSOM_NOTES[1]
    assert ps(lab, f"Test-Path -LiteralPath '{note}' -PathType Leaf")[1] == "True\r\n"
    assert ps(lab, f"(Get-Item '{note}') -is [System.IO.FileInfo]")[1] == "True\r\n"
    assert ps(lab, r"(Get-Item 'C:\Users') -is [System.IO.DirectoryInfo]")[1] == "True\r\n"
    assert images.RANSOM_TEXT.splitlines()[0] in ps(lab, f"Get-Content -Raw '{note}'")[1]
    names = ps(lab, r"Get-ChildItem -Path 'C:\Users\Public\Documents' -Name")[1].split("\r\n")
    assert "Restore-My-Files.txt" in names


def test_users_groups_tasks_defender_firewall_features(lab: Lab) -> None:
    users = json.loads(ps(lab, "Get-LocalUser | Select-Object Name,Enabled | ConvertTo-Json -Compress")[1])
    assert {"Name": images.UNKNOWN_ADMIN, "Enabled": True} in users
    members = ps(lab, "Get-LocalGroupMember -Group Administrators | Select-Object -ExpandProperty Name")[1]
    assert f"ARL-SRV-0001\\{images.UNKNOWN_ADMIN}" in members
    task = json.loads(
        ps(
            lab,
            f"Get-ScheduledTask -TaskName '{images.MALICIOUS_TASK.rsplit(chr(92), 1)[1]}' | "
            "Select-Object TaskName,TaskPath,State | ConvertTo-Json -Compress",
        )[1]
    )
    assert task["State"] == 3 and task["TaskPath"] == "\\Microsoft\\Windows\\Maintenance\\"
    assert ps(lab, "(Get-MpComputerStatus).RealTimeProtectionEnabled")[1] == "False\r\n"
    assert ps(lab, "(Get-MpPreference).DisableRealtimeMonitoring")[1] == "True\r\n"
    prof = json.loads(
        ps(
            lab, "Get-NetFirewallProfile -Name Domain | Select-Object Name,Enabled | ConvertTo-Json -Compress"
        )[1]
    )
    assert prof == {"Name": "Domain", "Enabled": 0}
    assert ps(lab, "(Get-WindowsOptionalFeature -Online -FeatureName SMB1Protocol).State")[1] == "Enabled\r\n"
    assert ps(lab, "Get-WindowsFeature FS-SMB1 | Select-Object -ExpandProperty Installed")[1] == "True\r\n"
    rc, _, err = ps(lab, "Get-WindowsFeature FS-SMB1", twin=PC)  # no Server Manager module on a client
    assert rc == 1 and "is not recognized" in err


def test_os_information(lab: Lab) -> None:
    os_info = json.loads(
        ps(lab, "Get-CimInstance Win32_OperatingSystem | Select-Object Caption,BuildNumber | ConvertTo-Json")[
            1
        ]
    )
    assert os_info == {"Caption": "Microsoft Windows Server 2022 Standard", "BuildNumber": "20348"}
    assert ps(lab, "hostname")[1] == "ARL-SRV-0001\r\n"
    _, out, _ = cmd(lab, "systeminfo")
    assert "OS Name:                   Microsoft Windows Server 2022 Standard" in out


def test_cmd_programs(lab: Lab) -> None:
    rc, out, _ = cmd(lab, 'auditpol /get /subcategory:"Process Creation"')
    assert rc == 0 and "Detailed Tracking\r\n  Process Creation" in out and "No Auditing" in out
    rc, out, _ = cmd(lab, f"net user {images.UNKNOWN_ADMIN}")
    assert "Account active               Yes" in out and "*Administrators" in out
    assert cmd(lab, "echo %PROCESSOR_ARCHITECTURE%")[1] == "AMD64\r\n"
    rc, _, err = cmd(lab, "net user nobody")
    assert rc == 2 and "could not be found" in err


@pytest.mark.parametrize(
    "script",
    [
        "Get-Service WinRM | Format-Table",
        "Invoke-Expression 'Get-Service'",
        "Get-Process",
        # [ADSI] (System.DirectoryServices.DirectoryEntry) is not simulated: it fails, never guessed.
        "[ADSI]'WinNT://./Administrators,group'",
        "Get-ChildItem C:\\Windows | Get-Member",
    ],
)
def test_outside_what_the_lab_simulates_fails_loudly_with_the_script_line(lab: Lab, script: str) -> None:
    before = lab.state(SERVER.name).to_json()
    rc, _, err = ps(lab, script)
    assert rc == 1 and "the rebuild lab (a simulation) does not simulate" in err
    assert "at <command>:" in err  # where in the script
    assert lab.state(SERVER.name).to_json() == before


def test_the_commands_run_through_the_evaluator_variables_loops_and_writes(lab: Lab) -> None:
    script = "$names = foreach ($s in Get-Service WinRM,WinDefend) { $s.Name.ToUpper() }; $names -join '+'"
    assert ps(lab, script)[1] == "WINRM+WINDEFEND\r\n"
    # A write cmdlet does on the twin what it does on Windows (it is not refused as outside a subset).
    rc, _, err = ps(lab, "Stop-Service WinRM -Force")
    assert rc == 0, err
    assert lab.state(SERVER.name).services["WinRM"].state == "Stopped"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("Get-Service WinRM && hostname", "the pipeline chain operator '&&' exists only in PowerShell 7"),
        ("(Get-Service WinRM)?.Status", "exist only in PowerShell 7"),
        ("$null ?? 'x'", "exist only in PowerShell 7"),
    ],
)
def test_a_read_with_powershell_7_syntax_fails_as_windows_powershell_5_1_would(
    lab: Lab, script: str, message: str
) -> None:
    rc, out, err = ps(lab, script)
    assert (rc, out) == (1, "")
    assert "Windows PowerShell 5.1 cannot parse this script" in err and message in err


def test_unknown_parameter_fails_as_powershell(lab: Lab) -> None:
    rc, _, err = ps(lab, "Get-Service -Nmae WinRM")
    assert rc == 1 and "A parameter cannot be found that matches parameter name 'Nmae'." in err
    # The read verification sends, with one parameter PowerShell 5.1's Get-ItemProperty lacks.
    rc, out, err = ps(lab, r"Get-ItemProperty -Path 'HKLM:\SOFTWARE\GHAL\Rebuild' -Recurse | ConvertTo-Json")
    assert (rc, out) == (1, "")
    assert "Get-ItemProperty : A parameter cannot be found that matches parameter name 'Recurse'." in err


def test_cmd_syntax_and_programs_outside_the_subset(lab: Lab) -> None:
    rc, _, err = cmd(lab, "sc.exe stop WinRM")
    assert rc == 1 and "does not simulate" in err
    rc, _, err = cmd(lab, "hostname & whoami")
    assert rc == 1 and "does not simulate" in err
    rc, _, err = cmd(lab, "cat /etc/os-release")
    assert rc == 1 and "'cat' is not recognized" in err


def test_drift_is_seen(lab: Lab) -> None:
    def disable(state: TwinState) -> None:
        state.services["WinRM"].start_mode = "Manual"

    lab.update(SERVER.name, disable)
    assert ps(lab, "(Get-Service WinRM).StartType")[1] == "Manual\r\n"


def test_bare_cmdlet_in_cmd_is_not_recognized_as_on_windows(lab: Lab) -> None:
    rc, out, err = cmd(lab, "Get-Service 'WinRM' | Select -ExpandProperty Status")
    assert rc == 1 and out == ""
    assert err.startswith("'Get-Service' is not recognized as an internal or external command")


def test_a_native_program_inside_powershell_keeps_its_streams_and_exit_code(lab: Lab) -> None:
    rc, out, err = ps(lab, "net user nobody; $LASTEXITCODE")
    assert (rc, out) == (0, "2\r\n")  # the last statement succeeded
    assert err.startswith("The user name could not be found.")
    rc, out, _ = ps(lab, "auditpol /get '/subcategory:Process Creation'")
    assert rc == 0 and "Process Creation" in out and "No Auditing" in out
    # The lab's grammar would split this one argument in two: refused, never guessed.
    rc, _, err = ps(lab, 'auditpol /get /subcategory:"Process Creation"')
    assert rc == 1 and "does not simulate a bare-word argument with a quoted part" in err


def test_comma_separated_bare_words_are_one_array_argument(lab: Lab) -> None:
    rc, out, _ = ps(lab, "Get-Service WinRM,WinDefend | Select-Object Name,Status | ConvertTo-Json -Compress")
    assert rc == 0 and json.loads(out) == [{"Name": "WinRM", "Status": 4}, {"Name": "WinDefend", "Status": 1}]
