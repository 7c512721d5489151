"""Checks every rebuilt host must pass, whatever its kind or service."""

# mypy: disable-error-code="no-untyped-def"
# (pytest test functions: fixtures are typed by name in rebuild/verify/plugin.py)

from __future__ import annotations

import datetime as dt
import fnmatch

import winrm.exceptions
import winrm.protocol

from rebuild.verify.plugin import Credentials, winrm_conn_args
from rebuild.verify.windows import WindowsReads, parse_date

# --- clean image -----------------------------------------------------------------------------


def test_image_id_is_the_catalogue_clean_image(win: WindowsReads, expect):
    stamp = win.image_stamp()
    assert stamp.get("ImageId") == expect.image_id, (
        f"image stamp ImageId is {stamp.get('ImageId')!r}, "
        f"catalogue expects {expect.image_id!r} for {expect.os}"
    )
    assert str(stamp.get("ImageSha256", "")).lower() == expect.image_sha256, (
        f"image stamp ImageSha256 is {stamp.get('ImageSha256')!r}, catalogue expects {expect.image_sha256}"
    )


def test_os_build_matches_the_image(win: WindowsReads, expect):
    build = str(win.operating_system().get("BuildNumber", ""))
    assert build == expect.build, f"OS build is {build}, image {expect.image_id} is build {expect.build}"


# --- ransomware indicators --------------------------------------------------------------------


def test_no_ransom_note_or_encrypted_file(win: WindowsReads, expect, note_folder):
    names = [n.casefold() for n in expect.iocs["note_names"]]
    exts = [e.casefold() for e in expect.iocs["file_extensions"]]
    found = []
    for f in win.folder(note_folder):
        low = str(f.get("Name", "")).casefold()
        if any(fnmatch.fnmatchcase(low, n) for n in names) or any(low.endswith(e) for e in exts):
            found.append(str(f.get("FullName") or f.get("Name")))
    assert not found, f"ransomware indicator file(s) present: {', '.join(found)}"


def test_no_known_malicious_file(win: WindowsReads, expect):
    found = [p for p in expect.iocs["files"] if win.exists(p)]
    assert not found, f"known malicious file(s) present: {', '.join(found)}"


def test_no_malicious_scheduled_task(win: WindowsReads, expect):
    bad = {t.casefold() for t in expect.iocs["scheduled_tasks"]}
    found = [
        f"{t.get('TaskPath', '')}{t.get('TaskName', '')}"
        for t in win.scheduled_tasks()
        if str(t.get("TaskName", "")).casefold() in bad
    ]
    assert not found, f"malicious scheduled task(s): {', '.join(found)}"


def test_no_malicious_service(win: WindowsReads, expect):
    bad = {s.casefold() for s in expect.iocs["services"]}
    found = [str(s.get("Name")) for s in win.services() if str(s.get("Name", "")).casefold() in bad]
    assert not found, f"malicious or remote-access service(s): {', '.join(found)}"


def test_no_remote_access_tool_installed(win: WindowsReads, expect):
    bad = [a.casefold() for a in expect.iocs["applications"]]
    found = [
        f"{a['DisplayName']} {a.get('DisplayVersion') or ''}".strip()
        for a in win.installed_applications()
        if any(str(a["DisplayName"]).casefold().startswith(b) for b in bad)
    ]
    assert not found, f"remote-access tool(s) installed: {', '.join(found)}"


# --- Defender ----------------------------------------------------------------------------------


def test_defender_antivirus_running(win: WindowsReads):
    status = win.defender()
    off = [
        k for k in ("AMServiceEnabled", "AntivirusEnabled", "AntispywareEnabled") if status.get(k) is not True
    ]
    assert not off, f"Defender not running: {', '.join(f'{k} is {status.get(k)}' for k in off)}"


def test_defender_realtime_protection_on(win: WindowsReads):
    status = win.defender()
    off = [
        k
        for k in ("RealTimeProtectionEnabled", "BehaviorMonitorEnabled", "IoavProtectionEnabled")
        if status.get(k) is not True
    ]
    assert not off, f"Defender protection off: {', '.join(f'{k} is {status.get(k)}' for k in off)}"


def test_defender_signatures_current(win: WindowsReads, expect):
    status = win.defender()
    updated = parse_date(status.get("AntivirusSignatureLastUpdated"))
    assert updated is not None, "Defender reports no signature update date"
    age = dt.datetime.now(dt.UTC) - updated
    limit = dt.timedelta(hours=expect.defender_max_signature_age_hours)
    assert age <= limit, (
        f"Defender signatures {status.get('AntivirusSignatureVersion')} are {age.days} day(s) old "
        f"(updated {updated:%Y-%m-%d %H:%M} UTC; limit {expect.defender_max_signature_age_hours:g} h)"
    )


# --- accounts ----------------------------------------------------------------------------------


def test_connected_with_the_new_local_admin_secret(win: WindowsReads, expect, credentials: Credentials):
    # Every read above ran as this account with the secret set by the answer file: prove it here.
    who = win.json("whoami | ConvertTo-Json -Compress")
    assert str(who).split("\\")[-1].casefold() == expect.admin_name.casefold(), f"connected as {who}"


def test_pre_incident_admin_password_refused(target, credentials: Credentials, expect):
    if not credentials.previous_password:
        import pytest

        pytest.skip("no pre-incident password on record for this host (not counted as evidence)")
    proto = winrm.protocol.Protocol(
        **winrm_conn_args(target, credentials.user, credentials.previous_password)
    )
    try:
        shell = proto.open_shell()
    except winrm.exceptions.InvalidCredentialsError:
        return
    proto.close_shell(shell)
    raise AssertionError(f"the pre-incident password of {credentials.user} still opens a WinRM shell")


def test_no_unknown_local_administrator(win: WindowsReads, expect):
    allowed = {a.casefold() for a in expect.admin_allowed}
    unknown = []
    for m in win.administrators():
        name = str(m.get("Name", ""))
        short = name.split("\\")[-1].casefold()
        source = str(m.get("PrincipalSource", ""))
        if short in allowed or name.casefold() in allowed:
            continue
        # Built-in Administrator (RID 500, renamed/disabled by hardening) is checked by harden.
        if source in ("1", "Local") and short in ("administrator", "ghal-localadm"):
            continue
        unknown.append(name)
    assert not unknown, f"unknown member(s) of local Administrators: {', '.join(unknown)}"


# --- domain ------------------------------------------------------------------------------------


def test_domain_joined(win: WindowsReads, expect):
    cs = win.computer_system()
    if not expect.domain:
        assert cs.get("PartOfDomain") is False, f"expected a workgroup host, it is in {cs.get('Domain')}"
        return
    assert cs.get("PartOfDomain") is True, f"not joined to a domain (Domain is {cs.get('Domain')!r})"
    assert str(cs.get("Domain", "")).casefold() == expect.domain.casefold(), (
        f"joined to {cs.get('Domain')!r}, expected {expect.domain!r}"
    )
