"""Verification runner and expectations, without a host: JUnit parsing, redaction, data errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.errors import ConfigError
from rebuild.verify.expect import build_expectations
from rebuild.verify.runner import REDACTED, _scrub, parse_junit, suite_files
from rebuild.verify.windows import as_list, encoded, parse_date, ps_quote

HOSTVARS = {
    "inventory_hostname": "ARL-RAD-0001",
    "rebuild_kind": "workstation",
    "rebuild_service": "radiology",
    "rebuild_os": "windows-11-23h2",
    "rebuild_site": "arlon",
    "rebuild_domain": "ghal.lan",
    "rebuild_location": "Radiologie 3",
    "group_names": ["site_arlon"],
}


def test_expectations_from_catalogues():
    e = build_expectations(HOSTVARS)
    assert e.image_id.startswith("ghal-w11-") and len(e.image_sha256) == 64
    assert {a["id"] for a in e.applications} == {"edr-agent", "omnipro-client", "pacs-viewer"}
    assert [p["name"] for p in e.printers] == ["ARL-RX-PRT01"]
    assert "rb-admin" in e.admin_allowed
    kinds = ("registry", "service", "feature", "firewall_profile", "defender_status")
    assert e.hardening and all(s["type"] in kinds for c in e.hardening for s in c["settings"])
    assert "Restore-My-Files.txt" in e.iocs["note_names"]
    assert e.bitlocker_required  # workstations by default (inventories/data/bitlocker.yml)
    imaging = build_expectations(
        {**HOSTVARS, "rebuild_kind": "server", "rebuild_service": "imaging"}, with_hardening=False
    )
    assert not imaging.bitlocker_required  # the policy's exception for the imaging servers
    assert (e.laps_managed, e.laps_reason) == (True, "")  # joined Windows 11 (inventories/data/laps.yml)
    workgroup = build_expectations({**HOSTVARS, "rebuild_domain": ""}, with_hardening=False)
    assert not workgroup.laps_managed and workgroup.laps_reason.startswith("not domain-joined")


def test_expectations_refuse_incomplete_inventory():
    with pytest.raises(ConfigError, match="host ARL-RAD-0001: inventory lacks rebuild_os"):
        build_expectations({**HOSTVARS, "rebuild_os": ""})
    with pytest.raises(ConfigError, match="OS 'windows-95' is not in the image catalogue"):
        build_expectations({**HOSTVARS, "rebuild_os": "windows-95"}, with_hardening=False)


def test_suites_per_kind():
    names = [p.name for p in suite_files("server")]
    assert names == [
        "test_common.py",
        "test_kind_server.py",
        "test_service.py",
        "test_hardening.py",
        "test_patch_level.py",
        "test_secure_boot.py",
        "test_edr.py",
        "test_bitlocker.py",
        "test_laps.py",
    ]
    with pytest.raises(FileNotFoundError):
        suite_files("toaster")


JUNIT = (
    '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="verify-X"'
    ' errors="1" failures="1"\n'
    'skipped="1" tests="4"><testcase classname="test_common"'
    ' name="test_image_id_is_the_catalogue_clean_image"/>\n'
    '<testcase classname="test_common"'
    ' name="test_defender_realtime_protection_on"><failure\n'
    'message="AssertionError: Defender protection off: RealTimeProtectionEnabled is'
    ' False&#10;assert False">x</failure>\n'
    '</testcase><testcase classname="test_common" name="test_domain_joined"><error'
    ' message="failed on setup with\n'
    '&quot;ReadError&quot;">y</error></testcase><testcase classname="test_common"'
    ' name="test_pre_incident_admin_password_refused">\n'
    '<skipped type="pytest.skip" message="no pre-incident password on'
    ' record">z</skipped></testcase></testsuite></testsuites>\n'
)


def test_parse_junit(tmp_path: Path):
    path = tmp_path / "j.xml"
    path.write_text(JUNIT)
    tests, failures, errors, skipped, failed, skips = parse_junit(path)
    assert (tests, failures, errors, skipped) == (4, 1, 1, 1)
    assert failed[0] == {
        "check": "test_defender_realtime_protection_on",
        "message": "Defender protection off: RealTimeProtectionEnabled is False",
    }
    assert failed[1]["check"] == "test_domain_joined"
    assert skips[0]["check"] == "test_pre_incident_admin_password_refused"


def test_secrets_are_scrubbed():
    text, hit = _scrub("connect rb-admin:Sup3r-S3cret! failed", ["Sup3r-S3cret!", ""])
    assert hit and "Sup3r" not in text and REDACTED in text
    assert _scrub("nothing here", ["Sup3r"]) == ("nothing here", False)


def test_powershell_helpers():
    assert ps_quote("C:\\it's") == "'C:\\it''s'"
    assert encoded("whoami").startswith("powershell.exe -NoProfile -NonInteractive -EncodedCommand dwBoAG8A")
    assert as_list(None) == [] and as_list({"a": 1}) == [{"a": 1}] and as_list([1]) == [1]
    assert parse_date("/Date(1795000000000)/").year == 2026
    assert parse_date("2026-11-25T10:00:00").tzinfo is not None
    assert parse_date("") is None
