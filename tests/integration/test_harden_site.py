"""`rebuild site` with the harden phase: reimaged twins are hardened, the journal keeps the report.

Runs the orchestrator (ansible-runner, events -> journal) with the top playbook cut to its
reimage and harden roles, on two twins of the SIMULATED lab.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rebuild.harden.report import Status, report_from_journal
from rebuild.journal import Journal, Phase
from rebuild.lab.state import StateStore
from rebuild.orchestrator import SiteRunOptions, run_site

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ("ARL-URG01", "ARL-URG-0001")


def test_site_run_reimages_then_hardens_and_keeps_the_report(
    lab: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = (lab.lab_dir / "hypervisor.token").read_text().strip()
    for key, value in {**lab.env, "REBUILD_HYPERVISOR_TOKEN": token}.items():
        monkeypatch.setenv(key, value)
    site = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text(encoding="utf-8"))
    site = [play for play in site if not {"redeploy", "verify"} & set(play.get("roles") or [])]
    assert [play.get("roles") for play in site if play.get("roles")] == [["reimage"], ["harden"]]
    playbook = tmp_path / "reimage-harden.yml"
    playbook.write_text(yaml.safe_dump(site, sort_keys=False), encoding="utf-8")

    say: Callable[[str], None] = lambda text: None  # noqa: E731
    result = run_site(
        SiteRunOptions(
            site="arlon",
            inventory=lab.inventory("arlon"),
            state_dir=lab.state_dir,
            operator="test-operator",
            yes=True,
            json=True,
            rehearsal=True,
            new_journal=True,
            playbook=playbook,
            limit=HOSTS,
            say=say,
        )
    )
    assert result.status == "completed", (result.status, result.reason, result.failed)
    with Journal(lab.state_dir / "journal.sqlite") as journal:
        for name in HOSTS:
            record = journal.host(name)
            assert record.phase is Phase.HARDENED, (name, record.phase, record.reason)
            report = report_from_journal(record.results)
            assert report is not None and report.mode == "apply"
            bad = {
                r.id: (r.status, r.reason)
                for r in report.controls
                if r.status not in (Status.FIXED, Status.COMPLIANT, Status.NOT_APPLICABLE)
            }
            assert not bad, bad  # a clean image has tamper protection on: nothing left failed
            assert report.status_of("GHAL-CRED-003").status is Status.FIXED
            assert record.results["harden"]["pending_reboot"] == []  # restarted by the role
    store = StateStore(lab.lab_dir / "twins.sqlite")
    try:
        for name in HOSTS:
            state = store.get(name)
            assert state is not None and state.phase == "clean"
            assert state.registry["HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa"]["RunAsPPL"] == 1
            assert "rb-admin" in state.groups["Administrators"]
    finally:
        store.close()
