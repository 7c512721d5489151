"""The crisis-cell report's data: pure functions over journal rows, no I/O.

Everything the report shows is derived here from three lists the journal gives —
hosts, transitions, runs — so the numbers can be tested without a database and the
HTML, CSV and JSON exports all say the same thing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from rebuild.journal import WORK_PHASES, Phase
from rebuild.secret_retirement import KEPT, RETIRED
from rebuild.secret_retirement import RESULT_KEY as SECRET_RESULT_KEY
from rebuild.verify.conditions import CONDITION_LABELS


class Status(StrEnum):
    """What the crisis cell counts. Only `back` means usable by clinicians again."""

    BACK = "back"  # verified (and, where configured, promoted out of the recovery network)
    IN_PROGRESS = "in_progress"  # somewhere between reimaging and verifying
    PENDING = "pending"  # not started yet
    FAILED = "failed"
    QUARANTINED = "quarantined"  # failed verification: not back, kept off the clinical network


STATUS_LABELS = {
    Status.BACK: "Back",
    Status.IN_PROGRESS: "In progress",
    Status.PENDING: "Not started",
    Status.FAILED: "Failed",
    Status.QUARANTINED: "Quarantined",
}

# Somewhere between the first phase's start and the last phase's end.
_IN_PROGRESS = {state.value for pair in WORK_PHASES.values() for state in pair} - {Phase.VERIFIED.value}


def status_of(phase: str) -> Status:
    if phase == "verified":
        return Status.BACK
    if phase == "failed":
        return Status.FAILED
    if phase == "quarantined":
        return Status.QUARANTINED
    if phase in _IN_PROGRESS:
        return Status.IN_PROGRESS
    if phase == "pending":
        return Status.PENDING
    raise ValueError(f"unknown journal phase {phase!r}")


class HostRow(Protocol):
    """What the report reads of a journal host (rebuild.journal.HostRecord fits)."""

    @property
    def name(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def tier(self) -> int: ...
    @property
    def service(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def phase(self) -> Any: ...
    @property
    def failed_phase(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def updated_at(self) -> float: ...
    @property
    def results(self) -> dict[str, Any]: ...


class TransitionRow(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def at(self) -> float: ...
    @property
    def to_phase(self) -> Any: ...


class RunRow(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def started_at(self) -> float: ...
    @property
    def ended_at(self) -> float | None: ...
    @property
    def status(self) -> str: ...
    @property
    def rehearsal(self) -> bool: ...
    @property
    def dry_run(self) -> bool: ...


@dataclass
class Counts:
    total: int = 0
    back: int = 0
    in_progress: int = 0
    pending: int = 0
    failed: int = 0
    quarantined: int = 0
    promoted: int = 0  # back and moved out of the recovery network (or decision recorded)
    # condition name (rebuild.verify.conditions) -> hosts it holds back (also counted in their status)
    held_back: dict[str, int] = field(default_factory=dict)
    # rebuild secret (rebuild.secret_retirement): retired where Windows LAPS took over, kept elsewhere
    secret_retired: int = 0
    secret_kept: int = 0

    def add(
        self,
        status: Status,
        promoted: bool = False,
        conditions: Sequence[str] = (),
        rebuild_secret: str = "",
    ) -> None:
        self.total += 1
        if status is Status.BACK and rebuild_secret == RETIRED:
            self.secret_retired += 1
        elif status is Status.BACK and rebuild_secret == KEPT:
            self.secret_kept += 1
        setattr(self, status.value, getattr(self, status.value) + 1)
        if promoted and status is Status.BACK:
            self.promoted += 1
        if status is not Status.BACK:
            for condition in dict.fromkeys(conditions):
                self.held_back[condition] = self.held_back.get(condition, 0) + 1


@dataclass
class ServiceLine:
    site: str
    tier: int
    service: str
    counts: Counts


@dataclass
class TierTime:
    site: str
    tier: int
    total: int
    back: int
    first_back_s: float | None  # seconds from the site's start to its first host back
    all_back_s: float | None  # ... to its last host back; None until every host is back


@dataclass
class Problem:
    host: str
    site: str
    tier: int
    service: str
    status: Status
    phase: str  # phase it failed in ("verify" for quarantines)
    reason: str
    failing_checks: list[str] = field(default_factory=list)
    at: float = 0.0
    conditions: list[str] = field(default_factory=list)  # named hold-backs, e.g. patch_level


@dataclass
class Point:
    at: float
    back: int
    in_progress: int
    failed: int
    quarantined: int


@dataclass
class Report:
    scope: str  # site name or "all sites"
    generated_at: float
    simulated: bool  # at least one run in scope was a lab rehearsal
    simulated_runs: list[str]
    runs: list[dict[str, Any]]
    sites: dict[str, Counts]
    services: list[ServiceLine]
    tiers: list[TierTime]
    problems: list[Problem]
    timeline: dict[str, list[Point]]  # per site
    started_at: dict[str, float]
    # the hold-back columns: every known condition, then any other one a host was held back by
    conditions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def failing_checks(results: Mapping[str, Any]) -> list[str]:
    """The failed verification checks a host's journal results carry (verify role format)."""
    verify = results.get("verify") or {}
    checks = verify.get("failed_checks") or []
    out: list[str] = []
    for check in checks:
        if isinstance(check, Mapping):
            name = str(check.get("check") or check.get("name") or "")
            message = str(check.get("message") or "").strip()
            out.append(f"{name}: {message}" if message else name)
        else:
            out.append(str(check))
    return out


def conditions(results: Mapping[str, Any]) -> list[str]:
    """Named conditions holding a host back, as verification recorded them (`verify.conditions`)."""
    found = (results.get("verify") or {}).get("conditions") or []
    return [str(c) for c in found] if isinstance(found, list) else []


def _phase(value: Any) -> str:
    return str(getattr(value, "value", value))


def build_report(
    hosts: Sequence[HostRow],
    transitions: Iterable[TransitionRow],
    runs: Sequence[RunRow],
    *,
    site: str | None = None,
    now: float,
) -> Report:
    """Counts per site and service, per-tier achieved times, problems and the timeline."""
    scoped = [h for h in hosts if site is None or h.site == site]
    names = {h.name for h in scoped}
    scoped_runs = [r for r in runs if (site is None or r.site == site) and not r.dry_run]

    sites: dict[str, Counts] = defaultdict(Counts)
    by_service: dict[tuple[str, int, str], Counts] = defaultdict(Counts)
    problems: list[Problem] = []
    for h in scoped:
        st = status_of(_phase(h.phase))
        promoted = (h.results.get("promote") or {}).get("status") == "promoted"
        held = conditions(h.results)
        secret = str((h.results.get(SECRET_RESULT_KEY) or {}).get("status") or "")
        sites[h.site].add(st, promoted, held, secret)
        by_service[(h.site, h.tier, h.service)].add(st, promoted, held, secret)
        if st in (Status.FAILED, Status.QUARANTINED):
            problems.append(
                Problem(
                    host=h.name,
                    site=h.site,
                    tier=h.tier,
                    service=h.service,
                    status=st,
                    phase=h.failed_phase or ("verify" if st is Status.QUARANTINED else ""),
                    reason=h.reason,
                    failing_checks=failing_checks(h.results),
                    at=h.updated_at,
                    conditions=held,
                )
            )
    problems.sort(key=lambda p: (p.site, p.tier, p.service, p.host))

    # Timeline: replay every transition; a host's category changes at each one.
    host_site = {h.name: h.site for h in scoped}
    trs = sorted((t for t in transitions if t.host in names), key=lambda t: t.at)
    started: dict[str, float] = {}
    for r in scoped_runs:
        started[r.site] = min(started.get(r.site, r.started_at), r.started_at)
    for t in trs:
        s = host_site[t.host]
        started.setdefault(s, t.at)

    current: dict[str, Status] = {h.name: Status.PENDING for h in scoped}
    tally: dict[str, Counter[Status]] = defaultdict(Counter)
    for h in scoped:
        tally[h.site][Status.PENDING] += 1
    timeline: dict[str, list[Point]] = defaultdict(list)
    first_back: dict[str, float] = {}
    last_back: dict[str, float] = {}
    for s in sorted(tally):
        timeline[s].append(Point(started.get(s, now), 0, 0, 0, 0))

    def snapshot(s: str, at: float) -> Point:
        c = tally[s]
        return Point(at, c[Status.BACK], c[Status.IN_PROGRESS], c[Status.FAILED], c[Status.QUARANTINED])

    for t in trs:
        s = host_site[t.host]
        new = status_of(_phase(t.to_phase))
        old = current[t.host]
        if new is old and timeline[s]:
            continue
        tally[s][old] -= 1
        tally[s][new] += 1
        current[t.host] = new
        if new is Status.BACK:
            first_back.setdefault(t.host, t.at)
            last_back[t.host] = t.at
        points = timeline[s]
        if points and points[-1].at == t.at:
            points[-1] = snapshot(s, t.at)
        else:
            points.append(snapshot(s, t.at))
    for s in list(timeline):
        timeline[s].append(snapshot(s, max(now, timeline[s][-1].at)))

    tiers: list[TierTime] = []
    by_tier: dict[tuple[str, int], list[HostRow]] = defaultdict(list)
    for h in scoped:
        by_tier[(h.site, h.tier)].append(h)
    for (s, tier), members in sorted(by_tier.items()):
        back_hosts = [h for h in members if _phase(h.phase) == "verified"]
        t0 = started.get(s)
        firsts = [last_back[h.name] for h in back_hosts if h.name in last_back]
        first = min(firsts) - t0 if firsts and t0 is not None else None
        every = (
            max(firsts) - t0
            if t0 is not None and len(back_hosts) == len(members) and len(firsts) == len(members)
            else None
        )
        tiers.append(TierTime(s, tier, len(members), len(back_hosts), first, every))

    services = [
        ServiceLine(s, tier, service, counts) for (s, tier, service), counts in sorted(by_service.items())
    ]
    simulated_runs = [r.id for r in scoped_runs if r.rehearsal]
    seen = {c for counts in sites.values() for c in counts.held_back}
    columns = [*CONDITION_LABELS, *sorted(seen - set(CONDITION_LABELS))]
    return Report(
        scope=site or "all sites",
        generated_at=now,
        simulated=bool(simulated_runs),
        simulated_runs=simulated_runs,
        runs=[
            {
                "id": r.id,
                "site": r.site,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "status": r.status,
                "rehearsal": r.rehearsal,
            }
            for r in scoped_runs
        ],
        sites=dict(sorted(sites.items())),
        services=services,
        tiers=tiers,
        problems=problems,
        timeline=dict(timeline),
        started_at=started,
        conditions=columns,
    )


def format_duration(seconds: float | None) -> str:
    """h:mm for people; seconds below a minute shown as such (lab rehearsals are fast)."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    return f"{minutes // 60}:{minutes % 60:02d}"
