"""The .NET members and registry writes the hardening module needs, run as PowerShell on a twin.

Each test runs a small Windows PowerShell 5.1 script through the lab's evaluator and checks the
behaviour the cited Microsoft page documents.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rebuild.lab.context import Lab
from rebuild.lab.exec.twin_host import CheckModeWrite
from rebuild.lab.ps import NotSimulated
from rebuild.lab.ps.evaluator import RunResult
from rebuild.lab.state import Service
from tests.lab.twins import RX_PC, bare_state, one_twin_lab, run_ps

TWIN = RX_PC.name
KEY = "HKLM:\\SOFTWARE\\GHAL\\Test"


@pytest.fixture()
def lab(tmp_path: Path) -> Lab:
    return one_twin_lab(tmp_path, bare_state(registry={KEY: {"Answer": 42, "Path": "%SystemRoot%\\x"}}))


def run(lab: Lab, src: str, check_mode: bool = False, user: str | None = "rb-admin") -> RunResult:
    return run_ps(lab, src, check_mode=check_mode, user=user)


def test_windows_identity_is_the_session_account(lab: Lab) -> None:
    """WindowsIdentity.GetCurrent().Name is DOMAIN\\user (learn.microsoft.com/dotnet/api/
    system.security.principal.windowsidentity.getcurrent)."""
    out = run(lab, "[Security.Principal.WindowsIdentity]::GetCurrent().Name").output
    assert out == [f"{TWIN}\\rb-admin"]


def test_windows_identity_unknown_to_the_lab_fails_loudly(lab: Lab) -> None:
    with pytest.raises(NotSimulated, match="Windows identity of this session"):
        run(lab, "[Security.Principal.WindowsIdentity]::GetCurrent().Name", user=None)


def test_registry_key_object_reads_values_and_refuses_after_close(lab: Lab) -> None:
    """RegistryKey.GetValueNames / GetValue(name, default, options) / Close; a closed key throws
    ObjectDisposedException (learn.microsoft.com/dotnet/api/microsoft.win32.registrykey)."""
    src = (
        f"$k = Get-Item -LiteralPath '{KEY}'\n"
        "($k.GetValueNames() | Sort-Object) -join ','\n"
        "$k.GetValue('answer')\n"
        "$k.GetValue('Path', $null, 'DoNotExpandEnvironmentNames')\n"
        "$k.GetValue('missing', 'fallback')\n"
        "$k.Close()\n"
        "try { $k.GetValueNames() } catch { 'closed' }\n"
    )
    assert run(lab, src).output == ["Answer,Path", 42, "%SystemRoot%\\x", "fallback", "closed"]


def test_new_item_property_writes_registry_values_with_their_kind(lab: Lab) -> None:
    """New-ItemProperty -PropertyType DWord/MultiString [-Force] (microsoft.powershell.management/
    new-itemproperty): an existing value needs -Force; a DWord of -1 is stored as 0xFFFFFFFF."""
    src = (
        f"$null = New-ItemProperty -LiteralPath '{KEY}' -Name Flag -PropertyType DWord -Value -1\n"
        f"$null = New-ItemProperty -LiteralPath '{KEY}' -Name List -PropertyType MultiString "
        "-Value @('a','b')\n"
        f"try {{ $null = New-ItemProperty -LiteralPath '{KEY}' -Name Flag -PropertyType DWord -Value 2 }}\n"
        "catch { $_.Exception.Message }\n"
        f"$null = New-ItemProperty -LiteralPath '{KEY}' -Name Answer -PropertyType DWord -Value 7 -Force\n"
    )
    assert run(lab, src).output == ["The property already exists."]
    values = lab.state(TWIN).registry[KEY]
    assert values["Flag"] == 0xFFFFFFFF and values["List"] == ["a", "b"] and values["Answer"] == 7


def test_set_item_property_writes_registry_values(lab: Lab) -> None:
    """Set-ItemProperty -Path -Name -Value (microsoft.powershell.management/set-itemproperty): a new
    value's kind follows the .NET type; an existing value keeps its kind; a missing key is
    ItemNotFound; nothing is written in check mode."""
    src = (
        f"$null = New-ItemProperty -LiteralPath '{KEY}' -Name Count -PropertyType DWord -Value 1\n"
        f"Set-ItemProperty -Path '{KEY}' -Name Count -Value '5'\n"
        f"Set-ItemProperty -Path '{KEY}' -Name Stamp -Value (Get-Date -Format o)\n"
        f"Set-ItemProperty '{KEY}' Number 7\n"
        "try { Set-ItemProperty -Path 'HKLM:\\SOFTWARE\\Missing' -Name X -Value 1 -ErrorAction Stop }\n"
        "catch { $_.FullyQualifiedErrorId }\n"
    )
    assert run(lab, src).output == ["PathNotFound,Microsoft.PowerShell.Commands.SetItemPropertyCommand"]
    values = lab.state(TWIN).registry[KEY]
    assert values["Count"] == 5 and values["Number"] == 7 and values["Stamp"].startswith("20")
    with pytest.raises(CheckModeWrite):
        run(lab, f"Set-ItemProperty -Path '{KEY}' -Name Count -Value 6", check_mode=True)
    assert lab.state(TWIN).registry[KEY]["Count"] == 5


def test_new_item_registry_key_needs_force_for_missing_parents(lab: Lab) -> None:
    """New-Item of a key: without -Force a missing parent is ItemNotFound; -Force creates the path."""
    src = (
        "try { $null = New-Item -Path 'HKLM:\\SOFTWARE\\A\\B' } catch { $_.FullyQualifiedErrorId }\n"
        "$null = New-Item -Path 'HKLM:\\SOFTWARE\\A\\B' -Force\n"
        "Test-Path -LiteralPath 'HKLM:\\SOFTWARE\\A\\B'\n"
    )
    assert run(lab, src).output == ["PathNotFound,Microsoft.PowerShell.Commands.NewItemCommand", True]


def test_new_item_property_on_a_missing_key_is_item_not_found(lab: Lab) -> None:
    """New-ItemProperty on a key that does not exist: a non-terminating ItemNotFound naming the
    cmdlet (microsoft.powershell.management/new-itemproperty)."""
    src = (
        "New-ItemProperty -LiteralPath 'HKLM:\\SOFTWARE\\Missing' -Name X -PropertyType String -Value y "
        "-ErrorAction SilentlyContinue\n"
        "$Error[0].FullyQualifiedErrorId; $Error[0].Exception.Message\n"
    )
    assert run(lab, src).output == [
        "PathNotFound,Microsoft.PowerShell.Commands.NewItemPropertyCommand",
        "Cannot find path 'HKLM:\\SOFTWARE\\Missing' because it does not exist.",
    ]


def test_set_net_firewall_profile_refuses_a_value_outside_its_enum(lab: Lab) -> None:
    """Set-NetFirewallProfile -Enabled takes a GpoBoolean, -DefaultInboundAction an Action
    (netsecurity/set-netfirewallprofile): another value fails parameter binding, naming the type."""
    for param, value, type_name in (
        ("Enabled", "Yes", "GpoBoolean"),
        ("DefaultInboundAction", "Deny", "Action"),
    ):
        src = (
            f"try {{ Set-NetFirewallProfile -Name Domain -{param} {value} }} catch {{ $_.Exception.Message }}"
        )
        assert run(lab, src).output == [
            f'Cannot convert value "{value}" to type '
            f'"Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetSecurity.{type_name}".'
        ]


def test_registry_writes_in_check_mode_fail_the_task(lab: Lab) -> None:
    with pytest.raises(CheckModeWrite):
        run(
            lab,
            f"$null = New-ItemProperty -LiteralPath '{KEY}' -Name X -PropertyType String -Value y -Force",
            True,
        )
    with pytest.raises(CheckModeWrite):
        run(lab, "$null = New-Item -Path 'HKLM:\\SOFTWARE\\GHAL\\New' -Force", True)
    assert lab.state(TWIN).registry == {KEY: {"Answer": 42, "Path": "%SystemRoot%\\x"}}


def test_bitconverter_reinterprets_dword_bits(lab: Lab) -> None:
    """BitConverter.GetBytes / ToInt32 / ToUInt32 are little-endian reinterpretations
    (learn.microsoft.com/dotnet/api/system.bitconverter)."""
    src = (
        "[BitConverter]::ToInt32([BitConverter]::GetBytes([uint32]4294967295), 0)\n"
        "[BitConverter]::ToUInt32([BitConverter]::GetBytes([int32]-2), 0)\n"
        "[BitConverter]::ToInt64([BitConverter]::GetBytes([uint64]18446744073709551615), 0)\n"
    )
    assert run(lab, src).output == [-1, 4294967294, -1]


def test_unsigned_casts_refuse_values_out_of_range(lab: Lab) -> None:
    """about_Type_Conversion: [uint32]-1 is PSInvalidCastException, not a wrap-around."""
    src = "try { [uint32]-1 } catch { $_.Exception.GetType }"
    assert run(lab, src).output == ["System.Management.Automation.PSInvalidCastException"]


def test_datetime_parse_roundtrip_and_format_exception(lab: Lab) -> None:
    """DateTime.Parse(s, InvariantCulture, RoundtripKind) reads the 'o' format; other text throws
    FormatException (learn.microsoft.com/dotnet/api/system.datetime.parse)."""
    src = (
        "$c = [Globalization.CultureInfo]::InvariantCulture\n"
        "$k = [Globalization.DateTimeStyles]::RoundtripKind\n"
        "[DateTime]::Parse('2026-12-04T09:00:00.0000000Z', $c, $k).ToUniversalTime().ToString('o')\n"
        "try { [DateTime]::Parse('not a date', $c, $k) } catch { 'format' }\n"
    )
    out = run(lab, src).output
    assert out[0].startswith("2026-12-04T09:00:00") and out[1] == "format"


ROUND_TRIP = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}"


@pytest.mark.parametrize(
    ("time_zone", "offsets"),
    [
        ("Tokyo Standard Time", {"+09:00"}),
        ("Romance Standard Time", {"+01:00", "+02:00"}),
        ("UTC", {"+00:00"}),
    ],
)
def test_round_trip_format_follows_the_date_kind(tmp_path: Path, time_zone: str, offsets: set[str]) -> None:
    """The "o" format of a Local DateTime (Get-Date, [DateTime]::Now) ends with the machine's UTC
    offset, of a Utc one ([DateTime]::UtcNow, .ToUniversalTime()) with Z (learn.microsoft.com/dotnet/
    standard/base-types/standard-date-and-time-format-strings, round-trip format; DateTime.Kind); the
    clock a Local date shows is the twin's time zone (its answer file's TimeZone)."""
    lab = one_twin_lab(tmp_path, bare_state(time_zone=time_zone))
    src = (
        "Get-Date -Format o\n"
        "[DateTime]::Now.ToString('o')\n"
        "[DateTime]::UtcNow.ToString('o')\n"
        "(Get-Date).ToUniversalTime().ToString('o')\n"
        "$now = Get-Date; (24 + $now.Hour - $now.ToUniversalTime().Hour) % 24\n"
    )
    local, now, utc, universal, hours = run(lab, src).output
    for text in (local, now):
        assert re.fullmatch(ROUND_TRIP + r"[+-]\d{2}:\d{2}", text) and text[-6:] in offsets, text
    assert re.fullmatch(ROUND_TRIP + "Z", utc) and re.fullmatch(ROUND_TRIP + "Z", universal)
    assert f"+{hours:02d}:00" in offsets


def test_cim_and_defender_dates_are_local_to_the_twin(tmp_path: Path) -> None:
    """Get-CimInstance's LastBootUpTime and Get-MpComputerStatus' dates are Local DateTimes (the
    machine's clock, learn.microsoft.com/dotnet/api/system.datetime.kind): "o" ends with the
    twin's offset, while ConvertTo-Json still gives the instant (\\/Date(ms)\\/)."""
    state = bare_state(time_zone="Tokyo Standard Time")
    state.defender["AntivirusSignatureLastUpdated"] = "2026-11-01T00:00:00"
    lab = one_twin_lab(tmp_path, state)
    src = (
        "(Get-CimInstance Win32_OperatingSystem).LastBootUpTime.ToString('o')\n"
        "$updated = (Get-MpComputerStatus).AntivirusSignatureLastUpdated\n"
        "$updated.ToString('s'); $updated.ToString('o')\n"
        "$updated | ConvertTo-Json\n"
    )
    boot, clock, round_trip, as_json = run(lab, src).output
    assert boot.endswith("+09:00")
    assert (clock, round_trip) == ("2026-11-01T09:00:00", "2026-11-01T09:00:00.0000000+09:00")
    assert as_json == '"\\/Date(1793491200000)\\/"'


def test_a_time_zone_the_lab_cannot_map_fails_loudly(tmp_path: Path) -> None:
    lab = one_twin_lab(tmp_path, bare_state(time_zone="Mars Standard Time"))
    with pytest.raises(NotSimulated, match="clock of time zone 'Mars Standard Time'"):
        run(lab, "Get-Date -Format o")


def test_is_ilist_and_temp_file_names(lab: Lab) -> None:
    """Arrays and List[T] implement IList; Path.GetTempFileName gives a .tmp in %TEMP%;
    Path.ChangeExtension replaces the extension."""
    src = (
        "@(1,2) -is [System.Collections.IList]; 'x' -is [System.Collections.IList]\n"
        "$t = [IO.Path]::GetTempFileName(); $t.StartsWith($env:TEMP) -and $t.EndsWith('.tmp')\n"
        "[IO.Path]::ChangeExtension('C:\\T\\tmpAB.tmp', 'sdb')\n"
    )
    assert run(lab, src).output == [True, False, True, "C:\\T\\tmpAB.sdb"]


def test_a_stopped_protected_service_can_be_started_and_configured(tmp_path: Path) -> None:
    """SERVICE_LAUNCH_PROTECTED_INFO: the protection refuses ChangeServiceConfig/ControlService once
    the service is launched as protected; a stopped WinDefend (an attacker's doing) can be set back
    and started, after which it refuses again."""
    stopped = Service("WinDefend", "Microsoft Defender Antivirus Service", "Disabled", "Stopped")
    lab = one_twin_lab(tmp_path, bare_state(services={"WinDefend": stopped}))
    src = (
        "Set-Service -Name WinDefend -StartupType Automatic\n"
        "Start-Service -Name WinDefend\n"
        "try { Set-Service -Name WinDefend -StartupType Disabled } catch { 'refused' }\n"
    )
    assert run(lab, src).output == ["refused"]
    svc = lab.state(TWIN).services["WinDefend"]
    assert (svc.start_mode, svc.state) == ("Automatic", "Running")


def test_reg_add_through_cmd_writes_the_value_and_refuses_what_reg_refuses(lab: Lab) -> None:
    """reg add <key> /v /t /d /f (Microsoft Learn, "reg add"): creates the key; REG_DWORD data
    must fit 32 bits; without /f an existing value would prompt on the console (not simulated)."""
    from rebuild.lab.exec.commandline import run_command_line

    twin = lab.twins[TWIN]
    ok = run_command_line(
        lab, twin, "reg.exe add HKLM\\SOFTWARE\\GHAL\\New /v Flag /t REG_DWORD /d 1 /f", b""
    )
    assert ok == (0, b"The operation completed successfully.\r\n\r\n", b"")
    assert lab.state(TWIN).registry["HKLM:\\SOFTWARE\\GHAL\\New"] == {"Flag": 1}
    too_big = run_command_line(
        lab, twin, f"reg add {KEY[:4]}{KEY[5:]} /v X /t REG_DWORD /d 4294967296 /f", b""
    )
    assert too_big[0] == 1 and b"Invalid syntax" in too_big[2]
    bad_root = run_command_line(lab, twin, "reg add HKXX\\Soft /v X /d y /f", b"")
    assert bad_root[0] == 1 and b"Invalid key name" in bad_root[2]
    prompt = run_command_line(lab, twin, "reg add HKLM\\SOFTWARE\\GHAL\\Test /v Answer /d 1", b"")
    assert prompt[0] == 1 and b"does not simulate reg add's console prompt" in prompt[2]
    assert lab.state(TWIN).registry[KEY]["Answer"] == 42


def test_shutdown_log_off_only_in_the_console_session(lab: Lab) -> None:
    """shutdown /l [/f] (Microsoft Learn, "shutdown") logs the console's user off; over WinRS the
    lab does not simulate a log-off."""
    from rebuild.lab.exec.commandline import run_command_line

    lab.update(TWIN, lambda s: setattr(s, "console_session", "rb-admin"))
    winrs = run_command_line(lab, lab.twins[TWIN], "shutdown.exe /l /f", b"")
    assert winrs[0] == 1 and b"does not simulate shutdown /l outside the console" in winrs[2]
    assert lab.state(TWIN).console_session == "rb-admin"
    assert run_command_line(lab, lab.twins[TWIN], "shutdown.exe /l /f", b"", console=True)[0] == 0
    assert lab.state(TWIN).console_session == ""
