"""`rebuild status`: counts per site, tier and service and the failed hosts, from the journal only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rebuild.cli import main
from rebuild.journal import Journal
from rebuild.model import Host, Kind, Platform
from rebuild.orchestrator.status import render_text, site_status


def _host(name: str, tier: int, service: str, site: str = "arlon") -> Host:
    return Host(
        hostname=name,
        asset_tag="A",
        kind=Kind.SERVER,
        platform=Platform.VIRTUAL,
        os="windows-server-2022",
        site=site,
        service=service,
        service_label=service,
        tier=tier,
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    j = Journal.in_state_dir(tmp_path)
    j.start_run("r1", "arlon", "alice", rehearsal=True)
    j.ensure_hosts(
        [
            _host("DC1", 0, "directory"),
            _host("DC2", 0, "directory"),
            _host("URG1", 1, "emergency"),
            _host("BAS1", 0, "directory", site="bastogne"),
        ]
    )
    j.transition("DC1", "reimaging", run_id="r1")
    j.transition("DC1", "reimaged", run_id="r1")
    j.transition("DC2", "reimaging", run_id="r1")
    j.transition(
        "DC2", "failed", run_id="r1", failed_phase="reimage", reason="reimage | wait for WinRM: timeout"
    )
    j.finish_run("r1", "stopped", "circuit breaker: wave of tier 0")
    j.close()
    return tmp_path


def test_status_counts_per_site_tier_service_and_lists_failures(state: Path) -> None:
    (arlon,) = site_status(Journal.in_state_dir(state), "arlon")
    assert arlon.by_state == {"pending": 1, "reimaged": 1, "failed": 1}
    assert arlon.by_tier == {0: {"reimaged": 1, "failed": 1}, 1: {"pending": 1}}
    assert arlon.by_service == {"directory": {"reimaged": 1, "failed": 1}, "emergency": {"pending": 1}}
    assert [(h.name, h.failed_phase, h.reason) for h in arlon.problems] == [
        ("DC2", "reimage", "reimage | wait for WinRM: timeout")
    ]
    text = render_text([arlon])
    assert "DC2 failed in reimage: reimage | wait for WinRM: timeout" in text
    assert "circuit breaker" in text and "SIMULATED" in text
    assert {s.site for s in site_status(Journal.in_state_dir(state))} == {"arlon", "bastogne"}


def test_status_cli_json_and_errors(state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "arlon", "--state-dir", str(state), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["problems"][0]["host"] == "DC2"
    assert main(["status", "marche", "--state-dir", str(state)]) == 2
    assert "marche" in capsys.readouterr().err
    assert main(["status", "--state-dir", str(tmp_path / "empty")]) == 2
    assert "no journal" in capsys.readouterr().err


def test_status_shows_retired_and_kept_rebuild_secrets_of_verified_hosts(tmp_path: Path) -> None:
    with Journal.in_state_dir(tmp_path) as j:
        j.start_run("r1", "arlon", "alice")
        j.ensure_hosts(
            [_host("DC1", 0, "directory"), _host("URG1", 1, "emergency"), _host("URG2", 1, "emergency")]
        )
        for name in ("DC1", "URG1", "URG2"):
            for step in ("reimaging", "reimaged", "hardening", "hardened", "redeploying", "redeployed"):
                j.transition(name, step, run_id="r1")
            j.transition(name, "verifying", run_id="r1")
        j.transition("DC1", "verified", run_id="r1")
        j.transition("URG1", "verified", run_id="r1")
        j.set_result("DC1", "rebuild_secret", {"status": "kept", "reason": "domain controllers: DSRM only"})
        j.set_result("URG1", "rebuild_secret", {"status": "retired", "reason": "rebuild secret retired"})
        (arlon,) = site_status(j, "arlon")
    assert (arlon.secrets_retired, arlon.secrets_kept) == (1, {"DC1": "domain controllers: DSRM only"})
    text = render_text([arlon])
    assert "rebuild secret: retired on 1 (Windows LAPS manages them), kept on 1" in text
    assert "DC1 keeps it: domain controllers: DSRM only" in text
    assert arlon.to_dict()["rebuild_secrets"] == {
        "retired": 1,
        "kept": {"DC1": "domain controllers: DSRM only"},
    }
