"""The order of work for one site: waves (one per tier), each cut into batches.

Inside a wave servers come before workstations (a PC of the emergency room is useless
until its servers answer), services in tiers.yml order (the directory before DNS before
PKI ...), and no batch is larger than the site's imaging capacity. In a tier marked
`one_service_per_batch` (shared infrastructure) each service's servers have batches of
their own, so a service is back before the next one that depends on it starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild.datachecks import refuse_bad_data
from rebuild.errors import ConfigError
from rebuild.inventory import hosts_of_inventory, image_catalogues_of, read_ansible_inventory
from rebuild.model import Host, Kind
from rebuild.register import EXAMPLE_REGISTER, load_register
from rebuild.sites import Site, get_site
from rebuild.tiers import Tier, tier_table


@dataclass(frozen=True)
class ServiceCount:
    service: str
    label: str  # service key as people read it (first register name in tiers.yml)
    servers: int
    workstations: int

    @property
    def total(self) -> int:
        return self.servers + self.workstations


@dataclass
class Wave:
    tier: Tier
    batches: list[list[Host]]
    counts: list[ServiceCount] = field(default_factory=list)

    @property
    def hosts(self) -> list[Host]:
        return [h for batch in self.batches for h in batch]

    def stages(self) -> list[list[list[Host]]]:
        """The wave's batches grouped into stages that run one after the other.

        Batches of one stage may overlap (the orchestrator pipelines them): nothing in a stage
        needs another batch of the same stage. A new stage starts where PCs follow servers
        (PCs need their servers back) and, in a tier of interdependent services
        (`one_service_per_batch`), where a service needs one of the stage before (DNS needs the
        directory back; PKI, updates, imaging and the patient record need DNS, not each other:
        tiers.yml `needs`).

        Stages of one wave overlap in a site run: a stage's batches reimage and harden while the
        stage before still runs, and redeploy once it is over (rebuild.orchestrator.scheduler).
        """
        stages: list[list[list[Host]]] = []
        previous: tuple[Kind, int] | None = None
        for batch in self.batches:
            first = batch[0]
            interdependent = self.tier.one_service_per_batch and first.kind is Kind.SERVER
            level = self.tier.level(first.service) if interdependent else 0
            key = (first.kind, level)
            if key != previous:
                stages.append([])
                previous = key
            stages[-1].append(batch)
        return stages

    def stage_numbers(self) -> list[list[int]]:
        """The batch numbers (from 1, as the plan shows them) of each stage."""
        numbers: list[list[int]] = []
        n = 0
        for stage in self.stages():
            numbers.append(list(range(n + 1, n + len(stage) + 1)))
            n += len(stage)
        return numbers

    @property
    def servers(self) -> int:
        return sum(c.servers for c in self.counts)

    @property
    def workstations(self) -> int:
        return sum(c.workstations for c in self.counts)


@dataclass
class Plan:
    site: Site
    waves: list[Wave]

    @property
    def hosts(self) -> list[Host]:
        return [h for wave in self.waves for h in wave.hosts]

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site.name,
            "site_label": self.site.label,
            "imaging_capacity": self.site.imaging_capacity,
            "hosts": len(self.hosts),
            "servers": sum(w.servers for w in self.waves),
            "workstations": sum(w.workstations for w in self.waves),
            "waves": [
                {
                    "wave": n,
                    "tier": w.tier.id,
                    "tier_name": w.tier.name,
                    "tier_label": w.tier.label,
                    "servers": w.servers,
                    "workstations": w.workstations,
                    "services": {
                        c.service: {"servers": c.servers, "workstations": c.workstations} for c in w.counts
                    },
                    "batches": [[h.hostname for h in batch] for batch in w.batches],
                    "stages": w.stage_numbers(),
                }
                for n, w in enumerate(self.waves, 1)
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The plan for machines (`rebuild plan site X --format json`)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_text(self) -> str:
        """The plan for the crisis cell: waves, batches, counts per service. Plain text (pipes well)."""
        total = self.hosts
        servers = sum(w.servers for w in self.waves)
        lines = [
            f"Rebuild plan for {self.site.label} ({self.site.name}): {_n(len(total), 'machine')} "
            f"({_n(servers, 'server')}, {_n(len(total) - servers, 'PC')}), "
            f"{_n(len(self.waves), 'wave')}, up to {self.site.imaging_capacity} machines reimaged at once",
            "",
        ]
        for n, wave in enumerate(self.waves, 1):
            lines.append(
                f"Wave {n} - tier {wave.tier.id} {wave.tier.label}: {_n(wave.servers, 'server')}, "
                f"{_n(wave.workstations, 'PC')}, {_n(len(wave.batches), 'batch', 'batches')}"
            )
            width = max(len("service"), *(len(c.label) for c in wave.counts))
            lines.append(f"    {'service':<{width}}  servers    PCs")
            for c in wave.counts:
                lines.append(f"    {c.label:<{width}}  {c.servers:>7}  {c.workstations:>5}")
            for b, batch in enumerate(wave.batches, 1):
                kind = ("server" if batch[0].kind is Kind.SERVER else "PC") + ("s" if len(batch) > 1 else "")
                names = ", ".join(h.hostname for h in batch[:6])
                more = f", ... (+{len(batch) - 6})" if len(batch) > 6 else ""
                lines.append(f"  batch {b:>3} ({len(batch):>3} {kind}): {names}{more}")
            stages = wave.stage_numbers()
            if len(stages) > 1:
                lines.append(
                    "  stages: "
                    + " | ".join(_batch_range(numbers) for numbers in stages)
                    + " (each reimages and hardens while the one before runs, redeploys once it is over)"
                )
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def _batch_range(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"batch {numbers[0]}"
    return f"batches {numbers[0]}-{numbers[-1]}"


def _n(count: int, word: str, plural: str = "") -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _chunks(hosts: list[Host], size: int) -> Iterable[list[Host]]:
    for start in range(0, len(hosts), size):
        yield hosts[start : start + size]


def plan_site(hosts: Iterable[Host], site: Site) -> Plan:
    """Waves for the hosts of `site` (hosts of other sites are ignored).

    Raises ConfigError when the site has no host: a plan of nothing is a wrong register or site.
    """
    table = tier_table()
    own = [h for h in hosts if h.site == site.name]
    if not own:
        raise ConfigError(f"no host of site {site.name!r} in this register/inventory")
    waves: list[Wave] = []
    for tier in table.tiers:
        members = [h for h in own if h.tier == tier.id]
        if not members:
            continue
        rank = {key: i for i, key in enumerate(tier.services)}

        def order(h: Host, rank: dict[str, int] = rank) -> tuple[int, str]:
            return rank.get(h.service, len(rank)), h.hostname

        batches: list[list[Host]] = []
        counts: list[ServiceCount] = []
        # Servers and PCs never share a batch: PCs start only once the tier's servers are done.
        # In a tier of interdependent services (tier 0) each service's servers get their own
        # batches, in tiers.yml order: the directory is back before DNS, PKI, ...
        servers = sorted((h for h in members if h.kind is Kind.SERVER), key=order)
        if tier.one_service_per_batch:
            # by level (what they need is back), then tiers.yml order
            keys = sorted(tier.services, key=lambda k: (tier.level(k), tier.service_rank(k)))
            keys += sorted({h.service for h in servers} - set(tier.services))
            for key in keys:
                batches.extend(_chunks([h for h in servers if h.service == key], site.imaging_capacity))
        else:
            batches.extend(_chunks(servers, site.imaging_capacity))
        batches.extend(
            _chunks(
                sorted((h for h in members if h.kind is Kind.WORKSTATION), key=order), site.imaging_capacity
            )
        )
        for key in sorted({h.service for h in members}, key=lambda k: rank.get(k, len(rank))):
            of_service = [h for h in members if h.service == key]
            name = tier.services[key][0] if tier.services.get(key) else key
            label = name if name.casefold() == key.casefold() else f"{name} ({key})"
            counts.append(
                ServiceCount(
                    key,
                    label,
                    sum(1 for h in of_service if h.kind is Kind.SERVER),
                    sum(1 for h in of_service if h.kind is Kind.WORKSTATION),
                )
            )
        waves.append(Wave(tier, batches, counts))
    unplanned = sorted({h.tier for h in own} - {w.tier.id for w in waves})
    if unplanned:
        raise ConfigError(f"hosts carry tiers unknown to tiers.yml: {unplanned}")
    return Plan(site, waves)


def plan_for(
    site_name: str,
    *,
    register: Path | None = None,
    inventory: Path | None = None,
    sheet: str | None = None,
) -> Plan:
    """Plan a site from a register (strict: any problem raises) or from a built inventory.

    The site is checked first, so a typo fails fast with the list of known sites.
    """
    site = get_site(site_name)
    if inventory is not None:
        manager = read_ansible_inventory(inventory)
        hosts = hosts_of_inventory(manager, inventory)
        catalogues = image_catalogues_of(manager, (h for h in hosts if h.site == site.name), site.group_name)
    else:
        result = load_register(register or EXAMPLE_REGISTER, sheet=sheet)
        result.raise_for_problems()
        hosts = result.hosts
        catalogues = {None: [h.os for h in hosts if h.site == site.name]}
    refuse_bad_data(catalogues)
    return plan_site(hosts, site)
