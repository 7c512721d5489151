"""Patch level on the lab: a twin below the catalogue's minimum is brought up to it after install
and verifies; the same twin whose update fails is held back by `patch_level`, not promoted, and the
report counts it in its own column.

The patch catalogue of the run (REBUILD_DATA_DIR, a copy of the project data) asks Windows 11 23H2
for one UBR above the image's and offers one SIMULATED update package on the lab's deployment share.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rebuild.journal import Journal, Phase
from rebuild.lab.exec.modules.updates import simulated_msu
from rebuild.tiers import PROJECT_ROOT

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]

UPDATED, FAILING = "ARL-URG-0002", "ARL-URG-0001"  # Windows 11 23H2 PCs, image UBR 4460
PACKAGE = "updates/windows11.0-kb5999001-x64.msu"


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import _running_lab, rehearsal_site_argv

    base = tmp_path_factory.mktemp("patch-lab")
    data = base / "data"
    shutil.copytree(PROJECT_ROOT / "inventories" / "data", data)
    package = simulated_msu("KB5999001", "22631", 4461)
    catalogue = yaml.safe_load((data / "patch_levels.yml").read_text())
    catalogue["repository"] = yaml.safe_load((data / "applications.yml").read_text())["repository"]
    catalogue["os"]["windows-11-23h2"].update(
        minimum_ubr=4461,
        packages=[
            {"kb": "KB5999001", "file": PACKAGE, "sha256": hashlib.sha256(package).hexdigest(), "ubr": 4461}
        ],
    )
    (data / "patch_levels.yml").write_text(yaml.safe_dump(catalogue))
    with _running_lab(base / "lab", site="arlon") as lab:
        share = lab.lab_dir / "installers" / PACKAGE
        share.parent.mkdir(parents=True, exist_ok=True)
        share.write_bytes(package)
        lab.client.set_fault(FAILING, "update_fails")
        env = {**os.environ, **lab.env, "REBUILD_DATA_DIR": str(data)}
        proc = subprocess.run(
            rehearsal_site_argv(lab, [UPDATED, FAILING], "patch level test: the directory is not part of it"),
            env=env,
            capture_output=True,
            text=True,
            timeout=800,
        )
        yield lab, proc


def test_twin_brought_up_to_the_minimum_verifies(rehearsal):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(UPDATED)
    assert host.phase is Phase.VERIFIED, proc.stdout[-3000:] + proc.stderr[-2000:]
    level = host.results["redeploy"]["patch_level"]
    assert (level["before"], level["after"], level["minimum"]) == ("22631.4460", "22631.4461", "22631.4461")
    assert level["installed"] == ["KB5999001"]
    assert host.results["promote"]["status"] == "promoted"


def test_twin_whose_update_fails_is_held_back_by_patch_level(rehearsal, tmp_path):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(FAILING)
    assert host.phase is Phase.QUARANTINED, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert host.results["verify"]["conditions"] == ["patch_level"]
    assert "held back by patch_level" in host.reason and "22631.4460" in host.reason
    assert "promote" not in host.results
    assert host.results["redeploy"]["patch_level"]["after"] == "22631.4460"
    from conftest import service_report

    emergency, html = service_report(lab, tmp_path / "report", "emergency")
    assert (emergency["back"], emergency["quarantined"], emergency["held_back_patch_level"]) == (
        "1",
        "1",
        "1",
    )
    assert "below patch level" in html
