"""The Secure Boot policy (inventories/data/secure_boot.yml): which firmware checks hold a host back.

Two checks, each `required` (held back, condition `secure_boot`) or `reported` (shown, not held
back): Secure Boot on, and the db trusting the Windows UEFI CA 2023. Per kind and service, the
most specific entry winning. Verification reads the state (rebuild/verify/windows.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuild.errors import ConfigError
from rebuild.tiers import default_data_dir
from rebuild.yamlfile import load_data_file

SECURE_BOOT_FILE = "secure_boot.yml"
CHECKS = ("secure_boot", "uefi_ca_2023")
LEVELS = ("required", "reported")


@dataclass(frozen=True)
class SecureBootRequirement:
    secure_boot: str  # required | reported
    uefi_ca_2023: str


@dataclass(frozen=True)
class SecureBootPolicy:
    source: Path
    default: dict[str, str]
    kinds: dict[str, dict[str, str]]
    services: dict[str, dict[str, str]]

    def for_host(self, kind: str, service: str) -> SecureBootRequirement:
        merged = {**self.default, **self.kinds.get(kind, {}), **self.services.get(service, {})}
        return SecureBootRequirement(merged["secure_boot"], merged["uefi_ca_2023"])


def _levels(raw: Any, where: str, complete: bool) -> dict[str, str]:
    if raw is None and not complete:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {', '.join(CHECKS)} to required|reported")
    unknown = sorted(str(k) for k in set(raw) - set(CHECKS))
    if unknown:
        raise ConfigError(f"{where}: unknown check(s) {', '.join(unknown)} (known: {', '.join(CHECKS)})")
    if complete:
        missing = [c for c in CHECKS if c not in raw]
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(missing)} (each required or reported)")
    out: dict[str, str] = {}
    for check, level in raw.items():
        if level not in LEVELS:
            raise ConfigError(f"{where}: {check} is {level!r}; it must be required or reported")
        out[str(check)] = str(level)
    return out


def _section(raw: Any, where: str) -> dict[str, dict[str, str]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of name -> checks")
    return {str(name): _levels(entry, f"{where}.{name}", complete=False) for name, entry in raw.items()}


def parse_secure_boot_policy(raw: Any, source: Path) -> SecureBootPolicy:
    """Validate the whole file; ConfigError naming the file, the entry and what is wrong."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping with default, kinds and services")
    unknown = sorted(str(k) for k in set(raw) - {"default", "kinds", "services"})
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
    return SecureBootPolicy(
        source,
        _levels(raw.get("default"), f"{source}: default", complete=True),
        _section(raw.get("kinds"), f"{source}: kinds"),
        _section(raw.get("services"), f"{source}: services"),
    )


def load_secure_boot_policy(path: Path | None = None) -> SecureBootPolicy:
    path = path or default_data_dir() / SECURE_BOOT_FILE
    raw = load_data_file(path, "Secure Boot policy")
    return parse_secure_boot_policy(raw, path)
