"""Service tiers: which services come back first, read from inventories/data/tiers.yml.

Registers name services the way each hospital writes them (French, Dutch, German, English,
any case, with or without accents). `match_service` maps such a label to the canonical
service key and its tier, or fails naming the closest known names, so a typo never silently
sends an emergency PC to the back of the queue.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

# Re-exported: older imports (lab, tests) read these from here; rebuild.datadir owns them.
from rebuild.datadir import DATA_DIR_ENV as DATA_DIR_ENV
from rebuild.datadir import PROJECT_ROOT as PROJECT_ROOT
from rebuild.datadir import default_data_dir as default_data_dir
from rebuild.errors import ConfigError
from rebuild.yamlfile import load_yaml

_NON_WORD = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """Fold a label for matching: case, accents, punctuation and spacing do not count.

    >>> fold("  Bloc  OPÉRATOIRE ")
    'bloc operatoire'
    >>> fold("Soins-intensifs")
    'soins intensifs'
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", stripped).strip()


class UnknownServiceError(ConfigError):
    """A service label maps to no tier; carries the closest known names."""

    def __init__(self, label: str, suggestions: list[str]) -> None:
        self.label = label
        self.suggestions = suggestions
        hint = f"; closest known: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"unknown service {label!r}{hint}")


@dataclass(frozen=True, slots=True)
class Tier:
    id: int
    name: str  # e.g. "shared-infrastructure"
    label: str  # for people, e.g. "Shared infrastructure"
    services: dict[str, tuple[str, ...]]  # canonical key -> names registers use, in tiers.yml order
    one_service_per_batch: bool = False  # servers of interdependent services come back in turn
    # Service key -> the services of this tier it needs back first (tiers.yml `needs`, each
    # listed before it). None: each service needs every one listed before it.
    needs: dict[str, tuple[str, ...]] | None = None

    def level(self, key: str) -> int:
        """How many services must come back one after the other before `key` may start: 0 for
        a service that needs none; services of one level may come back together."""
        if self.needs is None:
            return self.service_rank(key) if key in self.services else len(self.services)
        if key not in self.services:
            return max((self.level(k) for k in self.services), default=-1) + 1  # unknown: last
        return max((self.level(k) + 1 for k in self.needs.get(key, ())), default=0)

    @property
    def group_name(self) -> str:
        """Inventory group of this tier: tier_<id>_<name> with [a-z0-9_] only."""
        return f"tier_{self.id}_{self.name.replace('-', '_')}"

    def service_rank(self, key: str) -> int:
        """Position of a service in its tier (tiers.yml order: directory before DNS ...)."""
        return list(self.services).index(key)


@dataclass(frozen=True)
class TierTable:
    tiers: tuple[Tier, ...]
    by_folded: dict[str, tuple[str, Tier]]  # folded name -> (service key, tier)
    display_names: dict[str, str]  # folded name -> the name as tiers.yml writes it

    def match(self, label: str) -> tuple[str, Tier]:
        found = self.by_folded.get(fold(label))
        if found is None:
            close = difflib.get_close_matches(fold(label), list(self.by_folded), n=3, cutoff=0.6)
            raise UnknownServiceError(label, [self.display_names[c] for c in close])
        return found

    def tier(self, tier_id: int) -> Tier:
        for tier in self.tiers:
            if tier.id == tier_id:
                return tier
        raise ConfigError(f"no tier {tier_id} in tiers.yml (known: {[t.id for t in self.tiers]})")

    def service_tier(self, key: str) -> Tier:
        for tier in self.tiers:
            if key in tier.services:
                return tier
        raise ConfigError(f"no service key {key!r} in tiers.yml")


def _parse(path: Path) -> TierTable:
    try:
        raw: Any = load_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read tiers: {exc}") from exc
    entries = raw.get("tiers") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a non-empty 'tiers:' list")
    tiers: list[Tier] = []
    by_folded: dict[str, tuple[str, Tier]] = {}
    display: dict[str, str] = {}
    for n, entry in enumerate(entries, 1):
        try:
            services = {
                str(key): tuple(str(name) for name in names) for key, names in entry["services"].items()
            }
            tier = Tier(
                int(entry["id"]),
                str(entry["name"]),
                str(entry["label"]),
                services,
                bool(entry.get("one_service_per_batch", False)),
                _needs(path, str(entry["name"]), services, entry.get("needs")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{path}: tier #{n} needs id, name, label and services: {exc}") from exc
        if tiers and tier.id <= tiers[-1].id:
            raise ConfigError(f"{path}: tier ids must increase in priority order (tier {tier.name})")
        tiers.append(tier)
        for key, names in services.items():
            # The canonical key itself is always accepted (JSON exports often carry it).
            for name in (key, *names):
                folded = fold(name)
                owner = by_folded.get(folded)
                if owner is not None and owner[0] != key:
                    raise ConfigError(
                        f"{path}: service name {name!r} is listed for both {owner[0]!r} and {key!r}"
                    )
                by_folded[folded] = (key, tier)
                display.setdefault(folded, name)
    return TierTable(tuple(tiers), by_folded, display)


def _needs(
    path: Path, tier: str, services: dict[str, tuple[str, ...]], raw: Any
) -> dict[str, tuple[str, ...]] | None:
    """A tier's `needs` (service -> services it needs back first). Each needed service must be
    listed before the one needing it: the order people read is an order that works, no cycle."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: tier {tier}: 'needs' must map a service key to a list of service keys")
    order = list(services)
    needs: dict[str, tuple[str, ...]] = {}
    for key, needed in raw.items():
        if key not in services:
            raise ConfigError(f"{path}: tier {tier}: 'needs' names {key!r}, not a service of this tier")
        if not isinstance(needed, list) or not all(isinstance(k, str) for k in needed):
            raise ConfigError(f"{path}: tier {tier}: 'needs' of {key!r} must be a list of service keys")
        for other in needed:
            if other not in services or order.index(other) >= order.index(key):
                raise ConfigError(
                    f"{path}: tier {tier}: {key!r} needs {other!r}, which is not a service listed before it"
                )
        needs[key] = tuple(needed)
    return needs


@lru_cache(maxsize=8)
def _table(path: Path) -> TierTable:
    return _parse(path)


def tier_table(data_dir: Path | None = None) -> TierTable:
    return _table((data_dir or default_data_dir()).resolve() / "tiers.yml")


def load_tiers(data_dir: Path | None = None) -> list[Tier]:
    """Tiers in priority order (tier 0 first)."""
    return list(tier_table(data_dir).tiers)


def match_service(label: str, data_dir: Path | None = None) -> tuple[str, Tier]:
    """Map a register's service label to (canonical service key, tier).

    >>> match_service("SPOEDGEVALLEN")[0]
    'emergency'

    Raises UnknownServiceError (a ConfigError) naming the closest known names.
    """
    return tier_table(data_dir).match(label)
