"""bench/site_breakdown.py: where a run's wall time went, from ansible-runner job events."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import site_breakdown

T0 = 1_800_000_000.0


def _iso(offset: float) -> str:
    return dt.datetime.fromtimestamp(T0 + offset, tz=dt.UTC).isoformat()


def _batch(run: Path, name: str, command_at: float, tasks: list[tuple[str, float, float, str, str]]) -> None:
    """One batch's artifacts: `command` written at command_at, one finished event per task."""
    artifacts = run / "artifacts" / name
    (artifacts / "job_events").mkdir(parents=True)
    command = artifacts / "command"
    command.write_text("{}")
    os.utime(command, (T0 + command_at, T0 + command_at))
    first = min(t[1] for t in tasks) - 0.5  # playbook_on_start half a second before the first task
    events = [{"event": "playbook_on_start", "created": _iso(first), "event_data": {}}]
    for host, start, end, action, task in tasks:
        data = {"host": host, "start": _iso(start), "end": _iso(end), "task_action": action, "task": task}
        events.append({"event": "runner_on_ok", "created": _iso(end), "event_data": data})
    for counter, event in enumerate(events, 1):
        (artifacts / "job_events" / f"{counter}-x.json").write_text(json.dumps(event))


@pytest.fixture
def run(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    plan = run / "plan.json"
    plan.write_text("{}")
    os.utime(plan, (T0, T0))
    # Tier 0: one server, reboot 10 s. Then a wave of two PCs in parallel; PC-2 finishes last.
    _batch(
        run,
        "t0-b001",
        1.0,
        [
            ("DC1", 3.0, 4.0, "rebuild_gate", "rebuild | wait for the gate"),
            ("DC1", 4.0, 14.0, "ansible.windows.win_reboot", "harden | restart"),
        ],
    )
    _batch(
        run,
        "w1-b001",
        16.0,
        [
            ("PC1", 18.0, 20.0, "rebuild_harden", "harden | apply baseline"),
            ("PC2", 18.0, 25.0, "rebuild_harden", "harden | apply baseline"),
        ],
    )
    return run


def test_the_critical_path_is_the_chain_of_serial_batches_and_its_parts_add_up_to_the_wall(run: Path) -> None:
    result = site_breakdown.breakdown(run)
    assert result["wall_s"] == 25.0
    assert [s["batch"] for s in result["stages"]] == ["t0-b001", "w1-b001"]  # type: ignore[attr-defined]
    assert result["stages"][1]["critical_host"] == "PC2"  # type: ignore[index]
    parts = result["critical_path_s"]
    assert parts["reboots and their waits"] == 10.0  # type: ignore[index]
    assert parts["module payloads on hosts"] == 7.0  # the slower PC, not the sum of both  # type: ignore[index]
    assert parts["gates and slot polling"] == 1.0  # type: ignore[index]
    assert parts["Ansible start-up per batch"] == 3.0  # 1.5 s per batch  # type: ignore[index]
    assert parts["between batches (orchestrator, journal, waiting)"] == 3.0  # 0->1 and 14->16  # type: ignore[index]
    assert sum(parts.values()) == pytest.approx(result["wall_s"], abs=0.2)  # type: ignore[attr-defined]
    assert result["phases"]["harden"]["hosts"] == 3  # type: ignore[index]


def test_a_batch_overlapping_another_is_not_a_stage_of_the_path(run: Path) -> None:
    # A batch that ran beside tier 0 and ended before the wave: the wave still waited for tier 0.
    _batch(run, "t0-b002", 2.0, [("DHCP1", 3.0, 6.0, "rebuild_harden", "harden | apply baseline")])
    stages = [s["batch"] for s in site_breakdown.breakdown(run)["stages"]]  # type: ignore[attr-defined]
    assert stages == ["t0-b001", "w1-b001"]


def test_a_directory_without_artifacts_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=str(tmp_path)):
        site_breakdown.breakdown(tmp_path)


REDEPLOY_GATE = "rebuild | wait for the orchestrator to open this batch's redeploy gate"


@pytest.fixture
def wave(tmp_path: Path) -> Path:
    """A wave's first stage: one server, command at 1 s, its batch ends at 14 s (reboot 4-14 s)."""
    run = tmp_path / "runs" / "r2"
    run.mkdir(parents=True)
    (run / "plan.json").write_text("{}")
    os.utime(run / "plan.json", (T0, T0))
    _batch(
        run,
        "w1-b001",
        1.0,
        [
            ("SRV", 2.0, 4.0, "rebuild_boot_trigger", "reimage | trigger | one-time network boot"),
            ("SRV", 4.0, 14.0, "ansible.windows.win_reboot", "redeploy | reboot to complete the domain join"),
        ],
    )
    return run


def _pc_stage(run: Path, harden_until: float, gate_until: float) -> None:
    """The wave's next stage, started at 2 s while the server's ran: reimage from 3 s, harden,
    the redeploy gate, redeploy until 20 s."""
    _batch(
        run,
        "w1-b002",
        2.0,
        [
            (
                "PC1",
                3.0,
                harden_until - 1.0,
                "rebuild_boot_trigger",
                "reimage | trigger | one-time network boot",
            ),
            ("PC1", harden_until - 1.0, harden_until, "rebuild_harden", "harden | apply baseline"),
            ("PC1", harden_until, gate_until, "rebuild_gate", REDEPLOY_GATE),
            ("PC1", gate_until, 20.0, "rebuild_apps", "redeploy | applications"),
        ],
    )


def test_a_held_stage_that_hardened_before_the_stage_before_ended_is_on_the_path_only_from_its_gate(
    wave: Path,
) -> None:
    _pc_stage(wave, harden_until=6.0, gate_until=14.5)  # at its gate from 6 s; opened 0.5 s after 14 s
    result = site_breakdown.breakdown(wave)
    assert result["wall_s"] == 20.0
    stages = result["stages"]
    assert [s["batch"] for s in stages] == ["w1-b001", "w1-b002"]  # type: ignore[attr-defined]
    pcs = stages[1]  # type: ignore[index]
    assert (pcs["held_until"], pcs["critical_host"], pcs["on_path_s"]) == ("w1-b001", "PC1", 6.0)
    assert (pcs["reimage_harden_s"], pcs["hidden_s"], pcs["excess_s"]) == (3.0, 3.0, 0.0)
    assert result["overlap_hidden_s"] == 3.0
    parts = result["critical_path_s"]
    # Its reimage, harden and 8.5 s at the gate are off the path; the gate's 0.5 s after the
    # server's batch ended is the orchestrator opening it, not a gate cost.
    assert "gates and slot polling" not in parts  # type: ignore[operator]
    assert parts["between batches (orchestrator, journal, waiting)"] == 1.5  # 0->1 and 14->14.5  # type: ignore[index]
    assert parts["boot: BMC power, WoL, PXE entry"] == 2.0  # the server's only  # type: ignore[index]
    assert parts["module payloads on hosts"] == 5.5  # the PC's redeploy, not its harden  # type: ignore[index]
    assert parts["reboots and their waits"] == 10.0  # type: ignore[index]
    assert sum(parts.values()) == pytest.approx(20.0, abs=0.2)  # type: ignore[attr-defined]
    assert "held until w1-b001" in site_breakdown.render(result)


def test_a_held_stage_that_hardened_after_the_stage_before_ended_puts_the_excess_on_the_path(
    wave: Path,
) -> None:
    _pc_stage(wave, harden_until=16.0, gate_until=16.2)  # reimage 3-15 s, harden 15-16 s: 2 s past 14 s
    result = site_breakdown.breakdown(wave)
    stages = result["stages"]
    assert [s["batch"] for s in stages] == ["w1-b001", "w1-b002"]  # type: ignore[attr-defined]
    pcs = stages[1]  # type: ignore[index]
    assert (pcs["reimage_harden_s"], pcs["hidden_s"], pcs["excess_s"]) == (13.0, 11.0, 2.0)
    assert pcs["on_path_s"] == 6.0
    parts = result["critical_path_s"]
    assert parts["boot: BMC power, WoL, PXE entry"] == 3.0  # the server's 2 s + the PC's reimage 14-15 s  # type: ignore[index]
    assert parts["module payloads on hosts"] == 4.8  # harden 15-16 s + redeploy 16.2-20 s  # type: ignore[index]
    assert parts["gates and slot polling"] == 0.2  # one poll of an open gate  # type: ignore[index]
    assert parts["between batches (orchestrator, journal, waiting)"] == 1.0  # type: ignore[index]
    assert sum(parts.values()) == pytest.approx(20.0, abs=0.2)  # type: ignore[attr-defined]


def test_a_stage_started_after_the_stage_before_ended_is_not_held(wave: Path) -> None:
    # Its hosts are in no gate group: no redeploy gate task; it waited for the server's batch.
    _batch(wave, "w1-b002", 15.0, [("PC1", 16.0, 20.0, "rebuild_apps", "redeploy | applications")])
    result = site_breakdown.breakdown(wave)
    assert [s["batch"] for s in result["stages"]] == ["w1-b001", "w1-b002"]  # type: ignore[attr-defined]
    assert "held_until" not in result["stages"][1]  # type: ignore[index]
    assert result["critical_path_s"]["between batches (orchestrator, journal, waiting)"] == 2.0  # type: ignore[index]


@pytest.mark.parametrize("waited_at", ["imaging slot", "batch gate"])
def test_a_batch_that_waited_for_an_imaging_slot_goes_on_through_the_host_that_freed_it(
    tmp_path: Path, waited_at: str
) -> None:
    # Imaging capacity 1, two pipelined batches of one stage: PC2's batch starts while PC1's
    # runs, and PC2 waits for the slot (or at its batch's gate, for PC1's slot) until PC1 is
    # reimaged (5 s).
    run = tmp_path / "runs" / "r3"
    run.mkdir(parents=True)
    (run / "plan.json").write_text("{}")
    os.utime(run / "plan.json", (T0, T0))
    slot = "rebuild | wait for an imaging slot"
    batch_gate = "rebuild | wait for the orchestrator to open this batch's gate"
    _batch(
        run,
        "w1-b001",
        0.5,
        [
            ("PC1", 1.5, 1.6, "rebuild_gate", batch_gate),
            ("PC1", 1.6, 1.7, "rebuild_gate", slot),
            ("PC1", 1.7, 5.0, "rebuild_boot_trigger", "reimage | trigger | one-time network boot"),
            ("PC1", 5.0, 7.0, "rebuild_harden", "harden | apply baseline"),
            ("PC1", 7.0, 9.0, "rebuild_apps", "redeploy | applications"),
        ],
    )
    _batch(
        run,
        "w1-b002",
        0.8,
        [
            *(
                [("PC2", 1.5, 1.55, "rebuild_gate", batch_gate), ("PC2", 1.6, 5.3, "rebuild_gate", slot)]
                if waited_at == "imaging slot"
                else [
                    ("PC2", 1.5, 5.25, "rebuild_gate", batch_gate),
                    ("PC2", 5.25, 5.3, "rebuild_gate", slot),
                ]
            ),
            ("PC2", 5.3, 8.0, "rebuild_boot_trigger", "reimage | trigger | one-time network boot"),
            ("PC2", 8.0, 9.0, "rebuild_harden", "harden | apply baseline"),
            ("PC2", 9.0, 12.0, "rebuild_apps", "redeploy | applications"),
        ],
    )
    result = site_breakdown.breakdown(run)
    stages = result["stages"]
    assert [(s["batch"], s["on_path_s"]) for s in stages] == [("w1-b001", 4.5), ("w1-b002", 7.0)]  # type: ignore[attr-defined]
    assert stages[1]["waited_for"] == "PC1"  # type: ignore[index]
    parts = result["critical_path_s"]
    # The slot wait until PC1 was reimaged is PC1's reimage on the path, not slot polling.
    assert parts["boot: BMC power, WoL, PXE entry"] == 6.0  # PC1 1.7-5.0, PC2 5.3-8.0  # type: ignore[index]
    assert parts["gates and slot polling"] == 0.5  # PC2's 0.3 s after the slot freed, PC1's own two  # type: ignore[index]
    assert parts["module payloads on hosts"] == 4.0  # PC2's harden and redeploy  # type: ignore[index]
    assert sum(parts.values()) == pytest.approx(12.0, abs=0.2)  # type: ignore[attr-defined]
    assert "waited for an imaging slot or its gate: PC1" in site_breakdown.render(result)


def test_in_a_held_batch_the_host_that_reached_the_gate_last_carries_the_excess(wave: Path) -> None:
    # PC1 waits at the gate from 6 s; PC2 reaches it at 15 s, 1 s after the server's batch ended;
    # the redeploy play starts once both passed it (15.2 s); PC1 finishes last.
    _batch(
        wave,
        "w1-b002",
        2.0,
        [
            ("PC1", 3.0, 5.0, "rebuild_boot_trigger", "reimage | trigger | one-time network boot"),
            ("PC1", 5.0, 6.0, "rebuild_harden", "harden | apply baseline"),
            ("PC1", 6.0, 14.4, "rebuild_gate", REDEPLOY_GATE),
            ("PC1", 15.3, 20.0, "rebuild_apps", "redeploy | applications"),
            ("PC2", 3.0, 14.5, "rebuild_boot_trigger", "reimage | trigger | one-time network boot"),
            ("PC2", 14.5, 15.0, "rebuild_harden", "harden | apply baseline"),
            ("PC2", 15.0, 15.2, "rebuild_gate", REDEPLOY_GATE),
            ("PC2", 15.3, 19.0, "rebuild_apps", "redeploy | applications"),
        ],
    )
    result = site_breakdown.breakdown(wave)
    pcs = result["stages"][1]  # type: ignore[index]
    assert (pcs["critical_host"], pcs["last_at_gate"]) == ("PC1", "PC2")
    assert (pcs["reimage_harden_s"], pcs["hidden_s"], pcs["excess_s"]) == (12.0, 11.0, 1.0)
    parts = result["critical_path_s"]
    assert parts["boot: BMC power, WoL, PXE entry"] == 2.5  # the server's 2 s, PC2's reimage 14-14.5 s  # type: ignore[index]
    assert parts["module payloads on hosts"] == 5.2  # PC2's harden 14.5-15 s, PC1's redeploy  # type: ignore[index]
    assert parts["gates and slot polling"] == 0.2  # PC2's poll of the open gate  # type: ignore[index]
    assert sum(parts.values()) == pytest.approx(20.0, abs=0.2)  # type: ignore[attr-defined]


def test_a_held_batch_waited_for_the_earlier_stages_of_its_wave_as_the_plan_says(tmp_path: Path) -> None:
    # Tier 1: the server's batch (stage 1), then two PC batches (stage 2). PC3's batch failed in
    # harden and ended at 14.2 s, after the server's (14 s) and before PC2's gate let it go
    # (14.5 s): PC2's batch waited for the server's, not for PC3's.
    run = tmp_path / "runs" / "r4"
    run.mkdir(parents=True)
    plan = {"waves": [{"wave": 1, "tier": 1, "stages": [[1], [2, 3]]}]}
    (run / "plan.json").write_text(json.dumps(plan))
    os.utime(run / "plan.json", (T0, T0))
    _batch(run, "t1-b001", 1.0, [("SRV", 2.0, 14.0, "ansible.windows.win_reboot", "redeploy | reboot")])
    _batch(
        run,
        "t1-b002",
        2.0,
        [
            ("PC2", 3.0, 6.0, "rebuild_harden", "harden | apply baseline"),
            ("PC2", 6.0, 14.5, "rebuild_gate", REDEPLOY_GATE),
            ("PC2", 14.5, 20.0, "rebuild_apps", "redeploy | applications"),
        ],
    )
    _batch(run, "t1-b003", 2.5, [("PC3", 3.0, 14.2, "rebuild_harden", "harden | apply baseline")])
    result = site_breakdown.breakdown(run)
    stages = result["stages"]
    assert [s["batch"] for s in stages] == ["t1-b001", "t1-b002"]  # type: ignore[attr-defined]
    assert stages[1]["held_until"] == "t1-b001"  # type: ignore[index]
    assert result["critical_path_s"]["between batches (orchestrator, journal, waiting)"] == 1.5  # type: ignore[index]
