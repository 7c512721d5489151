"""Hospital sites in restart order, read from inventories/data/sites.yml (data, not code)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from rebuild.datadir import default_data_dir
from rebuild.errors import ConfigError
from rebuild.execution_node import ExecutionNode, parse_execution
from rebuild.tiers import fold
from rebuild.yamlfile import load_yaml


@dataclass(frozen=True, slots=True)
class Network:
    name: str
    cidr: ipaddress.IPv4Network
    wol_broadcast: str

    def holds(self, address: ipaddress.IPv4Address) -> bool:
        """True for a usable host address: inside, and neither the network nor broadcast address."""
        return (
            address in self.cidr
            and address != self.cidr.network_address
            and address != self.cidr.broadcast_address
        )


@dataclass(frozen=True, slots=True)
class Site:
    name: str  # key, e.g. "arlon"
    label: str  # for people, e.g. "Arlon"
    imaging_capacity: int  # machines reimaged at once
    networks: tuple[Network, ...]
    domain: str
    boot_server: str
    pxe_root: str
    hypervisor_url: str
    image_catalogue: str
    aliases: tuple[str, ...] = field(default=())
    order: int = 0  # position in restart order (0 first)
    execution: ExecutionNode | None = None  # None: batches run on the controller (rebuild.execution_node)

    @property
    def group_name(self) -> str:
        return f"site_{self.name.replace('-', '_')}"

    def network_for(self, address: ipaddress.IPv4Address) -> Network | None:
        for network in self.networks:
            if network.holds(address):
                return network
        return None

    def network_named(self, name: str) -> Network | None:
        for network in self.networks:
            if network.name == name:
                return network
        return None

    def group_vars(self) -> dict[str, Any]:
        """Per-site variables of group site_<name> (docs/contracts.md)."""
        return {
            "rebuild_hypervisor_url": self.hypervisor_url,
            "rebuild_boot_server": self.boot_server,
            "rebuild_pxe_root": self.pxe_root,
            "rebuild_image_catalogue": self.image_catalogue,
        }


_SETTINGS = ("boot_server", "pxe_root", "hypervisor_url", "image_catalogue")


def _parse(path: Path) -> tuple[Site, ...]:
    try:
        raw: Any = load_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read sites: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("sites"), list) or not raw["sites"]:
        raise ConfigError(f"{path}: expected a non-empty 'sites:' list")
    defaults = raw.get("defaults") or {}
    sites: list[Site] = []
    for order, entry in enumerate(raw["sites"]):
        where = f"{path}: site #{order + 1}"
        try:
            name = str(entry["name"])
            networks = tuple(
                Network(str(n["name"]), ipaddress.IPv4Network(str(n["cidr"])), str(n["wol_broadcast"]))
                for n in entry["networks"]
            )
            capacity = int(entry["imaging_capacity"])
            settings = {}
            for key in _SETTINGS:
                value = entry.get(key, defaults.get(key))
                if value is None:
                    raise ConfigError(f"{where} ({name}): no {key} and no default for it")
                settings[key] = str(value).replace("{site}", name)
            site = Site(
                name=name,
                label=str(entry.get("label", name)),
                imaging_capacity=capacity,
                networks=networks,
                domain=str(entry.get("domain", raw.get("domain", ""))),
                aliases=tuple(str(a) for a in entry.get("aliases") or ()),
                order=order,
                execution=parse_execution(entry.get("execution"), f"{path}: site {name}"),
                **settings,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: needs name, imaging_capacity and networks: {exc}") from exc
        if capacity < 1:
            raise ConfigError(f"{where} ({name}): imaging_capacity must be at least 1")
        for network in networks:
            if ipaddress.IPv4Address(network.wol_broadcast) not in network.cidr:
                raise ConfigError(f"{where} ({name}): wol_broadcast of {network.name} is outside its cidr")
        sites.append(site)
    names = [s.name for s in sites]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: site names must be unique: {names}")
    return tuple(sites)


@lru_cache(maxsize=8)
def _sites(path: Path) -> tuple[Site, ...]:
    return _parse(path)


def load_sites(data_dir: Path | None = None) -> list[Site]:
    """Sites in restart order."""
    return list(_sites((data_dir or default_data_dir()).resolve() / "sites.yml"))


def find_site(text: str, data_dir: Path | None = None) -> Site | None:
    """The site a register or operator names by key, label or alias (any case/accents), or None."""
    wanted = fold(text)
    for site in load_sites(data_dir):
        if wanted in {fold(site.name), fold(site.label), *(fold(a) for a in site.aliases)}:
            return site
    return None


def get_site(name: str, data_dir: Path | None = None) -> Site:
    """The named site, or a ConfigError listing the known ones."""
    site = find_site(name, data_dir)
    if site is None:
        known = ", ".join(s.name for s in load_sites(data_dir))
        raise ConfigError(f"unknown site {name!r}; known sites: {known}")
    return site


# Group variable of `site_<key>` in an inventory: the site's networks for this inventory,
# replacing sites.yml's (an inventory whose addresses are elsewhere, e.g. a rehearsal's, says so).
SITE_NETWORKS_VAR = "rebuild_site_networks"

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def site_networks(site: Site, declared: Any, *, where: str = "the inventory") -> Networks:
    """The networks a host of `site` must be in: the inventory's SITE_NETWORKS_VAR, else sites.yml."""
    if declared is None:
        return tuple(n.cidr for n in site.networks)
    if isinstance(declared, str) or not isinstance(declared, list) or not declared:
        raise ConfigError(f"{where}: {SITE_NETWORKS_VAR} of {site.group_name} must be a list of CIDRs")
    try:
        return tuple(ipaddress.ip_network(str(c)) for c in declared)
    except ValueError as exc:
        raise ConfigError(f"{where}: {SITE_NETWORKS_VAR} of {site.group_name}: {exc}") from None
