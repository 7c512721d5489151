"""rebuild.lab.exec.execute with payloads built by ansible-core's own builder (no transport).

Each test drives the twin exactly as the winrm connection plugin would: the WinRS command
line `PowerShell ... -EncodedCommand <bootstrap_wrapper>` plus the exec wrapper payload on stdin.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twins import SERVER, ps, two_twin_lab

from rebuild.lab import images
from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.exec import execute
from rebuild.lab.exec.ansible_payload import (
    SEPARATOR,
    fqcn_from_script_name,
    module_call,
    parse_bootstrap_input,
)
from rebuild.lab.exec.payloads import module_command, module_stdin
from rebuild.lab.state import TwinState


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with two_twin_lab(tmp_path, "Pre-incident-Pa55!") as lab:
        yield lab


def run_module(
    lab: Lab, fqcn: str, args: dict[str, Any], twin: TwinRecord = SERVER, **kw: Any
) -> tuple[int, dict[str, Any]]:
    command, arguments, stdin = module_command(fqcn, args, **kw)
    rc, out, err = execute(lab, twin, command, arguments, stdin)
    assert err == b"", err
    return rc, json.loads(out)


def change(lab: Lab, fn: Any, twin: TwinRecord = SERVER) -> TwinState:
    return lab.update(twin.name, fn)


# --- payload decoding --------------------------------------------------------------------------


def test_payload_built_by_ansible_decodes_to_module_and_args() -> None:
    stdin = module_stdin("ansible.windows.win_ping", {"data": "hello"}, check_mode=True)
    request = parse_bootstrap_input(stdin)
    call = module_call(request)
    assert call is not None
    assert call.fqcn == "ansible.windows.win_ping"
    assert call.args["data"] == "hello"
    assert call.args["_ansible_check_mode"] is True
    assert "Ansible.Basic.cs" in request.scripts
    assert "#AnsibleRequires -CSharpUtil Ansible.Basic" in call.script


def test_script_names_map_to_fqcn() -> None:
    assert (
        fqcn_from_script_name("ansible_collections.microsoft.ad.plugins.modules.membership.ps1")
        == "microsoft.ad.membership"
    )
    assert fqcn_from_script_name("ansible.legacy.win_rebuild_apps.ps1") == "win_rebuild_apps"


def test_truncated_payload_fails_like_a_broken_exec_wrapper(lab: Lab) -> None:
    command, arguments, stdin = module_command("ansible.windows.win_ping", {})
    rc, out, err = execute(lab, SERVER, command, arguments, stdin.split(SEPARATOR)[0])
    assert rc == 1 and out == b""
    assert b"separator" in err


# --- win_ping, argument validation, unknown modules -------------------------------------------


def test_win_ping_answers_pong_with_invocation(lab: Lab) -> None:
    rc, result = run_module(lab, "ansible.windows.win_ping", {})
    assert rc == 0
    assert result == {"changed": False, "ping": "pong", "invocation": {"module_args": {"data": "pong"}}}


def test_win_ping_crash_is_an_unhandled_exception(lab: Lab) -> None:
    rc, result = run_module(lab, "ansible.windows.win_ping", {"data": "crash"})
    assert rc == 1 and result["failed"] is True
    assert result["msg"] == "Unhandled exception while executing module: boom"


def test_unknown_argument_fails_as_ansible_basic_does(lab: Lab) -> None:
    rc, result = run_module(
        lab, "ansible.windows.win_ping", {"dat": "x"}, module_name="ansible.windows.win_ping"
    )
    assert rc == 1 and result["failed"] is True
    assert result["msg"] == (
        "Unsupported parameters for (ansible.windows.win_ping) module: dat. "
        "Supported parameters include: data"
    )


def test_missing_required_and_bad_choice_fail(lab: Lab) -> None:
    rc, result = run_module(lab, "ansible.windows.win_regedit", {"name": "x"})
    assert rc == 1 and result["msg"] == "missing required arguments: path"
    rc, result = run_module(lab, "ansible.windows.win_service", {"name": "WinRM", "start_mode": "automatic"})
    assert rc == 1
    assert result["msg"].startswith(
        "value of start_mode must be one of: auto, delayed, disabled, manual, got: automatic"
    )


def test_option_names_and_choices_are_case_sensitive_as_in_ansible_basic(lab: Lab) -> None:
    """Ansible.Basic.cs compares option names (`legalInputs.Contains`) and choices (`choices.Contains`)
    ordinally: a differently cased name is unsupported, a differently cased choice is refused."""
    rc, result = run_module(lab, "ansible.windows.win_ping", {"Data": "x"})
    assert rc == 1
    assert result["msg"].startswith("Unsupported parameters for (ansible.windows.win_ping) module: Data.")
    rc, result = run_module(lab, "ansible.windows.win_service", {"name": "WinRM", "start_mode": "Auto"})
    assert rc == 1 and result["msg"].startswith("value of start_mode must be one of: auto, delayed")


def test_bad_type_fails(lab: Lab) -> None:
    rc, result = run_module(
        lab, "ansible.windows.win_regedit", {"path": "HKLM:\\SOFTWARE\\X", "delete_key": "maybe"}
    )
    assert rc == 1
    assert (
        "argument for delete_key is of type System.String and we were unable to convert to bool"
        in result["msg"]
    )


def test_legacy_module_ignores_unknown_options_but_needs_required(lab: Lab) -> None:
    rc, result = run_module(
        lab, "ansible.windows.win_reg_stat", {"path": "HKLM:\\SOFTWARE\\GHAL", "bogus": 1}
    )
    assert rc == 0 and "invocation" not in result
    rc, result = run_module(lab, "ansible.windows.win_reg_stat", {})
    assert rc == 1 and result["msg"] == "Get-AnsibleParam: Missing required argument: path"


def test_module_without_twin_fails_naming_it(lab: Lab) -> None:
    rc, result = run_module(lab, "ansible.windows.win_timezone", {"timezone": "UTC"})
    assert rc == 1 and result["failed"] is True
    assert "ansible.windows.win_timezone" in result["msg"] and "does not simulate" in result["msg"]


def test_check_mode_skips_modules_that_do_not_support_it(lab: Lab) -> None:
    rc, result = run_module(lab, "ansible.windows.win_shell", {"_raw_params": "hostname"}, check_mode=True)
    assert rc == 0 and result["skipped"] is True
    assert result["msg"] == "remote module does not support check mode"


def test_no_log_values_never_come_back(lab: Lab) -> None:
    rc, result = run_module(
        lab,
        "ansible.windows.win_user",
        {"name": "svc-backup", "password": "S3cret-Value!", "groups": ["Users"]},
    )
    assert rc == 0 and result["changed"] is True
    text = json.dumps(result)
    assert "S3cret-Value!" not in text
    assert result["invocation"]["module_args"]["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    history = json.dumps(lab.state(SERVER.name).history)
    assert "S3cret-Value!" not in history


# --- state-changing twins ----------------------------------------------------------------------

KEY = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\DNSClient"


def test_win_regedit_check_mode_then_apply_then_idempotent(lab: Lab) -> None:
    args = {"path": KEY, "name": "EnableMulticast", "data": 0, "type": "dword"}
    rc, result = run_module(lab, "ansible.windows.win_regedit", args, check_mode=True)
    assert rc == 0 and result["changed"] is True
    assert KEY not in lab.state(SERVER.name).registry
    rc, result = run_module(lab, "ansible.windows.win_regedit", args)
    assert result["changed"] is True and result["data_changed"] is True
    assert lab.state(SERVER.name).registry[KEY] == {"EnableMulticast": 0}
    rc, result = run_module(lab, "ansible.windows.win_regedit", args)
    assert result["changed"] is False


def test_win_reg_stat_reads_value_and_type(lab: Lab) -> None:
    rc, result = run_module(
        lab,
        "ansible.windows.win_reg_stat",
        {"path": "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters", "name": "SMB1"},
    )
    assert rc == 0 and result == {
        "changed": False,
        "exists": True,
        "raw_value": 1,
        "value": 1,
        "type": "REG_DWORD",
    }
    rc, result = run_module(lab, "ansible.windows.win_reg_stat", {"path": "HKLM:\\SOFTWARE\\Nope"})
    assert result == {"changed": False, "exists": False}


def test_win_service_stops_and_disables_the_malicious_service(lab: Lab) -> None:
    rc, result = run_module(
        lab,
        "ansible.windows.win_service",
        {"name": images.MALICIOUS_SERVICE, "state": "stopped", "start_mode": "disabled"},
    )
    assert rc == 0 and result["changed"] is True
    assert result["state"] == "stopped" and result["start_mode"] == "disabled"
    svc = lab.state(SERVER.name).services[images.MALICIOUS_SERVICE]
    assert (svc.state, svc.start_mode) == ("Stopped", "Disabled")
    rc, result = run_module(
        lab, "ansible.windows.win_service", {"name": images.MALICIOUS_SERVICE, "state": "started"}
    )
    assert rc == 1 and "cannot be started" in result["msg"]


def test_win_optional_feature_turns_smb1_off(lab: Lab) -> None:
    rc, result = run_module(
        lab, "ansible.windows.win_optional_feature", {"name": "SMB1Protocol", "state": "absent"}
    )
    assert rc == 0 and result["changed"] is True and result["reboot_required"] is True
    assert lab.state(SERVER.name).features["SMB1Protocol"] is False
    rc, result = run_module(lab, "ansible.windows.win_optional_feature", {"name": "NoSuchFeature"})
    assert rc == 1 and result["msg"] == "Failed to find feature 'NoSuchFeature'"


def test_win_group_membership_pure_removes_the_unknown_admin(lab: Lab) -> None:
    rc, result = run_module(
        lab,
        "ansible.windows.win_group_membership",
        {"name": "Administrators", "members": ["Administrator", "rb-admin"], "state": "pure"},
    )
    assert rc == 0 and result["changed"] is True
    assert f"{SERVER.name[:15].upper()}\\{images.UNKNOWN_ADMIN}" in result["removed"]
    assert images.UNKNOWN_ADMIN not in lab.state(SERVER.name).groups["Administrators"]
    rc, result = run_module(
        lab, "ansible.windows.win_group_membership", {"name": "Administrators", "members": ["ghost"]}
    )
    assert rc == 1 and "ghost is not a valid account" in result["msg"]


def test_win_file_removes_ransom_notes_and_win_stat_sees_it(lab: Lab) -> None:
    note = images.RANSOM_NOTES[1]
    rc, result = run_module(lab, "ansible.windows.win_stat", {"path": note})
    assert result["stat"]["exists"] is True and result["stat"]["isreg"] is True
    rc, result = run_module(lab, "ansible.windows.win_file", {"path": note, "state": "absent"})
    assert rc == 0 and result["changed"] is True
    rc, result = run_module(lab, "ansible.windows.win_stat", {"path": note})
    assert result["stat"] == {"exists": False}


def test_setup_facts_and_minimal_subset(lab: Lab) -> None:
    rc, result = run_module(lab, "ansible.windows.setup", {})
    assert rc == 0
    facts = result["ansible_facts"]
    assert facts["ansible_os_family"] == "Windows"
    assert facts["ansible_distribution"] == "Microsoft Windows Server 2022 Standard"
    assert facts["ansible_ip_addresses"] == [SERVER.address]
    assert facts["ansible_hostname"] == "ARL-SRV-0001"
    rc, result = run_module(lab, "ansible.windows.setup", {"gather_subset": ["!all", "!min", "distribution"]})
    assert rc == 0
    assert set(result["ansible_facts"]) == {
        "gather_subset",
        "module_setup",
        "ansible_distribution",
        "ansible_distribution_version",
        "ansible_distribution_major_version",
    }


def test_win_shell_runs_its_script_through_the_evaluator(lab: Lab) -> None:
    rc, result = run_module(lab, "ansible.windows.win_shell", {"_raw_params": "(Get-Service WinRM).Status"})
    assert rc == 0 and result["stdout"] == "Running\r\n"
    rc, result = run_module(lab, "ansible.windows.win_shell", {"_raw_params": "Get-Process | Format-List"})
    assert rc == 1 and "does not simulate the cmdlet Get-Process at <command>:1" in result["msg"]
    rc, result = run_module(lab, "ansible.windows.win_shell", {"_raw_params": "Get-Service Nope"})
    assert rc == 1 and result["msg"] == "non-zero return code"
    assert "Cannot find any service with service name 'Nope'." in result["stderr"]
    rc, result = run_module(lab, "ansible.windows.win_shell", {"_raw_params": "Stop-Service WinRM -Force"})
    assert rc == 0
    assert lab.state(SERVER.name).services["WinRM"].state == "Stopped"


def test_win_certificate_store_imports_and_records_thumbprint(lab: Lab) -> None:
    der = b"0\x82\x01\x0asimulated-der-bytes"
    pem = "-----BEGIN CERTIFICATE-----\n" + base64.b64encode(der).decode() + "\n-----END CERTIFICATE-----\n"
    change(lab, lambda s: s.files.__setitem__("C:\\Windows\\Temp\\root.pem", pem))
    rc, result = run_module(
        lab,
        "ansible.windows.win_certificate_store",
        {"path": "C:\\Windows\\Temp\\root.pem", "store_name": "Root", "file_type": "pem"},
    )
    import hashlib

    thumb = hashlib.sha1(der).hexdigest().upper()
    assert rc == 0 and result["changed"] is True and result["thumbprints"] == [thumb]
    assert (
        f"HKLM:\\SOFTWARE\\Microsoft\\SystemCertificates\\Root\\Certificates\\{thumb}"
        in lab.state(SERVER.name).registry
    )


def test_domain_join_needs_the_labs_domain_and_credential(lab: Lab) -> None:
    args = {
        "dns_domain_name": "ghal.lan",
        "domain_admin_user": "GHAL\\joiner",
        "domain_admin_password": "pw",
        "state": "domain",
    }

    def clean(s: TwinState) -> None:  # a freshly imaged host is in a workgroup
        s.domain, s.domain_joined = "WORKGROUP", False

    change(lab, clean)
    rc, result = run_module(lab, "microsoft.ad.membership", args)
    assert rc == 1 and "no domain controller credential configured" in result["msg"]
    lab.config.domain_admin_user = "joiner"  # type: ignore[attr-defined]
    lab.config.domain_admin_password = "right"  # type: ignore[attr-defined]
    rc, result = run_module(lab, "microsoft.ad.membership", args)
    assert rc == 1 and "user name or password is incorrect" in result["msg"]
    rc, result = run_module(lab, "microsoft.ad.membership", {**args, "dns_domain_name": "evil.example"})
    assert rc == 1 and "does not exist or could not be contacted" in result["msg"]
    rc, result = run_module(lab, "microsoft.ad.membership", {**args, "domain_admin_password": "right"})
    assert rc == 0 and result["changed"] is True and result["reboot_required"] is True
    state = lab.state(SERVER.name)
    assert state.domain_joined and state.domain == "ghal.lan"


# --- executor scripts and win_reboot -----------------------------------------------------------


def test_mkdtemp_and_cleanup_as_the_shell_plugin_sends_them(lab: Lab) -> None:
    from ansible.plugins.shell.powershell import ShellModule

    shell = ShellModule()
    shell.set_options(var_options={})
    cmd = shell._mkdtemp2("ansible-tmp-1", tmpdir="%TEMP%")
    parts = cmd.command.split(" ")
    rc, out, err = execute(lab, SERVER, parts[0], parts[1:], cmd.input_data)
    path = out.decode().strip()
    assert rc == 0 and path.endswith("\\AppData\\Local\\Temp\\ansible-tmp-1"), (out, err)
    rm = shell.remove(path, recurse=True).split(" ")
    rc, out, err = execute(lab, SERVER, rm[0], rm[1:], b"")
    assert rc == 0, err
    assert not any(p.endswith("ansible-tmp-1") for p in lab.state(SERVER.name).files)


def test_win_reboot_commands_record_a_reboot_and_move_boot_time(lab: Lab) -> None:
    from ansible_collections.ansible.windows.plugins.plugin_utils import _reboot

    boot_cmd = (
        _reboot._DEFAULT_BOOT_TIME_COMMAND
        + "; If (-not $?) { If (Get-Variable LASTEXITCODE -ErrorAction SilentlyContinue) "
        + "{ exit $LASTEXITCODE } Else { exit 1 } }"
    )
    args = [
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Unrestricted",
        "-EncodedCommand",
        base64.b64encode(boot_cmd.encode("utf-16-le")).decode(),
    ]
    rc, before, _ = execute(lab, SERVER, "PowerShell", args, b"")
    assert rc == 0 and before.strip().isdigit()

    captured: list[str] = []

    class Conn:
        def exec_command(
            self, command: str, in_data: Any = None, sudoable: bool = False
        ) -> tuple[int, bytes, bytes]:
            parts = command.split(" ")
            captured.append(command)
            return execute(lab, SERVER, parts[0], parts[1:], b"")

    _reboot._perform_reboot("ansible.windows.win_reboot", Conn(), _reboot_script())
    assert any(e["event"] == "reboot" for e in lab.state(SERVER.name).history)
    # The restart happens after shutdown's delay (/t N): only then does the boot time move.
    deadline = time.time() + 10
    while True:
        rc, after, _ = execute(lab, SERVER, "PowerShell", args, b"")
        if int(after) > int(before) or time.time() > deadline:
            break
        time.sleep(0.2)
    assert int(after) > int(before)
    rc, out, err = ps(lab, f"Get-Item -LiteralPath '{_reboot._LOGON_UI_KEY}' -ErrorAction Stop; 'success-x'")
    assert rc == 0 and out.strip().endswith("success-x"), err


def _reboot_script() -> str:
    """The reboot command win_reboot builds (taken from the plugin source by running its builder)."""
    import inspect

    from ansible_collections.ansible.windows.plugins.plugin_utils import _reboot
    from ansible_collections.ansible.windows.plugins.plugin_utils._quote import quote_pwsh

    source = inspect.getsource(_reboot.reboot_host)
    template = source.split('reboot_command = r"""', 1)[1].split('"""', 1)[0]
    return template % ("True", _reboot._LOGON_UI_KEY, 2, quote_pwsh("Reboot initiated by Ansible"))


def test_domain_join_credential_from_lab_dir_file(lab: Lab) -> None:
    def clean(s: TwinState) -> None:
        s.domain, s.domain_joined = "WORKGROUP", False

    change(lab, clean)
    (Path(lab.config.lab_dir) / "domain-controller.json").write_text(
        json.dumps({"domain_admin_user": "joiner", "domain_admin_password": "right"})
    )
    args = {
        "dns_domain_name": "ghal.lan",
        "domain_admin_user": "joiner@ghal.lan",
        "domain_admin_password": "right",
        "domain_ou_path": "OU=Rebuilt,DC=ghal,DC=lan",
        "hostname": "ARL-SRV-0001",
        "state": "domain",
    }
    rc, result = run_module(lab, "microsoft.ad.membership", args, check_mode=True)
    assert rc == 0 and result["changed"] is True and not lab.state(SERVER.name).domain_joined
    rc, result = run_module(lab, "microsoft.ad.membership", args)
    assert rc == 0 and result["changed"] is True and lab.state(SERVER.name).domain_joined
    assert "right" not in json.dumps(result)


def test_a_bug_in_a_twin_fails_the_command(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from rebuild.lab.exec import modules

    def broken(ctx: Any) -> dict[str, Any]:
        raise ZeroDivisionError("bug")

    monkeypatch.setitem(
        modules.REGISTRY, "ansible.windows.win_ping", modules.ModuleTwin("ansible.windows.win_ping", broken)
    )
    command, arguments, stdin = module_command("ansible.windows.win_ping", {})
    rc, out, err = execute(lab, SERVER, command, arguments, stdin)
    assert rc == 1 and out == b"" and b"failed internally" in err and b"ZeroDivisionError" in err
