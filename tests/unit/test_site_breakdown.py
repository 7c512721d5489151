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
