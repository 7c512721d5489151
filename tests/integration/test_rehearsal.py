"""The README's main command, end to end: `scripts/rehearse.sh` rebuilds a site of the SIMULATED
lab and writes the crisis-cell report. Run here on the small register's Arlon (27 machines)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from rebuild.journal import Journal

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "inventories" / "example" / "register-small.csv"


def test_rehearse_script_rebuilds_the_site_and_reports_it(tmp_path: Path, lab_prefix: str) -> None:
    lab_dir = tmp_path / "lab"
    run = subprocess.run(
        [
            str(ROOT / "scripts" / "rehearse.sh"),
            "arlon",
            "--register",
            str(SMALL),
            "--lab-dir",
            str(lab_dir),
            "--address-prefix",
            lab_prefix,
            "--imaging-seconds",
            "1",
            "--stop-lab",
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("REBUILD_")},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "SIMULATED" in run.stdout and ": completed" in run.stdout

    state_dir = lab_dir / "state"
    journal = Journal.in_state_dir(state_dir)
    phases = {h.name: h.phase for h in journal.hosts("arlon")}
    assert len(phases) == 27 and set(phases.values()) == {"verified"}, phases

    report = json.loads((state_dir / "reports" / "report-arlon.json").read_text())
    assert report["simulated"] is True
    arlon = report["sites"]["arlon"]
    assert arlon["total"] == 27 and arlon["back"] == 27 and arlon["failed"] == 0 and arlon["quarantined"] == 0
    html = (state_dir / "reports" / "report-arlon.html").read_text()
    assert "SIMULATED" in html and "emergency" in html
    # --stop-lab: nothing of the rehearsal keeps running.
    assert not (lab_dir / "daemon.json").exists()
