"""Windows rules the evaluator's twin cmdlets enforce (issue 12 items 10 and 11), run as PowerShell.

Each test runs a small Windows PowerShell 5.1 script against a twin through the lab's evaluator
and checks what Windows documents.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from twins import bare_state, one_twin_lab

from rebuild.lab.context import Lab
from rebuild.lab.exec.twin_host import CheckModeWrite, ScriptHangs, TwinHost
from rebuild.lab.ps import Evaluator
from rebuild.lab.ps.evaluator import RunResult
from rebuild.lab.state import Service

TWIN = "ARL-RX-PC01"


@pytest.fixture()
def lab(tmp_path: Path) -> Lab:
    return one_twin_lab(
        tmp_path,
        bare_state(
            files={"C:\\Users\\Default\\NTUSER.DAT": "SIMULATED hive file"},
            services={
                "wscsvc": Service("wscsvc", "Security Center"),
                "WinDefend": Service("WinDefend", "Microsoft Defender Antivirus Service"),
                "Spooler": Service("Spooler", "Print Spooler"),
            },
        ),
    )


def run(lab: Lab, src: str, check_mode: bool = False, staged: dict[str, bytes] | None = None) -> RunResult:
    host = TwinHost(lab, lab.twins[TWIN], check_mode=check_mode)
    host.staged.update({k.lower(): data for k, data in (staged or {}).items()})
    ev = Evaluator(host)
    ev.global_scope.vars["erroractionpreference"] = "Stop"  # as Ansible runs modules
    return ev.run(src, "rule.ps1")


LOAD = "$null = & reg.exe load 'HKU\\GHAL_Test' 'C:\\Users\\Default\\NTUSER.DAT' 2>&1\n"
UNLOAD = (
    "try { $null = & reg.exe unload 'HKU\\GHAL_Test' 2>&1; 'unloaded' }\n"
    'catch { "refused: $($_.Exception.Message)" }\n'
)


def test_reg_unload_refuses_while_a_handle_is_open_and_2to1_makes_it_terminating(lab: Lab) -> None:
    """RegUnLoadKey fails while handles into the hive are open; reg.exe prints "ERROR: Access is
    denied." on stderr, which 2>&1 under Stop turns into a terminating error (5.1, about_Redirection)."""
    src = LOAD + "$key = Get-Item -LiteralPath 'Registry::HKEY_USERS\\GHAL_Test'\n" + UNLOAD
    assert run(lab, src).output == ["refused: ERROR: Access is denied."]
    assert "HKLM:\\SYSTEM\\RebuildLab\\LoadedHives\\GHAL_Test" in lab.state(TWIN).registry  # still loaded


def test_gc_collect_alone_does_not_release_the_handle(lab: Lab) -> None:
    """Finalizers run after a collection only when waited for ([GC]::WaitForPendingFinalizers)."""
    src = LOAD + "$key = Get-Item -LiteralPath 'Registry::HKEY_USERS\\GHAL_Test'\n[GC]::Collect()\n" + UNLOAD
    assert run(lab, src).output == ["refused: ERROR: Access is denied."]


def test_collect_and_wait_for_finalizers_then_unload_and_load_again(lab: Lab) -> None:
    """After [GC]::Collect() + [GC]::WaitForPendingFinalizers() the hive unloads; loading it again works,
    and loading a hive that is still loaded fails."""
    src = (
        LOAD
        + "$key = Get-Item -LiteralPath 'Registry::HKEY_USERS\\GHAL_Test'\n"
        + "[GC]::Collect()\n[GC]::WaitForPendingFinalizers()\n"
        + UNLOAD
        + LOAD
        + "try { $null = & reg.exe load 'HKU\\GHAL_Test' 'C:\\Users\\Default\\NTUSER.DAT' 2>&1 } "
        + "catch { 'second load refused' }\n"
    )
    assert run(lab, src).output == ["unloaded", "second load refused"]


def test_protected_services_refuse_set_service_with_access_denied(lab: Lab) -> None:
    """Protecting anti-malware services (Microsoft Learn): Security Center and Defender refuse
    configuration changes, even from an administrator; other services change."""
    src = (
        "try { Set-Service -Name wscsvc -StartupType Disabled } catch { $_.Exception.Message }\n"
        "Set-Service -Name WinDefend -StartupType Disabled -ErrorAction SilentlyContinue; $?\n"
        "Set-Service -Name Spooler -StartupType Disabled\n"
        "Set-Service -Nme Spooler -StartupType Manual\n"
    )
    result = run(lab, src)
    assert result.output == [
        "Service 'Security Center (wscsvc)' cannot be configured due to the following error: "
        "Access is denied",
        False,
    ]
    assert "A parameter cannot be found that matches parameter name 'Nme'." in result.errors[0].message
    services = lab.state(TWIN).services
    assert services["wscsvc"].start_mode == "Automatic" and services["WinDefend"].start_mode == "Automatic"
    assert services["Spooler"].start_mode == "Disabled"


def test_a_write_in_check_mode_is_refused(lab: Lab) -> None:
    """A module run in check mode must not change the host: the lab refuses the write loudly."""
    with pytest.raises(CheckModeWrite, match="Set-Service Spooler"):
        run(lab, "Set-Service -Name Spooler -StartupType Disabled", check_mode=True)
    assert lab.state(TWIN).services["Spooler"].start_mode == "Automatic"


def test_unc_read_from_an_ntlm_winrm_session_is_access_denied(lab: Lab) -> None:
    """Issue 12 item 13, "Making the second hop in PowerShell Remoting" (Microsoft Learn): a session
    authenticated by NTLM or Basic holds no credential for another server, so the share refuses."""
    src = (
        "try { Copy-Item -LiteralPath '\\\\deploy.ghal.lan\\rebuild$\\apps\\a.msi' -Destination 'C:\\a.msi' "
        "-ErrorAction Stop; 'copied' } catch { $_.Exception.Message }"
    )
    assert run(lab, src).output == ["Access is denied."]


def _installer() -> bytes:
    from rebuild.applications import load_catalogue
    from rebuild.lab.installers import simulated_content

    app = next(iter(load_catalogue().applications.values()))
    return simulated_content(app.id, app.version)


def test_start_process_wait_waits_for_the_process_tree(lab: Lab) -> None:
    """Issue 12 item 14, Start-Process -Wait (Microsoft Learn): it waits for the process and its
    descendants, so an installer that leaves a child running never returns (the task would hang);
    waiting for the installer's own process returns its exit code."""
    lab.faults[TWIN] = {"installer_leaves_process": {}}
    staged = {"C:\\Temp\\setup.exe": _installer()}
    with pytest.raises(ScriptHangs, match="waits for the whole process tree"):
        run(lab, "$p = Start-Process -FilePath 'C:\\Temp\\setup.exe' -Wait -PassThru", staged=staged)
    src = "$p = Start-Process -FilePath 'C:\\Temp\\setup.exe' -PassThru\n$p.WaitForExit(60000)\n$p.ExitCode"
    assert run(lab, src, staged=staged).output == [True, 0]


MODULE = """
$spec = @{
    options = @{
        items = @{
            type = 'list'; elements = 'dict'
            options = @{ name = @{ type = 'str'; required = $true } }
        }
        mode = @{ type = 'str'; default = 'auto'; choices = 'auto', 'manual' }
    }
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$module.Result.lower = $module.Params.items[0].name
$module.Result.upper = $module.Params.items[0].Name
$module.Result.top = $module.Params.ITEMS.Count
$module.Warn('careful')
$module.ExitJson()
"""


def run_module(lab: Lab, args: dict[str, object]) -> tuple[int, dict[str, object]]:
    from rebuild.lab.ps.ansible_basic import ModuleExit

    host = TwinHost(lab, lab.twins[TWIN], complex_args=args, module_name="probe")
    try:
        Evaluator(host).run(MODULE, "probe.ps1")
    except ModuleExit as done:
        return done.rc, done.result
    raise AssertionError("the module did not call ExitJson/FailJson")


def test_ansible_basic_result_shape_and_dict_options_are_case_sensitive(lab: Lab) -> None:
    """Ansible.Basic.cs: Params is the $complex_args Hashtable (case-insensitive), a dict option is a
    Dictionary<string, object> (ParseDict: keys compared ordinally); Result starts changed=false with
    invocation; Warn() adds warnings; ExitJson ends the module with rc 0."""
    rc, result = run_module(lab, {"items": [{"name": "a"}]})
    assert rc == 0
    assert result["lower"] == "a" and result["upper"] is None and result["top"] == 1
    assert result["changed"] is False and result["warnings"] == ["careful"]
    assert result["invocation"] == {"module_args": {"items": [{"name": "a"}], "mode": "auto"}}


def test_ansible_basic_refuses_a_differently_cased_option_or_choice(lab: Lab) -> None:
    """Ansible.Basic.cs CheckUnsupportedArguments / choices: ordinal comparisons; FailJson rc 1."""
    rc, result = run_module(lab, {"Items": []})
    assert rc == 1 and str(result["msg"]).startswith("Unsupported parameters for (probe) module: Items.")
    rc, result = run_module(lab, {"mode": "Auto"})
    assert rc == 1 and result["msg"] == "value of mode must be one of: auto, manual, got: Auto"


# --- volatile registry keys (RegCreateKeyEx REG_OPTION_VOLATILE; RegistryKey.CreateSubKey) --------

HKLM_CREATE = (
    "$k = [Microsoft.Win32.Registry]::LocalMachine.CreateSubKey('{path}', "
    "[Microsoft.Win32.RegistryKeyPermissionCheck]::ReadWriteSubTree, "
    "[Microsoft.Win32.RegistryOptions]::{opt})\n"
    "$k.Close()\n"
)


def test_a_volatile_key_is_gone_after_a_restart_and_a_stable_one_stays(lab: Lab) -> None:
    src = (
        "$null = New-Item -Path 'HKLM:\\SOFTWARE\\GHAL\\T' -Force\n"
        + HKLM_CREATE.format(path="SOFTWARE\\GHAL\\T\\Mem", opt="Volatile")
        + "$null = New-ItemProperty -LiteralPath 'HKLM:\\SOFTWARE\\GHAL\\T\\Mem' -Name V -Value 1 "
        + "-PropertyType DWord\n"
    )
    run(lab, src)
    assert lab.state(TWIN).registry["HKLM:\\SOFTWARE\\GHAL\\T\\Mem"] == {"V": 1}
    lab.record(TWIN, "boot_override", via="redfish", target="Pxe")  # not a restart
    assert "HKLM:\\SOFTWARE\\GHAL\\T\\Mem" in lab.state(TWIN).registry  # survives anything but a restart
    lab.record(TWIN, "reboot", via="shutdown.exe /r", delay=0)
    state = lab.state(TWIN)
    assert "HKLM:\\SOFTWARE\\GHAL\\T\\Mem" not in state.registry and state.volatile_keys == []
    assert "HKLM:\\SOFTWARE\\GHAL\\T" in state.registry
    assert run(lab, "Test-Path -LiteralPath 'HKLM:\\SOFTWARE\\GHAL\\T\\Mem'").output == [False]


def test_a_stable_subkey_under_a_volatile_key_is_refused(lab: Lab) -> None:
    """ERROR_CHILD_MUST_BE_VOLATILE (1021): through .NET (RegistryOptions.None) and through the
    registry provider (New-Item creates stable keys); a volatile subkey is allowed."""
    create = "$null = New-Item -Path 'HKLM:\\SOFTWARE\\GHAL\\T' -Force\n" + HKLM_CREATE.format(
        path="SOFTWARE\\GHAL\\T\\Mem", opt="Volatile"
    )
    stable = HKLM_CREATE.format(path="SOFTWARE\\GHAL\\T\\Mem\\Child", opt="None")
    result = run(lab, create + "try {\n" + stable + "'created' } catch { $_.Exception.Message }\n")
    assert result.output == [
        'Exception calling "CreateSubKey" with "3" argument(s): '
        '"Cannot create a stable subkey under a volatile parent key."'
    ]
    provider = run(
        lab,
        "New-Item -Path 'HKLM:\\SOFTWARE\\GHAL\\T\\Mem\\Child' -ErrorAction SilentlyContinue\n"
        "$Error[0].Exception.Message",
    )
    assert provider.output == ["Cannot create a stable subkey under a volatile parent key."]
    assert not any(k.lower().endswith("\\child") for k in lab.state(TWIN).registry)
    run(lab, HKLM_CREATE.format(path="SOFTWARE\\GHAL\\T\\Mem\\Child", opt="Volatile"))
    lab.record(TWIN, "reboot", via="shutdown.exe /r", delay=0)
    assert not any("\\mem" in k.lower() for k in lab.state(TWIN).registry)


def test_volatile_is_ignored_for_an_existing_key_and_applies_to_every_parent_it_creates(lab: Lab) -> None:
    """RegCreateKeyEx: "This flag is ignored for keys that already exist"; "All keys created by the
    function are volatile" (the missing parents too)."""
    run(lab, "$null = New-Item -Path 'HKLM:\\SOFTWARE\\GHAL\\Stable' -Force\n")
    run(lab, HKLM_CREATE.format(path="SOFTWARE\\GHAL\\Stable", opt="Volatile"))
    run(lab, HKLM_CREATE.format(path="SOFTWARE\\GHAL\\New\\Deep", opt="Volatile"))
    refused = run(
        lab, "New-Item -Path 'HKLM:\\SOFTWARE\\GHAL\\New\\Other' -ErrorAction SilentlyContinue\n$Error.Count"
    )
    assert refused.output == [1]  # GHAL\New was created volatile with Deep
    lab.record(TWIN, "boot", via="power-button")
    keys = {k.lower() for k in lab.state(TWIN).registry}
    assert "hklm:\\software\\ghal\\stable" in keys
    assert not any(k.startswith("hklm:\\software\\ghal\\new") for k in keys)


def test_other_create_subkey_overloads_are_not_simulated(lab: Lab) -> None:
    with pytest.raises(Exception, match=r"does not simulate RegistryKey\.CreateSubKey other than"):
        run(lab, "$k = [Microsoft.Win32.Registry]::LocalMachine.CreateSubKey('SOFTWARE\\GHAL\\X', $true)\n")


def test_creating_a_volatile_key_in_check_mode_is_refused(lab: Lab) -> None:
    with pytest.raises(CheckModeWrite):
        run(lab, HKLM_CREATE.format(path="SOFTWARE\\GHAL\\X", opt="Volatile"), check_mode=True)


def test_new_item_force_on_an_existing_key_deletes_it_and_creates_it_again_empty(lab: Lab) -> None:
    """PowerShell's registry provider (RegistryProvider.NewItem): an existing key is "A key at this
    path already exists." without -Force; with -Force it is removed (values and subkeys) before
    CreateSubKey. A script that stamps values and later runs `New-Item -Force` on the same key
    loses them, as on Windows; `Test-Path` first keeps them."""
    stamp = "HKLM:\\SOFTWARE\\GHAL\\Rebuild"
    setup = (
        f"$null = New-Item -Path '{stamp}\\Sub' -Force\n"
        f"Set-ItemProperty -Path '{stamp}' -Name ImageId -Value 'img-1'\n"
    )
    kept = run(
        lab,
        setup + f"New-Item -Path '{stamp}' -ErrorAction SilentlyContinue\n$Error[0].Exception.Message\n"
        f"if (-not (Test-Path '{stamp}')) {{ $null = New-Item -Path '{stamp}' -Force }}\n"
        f"(Get-ItemProperty -Path '{stamp}').ImageId",
    )
    assert kept.output == ["A key at this path already exists.", "img-1"]
    assert "HKLM:\\SOFTWARE\\GHAL\\Rebuild\\Sub" in lab.state(TWIN).registry
    wiped = run(
        lab,
        f"$null = New-Item -Path '{stamp}' -Force\n"
        f"Set-ItemProperty -Path '{stamp}' -Name WinRMHttpsError -Value 'denied'\n"
        f"Test-Path '{stamp}\\Sub'",
    )
    assert wiped.output == [False]
    assert lab.state(TWIN).registry["HKLM:\\SOFTWARE\\GHAL\\Rebuild"] == {"WinRMHttpsError": "denied"}
