"""BitLocker on the lab (issue 14 item 3): a rehearsal of three emergency PCs, one without a TPM
(lab fault `no_tpm`), one whose directory refuses the recovery password (`escrow_refused`). The PC
with a TPM comes back encrypted with a TPM protector and a recovery password escrowed in the lab
directory, and verifies; the other two are held back by condition `bitlocker`, named in the journal
and counted in the report, and not promoted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rebuild.journal import Journal, Phase
from rebuild.lab import directory

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]

PROTECTED, NO_TPM, REFUSED = "ARL-URG-0002", "ARL-URG-0001", "ARL-URG-0003"  # Windows 11 23H2 PCs


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import _running_lab, rehearsal_site_argv

    base = tmp_path_factory.mktemp("bitlocker-lab")
    with _running_lab(base / "lab", site="arlon") as lab:
        lab.client.set_fault(NO_TPM, "no_tpm")
        lab.client.set_fault(REFUSED, "escrow_refused")
        proc = subprocess.run(
            rehearsal_site_argv(
                lab, [PROTECTED, NO_TPM, REFUSED], "BitLocker test: the directory is not part of it"
            ),
            env={**os.environ, **lab.env},
            capture_output=True,
            text=True,
            timeout=800,
        )
        yield lab, proc


def test_pc_with_a_tpm_is_encrypted_escrowed_and_verified(rehearsal):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(PROTECTED)
    assert host.phase is Phase.VERIFIED, proc.stdout[-3000:] + proc.stderr[-2000:]
    protectors = lab.client.twin(PROTECTED)["bitlocker"]["protectors"]
    assert sorted(p["type"] for p in protectors) == ["RecoveryPassword", "Tpm"]
    recovery = [p["id"] for p in protectors if p["type"] == "RecoveryPassword"]
    assert directory.escrowed_protector_ids(directory.load(lab.lab_dir), PROTECTED) == recovery
    assert all(p.get("password", "***") == "***" for p in protectors)  # the API hands out no password


def test_pc_without_a_tpm_is_held_back_by_bitlocker(rehearsal):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(NO_TPM)
    assert host.phase is Phase.QUARANTINED, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert host.results["verify"]["conditions"] == ["bitlocker"]
    assert "held back by bitlocker" in host.reason and "not BitLocker-protected" in host.reason
    assert "TPM present False, ready False" in host.reason
    assert "promote" not in host.results
    assert lab.client.twin(NO_TPM)["bitlocker"] == {}


def test_pc_whose_escrow_is_refused_is_held_back_and_counted(rehearsal, tmp_path):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(REFUSED)
    assert host.phase is Phase.QUARANTINED, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert host.results["verify"]["conditions"] == ["bitlocker"]
    assert "held back by bitlocker" in host.reason
    assert "recovery password not escrowed to Active Directory" in host.reason
    assert "promote" not in host.results
    assert sorted(p["type"] for p in lab.client.twin(REFUSED)["bitlocker"]["protectors"]) == [
        "RecoveryPassword",
        "Tpm",
    ]  # protected on the host, but its key is not in the directory
    assert directory.escrowed_protector_ids(directory.load(lab.lab_dir), REFUSED) == []
    from conftest import service_report

    emergency, html = service_report(lab, tmp_path / "report", "emergency")
    assert (emergency["back"], emergency["held_back_bitlocker"]) == ("1", "2")
    assert "Held back: not BitLocker-protected or key not escrowed" in html
