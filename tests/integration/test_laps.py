"""Windows LAPS on the lab (issue 14 item 2): a rehearsal of a domain controller and two emergency
PCs, one whose directory
refuses the new LAPS password (lab fault `laps_rotation_fails`). Both join the domain; redeploy
applies the LAPS policy and forces a rotation of the built-in Administrator's password. The PC
whose rotation is confirmed verifies and is promoted, reached as rb-admin until then: verify's last
host task disables rb-admin and the controller deletes its rebuild secret (journal `rebuild_secret`
retired). The other is held back by condition `laps`, named in the journal and counted in the
report, and keeps rb-admin and its secret (never retired before verification). The domain
controller, which Windows LAPS does not manage, verifies and keeps both; the journal says why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rebuild.journal import Journal, Phase
from rebuild.lab import directory
from rebuild.lab.auth import GP_STATE_KEY

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]

ROTATED, REFUSED = "ARL-URG-0001", "ARL-URG-0002"  # Windows 11 23H2 PCs
DC = "ARL-DC02"  # a domain controller (virtual): Windows LAPS does not manage it (laps.yml services)
KEPT = "ARL-URG-0003"  # LAPS-managed, but the inventory keeps its rebuild secret (host_vars)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import _running_lab, rehearsal_site_argv

    base = tmp_path_factory.mktemp("laps-lab")
    with _running_lab(base / "lab", site="arlon") as lab:
        lab.client.set_fault(REFUSED, "laps_rotation_fails")
        host_vars = lab.inventory("arlon").parent / "host_vars"
        host_vars.mkdir(exist_ok=True)
        (host_vars / f"{KEPT}.yml").write_text("rebuild_retire_rebuild_secret: false\n")
        proc = subprocess.run(
            rehearsal_site_argv(lab, [DC, ROTATED, REFUSED, KEPT], "LAPS test: no directory server in it"),
            env={**os.environ, **lab.env},
            capture_output=True,
            text=True,
            timeout=800,
        )
        yield lab, proc


def _events(twin: dict[str, object]) -> list[int]:
    laps = twin.get("laps") or {}
    assert isinstance(laps, dict)
    return [int(e["id"]) for e in laps.get("events", [])]


def test_joined_pc_is_laps_managed_rotated_and_verified(rehearsal):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(ROTATED)
    assert host.phase is Phase.VERIFIED, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert host.results["redeploy"]["laps"]["managed"] is True
    assert host.results["redeploy"]["laps"]["rotation"] == "confirmed by the LAPS event log"
    twin = lab.client.twin(ROTATED)
    assert {10018, 10020} <= set(_events(twin))
    assert twin["laps"]["managed_account"] == "ghal-localadm"  # the built-in Administrator, renamed
    assert directory.laps_expiration(directory.load(lab.lab_dir), ROTATED) is not None
    assert host.results["promote"]["status"] == "promoted"


def test_verified_pc_says_in_the_journal_which_ou_its_computer_object_is_in(rehearsal):
    """The verify done marker's computer_ou: the lab's inventory configures no production OU, so
    the object stays in the staging OU redeploy joined it to, where the twin's own Group Policy
    state puts it; the directory team reads that from the journal, not from a log line."""
    lab, _ = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        where = j.host(ROTATED).results["verify"]["computer_ou"]
    assert where["moved"] is False
    assert where["ou"].startswith("OU=Rebuild Staging,"), where
    assert "staging OU" in where["note"]
    computer_dn = lab.client.twin(ROTATED)["registry"][GP_STATE_KEY]["Distinguished-Name"]
    assert computer_dn.lower().endswith("," + where["ou"].lower()), (computer_dn, where)


def test_pc_whose_rotation_is_refused_is_held_back_and_counted(rehearsal, tmp_path):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(REFUSED)
    assert host.phase is Phase.QUARANTINED, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert host.results["verify"]["conditions"] == ["laps"]
    assert "held back by laps" in host.reason and "no Windows LAPS rotation since the rebuild" in host.reason
    assert "promote" not in host.results
    assert host.results["redeploy"]["laps"]["rotation"].startswith("failed:")
    assert 10017 in _events(lab.client.twin(REFUSED))
    assert directory.laps_expiration(directory.load(lab.lab_dir), REFUSED) is None
    from conftest import service_report

    emergency, html = service_report(lab, tmp_path / "report", "emergency")
    assert (emergency["back"], emergency["held_back_laps"]) == ("2", "1")  # ROTATED and KEPT back
    assert "Held back: local admin not under Windows LAPS" in html


def test_verified_laps_managed_pc_has_its_rebuild_secret_retired(rehearsal, tmp_path):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(ROTATED)
    assert host.phase is Phase.VERIFIED, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert host.results["verify"]["rebuild_secret"]["disabled"] is True
    record = host.results["rebuild_secret"]
    assert record["status"] == "retired" and "rebuild secret retired" in record["reason"]
    assert "local_admin" in record["deleted"]
    assert lab.client.twin(ROTATED)["users"]["rb-admin"]["enabled"] is False
    store = lab.store()
    assert store.get(ROTATED) is None and store.get(ROTATED, "local_admin_bootstrap") is None
    assert not list((lab.state_dir / "secrets").glob(f"{ROTATED}.local_admin.*"))  # no temp left
    from conftest import service_report

    emergency, _html = service_report(lab, tmp_path / "report", "emergency")
    assert (emergency["rebuild_secret_retired"], emergency["rebuild_secret_kept"]) == ("1", "1")  # KEPT


def test_held_back_pc_keeps_rb_admin_and_its_secret(rehearsal):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(REFUSED)
    assert host.phase is Phase.QUARANTINED, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "rebuild_secret" not in host.results
    assert lab.client.twin(REFUSED)["users"]["rb-admin"]["enabled"] is True
    assert lab.store().get(REFUSED) is not None


def test_domain_controller_keeps_rb_admin_and_its_secret_and_says_why(rehearsal, tmp_path):
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(DC)
    assert host.phase is Phase.VERIFIED, proc.stdout[-3000:] + proc.stderr[-2000:]
    record = host.results["rebuild_secret"]
    assert record["status"] == "kept" and "Windows LAPS does not manage this host" in record["reason"]
    assert host.results["verify"]["rebuild_secret"]["disabled"] is False
    assert lab.client.twin(DC)["users"]["rb-admin"]["enabled"] is True
    assert lab.store().get(DC) is not None


def test_inventory_can_keep_the_rebuild_secret_of_a_laps_managed_host(rehearsal):
    """rebuild_retire_rebuild_secret: false (host_vars of the site inventory) keeps rb-admin and its
    secret on a verified, LAPS-rotated PC, and the journal says the inventory kept it."""
    lab, proc = rehearsal
    with Journal.in_state_dir(lab.state_dir) as j:
        host = j.host(KEPT)
    assert host.phase is Phase.VERIFIED, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert host.results["redeploy"]["laps"]["rotation"] == "confirmed by the LAPS event log"
    record = host.results["rebuild_secret"]
    assert record["status"] == "kept" and "rebuild_retire_rebuild_secret: false" in record["reason"]
    assert lab.client.twin(KEPT)["users"]["rb-admin"]["enabled"] is True
    assert lab.store().get(KEPT) is not None
