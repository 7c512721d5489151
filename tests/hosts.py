"""One way for tests to make a register `Host` (the journal, report and promotion tests each
needed the same one): a physical Windows 11 host of Arlon's emergency department unless told."""

from __future__ import annotations

from rebuild.model import Host, Kind, Platform


def register_host(
    name: str,
    *,
    kind: Kind = Kind.WORKSTATION,
    site: str = "arlon",
    service: str = "emergency",
    service_label: str | None = None,
    tier: int = 1,
    asset_tag: str | None = None,
) -> Host:
    return Host(
        hostname=name,
        asset_tag=name if asset_tag is None else asset_tag,
        kind=kind,
        platform=Platform.PHYSICAL,
        os="windows-11-23h2",
        site=site,
        service=service,
        service_label=service if service_label is None else service_label,
        tier=tier,
    )
