"""Tier-0 recovery gates: the directory is clean before any tier-1+ host rejoins it.

The gates are data (`inventories/data/recovery_gates.yml`): krbtgt reset twice since the
incident, the second reset at least the maximum ticket lifetime after the first (Microsoft's
AD forest recovery guide), and the built-in and service administrator accounts rotated after
the incident (CISA #StopRansomware). Before the first wave of tier `check_before_tier` or later,
the site run reads the values from every rebuilt directory server of the site
(`playbooks/tier0_gates.yml`, `microsoft.ad.object_info`) and compares them with the incident
record (inventory variable `rebuild_incident`). A gate that does not hold stops the run before
that wave (exit 6): later hosts stay untouched and where the journal had them; a rerun checks
again. An operator may let a gate go with a typed reason (`--override-gate NAME --reason ...`),
kept in the journal's confirmations; `--yes` never does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild.datadir import data_file
from rebuild.errors import ConfigError, OptionError
from rebuild.execution_node import ExecutionNode
from rebuild.journal import Journal, Phase
from rebuild.launcher import Playbook, run_playbook
from rebuild.model import Host
from rebuild.orchestrator.credentials import batch_secrets
from rebuild.orchestrator.resume import HostWork, host_work
from rebuild.plan import Plan
from rebuild.yamlfile import load_yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GATES_FILE = "recovery_gates.yml"  # in the data directory (rebuild.datadir)
GATES_PLAYBOOK = PROJECT_ROOT / "playbooks" / "tier0_gates.yml"
INCIDENT_VAR = "rebuild_incident"
EXIT_GATE_CLOSED = 6
GATE_STATUS = "gated"  # SiteRunResult.status of a run a gate stopped
RESULT_KEY = "tier0_gates"  # journal result of a directory server: what the gate read from it
CHECKS = ("krbtgt_resets", "passwords_rotated")
_FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Gate:
    name: str
    check: str  # one of CHECKS
    source: str
    min_resets: int = 2
    min_interval_hours: float = 10.0
    accounts: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.check == "krbtgt_resets":
            return (
                f"{self.name}: krbtgt key version number at least {self.min_resets} above the incident "
                f"record's, the last two resets at least {self.min_interval_hours:g} h apart"
            )
        return f"{self.name}: password set after the incident for {', '.join(self.accounts)}"


@dataclass(frozen=True)
class GateConfig:
    directory_service: str
    check_before_tier: int
    gates: tuple[Gate, ...]

    def names(self) -> list[str]:
        return [g.name for g in self.gates]

    def describe(self) -> str:
        """What `rebuild plan` shows: what is checked, from where, and when."""
        lines = [
            f"Tier-0 gates, checked from the rebuilt {self.directory_service} servers before the first "
            f"wave of tier {self.check_before_tier} or later whose hosts rejoin the domain (redeploy) "
            f"(a failing gate stops the run, exit "
            f"{EXIT_GATE_CLOSED}; --override-gate NAME --reason TEXT, journaled):"
        ]
        lines += [f"  - {g.describe()}" for g in self.gates]
        return "\n".join(lines)


def load_gates(path: Path | None = None) -> GateConfig:
    path = path or data_file(GATES_FILE)
    try:
        raw = load_yaml(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the recovery gates: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("gates"), list):
        raise ConfigError(f"{path}: expected a mapping with a list `gates`")
    gates: list[Gate] = []
    for i, entry in enumerate(raw["gates"], 1):
        where = f"{path}: gate {i}"
        if not isinstance(entry, dict) or not entry.get("name") or entry.get("check") not in CHECKS:
            raise ConfigError(f"{where}: needs a `name` and a `check` among {', '.join(CHECKS)}")
        try:
            gate = Gate(
                name=str(entry["name"]),
                check=str(entry["check"]),
                source=str(entry.get("source", "")),
                min_resets=int(entry.get("min_resets", 2)),
                min_interval_hours=float(entry.get("min_interval_hours", 10)),
                accounts=tuple(str(a) for a in entry.get("accounts") or ()),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where} ({entry.get('name')}): {exc}") from None
        if gate.check == "passwords_rotated" and not gate.accounts:
            raise ConfigError(f"{where} ({gate.name}): lists no `accounts`")
        if gate.min_resets < 1 or gate.min_interval_hours < 0:
            raise ConfigError(f"{where} ({gate.name}): min_resets >= 1 and min_interval_hours >= 0")
        gates.append(gate)
    names = [g.name for g in gates]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: gate names repeat: {names}")
    return GateConfig(
        str(raw.get("directory_service", "directory")), int(raw.get("check_before_tier", 1)), tuple(gates)
    )


def check_overrides(overrides: Mapping[str, str], config: GateConfig | None = None) -> None:
    """Every --override-gate names a gate and carries a reason (OptionError, exit 3)."""
    if not overrides:
        return
    known = (config or load_gates()).names()
    for name, reason in overrides.items():
        if name not in known:
            raise OptionError(f"--override-gate {name}: no such gate (known: {', '.join(known)})")
        if len(reason.strip()) < 10:
            raise OptionError(
                f"--override-gate {name}: --reason must say why the gate is let go (at least 10 characters); "
                "it is kept in the journal"
            )


# -- the incident record and what the directory answered --------------------------------------


@dataclass(frozen=True)
class Incident:
    declared_at: dt.datetime
    krbtgt_kvno: int
    krbtgt_first_reset_at: dt.datetime | None = None


def _time(value: Any, what: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{what}: {value!r} is not an ISO 8601 time (e.g. 2026-11-28T03:00:00Z)") from None
    if parsed.tzinfo is None:
        raise ConfigError(f"{what}: {value!r} has no time zone (write it in UTC, ending in Z)")
    return parsed.astimezone(dt.UTC)


def parse_incident(raw: Any, where: str) -> Incident:
    what = f"{where}: {INCIDENT_VAR}"
    if raw is None:
        raise ConfigError(
            f"{what} is not set: the tier-0 gates compare the directory with the incident record "
            "(declared_at, krbtgt_kvno; see inventories/data/recovery_gates.yml). No host of tier 1 "
            "or later was touched."
        )
    if not isinstance(raw, Mapping) or "declared_at" not in raw or "krbtgt_kvno" not in raw:
        raise ConfigError(f"{what}: needs declared_at and krbtgt_kvno")
    try:
        kvno = int(raw["krbtgt_kvno"])
    except (TypeError, ValueError):
        raise ConfigError(f"{what}.krbtgt_kvno: {raw['krbtgt_kvno']!r} is not a number") from None
    first = raw.get("krbtgt_first_reset_at")
    return Incident(
        _time(raw["declared_at"], f"{what}.declared_at"),
        kvno,
        _time(first, f"{what}.krbtgt_first_reset_at") if first else None,
    )


def filetime(value: Any) -> dt.datetime | None:
    """pwdLastSet as AD stores it (100 ns since 1601, UTC); 0 = must change at next logon."""
    if isinstance(value, str):
        return _time(value, "pwdLastSet")
    if not isinstance(value, int) or value <= 0:
        return None
    return _FILETIME_EPOCH + dt.timedelta(microseconds=value // 10)


@dataclass
class DirectoryReading:
    """What one directory server answered: per sAMAccountName, its attributes (absent: not found)."""

    server: str
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class GateOutcome:
    gate: Gate
    holds: bool
    found: str  # the values read, as a person reads them
    needed: str = ""

    def explain(self) -> str:
        text = f"gate {self.gate.name}: {'holds' if self.holds else 'DOES NOT HOLD'} - {self.found}"
        return text + (f"; needed: {self.needed}" if self.needed else "")


def _fmt(t: dt.datetime | None) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else "never"


def evaluate(
    config: GateConfig,
    incident: Incident,
    readings: Sequence[DirectoryReading],
    seen_first_resets: Mapping[str, str],
) -> list[GateOutcome]:
    """Each gate against every directory server (all must agree: the reset has replicated).

    `seen_first_resets`: per server, the krbtgt pwdLastSet rebuild read earlier at the incident's
    key version + 1 (the first reset), from the journal."""
    outcomes: list[GateOutcome] = []
    for gate in config.gates:
        problems: list[str] = []
        found: list[str] = []
        needed = ""
        for r in readings:
            if r.error:
                problems.append(f"{r.server}: could not read the directory ({r.error})")
                continue
            if gate.check == "krbtgt_resets":
                text, ok, needed = _krbtgt(gate, incident, r, seen_first_resets.get(r.server))
            else:
                text, ok, needed = _rotated(gate, incident, r)
            (found if ok else problems).append(f"{r.server}: {text}")
        if not readings:
            problems.append("no rebuilt directory server to read from")
            needed = needed or "a directory server of tier 0 rebuilt (done in the journal) and answering"
        outcomes.append(
            GateOutcome(gate, not problems, "; ".join(problems or found), "" if not problems else needed)
        )
    return outcomes


def _krbtgt(
    gate: Gate, incident: Incident, r: DirectoryReading, seen_first: str | None
) -> tuple[str, bool, str]:
    attrs = r.accounts.get("krbtgt")
    if attrs is None:
        return "no krbtgt account found", False, "the domain's krbtgt account readable"
    kvno = attrs.get("msDS-KeyVersionNumber")
    last = filetime(attrs.get("pwdLastSet"))
    if not isinstance(kvno, int):
        return f"krbtgt msDS-KeyVersionNumber not readable ({kvno!r})", False, "the key version number"
    resets = kvno - incident.krbtgt_kvno
    text = (
        f"krbtgt key version {kvno} (incident record: {incident.krbtgt_kvno}, {resets} reset(s) since), "
        f"last reset {_fmt(last)}"
    )
    target = incident.krbtgt_kvno + gate.min_resets
    want = f"key version >= {target} ({gate.min_resets} resets after the incident)"
    if resets < gate.min_resets:
        due = f" at or after {_fmt(last + dt.timedelta(hours=gate.min_interval_hours))}" if last else ""
        return text, False, f"{want}; reset krbtgt again{due} once the last reset has replicated"
    if last is None or last <= incident.declared_at:
        return text, False, f"the last reset after the incident ({_fmt(incident.declared_at)})"
    first = _time(seen_first, "journal") if seen_first else incident.krbtgt_first_reset_at
    if first is None:
        return (
            text
            + "; the first reset's time is unknown (rebuild never read the directory between the resets)",
            False,
            "krbtgt_first_reset_at in the incident record, or a reading between the two resets",
        )
    gap = last - first
    text += f", first reset {_fmt(first)}, {gap.total_seconds() / 3600:.1f} h apart"
    if gap < dt.timedelta(hours=gate.min_interval_hours):
        return (
            text,
            False,
            f"the resets at least {gate.min_interval_hours:g} h apart (maximum ticket lifetime)",
        )
    return text, True, ""


def _rotated(gate: Gate, incident: Incident, r: DirectoryReading) -> tuple[str, bool, str]:
    stale: list[str] = []
    shown: list[str] = []
    for name in gate.accounts:
        attrs = r.accounts.get(name)
        if attrs is None:
            stale.append(f"{name} not found")
            continue
        when = filetime(attrs.get("pwdLastSet"))
        shown.append(f"{name} set {_fmt(when)}")
        if when is None or when <= incident.declared_at:
            stale.append(f"{name} set {_fmt(when)}")
    if stale:
        return (
            "not rotated since the incident: " + ", ".join(stale),
            False,
            f"a new password for each, set after {_fmt(incident.declared_at)}",
        )
    return "; ".join(shown), True, ""


# -- reading the directory servers ------------------------------------------------------------


class _Collector:
    """ansible-runner events of playbooks/tier0_gates.yml: each server's object_info answers."""

    def __init__(self) -> None:
        self.readings: dict[str, DirectoryReading] = {}

    def __call__(self, event: Mapping[str, Any]) -> bool:
        data = event.get("event_data") or {}
        host = data.get("host")
        kind = str(event.get("event", ""))
        if not host:
            return True
        reading = self.readings.setdefault(host, DirectoryReading(host))
        res = data.get("res") or {}
        if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            reading.error = reading.error or f"{data.get('task', '')}: {str(res.get('msg', kind))[:300]}"
        elif kind == "runner_item_on_ok" and str(data.get("task_action", "")).endswith("object_info"):
            name = str(res.get("item") or "")
            objects = res.get("objects") or []
            if name and objects:
                reading.accounts[name] = dict(objects[0])
        elif kind == "runner_item_on_failed":
            reading.error = reading.error or f"{data.get('task', '')}: {str(res.get('msg', 'failed'))[:300]}"
        return True


def read_directory(
    servers: Sequence[str],
    accounts: Sequence[str],
    *,
    site: str,
    inventory: Path,
    state_dir: Path,
    run_dir: Path,
    key_file: Path | None,
    node: ExecutionNode | None = None,
) -> list[DirectoryReading]:
    """One playbook run (rebuild.launcher) of playbooks/tier0_gates.yml limited to `servers`, on
    the site's execution node when it has one (with the site's credentials only)."""
    from rebuild.secrets import KEY_FILE_ENV, SecretStore

    collector = _Collector()
    run_playbook(
        Playbook(
            what="tier-0 gates",
            playbook=GATES_PLAYBOOK,
            inventory=inventory,
            state_dir=state_dir,
            private_dir=run_dir / "runner" / "tier0-gates",
            artifact_dir=run_dir / "artifacts",
            ident="tier0-gates",
            limit=",".join(servers),
            extravars={"rebuild_gate_accounts": list(accounts), "rebuild_gate_site": site},
            env={KEY_FILE_ENV: str(key_file.resolve())} if key_file is not None else {},
            event_handler=collector,
            node=node,
            node_secrets=(
                batch_secrets(SecretStore(state_dir, key_file=key_file), [f"site-{site}"])
                if node is not None and key_file is not None
                else None
            ),
        )
    )
    return [collector.readings.get(s) or DirectoryReading(s, error="no answer") for s in servers]


# -- the check a site run makes ----------------------------------------------------------------


@dataclass
class GateCheck:
    """Everything the site run gives the check (rebuild.orchestrator.run calls `check_before_wave`)."""

    site: str
    domain: str
    journal: Journal
    inventory: Path
    state_dir: Path
    run_dir: Path
    run_id: str
    operator: str
    available: tuple[str, ...]  # work phases of the playbook (a server done with them is rebuilt)
    key_file: Path | None
    overrides: Mapping[str, str]
    dry_run: bool = False
    node: ExecutionNode | None = None  # the site's execution node: the directory is read from there
    config: GateConfig | None = None
    checked: bool = False
    # The inventory as the run read it at its start (an InventoryManager, as its batches'
    # inventories are written from): the incident record is taken from it, not read again
    # (each read of a site inventory is ~0.1-0.3 CPU s). None: read `inventory`.
    read_inventory: Any = None


def gates_of_plan(plan: Plan, config: GateConfig) -> dict[str, Any]:
    """Where in a plan the gates are checked, for `rebuild plan --format json`."""
    waves = [(n, w.tier.id) for n, w in enumerate(plan.waves, 1) if w.tier.id >= config.check_before_tier]
    return {
        "checked_before_wave": waves[0][0] if waves else None,
        "checked_before_tier": waves[0][1] if waves else None,
        "applies": bool(waves and plan.site.domain),
        "directory_service": config.directory_service,
        "gates": [
            {"name": g.name, "check": g.check, "what": g.describe(), "source": g.source} for g in config.gates
        ],
    }


def gates_text(plan: Plan, config: GateConfig) -> str:
    """The gates as `rebuild plan` shows them: what is checked and when in this plan."""
    where = gates_of_plan(plan, config)
    if not where["applies"]:
        return (
            f"Tier-0 gates: not checked in this plan (no wave of tier {config.check_before_tier} "
            "or later, or no domain).\n"
        )
    return (
        config.describe()
        + f"\n  Checked before wave {where['checked_before_wave']} (tier {where['checked_before_tier']}).\n"
    )


def check_before_wave(
    check: GateCheck, tier: int, rejoining: Sequence[str], say: Callable[[str], None]
) -> tuple[str, str] | None:
    """Before the first wave of tier `check_before_tier` or later with hosts that rejoin the domain
    (`rejoining`: those whose work includes redeploy, where the join is): None to go on, or
    (status, reason) to stop the run there."""
    config = check.config = check.config or load_gates()
    if check.checked or tier < config.check_before_tier or not rejoining or not check.domain:
        return None
    check.checked = True
    if check.dry_run:
        say("DRY RUN: the tier-0 gates would be checked here:\n" + config.describe())
        return None
    incident = _incident(check)
    servers = [
        h.name
        for h in check.journal.hosts(check.site)
        if h.tier == 0
        and h.service == config.directory_service
        and h.phase not in (Phase.FAILED, Phase.QUARANTINED, Phase.PENDING)
        and not host_work(h, check.available).phases
    ]
    accounts = ["krbtgt", *dict.fromkeys(a for g in config.gates for a in g.accounts)]
    readings = (
        read_directory(
            servers,
            accounts,
            site=check.site,
            inventory=check.inventory,
            state_dir=check.state_dir,
            run_dir=check.run_dir,
            key_file=check.key_file,
            node=check.node,
        )
        if servers
        else []
    )
    seen = _remember_first_resets(check.journal, incident, readings)
    outcomes = evaluate(config, incident, readings, seen)
    closed = [o for o in outcomes if not o.holds]
    for o in outcomes:
        say(o.explain())
    kept = [o for o in closed if o.gate.name not in check.overrides]
    for o in closed:
        if o.gate.name in check.overrides:
            check.journal.record_confirmation(
                check.run_id,
                check.site,
                check.operator,
                f"override gate {o.gate.name}",
                f"{check.overrides[o.gate.name].strip()} [found: {o.found}]",
            )
            say(f"gate {o.gate.name} overridden by {check.operator}: {check.overrides[o.gate.name].strip()}")
    if not kept:
        return None
    reason = (
        f"stopped before tier {tier}: {len(kept)} tier-0 gate(s) do not hold, no host of tier {tier} or "
        "later was touched.\n"
        + "\n".join(o.explain() for o in kept)
        + "\nRerun once the gate holds (or --override-gate NAME --reason TEXT; --yes does not override)."
    )
    return GATE_STATUS, reason


def rejoining(hosts: Sequence[Host], work: Mapping[str, HostWork]) -> list[str]:
    """The hosts that rejoin the domain in this run: their work includes redeploy (the join)."""
    return [h.hostname for h in hosts if "redeploy" in work[h.hostname].phases]


def preflight(check: GateCheck, waves: Sequence[tuple[int, Sequence[str]]]) -> None:
    """Before any wave runs: when a gate will be checked in this run (`waves`: each wave's tier
    and the hosts that rejoin the domain in it), the gates and the incident record must be
    readable now, not after tier 0 was rebuilt (ConfigError, exit 2)."""
    config = check.config = check.config or load_gates()
    if check.dry_run or not check.domain:
        return
    if any(tier >= config.check_before_tier and rejoining for tier, rejoining in waves):
        _incident(check)


def _incident(check: GateCheck) -> Incident:
    from rebuild.inventory import group_var, read_ansible_inventory

    manager = check.read_inventory
    if manager is None:
        manager = read_ansible_inventory(check.inventory)
    raw = group_var(manager, f"site_{check.site}", INCIDENT_VAR)
    if raw is None:
        raw = group_var(manager, "all", INCIDENT_VAR)
    return parse_incident(raw, f"inventory {check.inventory}")


def _remember_first_resets(
    journal: Journal, incident: Incident, readings: Sequence[DirectoryReading]
) -> dict[str, str]:
    """Keep each server's krbtgt reading in its journal results; give back, per server, the
    pwdLastSet last read at the incident's key version + 1 (the first reset's time)."""
    seen: dict[str, str] = {}
    for r in readings:
        attrs = r.accounts.get("krbtgt") or {}
        kvno, last = attrs.get("msDS-KeyVersionNumber"), filetime(attrs.get("pwdLastSet"))
        if isinstance(kvno, int) and last is not None and not r.error:
            journal.set_result(r.server, RESULT_KEY, {f"krbtgt_kvno_{kvno}": _fmt(last)})
        results = journal.host(r.server).results.get(RESULT_KEY, {})
        first = results.get(f"krbtgt_kvno_{incident.krbtgt_kvno + 1}")
        if first:
            seen[r.server] = str(first)
    return seen
