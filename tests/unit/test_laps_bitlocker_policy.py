"""The Windows LAPS and BitLocker policies: bundled data valid, bad data refused naming file and key."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from rebuild.bitlocker import Requirement, load_bitlocker_policy, parse_bitlocker_policy, redeploy_settings
from rebuild.cli import main
from rebuild.errors import ConfigError
from rebuild.laps import host_settings, load_laps_policy, parse_laps_policy
from rebuild.model import Kind
from rebuild.patch import load_patch_catalogue
from rebuild.register import SMALL_REGISTER
from rebuild.tiers import PROJECT_ROOT, tier_table

DATA = PROJECT_ROOT / "inventories" / "data"
LAPS = DATA / "laps.yml"
BITLOCKER = DATA / "bitlocker.yml"


def _raw(path: Path) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(path.read_text())
    return raw


def test_bundled_laps_policy_covers_every_image_and_the_patch_minimum_has_laps() -> None:
    policy = load_laps_policy(LAPS)
    images = _raw(DATA / "images.yml")["images"]
    assert set(policy.os_minimum_ubr) | set(policy.os_unavailable) == set(images)
    assert policy.patch_gaps(load_patch_catalogue(DATA / "patch_levels.yml")) == []
    assert policy.registry_values()["BackupDirectory"] == 2  # Active Directory
    assert "Server 2016" in policy.unavailable_reason("windows-server-2016")
    assert policy.unavailable_reason("windows-11-23h2") == ""


def test_patch_minimum_below_the_laps_update_is_named() -> None:
    raw = _raw(LAPS)
    raw["os"]["windows-server-2022"] = {"minimum_ubr": 9999}
    gaps = parse_laps_policy(raw, LAPS).patch_gaps(load_patch_catalogue(DATA / "patch_levels.yml"))
    assert gaps == [
        f"windows-server-2022: the patch catalogue's minimum UBR 2849 is below 9999, "
        f"the first with Windows LAPS ({LAPS})"
    ]


def test_unknown_os_is_named_with_the_file() -> None:
    with pytest.raises(
        ConfigError, match=r"host PC1: OS 'windows-7' has no entry in the Windows LAPS policy"
    ):
        load_laps_policy(LAPS).unavailable_reason("windows-7", "host PC1")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("password_length", 7, "password_length must be a whole number from 8 to 64, not 7"),
        ("password_age_days", 366, "password_age_days must be a whole number from 1 to 365, not 366"),
        ("password_complexity", True, "password_complexity must be a whole number from 1 to 4, not True"),
        ("backup_directory", "entra", "backup_directory 'entra' must be one of active_directory"),
        ("post_authentication_actions", 2, "post_authentication_actions 2 must be one of 1, 3, 5, 11"),
        ("ad_password_encryption", "yes", "ad_password_encryption must be true or false, not 'yes'"),
        ("passwordlength", 14, "unknown key(s) passwordlength"),
        ("os", {"windows-11-23h2": {"unavailable": ""}}, "os windows-11-23h2: unavailable needs the reason"),
        (
            "os",
            {"windows-11-23h2": {"minimum_ubr": 1, "unavailable": "x"}},
            "os windows-11-23h2: expected exactly one of minimum_ubr",
        ),
        ("services", {"directory": {"unavailable": " "}}, "services directory: unavailable needs the reason"),
        ("services", {"directory": "no"}, "services directory: expected {unavailable: why}"),
        ("services", ["directory"], "'services' must map service keys of tiers.yml"),
    ],
)
def test_bad_laps_policy_names_file_and_key(key: str, value: object, message: str) -> None:
    raw = _raw(LAPS)
    raw[key] = value
    with pytest.raises(ConfigError, match=re.escape(f"{LAPS}: {message}")):
        parse_laps_policy(raw, LAPS)


def test_missing_laps_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"Windows LAPS policy {tmp_path / 'laps.yml'} not found")
    ):
        load_laps_policy(tmp_path / "laps.yml")


def test_bitlocker_requirement_by_kind_and_service_exception() -> None:
    policy = load_bitlocker_policy(DATA)
    assert policy.requirement(Kind.WORKSTATION, "wards").required
    assert policy.requirement(Kind.SERVER, "patient-record").required
    imaging = policy.requirement(Kind.SERVER, "imaging")
    assert not imaging.required and "golden images" in imaging.reason
    raw = _raw(BITLOCKER)
    raw["kinds"]["server"] = {"required": False, "reason": "virtual machines without a virtual TPM"}
    policy = parse_bitlocker_policy(raw, BITLOCKER, tier_table(DATA))
    assert policy.requirement(Kind.SERVER, "pki") == Requirement(
        False, "virtual machines without a virtual TPM"
    )
    assert policy.requirement(Kind.WORKSTATION, "pki").required


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("encryption_method", "Aes512", "encryption_method 'Aes512' must be one of Aes128, Aes256"),
        ("encryption_timeout_minutes", 0, "encryption_timeout_minutes must be a whole number >= 1, not 0"),
        ("kinds", {"server": {"required": True}}, "kinds must give exactly server, workstation"),
        (
            "kinds",
            {"server": {"required": False}, "workstation": {"required": True}},
            "kinds server: BitLocker off needs a reason",
        ),
        ("services", {"wards": {"required": False}}, "services wards: BitLocker off needs a reason"),
        ("services", {"ward": {"required": True}}, "services ward: not a service key of tiers.yml"),
        ("services", {"wards": {"required": "no"}}, "services wards: required must be true or false"),
        ("used_space_only", 1, "used_space_only must be true or false, not 1"),
        ("tpm", True, "unknown key(s) tpm"),
    ],
)
def test_bad_bitlocker_policy_names_file_and_key(key: str, value: object, message: str) -> None:
    raw = _raw(BITLOCKER)
    raw[key] = value
    with pytest.raises(ConfigError, match=re.escape(f"{BITLOCKER}: {message}")):
        parse_bitlocker_policy(raw, BITLOCKER, tier_table(DATA))


def test_unreadable_bitlocker_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bitlocker.yml").write_text("kinds: [unclosed\n")
    (tmp_path / "tiers.yml").write_text((DATA / "tiers.yml").read_text())
    with pytest.raises(
        ConfigError, match=re.escape(f"BitLocker policy {tmp_path / 'bitlocker.yml'}: cannot be read")
    ):
        load_bitlocker_policy(tmp_path)


def _data_with(tmp_path: Path, name: str, change: dict[str, Any]) -> Path:
    """A copy of the project data whose file `name` has some top-level keys changed."""
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    raw = _raw(data / name)
    raw.update(change)
    (data / name).write_text(yaml.safe_dump(raw))
    return data


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        (
            "laps.yml",
            {"password_length": 100},
            "laps.yml: password_length must be a whole number from 8 to 64",
        ),
        (
            "laps.yml",
            {"os": {"windows-server-2022": {"minimum_ubr": 1}}},
            "hosts of this run: OS 'windows-10-22h2' has no entry in the Windows LAPS policy",
        ),
        (
            "laps.yml",
            {"os": {**_raw(LAPS)["os"], "windows-11-23h2": {"minimum_ubr": 999999}}},
            "windows-11-23h2: the patch catalogue's minimum UBR 4460 is below 999999",
        ),
        (
            "bitlocker.yml",
            {"services": {"wards": {"required": False}}},
            "services wards: BitLocker off needs",
        ),
    ],
)
def test_plan_refuses_a_bad_policy_naming_file_and_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    change: dict[str, Any],
    message: str,
) -> None:
    monkeypatch.setenv("REBUILD_DATA_DIR", str(_data_with(tmp_path, name, change)))
    assert main(["plan", "site", "bastogne", "--register", str(SMALL_REGISTER)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_plan_accepts_the_bundled_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "site", "bastogne", "--register", str(SMALL_REGISTER)]) == 0


def test_redeploy_settings_carry_requirement_reason_and_method() -> None:
    """What roles/redeploy/tasks/bitlocker.yml gets through the rebuild_bitlocker lookup."""
    policy = load_bitlocker_policy()
    pc = redeploy_settings(policy, "workstation", "radiology")
    assert pc == {
        "required": True,
        "reason": "",
        "encryption_method": "XtsAes256",
        "used_space_only": True,
        "encryption_timeout_minutes": 240,
    }
    imaging = redeploy_settings(policy, "server", "imaging")
    assert imaging["required"] is False and "PXE-boot" in imaging["reason"]
    with pytest.raises(
        ConfigError, match=r"bitlocker\.yml: host kind 'toaster' is not server or workstation"
    ):
        redeploy_settings(policy, "toaster", "radiology")


def test_laps_host_settings_say_who_windows_laps_manages_and_why_not() -> None:
    """What roles/redeploy/tasks/laps.yml gets through the rebuild_laps lookup, and verification."""
    policy = load_laps_policy(LAPS)
    pc = host_settings(policy, "windows-11-23h2", "ghal.lan", "radiology")
    assert (pc["managed"], pc["reason"]) == (True, "")
    assert pc["registry_values"] == policy.registry_values() and pc["registry_values"]["BackupDirectory"] == 2
    assert pc["policy_root"] == r"HKLM:\Software\Microsoft\Windows\CurrentVersion\Policies\LAPS"
    assert pc["events"] == {"ad_updated": 10018, "local_updated": 10020, "ad_update_failed": 10017}
    workgroup = host_settings(policy, "windows-11-23h2", "", "radiology")
    assert workgroup["managed"] is False and workgroup["reason"].startswith("not domain-joined")
    dc = host_settings(policy, "windows-server-2022", "ghal.lan", "directory")
    assert dc["managed"] is False and "DSRM" in dc["reason"]
    old = host_settings(policy, "windows-server-2016", "ghal.lan", "radiology")
    assert old["managed"] is False and "Windows Server 2016" in old["reason"]
    with pytest.raises(ConfigError, match=r"OS windows-7: OS 'windows-7' has no entry"):
        host_settings(policy, "windows-7", "ghal.lan", "radiology")
