"""Harden end to end on a running lab: the real role, action plugin, Ansible, pywinrm and WinRM.

The twins are the lab's compromised disks reached with the seeded rb-admin secret; the
module runs as its lab twin behind the real WinRM listener. Round trips are the lab's own
WS-Man request counts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rebuild.lab.fleet import state_db
from rebuild.lab.state import StateStore, TwinState

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SERVER, PC = "ARL-URG01", "ARL-URG-0001"
MANUAL = {"GHAL-DEF-002"}  # tamper protection: no local way to switch it on


def _playbook(tmp: Path, hosts: str, extra: str = "") -> Path:
    p = tmp / "harden.yml"
    p.write_text(
        f"- hosts: {hosts}\n  gather_facts: false\n  vars:\n    harden__fail_on_manual: false\n"
        f"    harden__reboot: false\n{extra}  roles: [{{role: harden}}]\n",
        encoding="utf-8",
    )
    return p


def _run(lab: Any, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **lab.env,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _state(lab: Any, host: str) -> TwinState:
    store = StateStore(state_db(lab.lab_dir))
    try:
        found = store.get(host)
        assert found is not None
        return found
    finally:
        store.close()


def _harden_results(stdout: str) -> dict[str, dict[str, Any]]:
    import json

    out = json.loads(stdout[stdout.index("{") :])
    for play in out["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].endswith("harden | apply baseline (one module call)"):
                return task["hosts"]
    raise AssertionError("no harden task in the output")


def test_role_hardens_compromised_twins_in_one_call_then_is_idempotent(lab: Any, tmp_path: Path) -> None:
    lab.power_on_pcs()  # compromised PCs running, as found before any wipe
    inventory = lab.inventory("arlon")
    playbook = _playbook(tmp_path, f"{SERVER}:{PC}")
    before_requests = lab.client.requests()
    first = _run(lab, ["ansible-playbook", "-i", str(inventory), str(playbook)])
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    results = _harden_results(first.stdout)
    for host in (SERVER, PC):
        res = results[host]
        assert res["changed"] is True
        statuses = res["summary"]["controls"]
        bad = {
            c: s
            for c, s in statuses.items()
            if c not in MANUAL and s not in ("fixed", "compliant", "not_applicable")
        }
        assert not bad, bad
        assert statuses["GHAL-DEF-002"] == "failed"
    # One module call per host: a module call is a handful of WS-Man requests
    # (create shell, command, send, receive..., delete) - far from one per setting.
    after = lab.client.requests()
    per_host = {h: after.get(h, 0) - before_requests.get(h, 0) for h in (SERVER, PC)}
    print("round trips per host:", per_host)
    assert all(0 < n <= 30 for n in per_host.values()), per_host
    state = _state(lab, SERVER)
    assert state.features["SMB1Protocol"] is False
    assert (
        "HelpDeskAdm" not in state.groups["Administrators"] and "rb-admin" in state.groups["Administrators"]
    )

    second = _run(lab, ["ansible-playbook", "-i", str(inventory), str(playbook)])
    assert second.returncode == 0, second.stdout[-3000:]
    for host, res in _harden_results(second.stdout).items():
        assert res["changed"] is False, (host, [c["id"] for c in res["controls"] if c["changed"]])


def test_check_mode_changes_nothing_and_reports_noncompliant(lab: Any, tmp_path: Path) -> None:
    lab.power_on_pcs()  # compromised PCs running, as found before any wipe
    before = _state(lab, PC)
    playbook = _playbook(tmp_path, PC, "    rebuild_harden_check_mode: true\n")
    run = _run(lab, ["ansible-playbook", "-i", str(lab.inventory("arlon")), str(playbook)])
    assert run.returncode == 0, run.stdout[-3000:]
    res = _harden_results(run.stdout)[PC]
    assert res["report"]["mode"] == "audit"
    statuses = res["summary"]["controls"]
    assert {"GHAL-NET-001", "GHAL-CRED-002", "GHAL-ACC-002", "GHAL-PER-001"} <= {
        c for c, s in statuses.items() if s == "noncompliant"
    }
    after = _state(lab, PC)
    for field in (
        "registry",
        "services",
        "features",
        "firewall",
        "users",
        "groups",
        "tasks",
        "audit_policy",
        "user_rights",
        "security_policy",
        "defender",
    ):
        assert getattr(after, field) == getattr(before, field), field


def test_audit_command_reports_a_whole_site_without_change(lab: Any, tmp_path: Path) -> None:
    lab.power_on_pcs()  # compromised PCs running, as found before any wipe
    before = {h: _state(lab, h).to_json() for h in (SERVER, PC)}
    env = {
        **os.environ,
        **lab.env,
        "REBUILD_STATE_DIR": str(lab.state_dir),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rebuild",
            "harden",
            "audit",
            "arlon",
            "--inventory",
            str(lab.inventory("arlon")),
            "--state-dir",
            str(lab.state_dir),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"{SERVER}: " in run.stdout and "noncompliant" in run.stdout
    text_path = Path(run.stdout.split("report: ")[1].split()[0])
    assert text_path.read_text(encoding="utf-8").count("GHAL-NET-001") >= 2
    assert text_path.with_suffix(".html").exists()
    for h in (SERVER, PC):
        after = _state(lab, h)
        assert after.registry == TwinState.from_json(before[h]).registry
        assert after.services == TwinState.from_json(before[h]).services


def test_pending_reboot_settings_get_a_restart_then_are_in_force(lab: Any, tmp_path: Path) -> None:
    lab.power_on_pcs()  # compromised PCs running, as found before any wipe
    p = tmp_path / "reboot.yml"
    p.write_text(
        f"- hosts: {SERVER}\n  gather_facts: false\n  vars:\n    harden__fail_on_manual: false\n"
        "    harden__reboot: true\n    harden__reboot_timeout: 300\n  roles: [{role: harden}]\n",
        encoding="utf-8",
    )
    run = _run(lab, ["ansible-playbook", "-i", str(lab.inventory("arlon")), str(p)])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    res = _harden_results(run.stdout)[SERVER]
    assert {"GHAL-CRED-003", "GHAL-CRED-004"} <= set(res["report"]["pending_reboot"])
    import json

    out = json.loads(run.stdout[run.stdout.index("{") :])
    done = next(
        t for t in out["plays"][0]["tasks"] if t["task"]["name"].endswith("rebuild phase | harden | done")
    )
    msg = done["hosts"][SERVER]["facts"]
    assert msg["pending_reboot"] == []  # restarted: nothing waits any more
    assert msg["after_reboot"]["pending_reboot"] == []
    assert all(
        s in ("compliant", "not_applicable") or c in MANUAL
        for c, s in msg["after_reboot"]["controls"].items()
    )
    assert any("boot" in e["event"] or "reboot" in e["event"] for e in _state(lab, SERVER).history)
