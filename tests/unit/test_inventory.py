"""Inventory builder: contract groups and host vars, overrides, atomic writes, reading back,
and the inventory plugin agreeing with the static files host for host and group for group."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rebuild.errors import ConfigError
from rebuild.inventory import (
    build_inventory,
    load_inventory_hosts,
    write_inventory,
    write_site_inventories,
)
from rebuild.register import EXAMPLE_REGISTER, SMALL_REGISTER, load_register
from rebuild.tiers import PROJECT_ROOT

CONTRACT_HOST_VARS = {
    "ansible_host", "rebuild_site", "rebuild_tier", "rebuild_tier_name", "rebuild_service",
    "rebuild_service_label", "rebuild_kind", "rebuild_platform", "rebuild_os", "rebuild_location",
    "rebuild_asset_tag", "rebuild_serial", "rebuild_mac", "rebuild_network", "rebuild_applications",
    "rebuild_wol_broadcast", "rebuild_wol_port", "rebuild_domain",
}  # fmt: skip


@pytest.fixture(scope="module")
def small_hosts() -> list[Any]:
    result = load_register(SMALL_REGISTER)
    assert result.ok
    return result.hosts


def test_groups_and_host_vars_follow_the_contract(small_hosts: list[Any]) -> None:
    inv = build_inventory(small_hosts)
    top = inv["all"]
    assert top["vars"]["ansible_connection"] == "winrm"
    assert top["vars"]["ansible_winrm_server_cert_validation"] == "validate"
    groups = top["children"]
    assert {"site_arlon", "site_bastogne", "tier_0_shared_infrastructure", "tier_7_other", "service_emergency",  # noqa: E501
            "service_dns_dhcp", "kind_server", "kind_workstation", "os_windows_server_2022",
            "platform_physical", "platform_virtual"} <= set(groups)  # fmt: skip
    assert all(name.replace("_", "").isalnum() and name == name.lower() for name in groups)
    assert groups["site_arlon"]["vars"]["rebuild_pxe_root"].endswith("arlon")
    dc = groups["site_arlon"]["hosts"]["ARL-DC01"]
    assert set(dc) >= CONTRACT_HOST_VARS
    assert dc["rebuild_bmc_address"].startswith("https://")
    assert "rebuild_vm_ref" not in dc
    vm = groups["site_arlon"]["hosts"]["ARL-DC02"]
    assert vm["rebuild_vm_ref"] and "rebuild_bmc_address" not in vm
    pc = groups["site_arlon"]["hosts"]["ARL-URG-0001"]
    assert pc["rebuild_wol_broadcast"] == "10.11.31.255" and pc["rebuild_wol_port"] == 9
    # every host in exactly one site, one tier, one kind, one platform
    for prefix in ("site_", "tier_", "kind_", "platform_", "os_", "service_"):
        members = [h for g, e in groups.items() if g.startswith(prefix) for h in e["hosts"]]
        assert sorted(members) == sorted(h.hostname for h in small_hosts), prefix


def test_overrides_win_and_unknown_hosts_are_refused(small_hosts: list[Any]) -> None:
    inv = build_inventory(
        small_hosts,
        hostvar_overrides={
            "ARL-DC01": {"ansible_host": "127.9.0.1", "rebuild_bmc_address": "http://127.0.0.1:1"}
        },
        extra_all_vars={"rebuild_ca_bundle": "/tmp/ca.pem"},
    )
    dc = inv["all"]["children"]["site_arlon"]["hosts"]["ARL-DC01"]
    assert dc["ansible_host"] == "127.9.0.1" and dc["rebuild_bmc_address"] == "http://127.0.0.1:1"
    assert inv["all"]["vars"]["rebuild_ca_bundle"] == "/tmp/ca.pem"
    with pytest.raises(ConfigError, match="NOT-A-HOST"):
        build_inventory(small_hosts, hostvar_overrides={"NOT-A-HOST": {"x": 1}})


def test_write_is_atomic_and_round_trips(tmp_path: Path, small_hosts: list[Any]) -> None:
    path = tmp_path / "inv" / "all.yml"
    write_inventory(build_inventory(small_hosts), path, header="generated")
    assert path.read_text(encoding="utf-8").startswith("# generated\n")
    assert [p.name for p in path.parent.iterdir()] == ["all.yml"]  # no temp file left behind
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert load_inventory_hosts(path) == small_hosts


def test_failed_write_leaves_the_old_file(tmp_path: Path, small_hosts: list[Any]) -> None:
    path = tmp_path / "arlon.yml"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(Exception):  # noqa: B017 - yaml refuses to represent an object
        write_inventory({"all": {"vars": {"x": object()}}}, path)
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["arlon.yml"]


def test_site_files_and_stale_site_removed(tmp_path: Path, small_hosts: list[Any]) -> None:
    (tmp_path / "marche.yml").write_text("stale\n", encoding="utf-8")
    written = write_site_inventories(small_hosts, tmp_path)
    assert sorted(written) == ["arlon", "bastogne"]
    assert not (tmp_path / "marche.yml").exists()
    arlon = load_inventory_hosts(tmp_path / "arlon.yml")
    assert {h.site for h in arlon} == {"arlon"}
    assert sorted(load_inventory_hosts(tmp_path), key=lambda h: h.hostname) == sorted(
        small_hosts, key=lambda h: h.hostname
    )


def test_lab_style_overlay_is_read_back_with_overrides(tmp_path: Path, small_hosts: list[Any]) -> None:
    overrides = {h.hostname: {"ansible_host": f"127.77.0.{i + 1}"} for i, h in enumerate(small_hosts)}
    path = tmp_path / "lab-arlon.yml"
    write_inventory(build_inventory(small_hosts, hostvar_overrides=overrides), path)
    back = {h.hostname: h for h in load_inventory_hosts(path)}
    assert back["ARL-DC01"].ip == overrides["ARL-DC01"]["ansible_host"]
    assert back["ARL-DC01"].tier == 0 and back["ARL-DC01"].bmc_address.startswith("https://")


def test_reading_a_foreign_inventory_names_the_host(tmp_path: Path) -> None:
    path = tmp_path / "other.yml"
    path.write_text("all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.1\n", encoding="utf-8")
    with pytest.raises(Exception, match="web1 lacks rebuild_site"):
        load_inventory_hosts(path)


# --- plugin == static ---------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """ansible-inventory marks plugin-sourced strings as unsafe (not templates): same value."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _inventory_list(source: Path) -> dict[str, Any]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run(
        ["ansible-inventory", "-i", str(source), "--list"],
        capture_output=True, text=True, env=env, cwd=source.parent, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed: dict[str, Any] = _plain(json.loads(done.stdout))
    return listed


def _groups(listed: dict[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    return {
        name: (sorted(entry.get("hosts", [])), sorted(entry.get("children", [])))
        for name, entry in listed.items()
        if name != "_meta"
    }


@pytest.mark.parametrize("register", [SMALL_REGISTER, EXAMPLE_REGISTER], ids=["small", "bundled"])
def test_plugin_agrees_with_static_inventory(tmp_path: Path, register: Path) -> None:
    result = load_register(register)
    static_dir = tmp_path / "static"
    write_site_inventories(result.hosts, static_dir)
    config = tmp_path / "fleet.rebuild_register.yml"
    config.write_text(f"plugin: rebuild_register\nregister: {register}\n", encoding="utf-8")

    from_plugin = _inventory_list(config)
    from_static = _inventory_list(static_dir)
    assert _groups(from_plugin) == _groups(from_static)
    assert from_plugin["_meta"]["hostvars"] == from_static["_meta"]["hostvars"]
    assert len(from_plugin["_meta"]["hostvars"]) == len(result.hosts)


def test_plugin_site_option_constructed_groups_and_strictness(tmp_path: Path) -> None:
    config = tmp_path / "bastogne.rebuild_register.yml"
    config.write_text(
        yaml.safe_dump({
            "plugin": "rebuild_register", "register": str(SMALL_REGISTER), "site": "Bastogne",
            "groups": {"bmc_managed": "rebuild_bmc_address is defined"},
        }),
        encoding="utf-8",
    )  # fmt: skip
    listed = _inventory_list(config)
    assert {h[:3] for h in listed["_meta"]["hostvars"]} == {"BAS"}
    assert listed["bmc_managed"]["hosts"] == ["BAS-DC01"]

    bad = tmp_path / "bad.csv"
    bad.write_text(SMALL_REGISTER.read_text(encoding="utf-8").replace("10.11.0.10,", "10.99.0.10,"), "utf-8")
    strict = tmp_path / "strict.rebuild_register.yml"
    strict.write_text(f"plugin: rebuild_register\nregister: {bad.name}\n", encoding="utf-8")
    env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT_ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1"}  # fmt: skip
    done = subprocess.run(
        ["ansible-inventory", "-i", str(strict), "--list"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "row 2" in done.stderr and "outside Arlon's networks" in done.stderr


TRICKY = ["yes", "No", "on", "null", "~", "", " lead", "trail ", "10.11", "1e3", "0x1f", "12:30", "x: y", "#c",  # noqa: E501
          "-x", "it's", 'a"b\\c', "tab\there", "line\nbreak", "l\u2028s", "\x85nel", "\ufeffbom", "emoji 😀",
          "Maternité 3", "[list]", "{map}", "&anchor", "*alias", "!tag", "%dir", "@at", "`tick", "|", ">",
          "https://10.11.2.10", "/srv/pxe", "ARL-DC01", "True", "FALSE", "=", "<<"]  # fmt: skip


def test_emitted_yaml_reads_back_exactly(small_hosts: list[Any]) -> None:
    from rebuild.inventory import dump_inventory

    inv = build_inventory(
        small_hosts,
        hostvar_overrides={"ARL-DC01": {f"v{i}": text for i, text in enumerate(TRICKY)}},
        extra_all_vars={"tricky": TRICKY, "n": None, "f": 1.5, "t": True, "nested": {"a": {"b": []}}},
    )
    assert yaml.safe_load(dump_inventory(inv, header="line one\nline two")) == inv
    bundled = build_inventory(load_register(EXAMPLE_REGISTER).hosts)
    assert yaml.safe_load(dump_inventory(bundled)) == bundled
