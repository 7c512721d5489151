"""Issue 11 item 5: `rebuild site --dry-run` on a fresh state folder renders every file without any
host credential, and says only what it rendered. No lab: a dry run talks to no host, so the
register's real (unreachable) addresses are enough."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rebuild.cli import main
from rebuild.journal import Journal, Phase
from rebuild.register import SMALL_REGISTER

pytestmark = pytest.mark.slow

HOSTS = ("BAS-DC01", "BAS-URG-0001", "BAS-URG-0002")


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    out = tmp_path / "hospital"
    assert main(["inventory", "build", str(SMALL_REGISTER), "--out", str(out), "--site", "bastogne"]) == 0
    return out / "bastogne.yml"


def _dry_run(inventory: Path, state: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REBUILD_")}  # no key file
    env["REBUILD_STATE_DIR"] = str(state)  # the default; ./state is the test's (cwd): no other journal
    return subprocess.run(
        [sys.executable, "-m", "rebuild", "site", "bastogne", "--inventory", str(inventory),
         "--new-journal", "--dry-run", "--limit", ",".join(HOSTS)],
        cwd=state.parent, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _run_dir(state: Path) -> Path:
    (run,) = [p for p in (state / "runs").iterdir() if p.is_dir()]
    return run


def test_a_dry_run_on_a_fresh_state_folder_renders_every_file_without_a_credential(
    inventory: Path, tmp_path: Path
) -> None:
    state = tmp_path / "fresh-state"
    proc = _dry_run(inventory, state)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    boot = _run_dir(state) / "boot"
    assert len(list(boot.glob("mac-*.ipxe"))) == len(HOSTS)
    answers = list((boot / "unattend").glob("*.xml"))
    assert len(answers) == len(HOSTS)
    assert all("DRY-RUN-NO-SECRET" in a.read_text(encoding="utf-8") for a in answers)
    assert f"rendered {len(HOSTS)} boot entries and {len(HOSTS)} answer files" in proc.stdout
    assert not (state / "secrets").exists() and not (state / "vault-password").exists()  # no credential
    with Journal.in_state_dir(state) as journal:
        assert {h.phase for h in journal.hosts("bastogne")} == {Phase.PENDING}
        assert journal.runs()[-1].status == "dry-run"


def test_a_dry_run_says_what_it_did_not_render(inventory: Path, tmp_path: Path) -> None:
    text = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    hosts: dict[str, Any] = text["all"]["children"]["site_bastogne"]["hosts"]
    hosts["BAS-URG-0002"]["rebuild_mac"] = "not-a-mac"  # its boot entry cannot be rendered
    inventory.write_text(yaml.safe_dump(text), encoding="utf-8")
    state = tmp_path / "fresh-state"
    proc = _dry_run(inventory, state)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]  # done, some hosts failed
    assert "not rendered: BAS-URG-0002" in proc.stdout
    assert f"rendered {len(HOSTS) - 1} boot entries" in proc.stdout
    assert "rendered into" not in proc.stdout
    assert len(list((_run_dir(state) / "boot").glob("mac-*.ipxe"))) == len(HOSTS) - 1
