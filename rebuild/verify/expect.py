"""What one host must show to pass verification, computed on the controller from project data.

Plain JSON-able data: it is handed to the pytest process (with the connection) and kept
with the results, so a failed check can always be traced to the catalogue entry it used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rebuild.applications import Catalogue, load_catalogue
from rebuild.bitlocker import BitLockerPolicy, load_bitlocker_policy
from rebuild.datadir import PROJECT_ROOT, data_file
from rebuild.edr import EdrCatalogue, load_edr_catalogue
from rebuild.errors import ConfigError
from rebuild.iocs import Indicators, load_indicators
from rebuild.laps import LapsPolicy, host_settings, load_laps_policy
from rebuild.model import Kind
from rebuild.patch import PatchCatalogue, load_patch_catalogue
from rebuild.secureboot import SecureBootPolicy, load_secure_boot_policy
from rebuild.yamlfile import load_shared_yaml

# Setting types of the harden baseline that verification reads itself; the others are
# left to the harden phase's own audit (`rebuild harden audit`) and listed as such.
VERIFIED_SETTING_TYPES = ("registry", "service", "feature", "firewall_profile", "defender_status")


@dataclass
class Expectations:
    host: str
    kind: str  # server | workstation
    service: str
    site: str
    os: str
    image_id: str
    image_sha256: str
    build: str
    caption: str
    domain: str  # expected DNS domain name after the join ("" = must stay in a workgroup)
    admin_name: str
    admin_allowed: list[str]  # accepted members of local Administrators (names, no domain part)
    applications: list[dict[str, str]]  # {id, name, version}
    certificates: list[dict[str, str]]  # {id, name, store, thumbprint}
    printers: list[dict[str, str]]  # {name, driver, port}
    defender_max_signature_age_hours: float
    iocs: dict[str, list[str]]
    hardening: list[dict[str, Any]]  # [{id, title, settings: [...]}] of the types verified here
    hardening_not_verified: list[str] = field(default_factory=list)  # control ids left to harden audit
    # Patch catalogue (inventories/data/patch_levels.yml): CurrentBuildNumber and the minimum UBR.
    patch_build: str = ""
    patch_minimum_ubr: int = 0
    # Secure Boot policy (inventories/data/secure_boot.yml): required | reported, per check.
    secure_boot: str = "required"
    uefi_ca_2023: str = "required"
    # EDR catalogue (inventories/data/edr.yml): per deployed agent, service and onboarding value.
    edr: list[dict[str, Any]] = field(default_factory=list)
    # BitLocker policy (inventories/data/bitlocker.yml): must the OS volume come back encrypted.
    bitlocker_required: bool = False
    # Windows LAPS policy (inventories/data/laps.yml): does LAPS manage the local administrator once
    # joined, and why not (workgroup host, OS without Windows LAPS).
    laps_managed: bool = False
    laps_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Expectations:
        return cls(**dict(raw))


def refuse_bad_verification_data() -> None:
    """Load the data files verification reads per host (Secure Boot policy, EDR catalogue): a bad
    one stops `rebuild plan` and `rebuild site` with its file and key named, before anything is
    recorded or touched, instead of failing every host at verification."""
    load_secure_boot_policy()
    load_edr_catalogue()


def _image(catalogue_file: Path, os_key: str, host: str) -> dict[str, str]:
    try:
        raw = load_shared_yaml(catalogue_file) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"host {host}: image catalogue {catalogue_file} not found") from exc
    images = raw.get("images") or {}
    if os_key not in images:
        raise ConfigError(f"host {host}: OS {os_key!r} is not in the image catalogue {catalogue_file}")
    entry = images[os_key]
    return {k: str(entry.get(k, "")) for k in ("image_id", "sha256", "build", "caption")}


def _hardening(
    host: str, os_key: str, kind: str, site: str, service: str, groups: Sequence[str], admin_name: str
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """The harden baseline compiled for this host (same compiler as the harden phase)."""
    from rebuild.harden.baseline import load_baseline
    from rebuild.harden.compile import HostFacts, compile_host
    from rebuild.harden.exceptions import load_exceptions

    compiled = compile_host(
        load_baseline(),
        HostFacts(name=host, os=os_key, kind=kind, site=site, groups=tuple(groups), service=service),
        load_exceptions(),
        protected_accounts=(admin_name,),
    )
    verified: list[dict[str, Any]] = []
    left: list[str] = []
    admins: list[str] = []
    for control in compiled.controls:
        settings = [
            s
            for s in control["settings"]
            if s["type"] in VERIFIED_SETTING_TYPES and not str(s.get("path", "")).upper().startswith("HKDU:")
        ]
        for s in control["settings"]:
            if s["type"] == "group_members" and s.get("group_sid") == "S-1-5-32-544":
                admins = [str(a) for a in s.get("allowed", [])]
        if len(settings) < len(control["settings"]):
            left.append(control["id"])
        if settings:
            verified.append(
                {
                    "id": control["id"],
                    "title": control["title"],
                    "reboot_required": control.get("reboot_required", False),
                    "settings": settings,
                }
            )
    return verified, left, admins


# The host variables build_expectations reads (rebuild_verify hands over these, templated).
HOSTVARS = (
    "inventory_hostname",
    "group_names",
    "rebuild_kind",
    "rebuild_service",
    "rebuild_os",
    "rebuild_site",
    "rebuild_location",
    "rebuild_applications",
    "rebuild_image_catalogue",
    "rebuild_domain",
    "rebuild_local_admin_name",
)


def build_expectations(
    hostvars: Mapping[str, Any],
    *,
    project_dir: Path | None = None,
    catalogue: Catalogue | None = None,
    indicators: Indicators | None = None,
    defender_max_signature_age_hours: float = 48.0,
    with_hardening: bool = True,
    patches: PatchCatalogue | None = None,
    secure_boot: SecureBootPolicy | None = None,
    edr: EdrCatalogue | None = None,
    bitlocker: BitLockerPolicy | None = None,
    laps: LapsPolicy | None = None,
) -> Expectations:
    """From one host's inventory variables (docs/contracts.md names) and the project data."""
    host = str(hostvars.get("inventory_hostname") or hostvars.get("rebuild_hostname") or "")
    if not host:
        raise ConfigError("verification needs the host's inventory_hostname")
    missing = [
        k for k in ("rebuild_kind", "rebuild_service", "rebuild_os", "rebuild_site") if not hostvars.get(k)
    ]
    if missing:
        raise ConfigError(f"host {host}: inventory lacks {', '.join(missing)}")
    project_dir = project_dir or PROJECT_ROOT
    catalogue = catalogue or load_catalogue()
    indicators = indicators or load_indicators()
    kind, service, os_key, site = (
        str(hostvars[k]) for k in ("rebuild_kind", "rebuild_service", "rebuild_os", "rebuild_site")
    )
    image_file = Path(str(hostvars.get("rebuild_image_catalogue") or data_file("images.yml")))
    if not image_file.is_absolute():
        image_file = project_dir / image_file
    image = _image(image_file, os_key, host)
    patch = (patches or load_patch_catalogue()).for_os(os_key, f"host {host}")
    firmware = (secure_boot or load_secure_boot_policy()).for_host(kind, service)
    deployment = catalogue.for_host(
        hostname=host,
        kind=kind,
        service=service,
        site=site,
        location=str(hostvars.get("rebuild_location") or ""),
        extra=[str(a) for a in hostvars.get("rebuild_applications") or []],
    )
    admin_name = str(hostvars.get("rebuild_local_admin_name") or "rb-admin")
    domain = str(hostvars.get("rebuild_domain") or "")
    laps_host = host_settings(laps or load_laps_policy(), os_key, domain, service)
    hardening: list[dict[str, Any]] = []
    left: list[str] = []
    admins: list[str] = []
    if with_hardening:
        hardening, left, admins = _hardening(
            host, os_key, kind, site, service, [str(g) for g in hostvars.get("group_names") or []], admin_name
        )
    return Expectations(
        host=host,
        kind=kind,
        service=service,
        site=site,
        os=os_key,
        image_id=image["image_id"],
        image_sha256=image["sha256"].lower(),
        build=image["build"],
        caption=image["caption"],
        domain=domain,
        admin_name=admin_name,
        admin_allowed=sorted({admin_name, *admins}),
        applications=[{"id": a.id, "name": a.name, "version": a.version} for a in deployment.applications],
        certificates=[
            {"id": c.id, "name": c.name, "store": c.store, "thumbprint": c.thumbprint.upper()}
            for c in deployment.certificates
        ],
        printers=[{"name": p.name, "driver": p.driver, "port": p.port} for p in deployment.printers],
        defender_max_signature_age_hours=defender_max_signature_age_hours,
        iocs={
            "note_names": list(indicators.note_names),
            "note_folders": list(indicators.note_folders),
            "scheduled_tasks": list(indicators.scheduled_tasks),
            "services": list(indicators.services),
            "files": list(indicators.files),
            "file_extensions": list(indicators.file_extensions),
            "applications": list(indicators.applications),
        },
        hardening=hardening,
        hardening_not_verified=left,
        patch_build=patch.build,
        patch_minimum_ubr=patch.minimum_ubr,
        secure_boot=firmware.secure_boot,
        uefi_ca_2023=firmware.uefi_ca_2023,
        edr=[
            p.to_dict()
            for p in (edr or load_edr_catalogue()).for_applications(a.id for a in deployment.applications)
        ],
        bitlocker_required=(bitlocker or load_bitlocker_policy()).requirement(Kind(kind), service).required,
        laps_managed=bool(laps_host["managed"]),
        laps_reason=str(laps_host["reason"]),
    )
