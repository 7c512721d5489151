# Inventory plugin: hosts straight from the hospital asset register.
# One code path with `rebuild inventory build`: both call rebuild.register.load_register and
# rebuild.inventory.build_inventory, so the plugin and the static files cannot disagree.


from __future__ import annotations

DOCUMENTATION = r"""
name: rebuild_register
short_description: Hosts to rebuild, read directly from the asset register
description:
  - Reads the hospital asset register (CSV, XLSX or JSON export), validates it exactly as
    C(rebuild inventory build) does, and yields the same hosts, groups and variables as the
    static inventory that command writes (groups C(site_*), C(tier_*), C(service_*), C(kind_*),
    C(os_*), C(platform_*); per-host reimage data; connection settings in C(all)).
  - Strict by default - any register problem fails the inventory and lists every problem
    with its row and column. With O(allow_errors) the valid rows are kept and each problem is
    shown as a warning.
  - Register values are not trusted as templates; only the project's own data (connection
    settings, site settings) is.
  - The configuration file name must end with C(rebuild_register.yml) or C(rebuild_register.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin; it must be V(rebuild_register) to use it.
    required: true
    choices: ['rebuild_register']
  register:
    description: Path of the register; a relative path is relative to this configuration file.
    required: true
    type: str
  site:
    description: Only the hosts of this site (name, label or alias as in C(inventories/data/sites.yml)).
    type: str
  sheet:
    description: Sheet of an XLSX register (default the first sheet).
    type: str
  allow_errors:
    description: Keep the valid rows when some rows have problems (problems become warnings).
    type: bool
    default: false
"""

EXAMPLES = r"""
# inventories/hospital.rebuild_register.yml
plugin: rebuild_register
register: example/register.csv

# only one site, from an Excel export's named sheet
plugin: rebuild_register
register: /media/crisis/parc-informatique.xlsx
sheet: Inventaire
site: arlon

# extra groups on top of the contract's, with Constructable options; cache between runs
plugin: rebuild_register
register: example/register.csv
keyed_groups:
  - key: rebuild_location.split(' ')[0] | lower
    prefix: room
groups:
  bmc_managed: rebuild_bmc_address is defined
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: state/inventory-cache
"""

import os
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.inventory.helpers import get_group_vars
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.template import trust_as_template
from ansible.utils.vars import combine_vars


def _trusted(value: Any) -> Any:
    """Mark project data (connection.yml, sites.yml) as templatable, recursively."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "rebuild_register"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("rebuild_register.yml", "rebuild_register.yaml"))

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        register = Path(os.path.expanduser(str(self.get_option("register"))))
        if not register.is_absolute():
            register = Path(path).resolve().parent / register
        try:
            stat = register.stat()
        except OSError as exc:
            raise AnsibleParserError(f"{path}: register {register}: {exc}") from exc
        # The register's identity and options are part of the cached value, so an edited
        # register or config is never served stale from the cache.
        stamp = [
            str(register),
            stat.st_mtime_ns,
            stat.st_size,
            self.get_option("site"),
            self.get_option("sheet"),
            bool(self.get_option("allow_errors")),
        ]

        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        built: dict[str, Any] | None = None
        if use_cache:
            try:
                cached = self._cache[cache_key]
                if cached.get("stamp") == stamp:
                    built = cached["inventory"]
                else:
                    update_cache = True
            except KeyError:
                update_cache = True
        if built is None:
            built = self._build(register)
        if update_cache:
            self._cache[cache_key] = {"stamp": stamp, "inventory": built}
        self._populate(built)

    def _build(self, register: Path) -> dict[str, Any]:
        # Imported here: the rebuild package is the one code path for register -> inventory.
        from rebuild.errors import RebuildError, listed
        from rebuild.inventory import build_inventory
        from rebuild.register import load_register
        from rebuild.sites import get_site

        try:
            site = self.get_option("site")
            site_name = get_site(site).name if site else None
            result = load_register(register, sheet=self.get_option("sheet"))
            if result.problems:
                if not self.get_option("allow_errors") or any(p.row is None for p in result.problems):
                    result.raise_for_problems()
                for problem in listed([str(p) for p in result.problems]):  # bounded output
                    self.display.warning(f"rebuild_register: rejected {problem}")
            hosts = [h for h in result.hosts if site_name is None or h.site == site_name]
            if not hosts:
                raise RebuildError(
                    f"{register}: no valid host" + (f" for site {site_name}" if site_name else "")
                )
            return build_inventory(hosts)
        except RebuildError as exc:
            # Ansible shows a failed source's exception only with -vvv: say what is wrong now.
            for line in str(exc).splitlines():
                self.display.warning(f"rebuild_register: {line}")
            raise AnsibleParserError(f"rebuild_register: {exc}") from exc

    def _populate(self, built: dict[str, Any]) -> None:
        from rebuild.errors import RebuildError
        from rebuild.hostnames import checked_hostname

        top = built["all"]
        try:  # the register validated them; a cached inventory is checked again before use
            for entry in top.get("children", {}).values():
                for host in entry.get("hosts") or {}:
                    checked_hostname(host, "rebuild_register")
        except RebuildError as exc:
            raise AnsibleParserError(f"rebuild_register: {exc}") from exc
        for key, value in top.get("vars", {}).items():
            self.inventory.set_variable("all", key, _trusted(value))
        for group, entry in top.get("children", {}).items():
            self.inventory.add_group(group)
            for key, value in (entry.get("vars") or {}).items():
                self.inventory.set_variable(group, key, _trusted(value))
            for host, hostvars in (entry.get("hosts") or {}).items():
                self.inventory.add_host(host, group=group)
                for key, value in (hostvars or {}).items():
                    self.inventory.set_variable(host, key, value)  # register data: never a template

        strict = self.get_option("strict")
        names = dict.fromkeys(h for e in top.get("children", {}).values() for h in (e.get("hosts") or {}))
        for name in names:
            host = self.inventory.get_host(name)
            hostvars = combine_vars(get_group_vars(host.get_groups()), host.get_vars())
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)
