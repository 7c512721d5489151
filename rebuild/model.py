"""The shared vocabulary: one asset of the register, as every later step sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    SERVER = "server"
    WORKSTATION = "workstation"


class Platform(StrEnum):
    PHYSICAL = "physical"
    VIRTUAL = "virtual"


class Status(StrEnum):
    IN_SERVICE = "in-service"
    RETIRED = "retired"
    SPARE = "spare"


@dataclass(frozen=True, slots=True)
class Host:
    """One machine to rebuild, validated and mapped to its site and tier."""

    hostname: str  # upper case, as Windows reports it (NetBIOS form, no domain)
    asset_tag: str
    kind: Kind
    platform: Platform
    os: str  # key of the image catalogue, e.g. "windows-server-2022", "windows-11-23h2"
    site: str  # key of inventories/data/sites.yml, e.g. "arlon"
    service: str  # canonical service key from tiers.yml, e.g. "emergency"
    service_label: str  # the service as the register wrote it
    tier: int
    location: str = ""
    ip: str = ""
    mac: str = ""  # normalised aa:bb:cc:dd:ee:ff
    bmc_address: str = ""  # physical servers only
    vm_ref: str = ""  # virtual machines only: hypervisor's reference
    applications: tuple[str, ...] = field(default_factory=tuple)
    serial: str = ""
    network: str = ""  # name of the site network the IP falls in

    @property
    def is_server(self) -> bool:
        return self.kind is Kind.SERVER
