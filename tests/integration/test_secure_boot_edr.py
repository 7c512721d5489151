"""Secure Boot and EDR onboarding on the lab, in one few-PC run: a PC whose firmware has Secure
Boot off is held back by `secure_boot`, one whose EDR agent installed but did not onboard is held
back by `edr_onboarded`; neither is promoted and the report counts each in its own column. A PC
whose db trusts only the 2011 CAs is reported (a skipped check naming it) and promoted, because the
run's policy says the 2023 CA is only reported for workstations; its EDR agent onboarded.

The Secure Boot policy of the run (REBUILD_DATA_DIR, a copy of the project data) sets
`kinds.workstation.uefi_ca_2023: reported`; the faults are the lab's (rebuild/lab/firmware.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rebuild.journal import Journal, Phase
from rebuild.tiers import PROJECT_ROOT

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]

OFF, OLD_DB, NOT_ONBOARDED = "ARL-URG-0001", "ARL-URG-0002", "ARL-URG-0003"  # emergency PCs


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import _running_lab, rehearsal_site_argv

    base = tmp_path_factory.mktemp("secure-boot-lab")
    data = base / "data"
    shutil.copytree(Path(os.environ.get("REBUILD_DATA_DIR") or PROJECT_ROOT / "inventories" / "data"), data)
    policy = yaml.safe_load((data / "secure_boot.yml").read_text())
    policy["kinds"] = {"workstation": {"uefi_ca_2023": "reported"}}
    (data / "secure_boot.yml").write_text(yaml.safe_dump(policy))
    with _running_lab(base / "lab", site="arlon") as lab:
        lab.client.set_fault(OFF, "secure_boot_off")
        lab.client.set_fault(OLD_DB, "db_2011_only")
        lab.client.set_fault(NOT_ONBOARDED, "edr_not_onboarded")
        env = {**os.environ, **lab.env, "REBUILD_DATA_DIR": str(data)}
        proc = subprocess.run(
            rehearsal_site_argv(lab, [OFF, OLD_DB, NOT_ONBOARDED], "secure boot and EDR test: no directory"),
            env=env,
            capture_output=True,
            text=True,
            timeout=800,
        )
        yield lab, proc


def test_secure_boot_off_is_held_back_and_counted(rehearsal, tmp_path):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(OFF)
    assert host.phase is Phase.QUARANTINED, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert host.results["verify"]["conditions"] == ["secure_boot"]
    assert "held back by secure_boot" in host.reason and "Secure Boot off" in host.reason
    assert "promote" not in host.results
    from conftest import service_report

    emergency, html = service_report(lab, tmp_path / "report", "emergency")
    counts = (emergency["back"], emergency["quarantined"], emergency["held_back_secure_boot"])
    assert counts == ("1", "2", "1")
    assert (emergency["held_back_edr_onboarded"], emergency["held_back_patch_level"]) == ("1", "0")
    assert "Held back: Secure Boot off or 2011 CAs only" in html and "Held back: EDR not onboarded" in html


def test_edr_installed_but_not_onboarded_is_held_back(rehearsal):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(NOT_ONBOARDED)
    assert host.phase is Phase.QUARANTINED, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert host.results["verify"]["conditions"] == ["edr_onboarded"]
    assert "held back by edr_onboarded" in host.reason
    assert "edr-agent: not onboarded" in host.reason and "HarfangSensor not running" in host.reason
    assert "promote" not in host.results


def test_a_db_without_the_2023_ca_is_reported_when_the_policy_only_reports_it(rehearsal):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(OLD_DB)
    assert host.phase is Phase.VERIFIED, proc.stdout[-3000:] + proc.stderr[-2000:]
    skipped = {c["check"]: c["message"] for c in host.results["verify"]["skipped_checks"]}
    assert "does not trust the Windows UEFI CA 2023" in skipped["test_uefi_ca_2023"]
    assert host.results["promote"]["status"] == "promoted"
