"""The Windows LAPS policy (inventories/data/laps.yml): who manages a joined host's local admin.

Before the domain join the rebuild's per-host secret (rebuild/secrets.py) is the local
administrator's password; after it, Windows LAPS is: this module validates the policy the redeploy
step writes, the registry values it becomes, and on which OS builds Windows LAPS exists at all.
Format: docs/contracts.md, "Windows LAPS policy".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild.errors import ConfigError
from rebuild.patch import PatchCatalogue, load_patch_catalogue
from rebuild.tiers import default_data_dir
from rebuild.yamlfile import load_data_file

LAPS_FILE = "laps.yml"
# Microsoft Learn, "Configure policy settings for Windows LAPS": the LAPS Group Policy root.
POLICY_ROOT = r"HKLM:\Software\Microsoft\Windows\CurrentVersion\Policies\LAPS"
BACKUP_DIRECTORIES = {"active_directory": 2}  # BackupDirectory; 1 (Entra ID) is not what rebuild joins
POST_AUTHENTICATION_ACTIONS = (1, 3, 5, 11)
# Microsoft Learn, "Use Windows LAPS event logs": the log, and the password update confirmations
# (10018: Active Directory has the new password; 10020: the local account has it). 10017: the
# directory refused it. Redeploy waits for them after Reset-LapsPassword; verification reads them.
EVENT_LOG = "Microsoft-Windows-LAPS/Operational"
EVENT_AD_UPDATED = 10018
EVENT_LOCAL_UPDATED = 10020
EVENT_AD_UPDATE_FAILED = 10017
_KEYS = {
    "backup_directory",
    "password_age_days",
    "password_length",
    "password_complexity",
    "ad_password_encryption",
    "post_authentication_actions",
    "post_authentication_reset_delay_hours",
    "rotation_timeout_minutes",
    "os",
}
_OPTIONAL_KEYS = {"services"}


@dataclass(frozen=True)
class LapsPolicy:
    source: Path
    backup_directory: str
    password_age_days: int
    password_length: int
    password_complexity: int
    ad_password_encryption: bool
    post_authentication_actions: int
    post_authentication_reset_delay_hours: int
    rotation_timeout_minutes: int
    os_minimum_ubr: dict[str, int]  # OS key -> UBR from which the build has Windows LAPS
    os_unavailable: dict[str, str]  # OS key -> why Windows LAPS cannot manage it
    services_unavailable: dict[str, str] = field(default_factory=dict)  # service key -> why not

    def registry_values(self) -> dict[str, int]:
        """REG_DWORD values written under POLICY_ROOT (names as Microsoft Learn spells them)."""
        return {
            "BackupDirectory": BACKUP_DIRECTORIES[self.backup_directory],
            "PasswordAgeDays": self.password_age_days,
            "PasswordLength": self.password_length,
            "PasswordComplexity": self.password_complexity,
            "ADPasswordEncryptionEnabled": int(self.ad_password_encryption),
            "PostAuthenticationActions": self.post_authentication_actions,
            "PostAuthenticationResetDelay": self.post_authentication_reset_delay_hours,
        }

    def unavailable_reason(self, os_key: str, where: str = "") -> str:
        """Why Windows LAPS cannot manage a host of this OS ('' when it can)."""
        if os_key in self.os_unavailable:
            return self.os_unavailable[os_key]
        if os_key not in self.os_minimum_ubr:
            prefix = f"{where}: " if where else ""
            raise ConfigError(
                f"{prefix}OS {os_key!r} has no entry in the Windows LAPS policy {self.source} "
                f"(known: {', '.join(sorted(set(self.os_minimum_ubr) | set(self.os_unavailable)))})"
            )
        return ""

    def patch_gaps(self, catalogue: PatchCatalogue) -> list[str]:
        """OSes whose patch minimum is below the update that brought Windows LAPS: a host promoted
        at that level would have no LAPS to hand its administrator to."""
        return [
            f"{os_key}: the patch catalogue's minimum UBR {catalogue.levels[os_key].minimum_ubr} is "
            f"below {ubr}, the first with Windows LAPS ({self.source})"
            for os_key, ubr in sorted(self.os_minimum_ubr.items())
            if os_key in catalogue.levels and catalogue.levels[os_key].minimum_ubr < ubr
        ]


def host_settings(policy: LapsPolicy, os_key: str, domain: str, service: str = "") -> dict[str, Any]:
    """What the redeploy step (roles/redeploy/tasks/laps.yml) and verification need for one host:
    whether Windows LAPS takes over its local administrator, why not, and the values to write.
    A host that stays in a workgroup, of a service the policy exempts (the domain controllers), or
    whose OS has no Windows LAPS, keeps the rebuild secret."""
    if not domain:
        reason = "not domain-joined: the rebuild secret stays the local administrator's"
    elif service in policy.services_unavailable:
        reason = policy.services_unavailable[service]
    else:
        reason = policy.unavailable_reason(os_key, f"OS {os_key}")
    return {
        "managed": not reason,
        "reason": reason,
        "policy_root": POLICY_ROOT,
        "registry_values": policy.registry_values(),
        "rotation_timeout_minutes": policy.rotation_timeout_minutes,
        "event_log": EVENT_LOG,
        "events": {
            "ad_updated": EVENT_AD_UPDATED,
            "local_updated": EVENT_LOCAL_UPDATED,
            "ad_update_failed": EVENT_AD_UPDATE_FAILED,
        },
    }


def _int(raw: Any, what: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise ConfigError(f"{what} must be a whole number from {low} to {high}, not {raw!r}")
    return raw


def _os_entries(raw: Any, source: Path) -> tuple[dict[str, int], dict[str, str]]:
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{source}: 'os' must map each OS key to {{minimum_ubr}} or {{unavailable: why}}")
    minimum: dict[str, int] = {}
    unavailable: dict[str, str] = {}
    for key, entry in raw.items():
        where = f"{source}: os {key}"
        if (
            not isinstance(entry, Mapping)
            or len(entry) != 1
            or not set(entry) <= {"minimum_ubr", "unavailable"}
        ):
            raise ConfigError(f"{where}: expected exactly one of minimum_ubr (a UBR) or unavailable (why)")
        if "unavailable" in entry:
            reason = str(entry["unavailable"] or "").strip()
            if not reason:
                raise ConfigError(f"{where}: unavailable needs the reason (shown in the journal and report)")
            unavailable[str(key)] = reason
        else:
            minimum[str(key)] = _int(entry["minimum_ubr"], f"{where}: minimum_ubr", 0, 2**31 - 1)
    return minimum, unavailable


def _service_entries(raw: Any, source: Path) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: 'services' must map service keys of tiers.yml to {{unavailable: why}}")
    found: dict[str, str] = {}
    for key, entry in raw.items():
        where = f"{source}: services {key}"
        if not isinstance(entry, Mapping) or set(entry) != {"unavailable"}:
            raise ConfigError(f"{where}: expected {{unavailable: why}}")
        reason = str(entry["unavailable"] or "").strip()
        if not reason:
            raise ConfigError(f"{where}: unavailable needs the reason (shown in the journal and report)")
        found[str(key)] = reason
    return found


def parse_laps_policy(raw: Any, source: Path) -> LapsPolicy:
    """Validate the whole file; ConfigError naming the file, the key and what is wrong."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping (backup_directory, password_age_days, ..., os)")
    unknown = sorted(set(raw) - _KEYS - _OPTIONAL_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(map(str, unknown))}")
    missing = sorted(_KEYS - set(raw))
    if missing:
        raise ConfigError(f"{source}: missing key(s) {', '.join(missing)}")
    backup = str(raw["backup_directory"])
    if backup not in BACKUP_DIRECTORIES:
        raise ConfigError(
            f"{source}: backup_directory {backup!r} must be one of {', '.join(BACKUP_DIRECTORIES)}"
        )
    encryption = raw["ad_password_encryption"]
    if not isinstance(encryption, bool):
        raise ConfigError(f"{source}: ad_password_encryption must be true or false, not {encryption!r}")
    actions = raw["post_authentication_actions"]
    if isinstance(actions, bool) or actions not in POST_AUTHENTICATION_ACTIONS:
        raise ConfigError(
            f"{source}: post_authentication_actions {actions!r} must be one of "
            f"{', '.join(map(str, POST_AUTHENTICATION_ACTIONS))}"
        )
    minimum, unavailable = _os_entries(raw["os"], source)
    services = _service_entries(raw.get("services") or {}, source)
    return LapsPolicy(
        source=source,
        backup_directory=backup,
        password_age_days=_int(raw["password_age_days"], f"{source}: password_age_days", 1, 365),
        password_length=_int(raw["password_length"], f"{source}: password_length", 8, 64),
        password_complexity=_int(raw["password_complexity"], f"{source}: password_complexity", 1, 4),
        ad_password_encryption=encryption,
        post_authentication_actions=actions,
        post_authentication_reset_delay_hours=_int(
            raw["post_authentication_reset_delay_hours"],
            f"{source}: post_authentication_reset_delay_hours",
            0,
            24,
        ),
        rotation_timeout_minutes=_int(
            raw["rotation_timeout_minutes"], f"{source}: rotation_timeout_minutes", 1, 24 * 60
        ),
        os_minimum_ubr=minimum,
        os_unavailable=unavailable,
        services_unavailable=services,
    )


def load_laps_policy(path: Path | None = None) -> LapsPolicy:
    path = path or default_data_dir() / LAPS_FILE
    raw = load_data_file(path, "Windows LAPS policy")
    return parse_laps_policy(raw, path)


def refuse_unmanageable_oses(os_keys: Iterable[str]) -> None:
    """Plan time, before anything is recorded: the LAPS policy is valid, has an entry for every OS
    planned, and no OS's patch minimum predates Windows LAPS. ConfigError naming each problem."""
    policy = load_laps_policy()
    for os_key in sorted(set(os_keys)):
        policy.unavailable_reason(os_key, "hosts of this run")
    gaps = policy.patch_gaps(load_patch_catalogue())
    if gaps:
        raise ConfigError(
            "the patch minimum of some OSes predates Windows LAPS, so a host promoted at it could "
            "have no LAPS to manage its administrator:\n  " + "\n  ".join(gaps)
        )
