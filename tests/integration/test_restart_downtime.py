"""A restart takes time (docs/lab-windows-rules.md, "A restart takes time"): a rehearsal of one PC
in a lab whose restarting twins refuse WinRM for 4 s, longer than win_reboot's first back-off
after the roles' post_reboot_delay, so the domain join's restart must be waited out as on a real
host (connections refused, retried with back-off until the new boot time answers).

The PC is verified; the join's restart went through the downtime: the twin's WinRM stopped after
the restart notice and listened again 4 s later, and nothing ran on it in between.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rebuild.journal import Journal, Phase

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]

HOST = "ARL-URG-0001"  # a Windows 11 PC, joined to the domain
DOWNTIME = 4.0
WHY = "restart downtime test: no directory server in it"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import _running_lab, rehearsal_site_argv

    base = tmp_path_factory.mktemp("restart-downtime")
    with _running_lab(base / "lab", site="arlon", restart_seconds=DOWNTIME) as lab:
        done = subprocess.run(
            rehearsal_site_argv(lab, [HOST], WHY),
            env={**os.environ, **lab.env},
            capture_output=True,
            text=True,
            timeout=800,
            check=False,
        )
        with Journal.in_state_dir(lab.state_dir) as journal:
            record = journal.host(HOST)
        yield done, record, lab.client.twin(HOST)


def _after(history: list[dict[str, Any]], event: str, start: int = 0) -> int:
    return next(i for i in range(start, len(history)) if history[i].get("event") == event)


def test_the_join_restart_waits_out_the_downtime_and_the_host_is_verified(run):
    done, record, twin = run
    assert record.phase is Phase.VERIFIED, done.stdout[-3000:] + done.stderr[-2000:]
    history = twin["history"]
    joined = _after(history, "domain_joined")
    reboot = _after(history, "reboot", joined)
    stopped = _after(history, "winrm_stopped", reboot)
    listening = _after(history, "winrm_listening", stopped)
    assert history[reboot]["at"] + history[reboot]["delay"] <= history[stopped]["at"] + 0.1
    assert history[listening]["at"] - history[stopped]["at"] >= DOWNTIME - 0.1
    # Nothing ran on the twin while it was down; the restart's after-work ran once it was back.
    assert not [e for e in history[stopped + 1 : listening] if e.get("event") == "module"]
    assert any(e.get("event") == "module" for e in history[listening + 1 :])
    assert [e.get("event") for e in history].count("reboot") == 1  # one restart: harden's deferred to it
