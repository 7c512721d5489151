"""The data lookups (plugins/lookup/rebuild_bitlocker.py, rebuild_patch.py, rebuild_laps.py), loaded
by Ansible's own plugin loader and run in-process: their answer, and a wrong data file or key as an
error naming the lookup and the file, never a traceback."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleError
from ansible.plugins.loader import init_plugin_loader, lookup_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig

from rebuild.bitlocker import load_bitlocker_policy, redeploy_settings
from rebuild.tiers import PROJECT_ROOT

DATA = PROJECT_ROOT / "inventories" / "data"


@functools.cache
def _init_loader() -> None:
    if AnsibleCollectionConfig.collection_finder is None:  # once per process, as ansible-playbook does
        init_plugin_loader()
    lookup_loader.add_directory(str(PROJECT_ROOT / "plugins" / "lookup"))


def _lookup(name: str, terms: list[str], **options: Any) -> list[dict[str, Any]]:
    _init_loader()
    plugin = lookup_loader.get(name)
    assert plugin is not None, f"Ansible does not find the {name} lookup"
    result: list[dict[str, Any]] = plugin.run(terms, {}, **options)
    return result


def _catalogue(tmp_path: Path) -> Path:
    path = tmp_path / "patch_levels.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "max_image_age_days": 120,
                "update_timeout_minutes": 45,
                "repository": "https://deploy.example/updates/",
                "os": {
                    "windows-11-23h2": {
                        "build": "22631",
                        "minimum_ubr": 20,
                        "source": "offline",
                        "packages": [
                            {"kb": "KB5000001", "file": "w11/a.msu", "sha256": "a" * 64, "ubr": 10},
                            {"kb": "KB5000002", "file": "w11/b.msu", "sha256": "b" * 64, "ubr": 20},
                        ],
                    }
                },
            }
        )
    )
    return path


def test_patch_lookup_gives_the_level_and_the_packages_a_host_still_needs(tmp_path: Path) -> None:
    catalogue = str(_catalogue(tmp_path))
    [entry] = _lookup("rebuild_patch", ["windows-11-23h2"], catalogue=catalogue, ubr=10)
    assert entry == {
        "build": "22631",
        "minimum_ubr": 20,
        "source": "offline",
        "wsus_server": "",
        "repository": "https://deploy.example/updates/",
        "update_timeout_minutes": 45,
        "packages": [
            {
                "kb": "KB5000002",
                "url": "https://deploy.example/updates/w11/b.msu",
                "file": "b.msu",
                "sha256": "b" * 64,
                "ubr": 20,
            }
        ],
    }
    [every] = _lookup("rebuild_patch", ["windows-11-23h2"], catalogue=catalogue)
    assert [p["kb"] for p in every["packages"]] == ["KB5000001", "KB5000002"]


def test_patch_lookup_names_itself_the_file_and_the_unknown_os(tmp_path: Path) -> None:
    catalogue = _catalogue(tmp_path)
    with pytest.raises(AnsibleError) as raised:
        _lookup("rebuild_patch", ["windows-7"], catalogue=str(catalogue))
    message = str(raised.value)
    assert message.startswith("rebuild_patch: ") and "'windows-7'" in message and str(catalogue) in message
    catalogue.write_text("os: [not, a, mapping\n")
    with pytest.raises(AnsibleError, match=r"^rebuild_patch: .*patch_levels\.yml"):
        _lookup("rebuild_patch", ["windows-11-23h2"], catalogue=str(catalogue))


def test_bitlocker_lookup_gives_the_policy_for_the_host() -> None:
    entries = _lookup("rebuild_bitlocker", ["workstation", "server"], service="imaging")
    policy = load_bitlocker_policy()
    assert entries == [
        redeploy_settings(policy, "workstation", "imaging"),
        redeploy_settings(policy, "server", "imaging"),
    ]
    assert entries[1]["required"] is False and "PXE-boot" in entries[1]["reason"]


def test_bitlocker_lookup_names_itself_and_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(AnsibleError, match=r"^rebuild_bitlocker: .*host kind 'toaster'"):
        _lookup("rebuild_bitlocker", ["toaster"], service="radiology")
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    (data / "bitlocker.yml").write_text("encryption_method: Rot13\n")
    with pytest.raises(AnsibleError, match=r"^rebuild_bitlocker: .*bitlocker\.yml"):
        _lookup("rebuild_bitlocker", ["workstation"], service="radiology", data_dir=str(data))


def test_laps_lookup_says_who_windows_laps_manages() -> None:
    pc, dc = _lookup("rebuild_laps", ["windows-11-23h2"], domain="ghal.lan", service="radiology") + _lookup(
        "rebuild_laps", ["windows-server-2022"], domain="ghal.lan", service="directory"
    )
    assert (pc["managed"], pc["registry_values"]["BackupDirectory"]) == (True, 2)
    assert dc["managed"] is False and "DSRM" in dc["reason"]


def test_laps_lookup_names_itself_and_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "laps.yml"
    broken.write_text("os: [\n")
    with pytest.raises(AnsibleError, match=r"^rebuild_laps: .*laps\.yml"):
        _lookup("rebuild_laps", ["windows-11-23h2"], domain="ghal.lan", policy_file=str(broken))
