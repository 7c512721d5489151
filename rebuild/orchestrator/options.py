"""What `rebuild site` is asked (SiteRunOptions), what it answers (SiteRunResult, exit codes),
and the check of every option before anything is locked, recorded or touched."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rebuild.datadir import PROJECT_ROOT
from rebuild.errors import OptionError
from rebuild.orchestrator import tier0_gates
from rebuild.tiers import tier_table
from rebuild.yamlfile import load_yaml

DEFAULT_PLAYBOOK = PROJECT_ROOT / "playbooks" / "site.yml"

EXIT_OK, EXIT_FAILED_HOSTS, EXIT_BREAKER, EXIT_INTERRUPTED = 0, 1, 4, 130


@dataclass
class SiteRunOptions:
    site: str
    inventory: Path
    state_dir: Path
    operator: str
    yes: bool = False
    dry_run: bool = False
    limit: tuple[str, ...] = ()
    tier: int | None = None
    force_hosts: tuple[str, ...] = ()
    confirm_each_wave: bool = False
    breaker_threshold: float = 0.2
    json: bool = False
    rehearsal: bool = False
    new_journal: bool = False  # may start an empty journal for the site (else refused)
    playbook: Path = DEFAULT_PLAYBOOK
    imaging_capacity: int | None = None  # may only lower the site's capacity (degraded imaging)
    pipeline_depth: int = 4  # batches in flight at once in a stage (1: strictly one after another)
    ask: Callable[[str], str] = input
    say: Callable[[str], None] = print
    override_gates: dict[str, str] = field(default_factory=dict)  # tier-0 gate name -> typed reason

    def recorded(self, inventory: Path, phases: Sequence[str]) -> dict[str, Any]:
        """What the journal keeps of the run's options (`rebuild report` shows them)."""
        return {
            "inventory": str(inventory),
            "limit": list(self.limit),
            "tier": self.tier,
            "force_hosts": list(self.force_hosts),
            "breaker_threshold": self.breaker_threshold,
            "pipeline_depth": self.pipeline_depth,
            "phases": list(phases),
        }


@dataclass
class SiteRunResult:
    run_id: str
    status: str  # completed | stopped | interrupted | dry-run | nothing-to-do
    reason: str
    run_dir: Path
    counts: dict[str, int]
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.status == "stopped":
            return EXIT_BREAKER
        if self.status == "interrupted":
            return EXIT_INTERRUPTED
        if self.status == tier0_gates.GATE_STATUS:
            return tier0_gates.EXIT_GATE_CLOSED
        return EXIT_FAILED_HOSTS if self.failed else EXIT_OK


def validate_options(o: SiteRunOptions) -> None:
    """Every option checked before anything is locked, recorded or touched (OptionError, exit 3)."""
    if not 0 < o.breaker_threshold <= 1:  # NaN fails too
        raise OptionError(
            f"--breaker-threshold {o.breaker_threshold}: must be a share of the wave, more than 0 and "
            "at most 1 (0.2 = stop when more than 20% fail)"
        )
    tier0_gates.check_overrides(o.override_gates)
    if o.pipeline_depth < 1:
        raise OptionError(f"--pipeline-depth {o.pipeline_depth}: must be 1 or more")
    if o.imaging_capacity is not None and o.imaging_capacity < 1:
        raise OptionError(f"--capacity {o.imaging_capacity}: must be 1 or more")
    if o.tier is not None:
        known = [t.id for t in tier_table().tiers]
        if o.tier not in known:
            raise OptionError(f"--tier {o.tier}: no such tier in tiers.yml (known: {known})")
    for option, names in (("--limit", o.limit), ("--force-host", o.force_hosts)):
        blank = [n for n in names if not n.strip()]
        if blank:
            raise OptionError(f"{option} holds an empty host name: name every host. Nothing was touched.")
    if not o.operator.strip():
        raise OptionError("--operator is empty: the journal must say who confirmed the wipe")
    if o.state_dir.exists() and not o.state_dir.is_dir():
        raise OptionError(f"--state-dir {o.state_dir}: is a file, not a directory")
    if not o.inventory.exists():
        raise OptionError(f"--inventory {o.inventory}: no such file or directory")
    if not o.playbook.is_file():
        raise OptionError(f"--playbook {o.playbook}: no such file")
    try:
        plays = load_yaml(o.playbook)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: not UTF-8
        raise OptionError(f"--playbook {o.playbook}: cannot read it as YAML: {exc}") from None
    if not isinstance(plays, list) or not all(isinstance(p, dict) for p in plays):
        raise OptionError(f"--playbook {o.playbook}: not a playbook (a YAML list of plays)")
