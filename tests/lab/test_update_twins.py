"""win_get_url and win_hotfix twins (rebuild/lab/exec/modules/updates.py): the rules of
ansible.windows' own modules, and a twin's UBR raised only by a package that applies."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_exec import run_module
from twins import SERVER, two_twin_lab

from rebuild.applications import load_catalogue
from rebuild.lab.context import Lab
from rebuild.lab.exec.modules.updates import CURRENT_VERSION, simulated_msu
from rebuild.lab.exec.winenv import DIRECTORY
from rebuild.lab.state import TwinState

STAGING = "C:\\Windows\\Temp\\rebuild-updates"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with two_twin_lab(tmp_path, "Pre-incident-Pa55!") as lab:
        yield lab


def _level(lab: Lab) -> tuple[str, int]:
    values = lab.state(SERVER.name).registry[CURRENT_VERSION]
    return str(values["CurrentBuildNumber"]), int(values["UBR"])


def _publish(lab: Lab, name: str, data: bytes) -> tuple[str, str]:
    path = lab.config.lab_dir / "installers" / "updates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"{load_catalogue().repository}/updates/{name}", hashlib.sha256(data).hexdigest()


def _staging(lab: Lab) -> None:
    def mkdir(s: TwinState) -> None:
        s.files[STAGING] = DIRECTORY

    lab.update(SERVER.name, mkdir)


def _download(lab: Lab, url: str, sha: str, name: str = "u.msu") -> tuple[int, dict[str, Any]]:
    args = {"url": url, "dest": f"{STAGING}\\{name}", "checksum": sha, "checksum_algorithm": "sha256"}
    return run_module(lab, "ansible.windows.win_get_url", args)


def test_update_applied_raises_the_ubr(lab: Lab) -> None:
    build, ubr = _level(lab)
    url, sha = _publish(lab, "u.msu", simulated_msu("KB5999001", build, ubr + 7))
    _staging(lab)
    rc, result = _download(lab, url, sha)
    assert rc == 0 and result["checksum_dest"] == sha
    rc, result = run_module(
        lab, "ansible.windows.win_hotfix", {"hotfix_kb": "KB5999001", "source": f"{STAGING}\\u.msu"}
    )
    assert rc == 0 and result["changed"] is True and result["reboot_required"] is True
    assert _level(lab) == (build, ubr + 7)
    rc, again = run_module(lab, "ansible.windows.win_hotfix", {"source": f"{STAGING}\\u.msu"})
    assert rc == 0 and again["changed"] is False  # installed: left alone


def test_download_without_the_destination_folder_fails(lab: Lab) -> None:
    build, ubr = _level(lab)
    url, sha = _publish(lab, "u.msu", simulated_msu("KB5999001", build, ubr + 1))
    rc, result = _download(lab, url, sha)
    assert rc == 1 and "Ensure download destination folder exists" in result["msg"]


def test_checksum_mismatch_keeps_nothing(lab: Lab) -> None:
    build, ubr = _level(lab)
    url, _ = _publish(lab, "u.msu", simulated_msu("KB5999001", build, ubr + 1))
    _staging(lab)
    rc, result = _download(lab, url, "0" * 64)
    assert rc == 1 and result["msg"].startswith(f"The checksum for {url} did not match")
    assert f"{STAGING}\\u.msu" not in lab.state(SERVER.name).files


def test_package_for_another_build_is_not_applicable(lab: Lab) -> None:
    _, ubr = _level(lab)
    url, sha = _publish(lab, "u.msu", simulated_msu("KB5999001", "10240", ubr + 1))
    _staging(lab)
    assert _download(lab, url, sha)[0] == 0
    rc, result = run_module(lab, "ansible.windows.win_hotfix", {"source": f"{STAGING}\\u.msu"})
    assert rc == 1 and result["msg"] == "hotfix package is not applicable for this server"
    assert _level(lab)[1] == ubr


def test_wrong_kb_and_update_fails_fault_leave_the_level(lab: Lab) -> None:
    build, ubr = _level(lab)
    url, sha = _publish(lab, "u.msu", simulated_msu("KB5999001", build, ubr + 1))
    _staging(lab)
    assert _download(lab, url, sha)[0] == 0
    source = f"{STAGING}\\u.msu"
    rc, result = run_module(lab, "ansible.windows.win_hotfix", {"hotfix_kb": "KB5000000", "source": source})
    assert rc == 1 and "does not match with the source msu KB KB5999001" in result["msg"]
    lab.faults[SERVER.name] = {"update_fails": {}}
    rc, result = run_module(lab, "ansible.windows.win_hotfix", {"source": source})
    assert rc == 1 and result["msg"].startswith(f"failed to add windows package from path {source}")
    assert _level(lab) == (build, ubr)


def test_download_from_elsewhere_is_not_simulated(lab: Lab) -> None:
    _staging(lab)
    rc, result = _download(lab, "https://catalog.update.microsoft.com/x.msu", "0" * 64)
    assert rc == 1 and "does not simulate downloads" in result["msg"]
