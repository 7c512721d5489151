"""The real plugins/modules/win_rebuild_baseline.ps1, run by the lab's evaluator on a twin.

The issue-12 rules fire against the real script: copies of the module with the old bugs fail in the
lab as they fail on Windows. Check mode, including the Default User hive it has to load to audit,
leaves the twin exactly as it was.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from rebuild.harden.baseline import load_baseline
from rebuild.harden.compile import HostFacts, compile_host
from rebuild.lab.context import Lab, LabConfig, TwinRecord
from rebuild.lab.exec import argspec
from rebuild.lab.exec.cmdlets import machine_sid
from rebuild.lab.exec.modules import ModuleContext, ModuleCrashed, ModuleFailed
from rebuild.lab.exec.modules.product import script_source, win_rebuild_baseline
from rebuild.lab.images import MALICIOUS_SERVICE, compromised_state
from rebuild.lab.state import Service, StateStore

HOST = "ARL-PC-0001"
SCRIPT = script_source("win_rebuild_baseline")
HIVE_MARKER = "HKLM:\\SYSTEM\\RebuildLab\\LoadedHives\\GHAL_RebuildDefaultUser"


@pytest.fixture()
def lab(tmp_path: Path) -> Lab:
    store = StateStore(tmp_path / "state.sqlite")
    rec = TwinRecord(
        name=HOST,
        address="127.79.0.2",
        mac="aa:bb:cc:00:00:09",
        kind="workstation",
        platform="virtual",
        site="arlon",
        os="windows-11-23h2",
        service="emergency",
    )
    store.put(HOST, compromised_state(rec, "pre-incident-Pw1"))
    return Lab(config=LabConfig(lab_dir=tmp_path), store=store, twins={HOST: rec})


def module_args() -> dict[str, Any]:
    facts = HostFacts(
        name=HOST,
        os="windows-11-23h2",
        kind="workstation",
        site="arlon",
        groups=("site_arlon", "kind_workstation"),
        service="emergency",
    )
    return compile_host(load_baseline(), facts, [], protected_accounts=["rb-admin"]).module_args()


def call(
    lab: Lab,
    *,
    script: str = SCRIPT,
    args: dict[str, Any] | None = None,
    check: bool = False,
    diff: bool = False,
) -> Any:
    args = args or module_args()
    params, _ = argspec.validate_basic(
        argspec.load_spec("win_rebuild_baseline"), args, "win_rebuild_baseline", {}
    )
    ctx = ModuleContext(
        lab=lab,
        twin=lab.twins[HOST],
        module_name="win_rebuild_baseline",
        params=params,
        raw_args=args,
        check_mode=check,
        diff_mode=diff,
        script=script,
        session_user="rb-admin",
    )
    return win_rebuild_baseline(ctx)


def mutated(old: str, new: str) -> str:
    assert SCRIPT.count(old) == 1, old
    return SCRIPT.replace(old, new)


def snapshot(lab: Lab) -> str:
    state = asdict(lab.state(HOST))
    state.pop("history", None)
    return json.dumps(state, sort_keys=True, default=str)


def test_check_mode_reports_and_writes_nothing_even_with_the_default_user_hive(lab: Lab) -> None:
    """Check mode loads the Default User hive to audit it (reg load), then unloads it: the twin is
    unchanged, every non-compliant control says it would change."""
    before = snapshot(lab)
    result = call(lab, check=True)
    assert snapshot(lab) == before
    changed = {r["id"] for r in result["controls"] if r["changed"]}
    assert {"GHAL-NET-001", "GHAL-OFF-001", "GHAL-PER-001", "GHAL-ACC-002"} <= changed
    assert all(r["after"] == r["before"] for r in result["controls"])
    assert "default_user_hive_error" not in result


def test_a_write_in_a_check_mode_branch_fails_the_task(lab: Lab) -> None:
    """A copy whose check-mode branch applies the settings anyway: the lab refuses the first write."""
    script = mutated("if ($nonCompliant.Count -eq 0 -or $checkMode) {", "if ($nonCompliant.Count -eq 0) {")
    before = snapshot(lab)
    with pytest.raises(ModuleFailed, match="changed the twin in check mode"):
        call(lab, script=script, check=True)
    assert snapshot(lab) == before


def test_apply_fixes_the_twin_and_unloads_the_hive(lab: Lab) -> None:
    result = call(lab)
    state = lab.state(HOST)
    assert result["changed"] is True and "default_user_hive_error" not in result
    assert HIVE_MARKER not in state.registry  # unloaded: new profiles can copy NTUSER.DAT
    assert state.services[MALICIOUS_SERVICE].start_mode == "Disabled"
    hive = "HKLM:\\SYSTEM\\RebuildLab\\HiveFiles\\c:\\users\\default\\ntuser.dat"
    word = hive + "\\Software\\Policies\\Microsoft\\Office\\16.0\\Word\\Security"
    assert state.registry[word]["blockcontentexecutionfrominternet"] == 1  # written into the hive file


def test_old_bug_no_wait_for_pending_finalizers_leaves_the_hive_loaded(lab: Lab) -> None:
    """Issue 12 item 10: [GC]::Collect() without WaitForPendingFinalizers leaves the registry
    provider's handles open; reg unload is refused (RegUnLoadKey) and the hive stays loaded."""
    script = SCRIPT.replace("        [GC]::WaitForPendingFinalizers()\n", "")
    assert script != SCRIPT
    result = call(lab, script=script)
    assert "still loaded as HKU\\GHAL_RebuildDefaultUser" in result["default_user_hive_error"]
    assert HIVE_MARKER in lab.state(HOST).registry
    # ...and the next run's reg load of the same name fails, as on Windows: it reuses the hive.
    assert "default_user_hive_error" in call(lab, script=script)


def test_old_bug_stderr_redirect_under_stop_crashes_the_module(lab: Lab) -> None:
    """Issue 12 item 10: `& reg.exe ... 2>&1` under Ansible's $ErrorActionPreference = 'Stop' turns
    reg unload's "ERROR: Access is denied." into a terminating error (Windows PowerShell 5.1,
    about_Redirection): the module dies in its finally block and its result is lost."""
    script = mutated("    $ErrorActionPreference = 'Continue'\n", "")
    script = script.replace("        [GC]::WaitForPendingFinalizers()\n", "")  # so that unload is refused
    with pytest.raises(ModuleCrashed, match="Access is denied"):
        call(lab, script=script)


def test_old_input_wscsvc_not_allowlisted_is_refused_as_on_windows(lab: Lab) -> None:
    """Issue 12 item 11: without wscsvc in the allowlist the module tries Set-Service on the running
    protected Security Center service: Access is denied; the other services are still disabled."""
    # Security Center on a Windows client: running, as protected (the images leave it out).
    lab.update(HOST, lambda st: st.services.__setitem__("wscsvc", Service("wscsvc", "Security Center")))
    args = module_args()
    for control in args["controls"]:
        for s in control["settings"]:
            if s["type"] == "service_allowlist":
                s["allowed"] = [p for p in s["allowed"] if p.lower() != "wscsvc"]
    result = call(lab, args=args)
    per = next(r for r in result["controls"] if r["id"] == "GHAL-PER-001")
    assert "wscsvc (Service 'Security Center (wscsvc)' cannot be configured" in per["error"]
    state = lab.state(HOST)
    assert state.services["wscsvc"].start_mode != "Disabled"
    assert state.services[MALICIOUS_SERVICE].start_mode == "Disabled"


def test_a_misspelt_cmdlet_parameter_fails_with_powershells_message(lab: Lab) -> None:
    script = mutated("Set-NetFirewallProfile @p", "Set-NetFirewallProfile -Nmae $p.Name")
    result = call(lab, script=script)
    fw = next(r for r in result["controls"] if r["id"] == "GHAL-FW-001")
    assert "A parameter cannot be found that matches parameter name 'Nmae'." in fw["error"]


def control(cid: str, *settings: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": cid, "settings": [{"key": f"{cid}:{i}", **s} for i, s in enumerate(settings)], **extra}


def by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in result["controls"]}


TEST_KEY = "HKLM:\\SOFTWARE\\GHAL\\Test"


def test_every_setting_type_applies_or_fails_as_windows_does(lab: Lab) -> None:
    """One control per case, through the real script: what it writes on the twin, and the error
    it reports for what Windows refuses or the host lacks."""
    reg = {"type": "registry", "path": TEST_KEY}
    lab.update(HOST, lambda st: st.user_rights.__setitem__("SeBatchLogonRight", ["Guest", "CONTOSO\\ghost"]))
    args = {
        "protected_accounts": ["rb-admin"],
        "controls": [
            control(
                "T-REG",
                {**reg, "name": "Big", "value_type": "qword", "data": 5000000000},
                {**reg, "name": "List", "value_type": "multi_string", "data": ["a", "b"]},
            ),
            control("T-SVC", {"type": "service", "name": "NoSuchSvc", "start_mode": "automatic"}),
            control("T-FEAT", {"type": "feature", "name": "TelnetClient", "enabled": True}),
            control("T-FEAT-MISSING", {"type": "feature", "name": "NoSuchFeature", "enabled": True}),
            control(
                "T-FW-PROFILE",
                {
                    "type": "firewall_profile",
                    "profile": "Public",
                    "enabled": False,
                    "log_allowed": True,
                    "log_blocked": False,
                },
            ),
            control(
                "T-FW-RULE",
                {
                    "type": "firewall_rule",
                    "name": "GHAL Test Out",
                    "direction": "out",
                    "action": "block",
                    "protocol": "udp",
                    "local_port": "53",
                    "enabled": False,
                },
            ),
            control(
                "T-AUDIT",
                {
                    "type": "audit_policy",
                    "subcategory": "Nothing",
                    "guid": "{00000000-0000-0000-0000-000000000000}",
                    "value": "Success",
                },
            ),
            control(
                "T-SECPOL",
                {
                    "type": "security_policy",
                    "section": "System Access",
                    "key": "LockoutDuration",
                    "value": 15,
                },
            ),
            control(
                "T-RIGHT", {"type": "user_right", "name": "SeBatchLogonRight", "members": ["*S-1-5-32-544"]}
            ),
            control("T-DEF", {"type": "defender_status", "property": "IsTamperProtected", "expected": True}),
            control("T-USER-MISSING", {"type": "local_user", "rid": 9999, "enabled": False}),
            control("T-USER-PROTECTED", {"type": "local_user", "rid": 501, "name": "rb-admin"}),
            control("T-USER-ON", {"type": "local_user", "rid": 503, "enabled": True}),
            control("T-USER-OFF", {"type": "local_user", "rid": 503, "enabled": False}),
            control("T-BOGUS", {"type": "bogus"}),
        ],
    }
    before_rights = call(lab, args=args, check=True)
    guest = f"*{machine_sid(lab.state(HOST))}-501"
    # secedit exports the Guest account as its SID and keeps a name it cannot map as is;
    # NTAccount.Translate cannot map it either, so the module shows the name.
    assert by_id(before_rights)["T-RIGHT"]["before"]["T-RIGHT:0"] == sorted([guest, "CONTOSO\\ghost"])
    result = by_id(call(lab, args=args))
    state = lab.state(HOST)
    assert (
        state.registry[TEST_KEY] == {"Big": 5000000000, "List": ["a", "b"]} and result["T-REG"]["compliant"]
    )
    assert result["T-SVC"]["error"] == "T-SVC:0: service NoSuchSvc is not installed"
    assert state.features["TelnetClient"] is True and result["T-FEAT"]["pending_reboot"] is True
    assert "not available on this edition" in result["T-FEAT-MISSING"]["error"]
    assert state.firewall["Public"]["Enabled"] is False and state.firewall["Public"]["LogAllowed"] is True
    assert result["T-FW-PROFILE"]["compliant"] and result["T-FW-RULE"]["compliant"]
    assert result["T-FW-RULE"]["after"]["T-FW-RULE:0"] == {
        "direction": "out",
        "protocol": "udp",
        "local_port": "53",
        "action": "block",
        "enabled": False,
    }
    assert "auditpol /set failed for Nothing (exit 87)" in result["T-AUDIT"]["error"]
    assert state.security_policy["System Access"]["LockoutDuration"] == 15
    assert state.user_rights["SeBatchLogonRight"] == ["Administrators"] and result["T-RIGHT"]["compliant"]
    assert "IsTamperProtected cannot be set on the host" in result["T-DEF"]["error"]
    assert result["T-USER-MISSING"]["compliant"] and result["T-USER-MISSING"]["error"] is None
    assert "refusing to rename an account to protected name rb-admin" in result["T-USER-PROTECTED"]["error"]
    assert result["T-USER-ON"]["changed"] and result["T-USER-OFF"]["changed"]
    assert state.users["DefaultAccount"].enabled is False  # enabled, then disabled again
    assert result["T-BOGUS"]["error"] == "unknown setting type 'bogus'"


PENDING_KEY = "HKLM:\\SOFTWARE\\GHAL\\Rebuild\\Harden\\RestartPending"


def restart_bound_control() -> dict[str, Any]:
    return {
        "protected_accounts": ["rb-admin"],
        "controls": [
            control(
                "T-REBOOT",
                {"type": "registry", "path": TEST_KEY, "name": "X", "value_type": "string", "data": "y"},
                reboot_required=True,
            )
        ],
    }


def test_diff_mode_and_a_pending_list_in_a_stable_key_is_not_read(lab: Lab) -> None:
    """Only the volatile key says "not restarted since": the list an older module kept in the stable
    marker key (it survives restarts) is ignored. In diff mode the result carries before/after."""
    marker = "HKLM:\\SOFTWARE\\GHAL\\Rebuild\\Harden"
    values = {"PendingReboot": ["T-REBOOT"], "PendingBootTime": "2026-01-05T07:30:00.0000000Z"}
    lab.update(HOST, lambda st: st.registry.__setitem__(marker, values))
    result = call(lab, args=restart_bound_control(), check=True, diff=True)
    assert result["diff"]["before"] == {"T-REBOOT": {"T-REBOOT:0": None}}
    assert result["diff"]["after"] == result["diff"]["before"]
    assert result["pending_reboot"] is False


def test_restart_pending_is_a_volatile_key_judged_right_seconds_after_a_boot(lab: Lab) -> None:
    """The old marker compared boot times within 120 s: a restart less than 120 s after the recorded
    boot looked like the same boot. The volatile key survives no restart, whenever it comes."""
    lab.record(HOST, "boot", via="test")  # the twin has just booted
    applied = call(lab, args=restart_bound_control())
    assert applied["pending_reboot"] is True
    state = lab.state(HOST)
    assert state.registry[PENDING_KEY] == {"Controls": ["T-REBOOT"]}
    assert state.volatile_keys == [PENDING_KEY]  # only it: its parent is created stable first

    same_boot = call(lab, args=restart_bound_control(), check=True)
    assert same_boot["pending_reboot"] is True  # no restart yet: the key is still there

    lab.record(HOST, "reboot", via="test", delay=0)  # seconds after the boot above
    after = call(lab, args=restart_bound_control(), check=True)
    assert after["pending_reboot"] is False
    assert by_id(after)["T-REBOOT"]["compliant"] is True
    assert PENDING_KEY not in lab.state(HOST).registry
    assert "HKLM:\\SOFTWARE\\GHAL\\Rebuild\\Harden" in lab.state(HOST).registry  # the stable parent stays
