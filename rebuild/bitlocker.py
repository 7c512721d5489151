"""The BitLocker policy (inventories/data/bitlocker.yml): which hosts must come back encrypted.

Per host kind a default, per service an exception (off needs a reason), and how the OS volume is
encrypted. Format: docs/contracts.md, "BitLocker policy".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuild.errors import ConfigError
from rebuild.model import Kind
from rebuild.tiers import TierTable, default_data_dir, tier_table
from rebuild.yamlfile import load_data_file

BITLOCKER_FILE = "bitlocker.yml"
# Enable-BitLocker -EncryptionMethod (Microsoft Learn, Enable-BitLocker); XTS since Windows 10 1511.
ENCRYPTION_METHODS = ("Aes128", "Aes256", "XtsAes128", "XtsAes256")
_KEYS = {"encryption_method", "used_space_only", "encryption_timeout_minutes", "kinds", "services"}


@dataclass(frozen=True)
class Requirement:
    required: bool
    reason: str  # why it is off ('' when required, or off by its kind's default)


@dataclass(frozen=True)
class BitLockerPolicy:
    source: Path
    encryption_method: str
    used_space_only: bool
    encryption_timeout_minutes: int
    kinds: dict[Kind, Requirement]  # the default per host kind
    services: dict[str, Requirement]  # service key -> exception to its kind's default

    def requirement(self, kind: Kind, service: str) -> Requirement:
        """Whether a host of this kind and service must be encrypted before it counts as back."""
        if service in self.services:
            return self.services[service]
        return self.kinds[kind]


def _bool(raw: Any, what: str) -> bool:
    if not isinstance(raw, bool):
        raise ConfigError(f"{what} must be true or false, not {raw!r}")
    return raw


def _requirement(raw: Any, where: str) -> Requirement:
    if not isinstance(raw, Mapping) or not set(raw) <= {"required", "reason"} or "required" not in raw:
        raise ConfigError(f"{where}: expected {{required: true|false, reason: why (when false)}}")
    required = _bool(raw["required"], f"{where}: required")
    reason = str(raw.get("reason") or "").strip()
    if not required and not reason:
        raise ConfigError(f"{where}: BitLocker off needs a reason (shown in the journal and report)")
    return Requirement(required, "" if required else reason)


def parse_bitlocker_policy(raw: Any, source: Path, tiers: TierTable) -> BitLockerPolicy:
    """Validate the whole file; ConfigError naming the file, the key and what is wrong."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping ({', '.join(sorted(_KEYS))})")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(map(str, unknown))}")
    method = str(raw.get("encryption_method") or "")
    if method not in ENCRYPTION_METHODS:
        raise ConfigError(
            f"{source}: encryption_method {method!r} must be one of {', '.join(ENCRYPTION_METHODS)}"
        )
    timeout = raw.get("encryption_timeout_minutes")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ConfigError(
            f"{source}: encryption_timeout_minutes must be a whole number >= 1, not {timeout!r}"
        )
    kinds_raw = raw.get("kinds")
    if not isinstance(kinds_raw, Mapping) or set(kinds_raw) != {k.value for k in Kind}:
        raise ConfigError(f"{source}: kinds must give exactly {', '.join(k.value for k in Kind)}")
    kinds = {Kind(key): _requirement(value, f"{source}: kinds {key}") for key, value in kinds_raw.items()}
    services_raw = raw.get("services") or {}
    if not isinstance(services_raw, Mapping):
        raise ConfigError(f"{source}: services must map service keys of tiers.yml to {{required, reason}}")
    known = {key for tier in tiers.tiers for key in tier.services}
    services: dict[str, Requirement] = {}
    for key, value in services_raw.items():
        if key not in known:
            raise ConfigError(
                f"{source}: services {key}: not a service key of tiers.yml "
                f"(known: {', '.join(sorted(known))})"
            )
        services[str(key)] = _requirement(value, f"{source}: services {key}")
    return BitLockerPolicy(
        source=source,
        encryption_method=method,
        used_space_only=_bool(raw.get("used_space_only", True), f"{source}: used_space_only"),
        encryption_timeout_minutes=timeout,
        kinds=kinds,
        services=services,
    )


def load_bitlocker_policy(data_dir: Path | None = None) -> BitLockerPolicy:
    data_dir = data_dir or default_data_dir()
    path = data_dir / BITLOCKER_FILE
    raw = load_data_file(path, "BitLocker policy")
    return parse_bitlocker_policy(raw, path, tier_table(data_dir))


def redeploy_settings(policy: BitLockerPolicy, kind: str, service: str) -> dict[str, Any]:
    """What the redeploy step (roles/redeploy/tasks/bitlocker.yml) needs for one host: whether to
    encrypt, why not, and how (Enable-BitLocker's parameters, the bound of the wait)."""
    try:
        host_kind = Kind(kind)
    except ValueError:
        raise ConfigError(f"{policy.source}: host kind {kind!r} is not server or workstation") from None
    need = policy.requirement(host_kind, service)
    return {
        "required": need.required,
        "reason": need.reason,
        "encryption_method": policy.encryption_method,
        "used_space_only": policy.used_space_only,
        "encryption_timeout_minutes": policy.encryption_timeout_minutes,
    }
