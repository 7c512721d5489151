"""The journal's state machine, durability across reopen, results and history."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from rebuild.journal import ALLOWED, IllegalTransition, Journal, Phase
from rebuild.model import Host, Kind, Platform


def _host(name: str, tier: int = 1, site: str = "arlon") -> Host:
    return Host(
        hostname=name,
        asset_tag=f"A-{name}",
        kind=Kind.SERVER,
        platform=Platform.VIRTUAL,
        os="windows-server-2022",
        site=site,
        service="emergency",
        service_label="Urgences",
        tier=tier,
    )


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal.in_state_dir(tmp_path)
    j.start_run("r1", "arlon", "alice")
    j.ensure_hosts([_host("SRV1"), _host("SRV2", tier=0)])
    return j


def _walk_to_verified(j: Journal, name: str) -> None:
    for p in (
        "reimaging",
        "reimaged",
        "hardening",
        "hardened",
        "redeploying",
        "redeployed",
        "verifying",
        "verified",
    ):
        j.transition(name, p, run_id="r1")


def test_new_hosts_are_pending_and_ordered_by_tier(journal: Journal) -> None:
    hosts = journal.hosts("arlon")
    assert [h.name for h in hosts] == ["SRV2", "SRV1"]
    assert all(h.phase is Phase.PENDING for h in hosts)


def test_full_walk_records_every_transition_with_timestamps(journal: Journal) -> None:
    _walk_to_verified(journal, "SRV1")
    record = journal.host("SRV1")
    assert record.phase is Phase.VERIFIED
    assert record.attempts == 1
    history = journal.transitions("SRV1")
    assert [t.to_phase for t in history][-1] is Phase.VERIFIED
    assert len(history) == 8
    assert all(a.at <= b.at for a, b in itertools.pairwise(history))


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], "reimaged"),  # pending cannot skip reimaging
        ([], "verified"),
        (["reimaging"], "hardening"),  # must finish reimage first
        (["reimaging", "reimaged"], "verifying"),
        (["reimaging", "reimaged"], "quarantined"),  # only verification quarantines
    ],
)
def test_illegal_transitions_raise_and_change_nothing(journal: Journal, path: list[str], bad: str) -> None:
    for p in path:
        journal.transition("SRV1", p, run_id="r1")
    before = journal.host("SRV1")
    with pytest.raises(IllegalTransition, match="SRV1"):
        journal.transition("SRV1", bad, run_id="r1")
    assert journal.host("SRV1") == before
    assert len(journal.transitions("SRV1")) == len(path)


def test_verified_host_is_not_reimaged_without_force(journal: Journal) -> None:
    _walk_to_verified(journal, "SRV1")
    with pytest.raises(IllegalTransition):
        journal.transition("SRV1", "reimaging", run_id="r1")
    again = journal.transition("SRV1", "reimaging", run_id="r1", force=True)
    assert again.phase is Phase.REIMAGING and again.attempts == 2


def test_failure_keeps_phase_and_reason_and_allows_retry(journal: Journal) -> None:
    journal.transition("SRV1", "reimaging", run_id="r1")
    with pytest.raises(IllegalTransition, match="work phase"):
        journal.transition("SRV1", "failed", run_id="r1", reason="x")
    failed = journal.transition("SRV1", "failed", run_id="r1", failed_phase="reimage", reason="WinRM timeout")
    assert (failed.phase, failed.failed_phase, failed.reason) == (Phase.FAILED, "reimage", "WinRM timeout")
    retried = journal.transition("SRV1", "reimaging", run_id="r1")
    assert retried.failed_phase == "" and retried.reason == "" and retried.attempts == 2


def test_quarantine_only_from_verifying_with_reason(journal: Journal) -> None:
    _walk_to_verified(journal, "SRV2")
    journal.transition("SRV2", "reimaging", run_id="r1", force=True)
    for p in ("reimaged", "hardening", "hardened", "redeploying", "redeployed", "verifying"):
        journal.transition("SRV2", p, run_id="r1")
    q = journal.transition("SRV2", "quarantined", run_id="r1", reason="ransom note present")
    assert q.phase is Phase.QUARANTINED and q.reason == "ransom note present"
    assert Phase.REIMAGING in ALLOWED[Phase.QUARANTINED]


def test_mid_phase_reentry_is_a_recheck(journal: Journal) -> None:
    journal.transition("SRV1", "reimaging", run_id="r1")
    again = journal.transition("SRV1", "reimaging", run_id="r2", reason="resume: re-check")
    assert again.phase is Phase.REIMAGING and again.attempts == 2 and again.run_id == "r2"


def test_results_merge_per_phase_and_survive_reopen(tmp_path: Path) -> None:
    j = Journal.in_state_dir(tmp_path)
    j.start_run("r1", "arlon", "alice", rehearsal=True, options={"limit": ["SRV1"]})
    j.ensure_hosts([_host("SRV1")])
    j.transition("SRV1", "reimaging", run_id="r1")
    j.transition("SRV1", "reimaged", run_id="r1", result={"image_id": "img-1"})
    j.set_result("SRV1", "harden", {"compliant": 12})
    j.finish_run("r1", "completed")
    j.close()
    reopened = Journal.in_state_dir(tmp_path)
    rec = reopened.host("SRV1")
    assert rec.results == {"reimage": {"image_id": "img-1"}, "harden": {"compliant": 12}}
    run = reopened.run("r1")
    assert run.status == "completed" and run.rehearsal and run.options == {"limit": ["SRV1"]}
    assert run.ended_at is not None


def test_ensure_hosts_keeps_existing_state(journal: Journal) -> None:
    journal.transition("SRV1", "reimaging", run_id="r1")
    journal.ensure_hosts([_host("SRV1"), _host("PC1", tier=3)])
    assert journal.host("SRV1").phase is Phase.REIMAGING
    assert journal.host("PC1").phase is Phase.PENDING
    assert journal.counts("arlon")["reimaging"] == 1


def test_confirmations_are_kept_per_run(journal: Journal) -> None:
    journal.record_confirmation("r1", "arlon", "alice", "typed site name", "tiers 0-7: 2 hosts")
    (conf,) = journal.confirmations("r1")
    assert conf["operator"] == "alice" and conf["site"] == "arlon" and conf["how"] == "typed site name"


def _writer(path: str) -> None:
    j = Journal(Path(path))
    j.transition("SRV1", "reimaging", run_id="r1")
    os.kill(os.getpid(), signal.SIGKILL)  # die without closing anything


def test_committed_transition_survives_kill(tmp_path: Path) -> None:
    j = Journal.in_state_dir(tmp_path)
    j.start_run("r1", "arlon", "alice")
    j.ensure_hosts([_host("SRV1")])
    proc = multiprocessing.get_context("spawn").Process(target=_writer, args=(str(j.path),))
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    assert Journal(j.path).host("SRV1").phase is Phase.REIMAGING
