"""Column and value aliases of asset registers (inventories/data/register_aliases.yml).

Every hospital exports its register with its own headers ("Nom", "Computer name",
"Adresse MAC"...) and its own words for values ("Poste de travail", "VM", "Réformé").
This table maps both to the canonical fields and values the validator works with.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from rebuild.datadir import default_data_dir
from rebuild.errors import ConfigError
from rebuild.tiers import fold
from rebuild.yamlfile import load_yaml

# Canonical register fields, in the order rejects files and docs list them.
FIELDS = (
    "asset_tag",
    "hostname",
    "kind",
    "platform",
    "os",
    "site",
    "service",
    "location",
    "ip",
    "mac",
    "bmc_address",
    "vm_ref",
    "applications",
    "status",
    "serial",
)


@dataclass(frozen=True)
class AliasTable:
    columns: dict[str, str]  # folded header -> field
    column_names: dict[str, tuple[str, ...]]  # field -> aliases as written in the file
    values: dict[str, dict[str, str]]  # field -> folded value -> canonical value
    value_names: dict[str, dict[str, tuple[str, ...]]]  # field -> canonical -> aliases as written
    required: tuple[str, ...]

    def field_for(self, header: str) -> str | None:
        """The canonical field a register header stands for, or None when unknown."""
        return self.columns.get(fold(header))

    def value(self, field: str, text: str) -> str | None:
        """The canonical value of a fixed-vocabulary field, or None when not recognised."""
        return self.values[field].get(fold(text))

    def accepted(self, field: str) -> list[str]:
        """Canonical values of a field, for error messages."""
        return list(self.value_names[field])

    def closest_value(self, field: str, text: str) -> list[str]:
        """Canonical values whose aliases look like `text` (for 'did you mean')."""
        close = difflib.get_close_matches(fold(text), list(self.values[field]), n=3, cutoff=0.6)
        seen: dict[str, None] = {}
        for folded in close:
            seen.setdefault(self.values[field][folded], None)
        return list(seen)


def _parse(path: Path) -> AliasTable:
    try:
        raw: Any = load_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read register aliases: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("columns"), dict):
        raise ConfigError(f"{path}: expected a 'columns:' mapping of field -> aliases")
    columns: dict[str, str] = {}
    column_names: dict[str, tuple[str, ...]] = {}
    for field, aliases in raw["columns"].items():
        if field not in FIELDS:
            raise ConfigError(f"{path}: unknown field {field!r} (fields: {', '.join(FIELDS)})")
        names = (field, *(str(a) for a in aliases or ()))
        column_names[field] = names
        for name in names:
            owner = columns.setdefault(fold(name), field)
            if owner != field:
                raise ConfigError(f"{path}: column alias {name!r} is listed for both {owner} and {field}")
    values: dict[str, dict[str, str]] = {}
    value_names: dict[str, dict[str, tuple[str, ...]]] = {}
    for field, table in (raw.get("values") or {}).items():
        values[field] = {}
        value_names[field] = {}
        for canonical, aliases in table.items():
            names = (str(canonical), *("" if a is None else str(a) for a in aliases or ()))
            value_names[field][str(canonical)] = names
            for name in names:
                owner = values[field].setdefault(fold(name), str(canonical))
                if owner != canonical:
                    raise ConfigError(
                        f"{path}: {field} value {name!r} is listed for both {owner} and {canonical}"
                    )
    for needed in ("kind", "platform", "status", "os"):
        if needed not in values:
            raise ConfigError(f"{path}: 'values:' needs a {needed!r} table")
    required = tuple(str(f) for f in raw.get("required") or ("hostname",))
    return AliasTable(columns, column_names, values, value_names, required)


@lru_cache(maxsize=8)
def _aliases(path: Path) -> AliasTable:
    return _parse(path)


def load_aliases(data_dir: Path | None = None) -> AliasTable:
    return _aliases((data_dir or default_data_dir()).resolve() / "register_aliases.yml")
