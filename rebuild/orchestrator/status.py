"""`rebuild status [SITE]`: where every host stands, from the journal alone."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from rebuild.journal import HostRecord, Journal, Phase
from rebuild.secret_retirement import KEPT, RESULT_KEY, RETIRED

STATES = [p.value for p in Phase]


@dataclass(frozen=True)
class SiteStatus:
    site: str
    by_state: dict[str, int]
    by_tier: dict[int, dict[str, int]]
    by_service: dict[str, dict[str, int]]
    problems: list[HostRecord]  # failed and quarantined hosts, with reasons
    last_run: dict[str, Any] | None
    secrets_retired: int = 0  # verified hosts whose rebuild secret is retired (Windows LAPS took over)
    secrets_kept: dict[str, str] | None = None  # verified host -> why it keeps its rebuild secret

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "by_state": self.by_state,
            "by_tier": {str(k): v for k, v in self.by_tier.items()},
            "by_service": self.by_service,
            "problems": [
                {
                    "host": h.name,
                    "state": h.phase.value,
                    "phase": h.failed_phase,
                    "reason": h.reason,
                    "tier": h.tier,
                    "service": h.service,
                }
                for h in self.problems
            ],
            "last_run": self.last_run,
            "rebuild_secrets": {"retired": self.secrets_retired, "kept": self.secrets_kept or {}},
        }


def _counts(hosts: list[HostRecord]) -> dict[str, int]:
    c = Counter(h.phase.value for h in hosts)
    return {s: c[s] for s in STATES if c[s]}


def _secret(h: HostRecord) -> dict[str, Any]:
    found = h.results.get(RESULT_KEY) if h.phase is Phase.VERIFIED else None
    return found if isinstance(found, dict) else {}


def site_status(journal: Journal, site: str | None = None) -> list[SiteStatus]:
    hosts = journal.hosts(site)
    per_site: dict[str, list[HostRecord]] = defaultdict(list)
    for h in hosts:
        per_site[h.site].append(h)
    result = []
    for name, members in per_site.items():
        tiers: dict[int, list[HostRecord]] = defaultdict(list)
        services: dict[str, list[HostRecord]] = defaultdict(list)
        for h in members:
            tiers[h.tier].append(h)
            services[h.service].append(h)
        runs = journal.runs(name)
        last = runs[-1] if runs else None
        result.append(
            SiteStatus(
                site=name,
                by_state=_counts(members),
                by_tier={t: _counts(v) for t, v in sorted(tiers.items())},
                by_service={
                    s: _counts(v) for s, v in sorted(services.items(), key=lambda kv: (kv[1][0].tier, kv[0]))
                },
                problems=[h for h in members if h.phase in (Phase.FAILED, Phase.QUARANTINED)],
                secrets_retired=sum(1 for h in members if _secret(h).get("status") == RETIRED),
                secrets_kept={
                    h.name: str(_secret(h).get("reason") or "")
                    for h in members
                    if _secret(h).get("status") == KEPT
                },
                last_run=None
                if last is None
                else {
                    "id": last.id,
                    "status": last.status,
                    "operator": last.operator,
                    "reason": last.reason,
                    "dry_run": last.dry_run,
                    "rehearsal": last.rehearsal,
                },
            )
        )
    return result


def render_text(statuses: list[SiteStatus]) -> str:
    if not statuses:
        return "No host in the journal yet.\n"
    lines: list[str] = []
    for s in statuses:
        total = sum(s.by_state.values())
        lines.append(
            f"Site {s.site}: {total} hosts - " + ", ".join(f"{k} {v}" for k, v in s.by_state.items())
        )
        if s.last_run:
            r = s.last_run
            lines.append(
                f"  last run {r['id']} by {r['operator']}: {r['status']}"
                + (" (dry run)" if r["dry_run"] else "")
                + (" [SIMULATED rehearsal]" if r["rehearsal"] else "")
            )
            if r["reason"]:
                lines.extend("    " + line for line in str(r["reason"]).splitlines())
        lines.append("  per tier:")
        for tier, counts in s.by_tier.items():
            lines.append(f"    tier {tier}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        lines.append("  per service:")
        for service, counts in s.by_service.items():
            lines.append(f"    {service}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if s.secrets_retired or s.secrets_kept:
            lines.append(
                f"  rebuild secret: retired on {s.secrets_retired} (Windows LAPS manages them), "
                f"kept on {len(s.secrets_kept or {})}"
            )
            lines.extend(
                f"    {host} keeps it: {why}" for host, why in sorted((s.secrets_kept or {}).items())
            )
        if s.problems:
            lines.append("  failed / quarantined:")
            for h in s.problems:
                where = f" in {h.failed_phase}" if h.failed_phase else ""
                lines.append(f"    {h.name} {h.phase.value}{where}: {h.reason}")
        lines.append("")
    return "\n".join(lines)
