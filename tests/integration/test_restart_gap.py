"""The deferred restart on a resumed redeploy (docs/site-run.md, Limits): a rehearsal of two PCs
whose domain join's restart is refused once (lab fault `restart_refused_once`: shutdown.exe exits
"Access is denied.(5)", nothing restarts). Harden deferred its restart to that one, so both hosts
fail in redeploy with harden's restart-bound settings (LSA protection, Credential Guard) written
but not in effect, and harden's volatile pending-restart key on the host.

The rerun resumes at redeploy, where the join is already done and asks for no restart:
- today's redeploy reads the key, restarts once, and the host verifies;
- the redeploy before this fix (its restart condition as it was, rebuilt from today's role in a
  copy of the playbook) does not restart, and verification holds the host back as
  `restart_pending`, its only failing check: without that check it would have been verified.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rebuild.journal import Journal, Phase
from rebuild.tiers import PROJECT_ROOT

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]

FIXED, OLD = "ARL-URG-0001", "ARL-URG-0002"  # Windows 11 PCs, joined to the domain
PENDING_KEY = "HKLM:\\SOFTWARE\\GHAL\\Rebuild\\Harden\\RestartPending"
RESTART_CHECK = "test_restart_bound_hardening_in_effect"
WHY = "restart gap test: no directory server in it"


def _old_flow_playbook(directory: Path) -> Path:
    """playbooks/site.yml with a redeploy role whose restart condition is the one before the fix:
    the join's restart or harden's deferred one of this run, no read of harden's key."""
    shutil.copy(PROJECT_ROOT / "playbooks" / "site.yml", directory / "site.yml")
    role = directory / "roles" / "redeploy"  # the playbook's own roles/ wins over roles_path
    shutil.copytree(PROJECT_ROOT / "roles" / "redeploy", role)
    main = role / "tasks" / "main.yml"
    text = main.read_text(encoding="utf-8")
    start = text.index("# A restart is planned where")
    end = text.index("# One restart serves the join")
    old = text[:start] + text[end:]
    new_condition = "when: redeploy__harden_pending is skipped or redeploy__harden_pending.exists"
    old_condition = (
        "when: (redeploy__join is changed and (redeploy__join.reboot_required | default(false)))"
        " or (redeploy__restart_pending | bool)"
    )
    assert "redeploy__harden_pending" in text[start:end] and new_condition in old
    old = old.replace(new_condition, old_condition)
    assert "RestartPending" not in old and "redeploy__harden_pending" not in old
    main.write_text(old, encoding="utf-8")
    return directory / "site.yml"


def _run(lab: Any, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env={**os.environ, **lab.env}, capture_output=True, text=True, timeout=800, check=False
    )


def _rerun_argv(argv: list[str], host: str, playbook: Path | None = None) -> list[str]:
    """The same `rebuild site` command continuing the journal, for one host."""
    out = [a for a in argv if a != "--new-journal"]
    out[out.index("--limit") + 1] = host
    return out + (["--playbook", str(playbook)] if playbook else [])


def _events(twin: dict[str, Any]) -> list[str]:
    return [str(e.get("event")) for e in twin.get("history", [])]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import _running_lab, rehearsal_site_argv

    base = tmp_path_factory.mktemp("restart-gap")
    with _running_lab(base / "lab", site="arlon") as lab:
        for host in (FIXED, OLD):
            lab.client.set_fault(host, "restart_refused_once")
        argv = rehearsal_site_argv(lab, [FIXED, OLD], WHY)
        first = _run(lab, argv)
        with Journal.in_state_dir(lab.state_dir) as j:
            after_first = {h: j.host(h) for h in (FIXED, OLD)}
        twins_after_first = {h: lab.client.twin(h) for h in (FIXED, OLD)}
        (base / "old").mkdir()
        old = _run(lab, _rerun_argv(argv, OLD, _old_flow_playbook(base / "old")))
        fixed = _run(lab, _rerun_argv(argv, FIXED))
        yield lab, first, after_first, twins_after_first, old, fixed


def test_first_run_fails_both_hosts_in_redeploy_at_the_refused_restart(runs):
    _lab, first, after_first, twins, _old, _fixed = runs
    for host in (FIXED, OLD):
        record = after_first[host]
        assert record.phase is Phase.FAILED, first.stdout[-3000:] + first.stderr[-2000:]
        assert record.failed_phase == "redeploy", record.reason
        assert record.results["harden"]["restart_deferred"] is True
        twin = twins[host]
        assert twin["domain_joined"] is True
        assert "restart_refused" in _events(twin) and "reboot" not in _events(twin)
        assert PENDING_KEY in twin["registry"]  # LSA protection / Credential Guard not in effect yet
        assert twin["registry"]["HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa"]["RunAsPPL"] == 1


def test_rerun_resumes_at_redeploy_restarts_once_and_verifies(runs):
    lab, _first, after_first, twins, _old, fixed = runs
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(FIXED)
        rerun = [t for t in j.transitions(FIXED) if t.at > after_first[FIXED].updated_at]
    assert host.phase is Phase.VERIFIED, fixed.stdout[-3000:] + fixed.stderr[-2000:]
    assert rerun[0].from_phase is Phase.FAILED and rerun[0].to_phase is Phase.REDEPLOYING
    assert not any(t.to_phase in (Phase.REIMAGING, Phase.HARDENING) for t in rerun)
    twin = lab.client.twin(FIXED)
    before = len(twins[FIXED]["history"])
    assert _events(twin)[before:].count("reboot") == 1  # one restart, in the rerun's redeploy
    assert PENDING_KEY not in twin["registry"]  # Windows discarded the volatile key at the restart
    assert host.results["verify"]["conditions"] == []


def test_the_redeploy_before_the_fix_leaves_the_host_held_back_by_restart_pending(runs):
    lab, _first, _after_first, twins, old, _fixed = runs
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(OLD)
    assert host.phase is Phase.QUARANTINED, old.stdout[-3000:] + old.stderr[-2000:]
    verify = host.results["verify"]
    assert verify["conditions"] == ["restart_pending"]
    failed = verify["failed_checks"]
    assert [c["check"] for c in failed] == [RESTART_CHECK]  # everything else passed
    assert failed[0]["message"].startswith(
        "restart-bound hardening not in effect: the host has not restarted since harden set GHAL-"
    )
    assert "held back by restart_pending" in host.reason
    assert "promote" not in host.results
    twin = lab.client.twin(OLD)
    assert "reboot" not in _events(twin)[len(twins[OLD]["history"]) :]
    assert PENDING_KEY in twin["registry"]


def test_report_counts_the_held_back_host_in_its_own_column(runs, tmp_path):
    lab, *_ = runs
    from conftest import service_report

    emergency, html = service_report(lab, tmp_path / "report", "emergency")
    assert (emergency["back"], emergency["held_back_restart_pending"]) == ("1", "1")
    assert "Held back: hardening waits for a restart" in html
