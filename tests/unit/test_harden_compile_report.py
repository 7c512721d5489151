"""Harden reports kept in the journal, read back and rendered by `rebuild harden report`."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.cli import main
from rebuild.harden.report import build_report, journal_reports
from rebuild.journal import JOURNAL_FILE, Journal
from rebuild.model import Host, Kind, Platform


def _host(name: str, site: str) -> Host:
    return Host(
        hostname=name,
        asset_tag=f"T-{name}",
        kind=Kind.SERVER,
        platform=Platform.VIRTUAL,
        os="windows-server-2022",
        site=site,
        service="emergency",
        service_label="Urgences",
        tier=1,
    )


def _module_result(fixed: bool) -> dict:
    return {
        "controls": [
            {"id": "GHAL-NET-001", "title": "SMBv1 off", "changed": fixed, "compliant": True, "error": None},
            {
                "id": "GHAL-DEF-002",
                "title": "Tamper <protection>",
                "changed": False,
                "compliant": False,
                "error": "not compliant and cannot be set on the host",
            },
        ]
    }


@pytest.fixture()
def state_dir(tmp_path: Path) -> Path:
    with Journal(tmp_path / JOURNAL_FILE) as journal:
        journal.ensure_hosts(
            [_host("ARL-SRV-01", "arlon"), _host("ARL-SRV-02", "arlon"), _host("MAR-SRV-01", "marche")]
        )
        rep = build_report("ARL-SRV-01", _module_result(True))
        # what the orchestrator keeps from the done marker's msg
        journal.set_result("ARL-SRV-01", "harden", {"counts": rep.counts(), "report": rep.to_dict()})
        audit = build_report("ARL-SRV-02", _module_result(False), check_mode=True)
        journal.set_result("ARL-SRV-02", "harden_audit", audit.to_dict())
    return tmp_path


def test_journal_reports_per_site_and_kind(state_dir: Path) -> None:
    with Journal(state_dir / JOURNAL_FILE) as journal:
        assert [r.host for r in journal_reports(journal, "arlon")] == ["ARL-SRV-01"]
        assert [r.host for r in journal_reports(journal, "arlon", "harden_audit")] == ["ARL-SRV-02"]
        assert journal_reports(journal, "marche") == []


def test_cli_renders_text_and_html(
    state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = tmp_path / "r.html"
    assert main(["harden", "report", "arlon", "--state-dir", str(state_dir), "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "ARL-SRV-01" in out and "fixed" in out and "GHAL-DEF-002" in out
    assert "Tamper &lt;protection&gt;" in html.read_text(encoding="utf-8")


def test_cli_says_when_there_is_nothing(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["harden", "report", "marche", "--state-dir", str(state_dir)]) == 2
    assert "site 'marche': no harden report in the journal" in capsys.readouterr().err
