"""Sites come from inventories/data/sites.yml, in restart order, with their reimage settings."""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path

import pytest

from rebuild.errors import ConfigError
from rebuild.sites import find_site, get_site, load_sites
from rebuild.tiers import default_data_dir


def test_sites_in_restart_order_with_capacity_and_networks() -> None:
    sites = load_sites()
    assert [s.name for s in sites] == ["arlon", "marche", "libramont", "bastogne"]
    arlon = sites[0]
    assert arlon.imaging_capacity >= 1
    assert {n.name for n in arlon.networks} == {"servers", "clinical", "admin"}
    for network in arlon.networks:
        assert ipaddress.IPv4Address(network.wol_broadcast) in network.cidr


def test_site_settings_default_and_become_group_vars() -> None:
    bastogne = get_site("bastogne")
    assert bastogne.group_name == "site_bastogne"
    assert bastogne.pxe_root.endswith("/bastogne")  # "{site}" expanded from the defaults
    assert set(bastogne.group_vars()) == {
        "rebuild_hypervisor_url",
        "rebuild_boot_server",
        "rebuild_pxe_root",
        "rebuild_image_catalogue",
    }
    assert bastogne.domain == "ghal.lan"


@pytest.mark.parametrize(
    "text", ["arlon", "ARLON", "Aarlen", "arl", "Marche-en-Famenne", "marche en famenne"]
)
def test_sites_found_by_name_label_or_alias(text: str) -> None:
    assert find_site(text) is not None


def test_unknown_site_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        get_site("namur")
    assert "namur" in str(err.value)
    for name in ("arlon", "marche", "libramont", "bastogne"):
        assert name in str(err.value)


def test_network_excludes_network_and_broadcast_addresses() -> None:
    arlon = get_site("arlon")
    assert arlon.network_for(ipaddress.IPv4Address("10.11.0.10")).name == "servers"  # type: ignore[union-attr]
    assert arlon.network_for(ipaddress.IPv4Address("10.11.0.0")) is None
    assert arlon.network_for(ipaddress.IPv4Address("10.11.3.255")) is None
    assert arlon.network_for(ipaddress.IPv4Address("10.12.0.10")) is None


def test_broken_sites_file_is_a_config_error(tmp_path: Path) -> None:
    for name in ("tiers.yml", "register_aliases.yml", "connection.yml"):
        shutil.copy(default_data_dir() / name, tmp_path / name)
    (tmp_path / "sites.yml").write_text(
        "defaults: {boot_server: localhost, pxe_root: /p, hypervisor_url: https://h, image_catalogue: i.yml}\n"  # noqa: E501
        "sites:\n  - name: x\n    imaging_capacity: 0\n    networks: []\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="imaging_capacity must be at least 1"):
        load_sites(tmp_path)
    (tmp_path / "sites.yml").write_text("sites:\n  - name: x\n    imaging_capacity: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no boot_server|networks"):
        load_sites(tmp_path)
