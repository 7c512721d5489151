"""The baseline data: covers the issue's list, and bad data is refused naming control and setting."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rebuild.datadir import data_file
from rebuild.errors import ConfigError
from rebuild.harden.baseline import BASELINE_FILE, load_baseline, parse_baseline, setting_key


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(data_file(BASELINE_FILE).read_text(encoding="utf-8"))


def _settings(b: Any, control_id: str) -> list[dict[str, Any]]:
    return list(b.control(control_id).settings)


def _has(b: Any, predicate: Any) -> list[str]:
    return [c.id for c in b.controls for s in c.settings if predicate(s)]


def test_project_baseline_loads_with_unique_ids() -> None:
    b = load_baseline()
    assert len(b.ids) == len(set(b.ids)) >= 20


def test_covers_every_item_the_issue_lists() -> None:
    b = load_baseline()
    reg = lambda name: _has(b, lambda s: s["type"] == "registry" and s["name"] == name)  # noqa: E731
    assert reg("SMB1") and _has(
        b, lambda s: s == {**s, "type": "feature", "name": "SMB1Protocol", "enabled": False}
    )
    assert reg("RequireSecuritySignature")  # SMB signing
    assert reg("EnableMulticast")  # LLMNR
    assert reg("NodeType") and reg("NetbiosOptions")  # NetBIOS
    assert reg("LmCompatibilityLevel")  # LM / NTLMv1 refused
    assert reg("UseLogonCredential")  # WDigest
    assert reg("RunAsPPL")  # LSA protection
    assert reg("LsaCfgFlags")  # Credential Guard
    assert {s["profile"] for c in b.controls for s in c.settings if s["type"] == "firewall_profile"} == {
        "Domain",
        "Private",
        "Public",
    }
    assert all(
        s["log_blocked"] and s["log_allowed"]
        for c in b.controls
        for s in c.settings
        if s["type"] == "firewall_profile"
    )
    assert reg("UserAuthentication")  # RDP NLA
    assert _has(b, lambda s: s["type"] == "user_right" and s["name"] == "SeRemoteInteractiveLogonRight")
    assert reg("DisableRealtimeMonitoring") and reg("SpynetReporting")  # real-time, cloud
    assert _has(b, lambda s: s["type"] == "defender_status" and s["property"] == "IsTamperProtected")
    assert reg("c1db55ab-c21a-4637-bb3f-a12568109d35")  # ASR: advanced ransomware protection
    assert reg("EnableScriptBlockLogging") and reg("EnableModuleLogging")
    subcats = {s["subcategory"] for c in b.controls for s in c.settings if s["type"] == "audit_policy"}
    assert {"Logon", "Process Creation"} <= subcats
    assert _has(b, lambda s: s["type"] == "local_user" and s["rid"] == 500 and s.get("name"))  # renamed
    assert _has(b, lambda s: s["type"] == "local_user" and s["rid"] == 501 and s.get("enabled") is False)
    assert reg("NoDriveTypeAutoRun") and reg("NoAutorun")
    assert reg("blockcontentexecutionfrominternet")  # Office internet macros
    assert _has(b, lambda s: s["type"] == "group_members")  # unknown local admins
    assert _has(b, lambda s: s["type"] == "service_allowlist")
    assert _has(b, lambda s: s["type"] == "task_allowlist")


def test_workstations_and_servers_differ() -> None:
    b = load_baseline()
    assert b.control("GHAL-RDP-001").kinds == ("server",)
    assert b.control("GHAL-RDP-002").kinds == ("workstation",)


def test_lockout_risks_are_flagged() -> None:
    b = load_baseline()
    cutting = {c.id for c in b.controls if c.cuts_remote_management}
    assert {
        "GHAL-FW-001",
        "GHAL-RDP-001",
        "GHAL-RDP-002",
        "GHAL-ACC-001",
        "GHAL-ACC-002",
        "GHAL-PER-001",
    } <= cutting
    assert b.control("GHAL-CRED-003").reboot_required and b.control("GHAL-CRED-004").reboot_required


def test_allowlist_references_are_resolved(raw: dict[str, Any]) -> None:
    b = parse_baseline(raw)
    (s,) = _settings(b, "GHAL-ACC-002")
    assert s["allowed"] == raw["allowlists"]["administrators"]
    assert "WinRM" in _settings(b, "GHAL-PER-001")[0]["allowed"]


def test_setting_keys_are_readable() -> None:
    assert setting_key({"type": "registry", "path": "HKLM:\\A", "name": "B"}) == "registry:HKLM:\\A\\B"
    assert setting_key({"type": "firewall_profile", "profile": "Public"}) == "firewall_profile:Public"


def _broken(raw: dict[str, Any], change: Any) -> str:
    data = copy.deepcopy(raw)
    change(data)
    with pytest.raises(ConfigError) as err:
        parse_baseline(data, "baseline.yml")
    return str(err.value)


def test_errors_name_the_control_and_setting(raw: dict[str, Any]) -> None:
    def bad_dword(d: dict[str, Any]) -> None:
        d["controls"][0]["settings"][0]["data"] = "zero"

    msg = _broken(raw, bad_dword)
    assert "baseline.yml: control GHAL-NET-001 setting 1 (registry): `data` must be an integer" in msg


def test_every_problem_is_reported_at_once(raw: dict[str, Any]) -> None:
    def several(d: dict[str, Any]) -> None:
        d["controls"][1]["settings"][0]["path"] = "HKCU:\\x"
        d["controls"][2]["applies_to"]["kinds"] = ["laptop"]
        d["controls"][3]["id"] = d["controls"][4]["id"]
        d["controls"][5]["settings"].append({"type": "registery"})

    msg = _broken(raw, several)
    assert msg.startswith("4 problem(s) in the baseline")
    assert "GHAL-NET-002 setting 1 (registry): `path` must start with one of HKLM:\\, HKDU:\\" in msg
    assert "GHAL-NET-003: applies_to.kinds" in msg
    assert "duplicate id" in msg
    assert "unknown type 'registery'" in msg


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["controls"][0].pop("title"), "`title` must be a non-empty string"),
        (lambda d: d["controls"][0].update(id="smb1"), "must look like GHAL-<AREA>-<NNN>"),
        (
            lambda d: d["controls"][0].update(cuts_remote_management="yes"),
            "`cuts_remote_management` must be true",
        ),
        (lambda d: d["controls"][0].update(requires="tpm3"), "`requires` must be one of"),
        (lambda d: d["controls"][0]["settings"][0].update(colour="red"), "unknown field 'colour'"),
        (lambda d: d["controls"][0]["settings"][0].pop("name"), "missing `name`"),
        (lambda d: d["allowlists"].pop("services"), "names allowlist 'services'"),
        (lambda d: d.update(version=2), "`version` must be 1"),
    ],
)
def test_specific_errors(raw: dict[str, Any], change: Any, expected: str) -> None:
    assert expected in _broken(raw, change)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="baseline file not found"):
        load_baseline(tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("controls: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_baseline(bad)
