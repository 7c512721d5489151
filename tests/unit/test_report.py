"""Crisis-cell report: counts, timeline, tier times and problems from a real journal."""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import time
from pathlib import Path
from unittest import mock

import pytest

from rebuild.cli import report as report_cli
from rebuild.errors import ConfigError
from rebuild.journal import Journal, Phase
from rebuild.model import Host, Kind
from rebuild.report import build_report, write_report
from rebuild.report.model import Status, format_duration, status_of
from rebuild.report.render import render_csv, render_html, render_json, render_problems_csv
from tests.hosts import register_host

PATH = ["reimaging", "reimaged", "hardening", "hardened", "redeploying", "redeployed", "verifying"]


def host(name: str, service: str, tier: int, site: str = "arlon", kind: Kind = Kind.WORKSTATION) -> Host:
    return register_host(name, kind=kind, site=site, service=service, tier=tier)


def walk(j: Journal, name: str, run: str, until: str) -> None:
    for phase in PATH:
        j.transition(name, phase, run_id=run)
        if phase == until:
            return


@pytest.fixture()
def journal(tmp_path: Path):
    clock = iter(range(1_000, 100_000, 10))
    with mock.patch("rebuild.journal.time.time", side_effect=lambda: float(next(clock))):
        j = Journal.in_state_dir(tmp_path)
        j.start_run("run-1", "arlon", "alice", rehearsal=True)
        j.ensure_hosts(
            [
                host("DC01", "directory", 0, kind=Kind.SERVER),
                host("URG-PC1", "emergency", 1),
                host("URG-PC2", "emergency", 1),
                host("URG-PC3", "emergency", 1),
                host("RX-PC1", "radiology", 6),
                host("RX-PC2", "radiology", 6),
            ]
        )
        j.ensure_hosts([host("MAR-PC1", "emergency", 1, site="marche")])
        walk(j, "DC01", "run-1", "verifying")
        j.transition("DC01", "verified", run_id="run-1", result={"passed": True})
        for pc in ("URG-PC1", "URG-PC2"):
            walk(j, pc, "run-1", "verifying")
            j.transition(pc, "verified", run_id="run-1")
        walk(j, "URG-PC3", "run-1", "verifying")
        j.transition(
            "URG-PC3",
            "quarantined",
            run_id="run-1",
            reason="verification failed: 2 checks",
            result={
                "passed": False,
                "failed_checks": [
                    {
                        "check": "test_defender_realtime_protection_on",
                        "message": "RealTimeProtectionEnabled is False",
                    },
                    {
                        "check": "test_no_ransom_note",
                        "message": r"C:\Users\Public\Desktop\Restore-My-Files.txt",
                    },
                ],
            },
            result_key="verify",
        )
        walk(j, "RX-PC1", "run-1", "hardening")
        j.transition("RX-PC1", "failed", run_id="run-1", failed_phase="harden", reason="winrm timeout")
        yield j
        j.close()


def make(j: Journal, site: str | None = "arlon", now: float = 200_000.0):
    return build_report(j.hosts(), j.transitions(), j.runs(), site=site, now=now)


def test_counts_per_site_and_service(journal):
    r = make(journal)
    c = r.sites["arlon"]
    assert (c.total, c.back, c.in_progress, c.pending, c.failed, c.quarantined) == (6, 3, 0, 1, 1, 1)
    lines = {line.service: line.counts for line in r.services}
    assert (lines["emergency"].total, lines["emergency"].back, lines["emergency"].quarantined) == (3, 2, 1)
    assert (lines["radiology"].failed, lines["radiology"].pending) == (1, 1)
    assert "marche" not in r.sites  # scoped to the site asked for


def test_all_sites_scope(journal):
    r = make(journal, site=None)
    assert set(r.sites) == {"arlon", "marche"}
    assert r.sites["marche"].pending == 1


def test_quarantined_host_not_back_and_listed_with_failing_checks(journal):
    r = make(journal)
    q = [p for p in r.problems if p.status is Status.QUARANTINED]
    assert [p.host for p in q] == ["URG-PC3"]
    assert q[0].phase == "verify"
    assert (
        q[0].failing_checks[0].startswith("test_defender_realtime_protection_on: RealTimeProtectionEnabled")
    )
    f = [p for p in r.problems if p.status is Status.FAILED]
    assert (f[0].host, f[0].phase, f[0].reason) == ("RX-PC1", "harden", "winrm timeout")


def test_timeline_replays_transitions(journal):
    r = make(journal)
    pts = r.timeline["arlon"]
    assert pts[0].back == 0
    backs = [p.back for p in pts]
    assert backs == sorted(backs)  # nobody left "back" in this history
    last = pts[-1]
    assert (last.back, last.in_progress, last.failed, last.quarantined) == (3, 0, 1, 1)
    assert all(a.at <= b.at for a, b in itertools.pairwise(pts))


def test_tier_times(journal):
    r = make(journal)
    tiers = {t.tier: t for t in r.tiers}
    run_start = journal.run("run-1").started_at
    dc_back = next(t.at for t in journal.transitions("DC01") if t.to_phase is Phase.VERIFIED)
    assert tiers[0].all_back_s == dc_back - run_start
    assert tiers[1].back == 2 and tiers[1].total == 3 and tiers[1].all_back_s is None
    assert tiers[1].first_back_s is not None
    assert tiers[6].first_back_s is None


def test_simulated_from_run_metadata(journal, tmp_path):
    assert make(journal).simulated is True
    j2 = Journal.in_state_dir(tmp_path / "prod")
    j2.start_run("p1", "arlon", "bob", rehearsal=False)
    j2.ensure_hosts([host("A", "emergency", 1)])
    r = build_report(j2.hosts(), j2.transitions(), j2.runs(), site="arlon", now=time.time())
    assert r.simulated is False
    assert "SIMULATED" not in render_html(r)
    j2.close()


def test_html_shows_banner_counts_and_escapes(journal):
    r = make(journal)
    r.problems[0].reason = "<script>alert(1)</script>"
    html = render_html(r, site_labels={"arlon": "Arlon"}, tier_labels={1: "Emergencies"})
    assert "SIMULATED — lab rehearsal" in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "<svg" in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert 'data-host="URG-PC3"' in html and "test_defender_realtime_protection_on" in html


def test_csv_and_json_exports_agree(journal):
    r = make(journal)
    rows = list(csv.DictReader(io.StringIO(render_csv(r))))
    emergency = next(row for row in rows if row["service"] == "emergency")
    assert (emergency["machines"], emergency["back"], emergency["quarantined"], emergency["simulated"]) == (
        "3",
        "2",
        "1",
        "yes",
    )
    data = json.loads(render_json(r))
    assert data["sites"]["arlon"]["back"] == 3
    assert data["problems"][0]["failing_checks"] or data["problems"][1]["failing_checks"]


def test_write_report_and_cli(journal, tmp_path, capsys):
    files = write_report(journal.path.parent, tmp_path / "out", "arlon")
    assert files.html.read_text().count("URG-PC3") >= 1
    parser = argparse.ArgumentParser()
    report_cli.register(parser.add_subparsers())
    args = parser.parse_args(
        ["report", "arlon", "--state-dir", str(journal.path.parent), "--out", str(tmp_path / "cli")]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out and "arlon: 3/6 back" in out
    assert (tmp_path / "cli" / "report-arlon.json").exists()


def test_unknown_site_and_missing_journal_are_clear(journal, tmp_path):
    with pytest.raises(ConfigError, match="site 'nowhere' has no host in the journal"):
        write_report(journal.path.parent, tmp_path / "o", "nowhere")
    with pytest.raises(ConfigError, match="no journal here"):
        write_report(tmp_path / "empty", tmp_path / "o")
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_status_mapping_and_duration():
    assert status_of("verified") is Status.BACK
    assert status_of("redeployed") is Status.IN_PROGRESS
    with pytest.raises(ValueError):
        status_of("bogus")
    assert format_duration(None) == "—"
    assert format_duration(3 * 3600 + 5 * 60) == "3:05"


def test_csv_cells_from_hosts_never_run_as_formulas(journal):
    # A failure reason or check message comes from a host: a spreadsheet must show it as text.
    walk(journal, "RX-PC2", "run-1", "hardening")
    journal.transition(
        "RX-PC2", "failed", run_id="run-1", failed_phase="harden", reason='=HYPERLINK("http://x","open me")'
    )
    r = make(journal)
    rows = list(csv.DictReader(io.StringIO(render_problems_csv(r))))
    rx = next(row for row in rows if row["host"] == "RX-PC2")
    assert rx["reason"] == '\'=HYPERLINK("http://x","open me")'
    for text in (render_problems_csv(r), render_csv(r)):
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)


def test_each_hold_back_condition_is_its_own_column(tmp_path: Path):
    with Journal.in_state_dir(tmp_path) as j:
        j.start_run("run-1", "arlon", "alice")
        j.ensure_hosts(
            [
                host("URG-PC1", "emergency", 1),
                host("URG-PC2", "emergency", 1),
                host("URG-PC3", "emergency", 1),
            ]
        )
        for pc in ("URG-PC1", "URG-PC2", "URG-PC3"):
            walk(j, pc, "run-1", "verifying")
        j.transition("URG-PC1", "verified", run_id="run-1")
        j.transition(
            "URG-PC2",
            "quarantined",
            run_id="run-1",
            reason="held back by patch_level; test_patch_level: below patch level",
            result={
                "passed": False,
                "conditions": ["patch_level"],
                "failed_checks": [{"check": "test_patch_level", "message": "below patch level: 22631.4460"}],
            },
            result_key="verify",
        )
        j.transition(
            "URG-PC3",
            "quarantined",
            run_id="run-1",
            reason="held back by secure_boot, patch_level; ...",
            result={"passed": False, "conditions": ["secure_boot", "patch_level", "edr_unknown"]},
            result_key="verify",
        )
        r = make(j)
    emergency = next(line.counts for line in r.services if line.service == "emergency")
    assert (emergency.back, emergency.quarantined) == (1, 2)
    assert emergency.held_back == {"patch_level": 2, "secure_boot": 1, "edr_unknown": 1}
    assert r.sites["arlon"].held_back["patch_level"] == 2
    # every known condition has its column, even at 0; an unknown one seen gets one after them
    assert r.conditions[:2] == ["patch_level", "secure_boot"] and r.conditions[-1] == "edr_unknown"
    row = next(csv.DictReader(io.StringIO(render_csv(r))))
    assert (row["held_back_patch_level"], row["held_back_secure_boot"], row["held_back_edr_unknown"]) == (
        "2",
        "1",
        "1",
    )
    problem = next(csv.DictReader(io.StringIO(render_problems_csv(r))))
    assert (problem["host"], problem["conditions"]) == ("URG-PC2", "patch_level")
    assert json.loads(render_json(r))["services"][0]["counts"]["held_back"]["patch_level"] == 2
    html = render_html(r)
    assert '<td class="n held patch_level">2</td>' in html and "<th>Held back: below patch level</th>" in html
    assert '<td class="conditions">below patch level</td>' in html


def test_a_broken_data_file_costs_the_labels_not_the_report(journal, tmp_path, monkeypatch):
    """Site and tier labels are cosmetic: with a sites.yml that does not parse, the report is still
    written (site keys instead of labels); an unexpected exception is a bug and is not hidden."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "sites.yml").write_text("sites: [\n")
    monkeypatch.setenv("REBUILD_DATA_DIR", str(data))
    files = write_report(journal.path.parent, tmp_path / "out", "arlon")
    assert "URG-PC3" in files.html.read_text()
    with (
        mock.patch("rebuild.sites.load_sites", side_effect=RuntimeError("bug")),
        pytest.raises(RuntimeError, match="bug"),
    ):
        write_report(journal.path.parent, tmp_path / "out2", "arlon")


def test_rebuild_secrets_retired_and_kept_are_counted_per_site_and_service(tmp_path: Path):
    with Journal.in_state_dir(tmp_path) as j:
        j.start_run("run-1", "arlon", "alice")
        j.ensure_hosts(
            [
                host("DC01", "directory", 0, kind=Kind.SERVER),
                host("URG-PC1", "emergency", 1),
                host("URG-PC2", "emergency", 1),
            ]
        )
        for name in ("DC01", "URG-PC1", "URG-PC2"):
            walk(j, name, "run-1", "verifying")
            j.transition(name, "verified", run_id="run-1")
        j.set_result("URG-PC1", "rebuild_secret", {"status": "retired", "reason": "rebuild secret retired"})
        j.set_result("DC01", "rebuild_secret", {"status": "kept", "reason": "domain controllers"})
        r = make(j)  # URG-PC2: verified before retirement existed, counted in neither
    lines = {line.service: line.counts for line in r.services}
    assert (lines["emergency"].secret_retired, lines["emergency"].secret_kept) == (1, 0)
    assert (lines["directory"].secret_retired, lines["directory"].secret_kept) == (0, 1)
    assert (r.sites["arlon"].secret_retired, r.sites["arlon"].secret_kept) == (1, 1)
    rows = {row["service"]: row for row in csv.DictReader(io.StringIO(render_csv(r)))}
    assert (rows["emergency"]["rebuild_secret_retired"], rows["directory"]["rebuild_secret_kept"]) == (
        "1",
        "1",
    )
    html = render_html(r)
    assert '<td class="n secret-retired">1</td><td class="n secret-kept">1</td>' in html
