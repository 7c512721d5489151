"""Compiling the baseline per host, exceptions, lockout guards, and the per-control report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from rebuild.datadir import data_file
from rebuild.errors import ConfigError
from rebuild.harden.baseline import load_baseline, parse_baseline
from rebuild.harden.compile import HostFacts, compile_host
from rebuild.harden.exceptions import EXCEPTIONS_FILE, load_exceptions, parse_exceptions
from rebuild.harden.report import HostReport, Status, build_report, render_html, render_text

SERVER = HostFacts(
    "ARL-SRV-0001", "windows-server-2022", "server", "arlon", ("site_arlon", "service_emergency"), "emergency"
)
PC = HostFacts(
    "ARL-PC-0001", "windows-11-23h2", "workstation", "arlon", ("site_arlon", "service_radiology"), "radiology"
)
DC = HostFacts("ARL-DC-01", "windows-server-2022", "server", "arlon", ("site_arlon",), "directory")


def ids(facts: HostFacts, exceptions: list[Any] | None = None) -> list[str]:
    return [c["id"] for c in compile_host(load_baseline(), facts, exceptions or []).controls]


def test_selection_by_kind_os_and_service() -> None:
    server, pc, dc = ids(SERVER), ids(PC), ids(DC)
    assert "GHAL-RDP-001" in server and "GHAL-RDP-002" not in server
    assert "GHAL-RDP-002" in pc and "GHAL-RDP-001" not in pc
    assert "GHAL-DEF-004" in pc and "GHAL-DEF-004" not in server
    assert "GHAL-CRED-004" in server and "GHAL-CRED-004" not in dc  # no Credential Guard on a DC
    c = compile_host(load_baseline(), DC)
    assert "GHAL-CRED-004" in c.not_applicable
    # a DC has no local accounts: its Administrators group is the domain's
    assert {"GHAL-ACC-001", "GHAL-ACC-002", "GHAL-ACC-003"} <= set(c.not_applicable)
    per = next(x for x in c.controls if x["id"] == "GHAL-PER-001")["settings"][0]["allowed"]
    assert {"NTDS", "DNS", "Kdc", "Netlogon"} <= set(per)  # the DC's own services are never stopped


def test_remote_management_cutting_controls_are_last() -> None:
    controls = compile_host(load_baseline(), SERVER).controls
    flags = [c["cuts_remote_management"] for c in controls]
    first_cut = flags.index(True)
    assert all(flags[first_cut:]) and not any(flags[:first_cut])


def test_connection_account_is_protected_and_allowlisted() -> None:
    c = compile_host(load_baseline(), SERVER, protected_accounts=["rb-admin", "ops"])
    assert c.protected_accounts == ["ops", "rb-admin"]
    admins = next(c_ for c_ in c.controls if c_["id"] == "GHAL-ACC-002")["settings"][0]["allowed"]
    assert "rb-admin" in admins and "ops" in admins
    assert c.module_args()["protected_accounts"] == ["ops", "rb-admin"]
    with pytest.raises(ConfigError, match="no connection account"):
        compile_host(load_baseline(), SERVER, protected_accounts=[])


def test_every_setting_carries_its_key() -> None:
    for control in compile_host(load_baseline(), PC).controls:
        keys = [s["key"] for s in control["settings"]]
        assert all(keys) and len(keys) == len(set(keys))


def _raw_with(change: Any) -> Any:
    import yaml

    from rebuild.harden.baseline import BASELINE_FILE

    raw = yaml.safe_load(data_file(BASELINE_FILE).read_text(encoding="utf-8"))
    change(raw)
    return parse_baseline(raw)


def test_guard_refuses_renaming_to_the_connection_account() -> None:
    def rename(raw: Any) -> None:
        for c in raw["controls"]:
            for s in c["settings"]:
                if s["type"] == "local_user" and s["rid"] == 500:
                    s["name"] = "rb-admin"

    with pytest.raises(
        ConfigError, match="GHAL-ACC-001: would rename a built-in account to the connection account"
    ):
        compile_host(_raw_with(rename), SERVER)


def test_guard_refuses_a_service_allowlist_without_winrm() -> None:
    def drop(raw: Any) -> None:
        raw["allowlists"]["services"].remove("WinRM")

    with pytest.raises(ConfigError, match="GHAL-PER-001: service allowlist lacks WinRM"):
        compile_host(_raw_with(drop), SERVER)


@pytest.mark.parametrize(
    ("scope", "target", "hit_server", "hit_pc"),
    [
        ("host", "arl-srv-0001", True, False),  # case-insensitive host name
        ("group", "service_radiology", False, True),
        ("site", "arlon", True, True),
        ("site", "marche", False, False),
    ],
)
def test_exception_scopes(scope: str, target: str, hit_server: bool, hit_pc: bool) -> None:
    b = load_baseline()
    exc = parse_exceptions(
        {
            "exceptions": [
                {
                    "control": "GHAL-NET-003",
                    "scope": scope,
                    "target": target,
                    "reason": "why",
                    "approved_by": "who",
                }
            ]
        },
        "t",
        b.ids,
    )
    for facts, hit in ((SERVER, hit_server), (PC, hit_pc)):
        c = compile_host(b, facts, exc)
        assert ("GHAL-NET-003" in [x["id"] for x in c.controls]) is not hit
        assert ([e.control for e in c.excepted] == ["GHAL-NET-003"]) is hit


def test_exception_validation_names_the_entry() -> None:
    b = load_baseline()
    with pytest.raises(ConfigError) as err:
        parse_exceptions(
            {
                "exceptions": [
                    {
                        "control": "GHAL-NOPE-001",
                        "scope": "host",
                        "target": "x",
                        "reason": "r",
                        "approved_by": "a",
                    },
                    {
                        "control": "GHAL-NET-001",
                        "scope": "planet",
                        "target": "x",
                        "reason": "",
                        "approved_by": "a",
                    },
                    {
                        "control": "GHAL-NET-001",
                        "scope": "site",
                        "target": "arlon",
                        "reason": "r",
                        "approved_by": "a",
                        "expires": "next year",
                    },
                ]
            },
            "harden_exceptions.yml",
            b.ids,
        )
    msg = str(err.value)
    assert (
        "harden_exceptions.yml: exception #1 (GHAL-NOPE-001): control 'GHAL-NOPE-001' is not in the baseline"
        in msg
    )
    assert "exception #2 (GHAL-NET-001): `scope` must be one of host, group, site" in msg
    assert "exception #2 (GHAL-NET-001): `reason` must be a non-empty string" in msg
    assert "exception #3 (GHAL-NET-001): `expires` must be a date" in msg


def test_project_exceptions_file_is_valid() -> None:
    assert load_exceptions(data_file(EXCEPTIONS_FILE), load_baseline().ids) == []


def test_exception_expiry(tmp_path: Path) -> None:
    f = tmp_path / "e.yml"
    f.write_text(
        "exceptions:\n  - {control: GHAL-NET-001, scope: site, target: arlon, reason: r, "
        "approved_by: a, expires: 2026-12-31}\n",
        encoding="utf-8",
    )
    exc = load_exceptions(f, load_baseline().ids)
    b = load_baseline()
    assert compile_host(b, SERVER, exc, today=dt.date(2026, 12, 31)).excepted
    assert not compile_host(b, SERVER, exc, today=dt.date(2027, 1, 1)).excepted


# ------------------------------------------------------------------ report


def _module_result() -> dict[str, Any]:
    base = {
        "before": {},
        "after": {},
        "error": None,
        "skipped": False,
        "skip_reason": "",
        "not_applicable": False,
        "pending_reboot": False,
        "noncompliant": [],
    }
    return {
        "controls": [
            {**base, "id": "GHAL-A-001", "title": "a", "changed": False, "compliant": True},
            {
                **base,
                "id": "GHAL-B-001",
                "title": "b",
                "changed": True,
                "compliant": True,
                "pending_reboot": True,
            },
            {
                **base,
                "id": "GHAL-C-001",
                "title": "c <script>",
                "changed": True,
                "compliant": False,
                "error": "registry:HKLM:\\X\\Y: access denied",
            },
            {
                **base,
                "id": "GHAL-D-001",
                "title": "d",
                "changed": False,
                "compliant": False,
                "skipped": True,
                "skip_reason": "not applied: earlier controls failed (GHAL-C-001)",
            },
            {
                **base,
                "id": "GHAL-E-001",
                "title": "e",
                "changed": False,
                "compliant": True,
                "skipped": True,
                "not_applicable": True,
                "skip_reason": "no VBS",
            },
            {
                **base,
                "id": "GHAL-F-001",
                "title": "f",
                "changed": True,
                "compliant": False,
                "noncompliant": ["registry:HKLM:\\Z\\W"],
            },
        ]
    }


def test_report_classifies_apply_run() -> None:
    excepted = [
        {
            "control": "GHAL-X-001",
            "title": "x",
            "reason": "vendor needs it",
            "scope": "host",
            "target": "H1",
            "approved_by": "CISO",
            "expires": None,
        }
    ]
    rep = build_report("H1", _module_result(), excepted)
    s = {r.id: r.status for r in rep.controls}
    assert s == {
        "GHAL-A-001": Status.COMPLIANT,
        "GHAL-B-001": Status.FIXED,
        "GHAL-C-001": Status.FAILED,
        "GHAL-D-001": Status.FAILED,
        "GHAL-E-001": Status.NOT_APPLICABLE,
        "GHAL-F-001": Status.FAILED,
        "GHAL-X-001": Status.EXCEPTED,
    }
    assert rep.status_of("GHAL-X-001").reason == "vendor needs it (approved by CISO; host H1)"
    assert rep.status_of("GHAL-D-001").reason.startswith("not applied")
    assert rep.pending_reboot == ["GHAL-B-001"]
    assert rep.counts()["failed"] == 3


def test_report_in_audit_mode_never_says_fixed() -> None:
    rep = build_report("H1", _module_result(), check_mode=True)
    s = {r.id: r.status for r in rep.controls}
    assert s["GHAL-B-001"] is Status.COMPLIANT and s["GHAL-F-001"] is Status.NONCOMPLIANT
    assert rep.status_of("GHAL-F-001").reason == "not compliant: registry:HKLM:\\Z\\W"
    assert rep.mode == "audit" and "fixed" not in {r.status.value for r in rep.controls}


def test_report_round_trips_through_the_journal_blob() -> None:
    rep = build_report("H1", _module_result())
    again = HostReport.from_dict(rep.to_dict())
    assert again == rep
    assert rep.summary()["controls"]["GHAL-C-001"] == "failed"


def test_text_and_html_rendering() -> None:
    rep = build_report("H1", _module_result(), check_mode=False)
    text = render_text([rep])
    assert "H1  (apply" in text and "failed         GHAL-C-001" in text and "access denied" in text
    assert text.index("GHAL-C-001") < text.index("GHAL-A-001")  # failures first
    html = render_html([rep], "Audit <site>")
    assert "<title>Audit &lt;site&gt;</title>" in html
    assert "c &lt;script&gt;" in html and "<script>" not in html  # escaped
    assert 'class="failed"' in html and "pending reboot" in html


def test_report_is_read_back_from_journal_results() -> None:
    from rebuild.harden.report import report_from_journal

    rep = build_report("H1", _module_result())
    assert report_from_journal({"harden": {"counts": {}, "report": rep.to_dict()}}) == rep
    assert report_from_journal({"harden_audit": rep.to_dict()}, "harden_audit") == rep
    assert report_from_journal({"reimage": {"image_id": "x"}}) is None
