"""Per-batch inventory: the playbook sees the batch's hosts exactly as in the site inventory
(groups, group and host variables, group_vars/ beside it), no other host, and no decrypted secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rebuild.errors import RebuildError
from rebuild.inventory import build_inventory, read_ansible_inventory, write_inventory
from rebuild.orchestrator.batch_inventory import BatchInventories, work_groups
from rebuild.register import SMALL_REGISTER, load_register

VAULT_PASSWORD = "batch-inventory-test-vault-password"
SECRET = "S3cret-BMC-Passw0rd-only-in-vault"


def _playbook_view(manager: Any, name: str) -> dict[str, Any]:
    """The variables a play sees for a host, vars plugins (group_vars/) included; a vaulted
    value as its ciphertext (comparing would decrypt it)."""
    from ansible.parsing.vault import VaultHelper
    from ansible.vars.manager import VariableManager

    view = VariableManager(loader=manager._loader, inventory=manager).get_vars(
        host=manager.get_host(name), include_hostvars=False
    )
    dropped = {"inventory_file", "inventory_dir", "groups", "vars", "environment", "omit", "playbook_dir"}
    return {
        k: VaultHelper.get_ciphertext(v, with_tags=False) or v for k, v in view.items() if k not in dropped
    }


def _vaulted(plaintext: str) -> str:
    from ansible.parsing.vault import VaultLib, VaultSecret

    lib = VaultLib([("default", VaultSecret(VAULT_PASSWORD.encode()))])
    return lib.encrypt(plaintext).decode()


@pytest.fixture
def site_inventory(tmp_path: Path) -> Path:
    result = load_register(SMALL_REGISTER)
    assert result.ok
    path = tmp_path / "site" / "arlon.yml"
    write_inventory(build_inventory([h for h in result.hosts if h.site == "arlon"]), path)
    group_vars = path.parent / "group_vars"
    group_vars.mkdir()
    (group_vars / "kind_workstation.yml").write_text("rebuild_from_group_vars_dir: pc\n", encoding="utf-8")
    vaulted = "\n".join("  " + line for line in _vaulted(SECRET).splitlines())
    site_vars = f"reimage__bmc_password: !vault |\n{vaulted}\n"
    (group_vars / "site_arlon.yml").write_text(site_vars, encoding="utf-8")
    return path


def test_batch_hosts_keep_their_variables_and_groups_and_nothing_else(
    site_inventory: Path, tmp_path: Path
) -> None:
    site = read_ansible_inventory(site_inventory)
    batch = ["ARL-URG-0001", "ARL-DC01", "ARL-DC02"]
    path = BatchInventories(site, site_inventory, tmp_path / "run" / "inventory").write("t1-b001", batch)

    assert path == tmp_path / "run" / "inventory" / "t1-b001.yml"
    subset = read_ansible_inventory(path)
    assert sorted(subset.hosts) == sorted(batch)
    for name in batch:
        assert _playbook_view(subset, name) == _playbook_view(site, name), name
        assert sorted(g.name for g in subset.get_host(name).get_groups()) == sorted(
            g.name for g in site.get_host(name).get_groups()
        )
    # The site inventory's group_vars/ is read for the batch too (linked, not copied).
    assert _playbook_view(subset, "ARL-URG-0001")["rebuild_from_group_vars_dir"] == "pc"
    assert "rebuild_from_group_vars_dir" not in _playbook_view(subset, "ARL-DC01")
    assert (path.parent / "group_vars").resolve() == (site_inventory.parent / "group_vars").resolve()
    assert [p.name for p in path.parent.iterdir() if p.is_file()] == ["t1-b001.yml"]  # no temp file


def test_vaulted_values_stay_encrypted(site_inventory: Path, tmp_path: Path) -> None:
    # A vaulted value in the inventory file itself (not only in group_vars/) is copied as ciphertext.
    doc = yaml.safe_load(site_inventory.read_text(encoding="utf-8"))
    doc["all"]["children"]["site_arlon"]["hosts"]["ARL-DC01"]["reimage__bmc_password"] = "VAULT-PLACEHOLDER"
    text = yaml.safe_dump(doc, sort_keys=False)
    vaulted = "\n".join("            " + line for line in _vaulted(SECRET).splitlines())
    vault_line = f"reimage__bmc_password: !vault |\n{vaulted}"
    text = text.replace("reimage__bmc_password: VAULT-PLACEHOLDER", vault_line)
    site_inventory.write_text(text, encoding="utf-8")

    site = read_ansible_inventory(site_inventory)
    path = BatchInventories(site, site_inventory, tmp_path / "inv").write("t0-b001", ["ARL-DC01"])
    written = path.read_text(encoding="utf-8")
    assert SECRET not in written
    assert "reimage__bmc_password: !vault |" in written


def test_a_host_outside_the_inventory_is_refused(site_inventory: Path, tmp_path: Path) -> None:
    site = read_ansible_inventory(site_inventory)
    with pytest.raises(RebuildError, match=r"batch t0-b001: not in inventory .*BAS-DC01"):
        BatchInventories(site, site_inventory, tmp_path / "inv").write("t0-b001", ["ARL-DC01", "BAS-DC01"])
    assert not (tmp_path / "inv" / "t0-b001.yml").exists()


def test_work_groups_put_each_host_in_the_plays_of_its_phases_only() -> None:
    phases = {"PC1": ["reimage", "harden", "redeploy", "verify"], "PC2": ["verify"], "PC3": []}
    groups = work_groups(phases, ["PC1"], dry_run=False)
    assert groups == {
        "rebuild_phase_reimage": ["PC1"],
        "rebuild_phase_harden": ["PC1"],
        "rebuild_phase_redeploy": ["PC1"],
        "rebuild_phase_verify": ["PC1", "PC2"],
        "rebuild_recheck": ["PC1"],
        "rebuild_render": [],
        "rebuild_redeploy_gate": [],  # the batch is not held before redeploy
    }
    # Held at its redeploy gate: the hosts that go on to redeploy or verify wait there, not PC4.
    held = work_groups({**phases, "PC4": ["reimage", "harden"]}, [], dry_run=False, held=True)
    assert held["rebuild_redeploy_gate"] == ["PC1", "PC2"]
    # A dry run: render only - no host in a play that can boot, re-check or touch it.
    dry = work_groups({"PC1": ["reimage", "redeploy"], "PC3": []}, ["PC1"], dry_run=True, held=True)
    assert dry["rebuild_render"] == ["PC1"]
    assert all(not members for group, members in dry.items() if group != "rebuild_render")


def test_work_groups_are_written_as_groups_of_the_batch(site_inventory: Path, tmp_path: Path) -> None:
    site = read_ansible_inventory(site_inventory)
    batch = ["ARL-URG-0001", "ARL-DC01"]
    groups = work_groups({"ARL-URG-0001": ["reimage", "harden"], "ARL-DC01": ["verify"]}, [], dry_run=False)
    path = BatchInventories(site, site_inventory, tmp_path / "inv").write("t1-b001", batch, groups)
    subset = read_ansible_inventory(path)
    assert [h.name for h in subset.get_hosts("rebuild_phase_reimage")] == ["ARL-URG-0001"]
    assert [h.name for h in subset.get_hosts("rebuild_phase_verify")] == ["ARL-DC01"]
    assert subset.get_hosts("rebuild_recheck") == []  # present and empty: the play skips quietly
    assert "rebuild_render" in subset.groups
    # The hosts keep their variables (membership in a work group adds none, but the group's name).
    view, site_view = _playbook_view(subset, "ARL-DC01"), _playbook_view(site, "ARL-DC01")
    assert sorted(view.pop("group_names")) == sorted([*site_view.pop("group_names"), "rebuild_phase_verify"])
    assert view == site_view


def test_work_groups_refuse_a_stray_host_or_a_taken_group_name(site_inventory: Path, tmp_path: Path) -> None:
    site = read_ansible_inventory(site_inventory)
    inventories = BatchInventories(site, site_inventory, tmp_path / "inv")
    with pytest.raises(RebuildError, match=r"work groups name hosts outside the batch: ARL-DC02"):
        inventories.write("t0-b001", ["ARL-DC01"], {"rebuild_phase_reimage": ["ARL-DC01", "ARL-DC02"]})
    with pytest.raises(RebuildError, match=r"site_arlon are reserved for `rebuild site`"):
        inventories.write("t0-b001", ["ARL-DC01"], {"site_arlon": ["ARL-DC01"]})
    assert not (tmp_path / "inv" / "t0-b001.yml").exists()
