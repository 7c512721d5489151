"""The EDR catalogue (inventories/data/edr.yml): how to tell an agent is running and onboarded.

Per application id of the application catalogue: the sensor's service and the registry value it
writes once onboarded to its tenant. A host whose deployment installs such an application must
show both (verification, condition `edr_onboarded`); installed alone is not enough.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rebuild.errors import ConfigError
from rebuild.tiers import default_data_dir
from rebuild.yamlfile import load_data_file

EDR_FILE = "edr.yml"
_SERVICE = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")


@dataclass(frozen=True)
class EdrProduct:
    application: str  # application catalogue id
    service: str
    registry_key: str  # HKLM:\...
    registry_value: str
    onboarded: int | str  # the value's data once onboarded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EdrCatalogue:
    source: Path
    products: dict[str, EdrProduct]

    def for_applications(self, application_ids: Iterable[str]) -> list[EdrProduct]:
        """The EDR products among a host's applications, in catalogue order."""
        wanted = set(application_ids)
        return [p for key, p in self.products.items() if key in wanted]


def _product(key: str, raw: Any, where: str) -> EdrProduct:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping {{service, registry}}")
    unknown = sorted(str(k) for k in set(raw) - {"service", "registry"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    service = str(raw.get("service") or "")
    if not _SERVICE.match(service):
        raise ConfigError(f"{where}: service {service!r} is not a Windows service name")
    registry = raw.get("registry")
    if not isinstance(registry, Mapping):
        raise ConfigError(f"{where}: registry must be a mapping {{key, value, onboarded}}")
    unknown = sorted(str(k) for k in set(registry) - {"key", "value", "onboarded"})
    if unknown:
        raise ConfigError(f"{where}: registry: unknown key(s) {', '.join(unknown)}")
    reg_key, value = str(registry.get("key") or ""), str(registry.get("value") or "")
    if not reg_key.upper().startswith("HKLM:\\"):
        raise ConfigError(f"{where}: registry key {reg_key!r} must be an HKLM:\\ path")
    if not value:
        raise ConfigError(f"{where}: registry value (the onboarding value's name) is missing")
    onboarded = registry.get("onboarded")
    if isinstance(onboarded, bool) or not isinstance(onboarded, int | str) or onboarded == "":
        raise ConfigError(f"{where}: registry onboarded must be the value's data (a number or text)")
    return EdrProduct(key, service, reg_key, value, onboarded)


def parse_edr_catalogue(raw: Any, source: Path) -> EdrCatalogue:
    """Validate the whole file; ConfigError naming the file, the product and what is wrong."""
    if not isinstance(raw, Mapping) or set(raw) - {"products"}:
        raise ConfigError(f"{source}: expected a mapping with only 'products'")
    products = raw.get("products")
    if not isinstance(products, Mapping):
        raise ConfigError(f"{source}: 'products' must map application ids to their onboarding check")
    return EdrCatalogue(
        source,
        {str(k): _product(str(k), v, f"{source}: products {k}") for k, v in products.items()},
    )


def load_edr_catalogue(path: Path | None = None) -> EdrCatalogue:
    path = path or default_data_dir() / EDR_FILE
    raw = load_data_file(path, "EDR catalogue")
    return parse_edr_catalogue(raw, path)
