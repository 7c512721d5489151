"""Done-when: real ansible (winrm connection plugin, HTTPS, certificate validation) against a lab daemon."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest


def _ansible(lab: Any, lab_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **lab_env,
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_FORKS": "2",
    }
    return subprocess.run(
        ["ansible", "-i", str(lab.inventory("arlon")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )


def _results(proc: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    data = json.loads(proc.stdout[proc.stdout.index("{") :])
    return {
        host: res for play in data["plays"] for task in play["tasks"] for host, res in task["hosts"].items()
    }


@pytest.mark.timeout(300)
def test_win_ping_over_https_with_validation(lab: Any, lab_env: dict[str, str]) -> None:
    proc = _ansible(lab, lab_env, "-m", "ansible.windows.win_ping", "ARL-DHCP01")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = _results(proc)["ARL-DHCP01"]
    assert res["ping"] == "pong"


@pytest.mark.timeout(300)
def test_wrong_argument_fails_on_the_twin_as_on_windows(lab: Any, lab_env: dict[str, str]) -> None:
    proc = _ansible(
        lab,
        lab_env,
        "-m",
        "ansible.windows.win_service",
        "-a",
        "name=WinRM start_mode=automatic",
        "ARL-DHCP01",
    )
    assert proc.returncode != 0
    res = _results(proc)["ARL-DHCP01"]
    assert res["failed"] is True
    assert "value of start_mode must be one of: auto, delayed, disabled, manual" in res["msg"]


@pytest.mark.timeout(300)
def test_gather_facts_and_check_mode_through_ansible(lab: Any, lab_env: dict[str, str]) -> None:
    proc = _ansible(lab, lab_env, "-m", "ansible.windows.setup", "-a", "gather_subset=!all", "ARL-DHCP01")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    facts = _results(proc)["ARL-DHCP01"]["ansible_facts"]
    assert facts["ansible_os_family"] == "Windows"
    proc = _ansible(
        lab,
        lab_env,
        "--check",
        "-m",
        "ansible.windows.win_optional_feature",
        "-a",
        "name=SMB1Protocol state=absent",
        "ARL-DHCP01",
    )
    res = _results(proc)["ARL-DHCP01"]
    assert res["changed"] is True, res
    proc = _ansible(
        lab,
        lab_env,
        "-m",
        "ansible.windows.win_shell",
        "-a",
        "Get-WindowsOptionalFeature -Online -FeatureName SMB1Protocol | Select-Object -ExpandProperty State",
        "ARL-DHCP01",
    )
    res = _results(proc)["ARL-DHCP01"]
    assert res["stdout"].strip() == "Enabled", res  # check mode changed nothing


@pytest.mark.timeout(300)
def test_win_reboot_through_ansible(lab: Any, lab_env: dict[str, str]) -> None:
    proc = _ansible(
        lab, lab_env, "-m", "ansible.windows.win_reboot", "-a", "pre_reboot_delay=0", "ARL-DHCP01"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = _results(proc)["ARL-DHCP01"]
    assert res["rebooted"] is True and res["changed"] is True


@pytest.mark.timeout(300)
def test_fetch_a_file_from_a_twin(lab: Any, lab_env: dict[str, str], tmp_path: Any) -> None:
    """fetch = win_stat (module twin) + winrm_fetch_file.ps1 (executor script); checksums must agree."""
    dest = tmp_path / "note.txt"
    proc = _ansible(
        lab,
        lab_env,
        "-m",
        "ansible.builtin.fetch",
        "-a",
        f"src=C:\\Restore-My-Files.txt dest={dest} flat=yes",
        "ARL-DHCP01",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from rebuild.lab import images

    assert dest.read_bytes() == images.RANSOM_TEXT.encode("utf-8")
