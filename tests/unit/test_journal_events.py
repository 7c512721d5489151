"""Runner events -> journal transitions, resume decisions, circuit breaker, interlocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rebuild.childenv import child_env
from rebuild.errors import ConfigError, SafetyError
from rebuild.journal import Journal, Phase
from rebuild.model import Host
from rebuild.orchestrator.breaker import Breaker
from rebuild.orchestrator.events import EventMapper, failure_message
from rebuild.orchestrator.interlocks import confirm_site, select_hosts
from rebuild.orchestrator.resume import host_work, playbook_phases
from tests.hosts import register_host

ALL = ("reimage", "harden", "redeploy", "verify")


def _host(name: str, site: str = "arlon", tier: int = 1) -> Host:
    return register_host(name, asset_tag="A", site=site, service_label="Urgences", tier=tier)


def _ev(kind: str, host: str, task: str, res: dict[str, Any] | None = None, **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": {"host": host, "task": task, "res": res or {}, **data}}


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal.in_state_dir(tmp_path)
    j.start_run("r1", "arlon", "op")
    j.ensure_hosts([_host("PC1"), _host("PC2")])
    return j


def test_phases_start_at_the_gate_and_after_the_one_before_and_keep_done_facts(journal: Journal) -> None:
    seen: list[tuple[str, str, str]] = []
    m = EventMapper(
        journal,
        "r1",
        phases={"PC1": ["reimage", "harden"], "PC2": []},
        on_host_event=lambda e: seen.append((e.host, e.kind, e.phase)),
    )
    m(_ev("runner_on_ok", "PC1", "reimage | trigger | one-time network boot", {"changed": True}))
    assert journal.host("PC1").phase is Phase.PENDING  # nothing starts before the gate opens
    m.begin(m.phases)
    assert journal.host("PC1").phase is Phase.REIMAGING
    assert journal.host("PC2").phase is Phase.PENDING  # nothing to do in this batch
    done = {"rebuild_phase": "reimage", "facts": {"image_id": "img-9"}}
    m(_ev("runner_on_ok", "PC1", "rebuild phase | reimage | done", done))
    rec = journal.host("PC1")
    assert rec.phase is Phase.HARDENING and rec.results["reimage"]["image_id"] == "img-9"
    assert [t.to_phase for t in journal.transitions("PC1")][-2:] == [Phase.REIMAGED, Phase.HARDENING]
    # The result names the phase, whatever the task is called.
    m(_ev("runner_on_ok", "PC1", "any name", {"rebuild_phase": "harden", "facts": {"counts": {"ok": 3}}}))
    assert journal.host("PC1").phase is Phase.HARDENED  # its last phase in this batch
    assert [(h, k, p) for h, k, p in seen if k != "task"] == [
        ("PC1", "start", "reimage"),
        ("PC1", "done", "reimage"),
        ("PC1", "start", "harden"),
        ("PC1", "done", "harden"),
    ]


def test_a_task_named_like_the_old_marker_does_not_end_a_phase(journal: Journal) -> None:
    m = EventMapper(journal, "r1", phases={"PC1": ["reimage", "harden"]})
    m.begin(["PC1"])
    m(_ev("runner_on_ok", "PC1", "rebuild phase | reimage | done", {"msg": {"image_id": "img-9"}}))
    assert journal.host("PC1").phase is Phase.REIMAGING  # only the rebuild_phase_done result counts
    with pytest.raises(ValueError, match="unknown phase 'backup'"):
        m(_ev("runner_on_ok", "PC1", "x", {"rebuild_phase": "backup", "facts": {}}))


def test_a_host_caught_mid_phase_is_restarted_as_a_re_check(journal: Journal) -> None:
    journal.transition("PC1", "reimaging", run_id="r1")
    EventMapper(journal, "r1", phases={"PC1": ["reimage"]}).begin(["PC1"])
    last = journal.transitions("PC1")[-1]
    assert last.to_phase is Phase.REIMAGING and last.detail == "resume: re-check"


def test_a_host_let_go_at_its_imaging_slot_is_left_untouched(journal: Journal) -> None:
    seen: list[tuple[str, str]] = []
    m = EventMapper(
        journal,
        "r1",
        phases={"PC1": ["reimage"], "PC2": ["reimage"]},
        on_host_event=lambda e: seen.append((e.host, e.kind)),
    )
    m.begin(["PC1"])  # PC1 got a slot; PC2 is still waiting for one when the site stops
    m(
        _ev(
            "runner_on_failed",
            "PC2",
            "rebuild | wait for an imaging slot",
            {"msg": "not started: circuit breaker", "rebuild_not_started": True},
        )
    )
    assert journal.host("PC2").phase is Phase.PENDING  # never touched: not failed
    assert m.not_started == {"PC2": "not started: circuit breaker"} and m.failed == {}
    assert ("PC2", "not_started") in seen
    # A real failure of a host that had a slot is still a failure.
    m(_ev("runner_on_failed", "PC1", "reimage | trigger", {"msg": "BMC refused"}, role="reimage"))
    assert journal.host("PC1").phase is Phase.FAILED and "PC1" in m.failed


def test_failure_names_task_and_message_and_first_failure_wins(journal: Journal) -> None:
    m = EventMapper(journal, "r1", phases={"PC1": ["reimage"], "PC2": ["reimage"]})
    m.begin(m.phases)
    m(
        _ev(
            "runner_on_failed",
            "PC1",
            "reimage | wait for WinRM with the new credential",
            {"msg": "timed out waiting for ping module test"},
            role="reimage",
        )
    )
    # cleanup in `always` failing afterwards does not overwrite the reason
    m(_ev("runner_on_failed", "PC1", "reimage | remove the boot entry", {"msg": "later"}, role="reimage"))
    rec = journal.host("PC1")
    assert rec.phase is Phase.FAILED and rec.failed_phase == "reimage"
    assert (
        rec.reason
        == "reimage | wait for WinRM with the new credential: timed out waiting for ping module test"
    )
    assert m.failed == {"PC1": rec.reason}


def test_ignored_errors_and_unrelated_events_change_nothing(journal: Journal) -> None:
    m = EventMapper(journal, "r1", phases={"PC1": ["reimage"], "PC2": ["reimage"]})
    m.begin(m.phases)
    m(_ev("runner_on_failed", "PC1", "reimage | re-check", {"msg": "no"}, ignore_errors=True))
    m({"event": "playbook_on_stats", "event_data": {}})
    m({"event": "verbose", "stdout": "x"})
    assert journal.host("PC1").phase is Phase.REIMAGING


def test_unreachable_fails_and_censored_results_stay_hidden(journal: Journal) -> None:
    m = EventMapper(journal, "r1", phases={"PC2": ["reimage"]})
    m.begin(m.phases)
    m(
        _ev(
            "runner_on_unreachable",
            "PC2",
            "reimage | boot entry",
            {"censored": "the output has been hidden due to the fact that 'no_log: true' was specified"},
        )
    )
    rec = journal.host("PC2")
    assert rec.phase is Phase.FAILED and "unreachable" in rec.reason and "hidden" in rec.reason
    assert failure_message({"msg": ["a", "b"]}) == "a; b"


def test_verify_failure_with_quarantine_flag_quarantines(journal: Journal) -> None:
    for p in ("reimaging", "reimaged", "hardening", "hardened", "redeploying", "redeployed"):
        journal.transition("PC1", p, run_id="r1")
    m = EventMapper(journal, "r1", phases={"PC1": ["verify"]})
    m.begin(m.phases)
    m(
        _ev(
            "runner_on_failed",
            "PC1",
            "verify | run checks",
            {"msg": "2 checks failed", "rebuild_quarantine": True},
        )
    )
    rec = journal.host("PC1")
    assert rec.phase is Phase.QUARANTINED and "2 checks failed" in rec.reason


def test_record_only_mode_never_writes(journal: Journal) -> None:
    m = EventMapper(journal, "r1", phases={"PC1": ["reimage"]}, record_only=True)
    m.begin(m.phases)
    m(_ev("runner_on_failed", "PC1", "reimage | x", {"msg": "boom"}))
    assert journal.host("PC1").phase is Phase.PENDING and journal.transitions() == []


def test_start_on_verified_host_without_force_is_refused(journal: Journal) -> None:
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
        journal.transition("PC1", p, run_id="r1")
    with pytest.raises(Exception, match="not a legal transition"):
        EventMapper(journal, "r1", phases={"PC1": ["reimage"]}).begin(["PC1"])
    EventMapper(journal, "r1", phases={"PC1": ["reimage"]}, force_hosts=frozenset({"PC1"})).begin(["PC1"])
    assert journal.host("PC1").phase is Phase.REIMAGING


@pytest.mark.parametrize(
    ("path", "force", "phases", "recheck"),
    [
        ([], False, ALL, False),
        (["reimaging"], False, ALL, True),
        (["reimaging", "reimaged"], False, ("harden", "redeploy", "verify"), False),
        (["reimaging", "reimaged", "hardening"], False, ("harden", "redeploy", "verify"), False),
        (
            [
                "reimaging",
                "reimaged",
                "hardening",
                "hardened",
                "redeploying",
                "redeployed",
                "verifying",
                "verified",
            ],
            False,
            (),
            False,
        ),
        (
            [
                "reimaging",
                "reimaged",
                "hardening",
                "hardened",
                "redeploying",
                "redeployed",
                "verifying",
                "verified",
            ],
            True,
            ALL,
            False,
        ),
    ],
)
def test_resume_phases(
    journal: Journal, path: list[str], force: bool, phases: tuple[str, ...], recheck: bool
) -> None:
    for p in path:
        journal.transition("PC1", p, run_id="r1")
    work = host_work(journal.host("PC1"), ALL, force=force)
    assert (work.phases, work.recheck, work.forced) == (phases, recheck, force)


def test_failed_host_resumes_in_the_phase_it_failed(journal: Journal) -> None:
    journal.transition("PC1", "reimaging", run_id="r1")
    journal.transition("PC1", "reimaged", run_id="r1")
    journal.transition("PC1", "hardening", run_id="r1")
    journal.transition("PC1", "failed", run_id="r1", failed_phase="harden", reason="x")
    assert host_work(journal.host("PC1"), ALL).phases == ("harden", "redeploy", "verify")
    assert host_work(journal.host("PC1"), ("reimage",)).phases == ()


def test_playbook_phases_read_in_order(tmp_path: Path) -> None:
    good = tmp_path / "site.yml"
    good.write_text("- hosts: all\n  roles:\n    - role: reimage\n    - {role: harden}\n    - verify\n")
    assert playbook_phases(good) == ("reimage", "harden", "verify")
    bad = tmp_path / "bad.yml"
    bad.write_text("- hosts: all\n  roles:\n    - role: harden\n    - role: reimage\n")
    with pytest.raises(ConfigError, match="first role must be reimage"):
        playbook_phases(bad)
    assert playbook_phases(Path(__file__).resolve().parents[2] / "playbooks" / "site.yml")[0] == "reimage"


def test_only_a_gated_playbook_lets_batches_start_early(tmp_path: Path) -> None:
    from rebuild.orchestrator.resume import playbook_gated

    root = Path(__file__).resolve().parents[2]
    assert playbook_gated(root / "playbooks" / "site.yml")
    assert playbook_gated(root / "tests" / "integration" / "data" / "reimage-only.yml")
    ungated = tmp_path / "ungated.yml"
    ungated.write_text("- hosts: all\n  roles: [reimage]\n")
    assert not playbook_gated(ungated)  # would wipe at once: the orchestrator must not start it early
    gate = "  - rebuild_gate: {path: g}\n    run_once: true\n"
    busy = tmp_path / "busy-gate-play.yml"
    busy.write_text(
        f"- hosts: all\n  tasks:\n{gate}  - rebuild_boot_trigger: {{}}\n- hosts: all\n  roles: [reimage]\n"
    )
    assert not playbook_gated(busy)  # the gate's play touches hosts too
    some = tmp_path / "gate-on-some.yml"
    some.write_text(f"- hosts: rebuild_phase_reimage\n  tasks:\n{gate}- hosts: all\n  roles: [reimage]\n")
    assert not playbook_gated(some)  # hosts outside the gate's play would not wait
    unslotted = tmp_path / "no-slot.yml"
    unslotted.write_text(f"- hosts: all\n  tasks:\n{gate}- hosts: all\n  roles: [reimage]\n")
    assert not playbook_gated(unslotted)  # past the batch gate every host would reimage at once
    late = tmp_path / "gate-second.yml"
    late.write_text(f"- hosts: all\n  roles: [reimage]\n- hosts: all\n  tasks:\n{gate}")
    assert not playbook_gated(late)


def test_breaker_trips_over_threshold_only() -> None:
    b = Breaker(0.2)
    b.start_wave(1)
    assert b.record_batch(20, {"PC1": "reimage | wait for WinRM: timeout"}) is None  # 5 %
    b.start_wave(2)
    assert b.record_batch(10, {"A": "t1: x", "B": "t1: y"}) is None  # exactly 20 % is not past it
    assert b.record_batch(10, {"C": "t2: z", "D": "t1: w"}) is None  # 4 of 20: still 20 %
    trip = b.record_batch(5, {"E": "t1: v", "F": "t3: u"})
    assert trip is not None and (trip.failed, trip.processed) == (6, 25)
    assert trip.top_reasons[0] == ("t1", 4) and "tier 2" in trip.explain()
    with pytest.raises(ValueError):
        Breaker(1.5)


def test_breaker_counts_what_is_known_of_running_batches_before_starting_another() -> None:
    b = Breaker(0.2)
    b.start_wave(7)
    assert b.record_batch(20, {}) is None
    # A second batch still running: 10 of its hosts are past reimaging, 3 of them failed.
    running = {"P1": "reimage | wait for WinRM: timeout", "P2": "reimage | wait: x", "P3": "reimage | y"}
    assert b.check_in_flight(10, running) is None  # 3 of 30
    trip = b.check_in_flight(
        10, {**running, "P4": "reimage | z", "P5": "reimage | z", "P6": "reimage | z", "P7": "reimage | z"}
    )
    assert trip is not None and (trip.failed, trip.processed) == (7, 30)
    # Looking ahead records nothing: the finished batches alone are still fine.
    assert (b.processed, b.failures) == (20, {})
    assert b.record_batch(20, {}) is None
    # Host by host, one early failure is no rate yet: nothing trips below the sample size.
    b.start_wave(2)
    assert b.check_in_flight(1, {"P1": "reimage | trigger: x"}, sample=8) is None
    assert b.check_in_flight(7, {"P1": "reimage | trigger: x"}, sample=8) is None  # 7 known: still below
    trip = b.check_in_flight(8, {"P1": "reimage | trigger: x", "P2": "reimage | trigger: y"}, sample=8)
    assert trip is not None and (trip.failed, trip.processed) == (2, 8)


def test_select_hosts_refuses_outsiders_and_honours_limit_and_tier() -> None:
    hosts = [_host("ARL-1", tier=0), _host("ARL-2", tier=1), _host("BAS-1", site="bastogne")]
    assert [h.hostname for h in select_hosts(hosts, "arlon")] == ["ARL-1", "ARL-2"]
    assert [h.hostname for h in select_hosts(hosts, "arlon", tier=1)] == ["ARL-2"]
    assert [h.hostname for h in select_hosts(hosts, "arlon", limit=["arl-2"])] == ["ARL-2"]
    with pytest.raises(SafetyError, match=r"BAS-1 \(site bastogne\)"):
        select_hosts(hosts, "arlon", limit=["ARL-1", "BAS-1"])
    with pytest.raises(SafetyError, match="no host of site 'marche'"):
        select_hosts(hosts, "marche")
    with pytest.raises(SafetyError, match="outside"):
        select_hosts(hosts, "arlon", tier=0, force_hosts=["ARL-2"])


def test_confirmation_must_be_the_exact_site_name() -> None:
    assert confirm_site("arlon", "?", yes=True, ask=lambda p: "") == "--yes"
    assert confirm_site("arlon", "?", yes=False, ask=lambda p: " arlon\n") == "typed site name"
    for answer in ("Arlon", "y", "marche", ""):
        with pytest.raises(SafetyError, match="nothing was wiped"):
            confirm_site("arlon", "?", yes=False, ask=lambda p, a=answer: a)


def test_child_env_keeps_paths_and_drops_credentials() -> None:
    env = child_env(
        {
            "PATH": "/bin",
            "REBUILD_STATE_DIR": "/s",
            "REBUILD_VAULT_PASSWORD_FILE": "/k",
            "REBUILD_HYPERVISOR_TOKEN": "t0ken",
            "REBUILD_BMC_PASSWORD": "pw",
            "ANSIBLE_FORKS": "5",
            "ANSIBLE_BECOME_PASS": "x",
            "AWS_SECRET_ACCESS_KEY": "y",
            "RANDOM_VAR": "z",
        }
    )
    assert env == {
        "PATH": "/bin",
        "REBUILD_STATE_DIR": "/s",
        "REBUILD_VAULT_PASSWORD_FILE": "/k",
        "ANSIBLE_FORKS": "5",
    }


def test_progress_views_count_states_and_write_host_logs(tmp_path: Path) -> None:
    import io
    import json as _json

    from rebuild.orchestrator.events import HostEvent
    from rebuild.orchestrator.progress import HostLogs, JsonProgress, RichProgress

    stream = io.StringIO()
    view = JsonProgress(HostLogs(tmp_path / "hosts"), stream)
    view.seed({"PC1": "pending", "PC2": "pending"})
    view.emit("run_started", hosts=2)
    view.host_event(HostEvent("PC1", "start", "reimage", "rebuild phase | reimage | start", "ok"))
    trigger = "reimage | trigger | one-time network boot (Redfish, hypervisor or Wake-on-LAN)"
    view.host_event(HostEvent("PC1", "task", "reimage", trigger, "changed"))
    view.host_event(
        HostEvent("PC2", "failed", "reimage", "reimage | wait", "failed", "reimage | wait: timeout")
    )
    view.emit("batch_finished", hosts=2)
    lines = [_json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in lines] == ["run_started", "host", "host", "batch_finished"]
    assert view.tally.states["reimaging"] == 1 and view.tally.states["failed"] == 1
    assert view.tally.states["pending"] == 0
    log = (tmp_path / "hosts" / "PC2.log").read_text()
    assert "reimage | wait: timeout" in log
    rich = RichProgress(HostLogs(tmp_path / "hosts2"), "t")
    rich.seed({"PC1": "pending"})
    rich.emit("wave_started", tier=1, label="Emergencies", hosts=1, batches=1)
    rich.suspend()
    rich.resume()
    rich.host_event(HostEvent("PC1", "done", "reimage", "rebuild phase | reimage | done", "ok"))
    assert rich.tally.states["reimaged"] == 1
    rich.close()
    # The panel stays readable in an 80-column terminal or a captured log: one row per state.
    from rich.console import Console

    narrow = Console(width=80, record=True, file=io.StringIO())
    narrow.print(rich._render())
    text = narrow.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert any(line.split() == ["│", "reimaged", "│", "1", "│"] for line in text.splitlines()), text
    assert "done 0/" in text and "ETA" in text
