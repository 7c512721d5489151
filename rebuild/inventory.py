"""Validated hosts -> Ansible inventory (one code path for the static files and the plugin).

The shape is fixed by docs/contracts.md: connection settings in `all.vars`, the groups
site_/tier_/service_/kind_/os_/platform_, per-site settings as `site_<name>` group vars
and per-host reimage data as host vars (carried by the host's site group entry).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rebuild import atomicfile
from rebuild.datadir import PROJECT_ROOT, default_data_dir
from rebuild.errors import ConfigError, RebuildError, RegisterError
from rebuild.hostnames import checked_hostname
from rebuild.model import Host, Kind, Platform
from rebuild.register import RegisterResult, load_register
from rebuild.sites import Network, Site, get_site, load_sites
from rebuild.tiers import tier_table
from rebuild.yamlfile import load_yaml

DEFAULT_WOL_PORT = 9
DEFAULT_OUT_DIR = PROJECT_ROOT / "inventories" / "hospital"

_GROUP_SAFE = re.compile(r"[^a-z0-9_]+")


def group_name(prefix: str, value: str) -> str:
    """Inventory group names are [a-z0-9_] only: 'os', 'windows-server-2022' -> os_windows_server_2022."""
    return f"{prefix}_{_GROUP_SAFE.sub('_', value.lower()).strip('_')}"


def load_connection_vars(data_dir: Path | None = None) -> dict[str, Any]:
    path = (data_dir or default_data_dir()) / "connection.yml"
    try:
        loaded = load_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read connection settings: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of connection variables")
    return dict(loaded)


def host_vars(host: Host, site: Site, tier_name: str, network: Network | None = None) -> dict[str, Any]:
    """The per-host variables of docs/contracts.md (`network`: the host's, when known)."""
    network = network or site.network_named(host.network)
    if network is None:
        raise ConfigError(f"host {host.hostname}: network {host.network!r} is not one of {site.name}'s")
    hv: dict[str, Any] = {
        "ansible_host": host.ip,
        "rebuild_site": host.site,
        "rebuild_tier": host.tier,
        "rebuild_tier_name": tier_name,
        "rebuild_service": host.service,
        "rebuild_service_label": host.service_label,
        "rebuild_kind": host.kind.value,
        "rebuild_platform": host.platform.value,
        "rebuild_os": host.os,
        "rebuild_location": host.location,
        "rebuild_asset_tag": host.asset_tag,
        "rebuild_serial": host.serial,
        "rebuild_mac": host.mac,
        "rebuild_network": host.network,
        "rebuild_applications": list(host.applications),
        "rebuild_wol_broadcast": network.wol_broadcast,
        "rebuild_wol_port": DEFAULT_WOL_PORT,
        "rebuild_domain": site.domain,
    }
    if host.bmc_address:
        hv["rebuild_bmc_address"] = host.bmc_address
    if host.platform is Platform.VIRTUAL:
        hv["rebuild_vm_ref"] = host.vm_ref
    return hv


def build_inventory(
    hosts: Sequence[Host],
    *,
    hostvar_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    extra_all_vars: Mapping[str, Any] | None = None,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """A YAML-able inventory of `hosts` (any number of sites) in the contract's shape.

    `hostvar_overrides` ({host: {var: value}}) win over the computed host vars (the lab uses
    it for ansible_host, rebuild_bmc_address...); `extra_all_vars` win over connection.yml.
    """
    sites = {s.name: s for s in load_sites(data_dir)}
    tiers = tier_table(data_dir)
    overrides = dict(hostvar_overrides or {})
    names = {h.hostname for h in hosts}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"hostvar overrides name hosts not in the inventory: {', '.join(unknown[:10])}")
    if len(names) != len(hosts):
        raise ConfigError("build_inventory: the same hostname appears twice (validate the register first)")

    all_vars = load_connection_vars(data_dir)
    all_vars.update(extra_all_vars or {})
    children: dict[str, dict[str, Any]] = {}

    # Site groups first, in restart order, carrying the host vars and the site settings.
    for site in sites.values():
        site_hosts = [h for h in hosts if h.site == site.name]
        if not site_hosts:
            continue
        entry: dict[str, Any] = {"hosts": {}, "vars": site.group_vars()}
        tier_names = {t.id: t.name for t in tiers.tiers}
        networks = {n.name: n for n in site.networks}
        for host in site_hosts:
            if host.tier not in tier_names:
                raise ConfigError(f"host {host.hostname}: no tier {host.tier} in tiers.yml")
            hv = host_vars(host, site, tier_names[host.tier], networks.get(host.network))
            if host.hostname in overrides:
                hv.update(overrides[host.hostname])
            entry["hosts"][host.hostname] = hv
        children[site.group_name] = entry
    missing_site = sorted({h.site for h in hosts} - set(sites))
    if missing_site:
        raise ConfigError(f"hosts name sites not in sites.yml: {', '.join(missing_site)}")

    grouped: dict[str, list[str]] = {}
    known_groups: dict[tuple[str, str], str] = {}  # group names are few: compute each once
    for host in hosts:
        for prefix, value in (
            ("tier", str(host.tier)),
            ("service", host.service),
            ("kind", str(host.kind)),
            ("os", host.os),
            ("platform", str(host.platform)),
        ):
            group = known_groups.get((prefix, value))
            if group is None:
                group = tiers.tier(host.tier).group_name if prefix == "tier" else group_name(prefix, value)
                known_groups[(prefix, value)] = group
            grouped.setdefault(group, []).append(host.hostname)
    for group in sorted(grouped, key=_group_order):
        children[group] = {"hosts": dict.fromkeys(grouped[group])}  # membership only: `HOST:` (null)
    return {"all": {"vars": all_vars, "children": children}}


def _group_order(group: str) -> tuple[int, str]:
    prefixes = ("tier_", "service_", "kind_", "os_", "platform_")
    rank = next(i for i, p in enumerate(prefixes) if group.startswith(p))
    if group.startswith("tier_"):
        return rank, f"{int(group.split('_')[1]):04d}"
    return rank, group


# --- writing YAML ---------------------------------------------------------------------------
# A small emitter for the inventory's simple shape (mappings, lists, scalars): PyYAML's
# representer needs a minute and GBs for 100,000 hosts. Every string is emitted plain only
# when YAML cannot read it as anything else, otherwise double-quoted; tests check that
# yaml.safe_load gives back exactly the dict.

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
_RESERVED = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
_QUOTE_SAFE = re.compile(r"^[\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]*$")


_SCALARS: dict[str, str] = {}  # str -> YAML text; repeated values (site, service...) pay once


def _scalar(value: Any) -> str:
    if type(value) is str:
        if _PLAIN.match(value) and (len(value) > 5 or value.lower() not in _RESERVED):
            return value
        if value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'  # nothing to escape: the common quoted case, cheap
        if _QUOTE_SAFE.match(value):
            return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted one
        # Rare (control characters, line separators, astral planes): PyYAML's own quoting.
        quoted: str = yaml.safe_dump(value, allow_unicode=True, default_style='"', width=2**30)
        return quoted.removesuffix("\n").removesuffix("\n...")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _scalar(str(value))  # str subclasses (e.g. StrEnum)
    raise TypeError(f"cannot write {type(value).__name__} into an inventory")


def _emit(mapping: Mapping[str, Any], indent: str, out: list[str], keys: dict[str, str]) -> None:
    append = out.append
    cache = _SCALARS
    for key, value in mapping.items():
        head = keys.get(key)
        if head is None:
            head = keys[key] = _scalar(str(key)) + ":"
        kind = type(value)
        if kind is str:  # most values: cached, checked first
            text = cache.get(value)
            if text is None:
                if len(cache) > 50_000:  # bounded: unique values (IPs, MACs) must not pile up
                    cache.clear()
                text = cache[value] = _scalar(value)
            append(f"{indent}{head} {text}\n")
        elif value is None:
            append(f"{indent}{head}\n")  # YAML null, as hand-written inventories list members
        elif kind is int or kind is bool or kind is float:
            append(f"{indent}{head} {_scalar(value)}\n")
        elif kind is list or kind is tuple:
            append(f"{indent}{head} [{', '.join(_scalar(v) for v in value)}]\n")
        elif isinstance(value, Mapping):
            if value:
                append(f"{indent}{head}\n")
                _emit(value, indent + "  ", out, keys)
            else:
                append(f"{indent}{head} {{}}\n")
        else:
            append(f"{indent}{head} {_scalar(value)}\n")


def dump_inventory(inv: Mapping[str, Any], header: str = "") -> str:
    """YAML text of an inventory dict (block style, one line per variable)."""
    out = [f"# {line}\n" for line in header.splitlines()]
    _emit(inv, "", out, {})
    return "".join(out)


def write_inventory(inv: Mapping[str, Any], path: Path, *, header: str = "") -> None:
    """Write an inventory file atomically (temp file in the same directory, then rename)."""
    atomicfile.write_text(Path(path), dump_inventory(inv, header))


def write_site_inventories(
    hosts: Sequence[Host],
    out_dir: Path,
    *,
    sites: Sequence[str] | None = None,
    header: str = "",
    data_dir: Path | None = None,
) -> dict[str, Path]:
    """One static inventory per site (`<out_dir>/<site>.yml`), all rendered before any is written.

    `sites`: limit to these site keys (others' files are left as they are). Without it, a
    site with no host left has its old file removed: a stale inventory would point the
    rebuild at machines the register no longer lists.
    """
    known = [s.name for s in load_sites(data_dir)]
    wanted = list(sites) if sites is not None else known
    by_site: dict[str, list[Host]] = {}
    for host in hosts:
        by_site.setdefault(host.site, []).append(host)
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: dict[str, Path] = {}  # site -> temp file, renamed into place once all are written
    try:
        for name in wanted:
            if by_site.get(name):
                # One site in memory at a time: build, emit, write, let go.
                staged[name] = atomicfile.write_temp(
                    out_dir / f"{name}.yml",
                    dump_inventory(build_inventory(by_site[name], data_dir=data_dir), header),
                )
        written: dict[str, Path] = {}
        for name, tmp in staged.items():
            os.replace(tmp, out_dir / f"{name}.yml")
            written[name] = out_dir / f"{name}.yml"
    finally:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)  # only those not renamed
    if sites is None:
        for name in known:
            stale = out_dir / f"{name}.yml"
            if name not in written and stale.exists():
                stale.unlink()
    return written


# --- reading an inventory back --------------------------------------------------------------

_REQUIRED = (
    "rebuild_site",
    "rebuild_tier",
    "rebuild_service",
    "rebuild_kind",
    "rebuild_platform",
    "rebuild_os",
)


def _host_from_vars(name: str, hv: Mapping[str, Any], source: Path) -> Host:
    missing = [v for v in _REQUIRED if hv.get(v) in (None, "")]
    if missing:
        raise RebuildError(f"{source}: host {name} lacks {', '.join(missing)} (not a rebuild inventory?)")
    checked_hostname(name, str(source))  # a hand-written inventory obeys the register's rule too
    try:
        return Host(
            hostname=name,
            asset_tag=str(hv.get("rebuild_asset_tag", "")),
            kind=Kind(str(hv["rebuild_kind"])),
            platform=Platform(str(hv["rebuild_platform"])),
            os=str(hv["rebuild_os"]),
            site=str(hv["rebuild_site"]),
            service=str(hv["rebuild_service"]),
            service_label=str(hv.get("rebuild_service_label", hv["rebuild_service"])),
            tier=int(hv["rebuild_tier"]),
            location=str(hv.get("rebuild_location", "")),
            ip=str(hv.get("ansible_host", "")),
            mac=str(hv.get("rebuild_mac", "")),
            bmc_address=str(hv.get("rebuild_bmc_address", "")),
            vm_ref=str(hv.get("rebuild_vm_ref", "")),
            applications=tuple(str(a) for a in hv.get("rebuild_applications") or ()),
            serial=str(hv.get("rebuild_serial", "")),
            network=str(hv.get("rebuild_network", "")),
        )
    except (ValueError, TypeError) as exc:
        raise RebuildError(f"{source}: host {name} has an invalid rebuild variable: {exc}") from exc


def read_ansible_inventory(path: Path) -> Any:
    """Ansible's own InventoryManager over `path` (a static file, a directory of them, or a
    `*.rebuild_register.yml` plugin config), so rebuild sees exactly what a playbook run would."""
    path = Path(path)
    if not path.exists():
        raise RebuildError(f"{path}: no such inventory")
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader, inventory_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if not AnsibleCollectionConfig.collection_finder:  # as the ansible CLIs do, once per process
        init_plugin_loader()
    inventory_loader.add_directory(str(PROJECT_ROOT / "plugins" / "inventory"))
    try:
        manager = InventoryManager(loader=DataLoader(), sources=[str(path)], parse=False)
        manager.parse_sources(cache=False)
    except Exception as exc:  # AnsibleError and friends: report, do not trace back
        raise RebuildError(f"{path}: cannot read inventory: {exc}") from exc
    if not manager.hosts:
        raise RebuildError(f"{path}: inventory has no hosts (wrong path, or not a rebuild inventory)")
    return manager


def hosts_of_inventory(manager: Any, path: Path) -> list[Host]:
    """Rebuild Host objects from a read inventory (host vars beating group vars)."""
    from ansible.inventory.helpers import get_group_vars
    from ansible.utils.vars import combine_vars

    hosts: list[Host] = []
    for name, host in manager.hosts.items():
        hv = combine_vars(get_group_vars(host.get_groups()), host.get_vars())
        hosts.append(_host_from_vars(name, hv, Path(path)))
    return hosts


def site_groups_of_inventory(manager: Any) -> dict[str, frozenset[str]]:
    """Each host's `site_*` groups, as Ansible read them (one expected)."""
    return {
        name: frozenset(g.name for g in host.get_groups() if g.name.startswith("site_"))
        for name, host in manager.hosts.items()
    }


def group_var(manager: Any, group: str, var: str) -> Any:
    """A variable the inventory sets on `group` itself (None when the group or var is absent)."""
    found = manager.groups.get(group)
    return None if found is None else found.get_vars().get(var)


IMAGE_CATALOGUE_VAR = "rebuild_image_catalogue"


def image_catalogues_of(manager: Any, hosts: Iterable[Host], site_group: str) -> dict[Path | None, list[str]]:
    """The image catalogue each host is reimaged from (`rebuild_image_catalogue` on the host, its
    site's group or `all`; None: the project's inventories/data/images.yml) -> their OS keys."""
    fallback = group_var(manager, site_group, IMAGE_CATALOGUE_VAR) or group_var(
        manager, "all", IMAGE_CATALOGUE_VAR
    )
    by_catalogue: dict[Path | None, list[str]] = {}
    for host in hosts:
        found = manager.get_host(host.hostname)
        value = (found.get_vars().get(IMAGE_CATALOGUE_VAR) if found is not None else None) or fallback
        path = Path(str(value)) if value else None
        if path is not None and not path.is_absolute():
            path = PROJECT_ROOT / path  # as the reimage role and verification read it
        by_catalogue.setdefault(path, []).append(host.os)
    return by_catalogue


def load_inventory_hosts(path: Path) -> list[Host]:
    return hosts_of_inventory(read_ansible_inventory(path), path)


@dataclass
class BuildReport:
    """What `rebuild inventory build` did, for the operator."""

    result: RegisterResult
    written: dict[str, Path]
    rejects_path: Path | None = None

    def lines(self) -> list[str]:
        out = [self.result.summary()]
        out += [f"wrote {path} ({n} hosts)" for path, n in self._counts()]
        if self.rejects_path is not None:
            out.append(f"wrote {len(self.result.rejects)} rejected row(s) to {self.rejects_path}")
        return out

    def _counts(self) -> list[tuple[Path, int]]:
        return [(p, sum(1 for h in self.result.hosts if h.site == s)) for s, p in self.written.items()]


def build_from_register(
    register: Path,
    out_dir: Path = DEFAULT_OUT_DIR,
    *,
    site: str | None = None,
    allow_errors: bool = False,
    sheet: str | None = None,
    rejects_path: Path | None = None,
) -> BuildReport:
    """Register -> validated hosts -> one static inventory per site.

    Strict by default: any problem raises RegisterError and nothing is written. With
    `allow_errors` the valid rows are written and the rejected ones go to a rejects CSV
    (default `<out_dir>-rejects.csv`, outside the inventory directory so Ansible never
    parses it), unless the file itself is unusable (missing columns, no valid row).
    """
    chosen = get_site(site).name if site else None
    result = load_register(register, sheet=sheet)
    if result.problems and (not allow_errors or any(p.row is None for p in result.problems)):
        result.raise_for_problems()
    hosts = [h for h in result.hosts if chosen is None or h.site == chosen]
    if not hosts:
        raise RegisterError([f"{register}: no valid host" + (f" for site {chosen}" if chosen else "")])
    rejects: Path | None = None
    if result.rejects:
        rejects = rejects_path or out_dir.with_name(out_dir.name + "-rejects.csv")
    header = (
        f"Generated by `rebuild inventory build` from {register.name}: regenerate, do not edit.\n"
        "Connection settings: inventories/data/connection.yml; sites: inventories/data/sites.yml."
    )
    if rejects is not None:  # first: if it cannot be written, no inventory is either
        result.write_rejects(rejects)
    written = write_site_inventories(hosts, out_dir, sites=[chosen] if chosen else None, header=header)
    return BuildReport(result, written, rejects)
