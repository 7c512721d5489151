"""Safety interlocks: the tool touches only machines it was clearly asked to touch.

- one site per run, named by the operator and known to sites.yml;
- a host belongs to the site only when its `rebuild_site`, its site group (`site_<key>`) and its
  address (inside the site's networks) all agree; any disagreement refuses the run, naming the
  host (`check_site_membership`);
- only hosts of that site's inventory: --limit / --force-host naming anything else refuses
  the whole run (nothing is touched), it never silently drops or adds a host;
- before any wipe the operator sees the machines per tier and types the site name
  (`--yes` for automation); the confirmation is kept in the journal with the operator's name;
- a verified host is never rebuilt unless named with --force-host.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from rebuild.errors import SafetyError
from rebuild.journal import Journal, journal_holds_site
from rebuild.model import Host, Kind
from rebuild.orchestrator.resume import HostWork
from rebuild.sites import Networks, Site, get_site
from rebuild.statedir import other_journals


def site_for_run(name: str, capacity: int | None) -> Site:
    """The one site of the run, named exactly by its key; `--capacity` may only lower its
    imaging capacity. A site whose sites.yml entry names an execution node runs its batches
    there (docs/scale-out.md): that node is checked before each batch, not here."""
    site = get_site(name)
    if site.name != name:
        raise SafetyError(
            f"site {name!r}: give the site's key {site.name!r} (one site per run, named exactly)"
        )
    if capacity is None:
        return site
    if not 1 <= capacity <= site.imaging_capacity:
        raise SafetyError(
            f"--capacity {capacity}: must be between 1 and the site's imaging capacity "
            f"{site.imaging_capacity} (sites.yml); it can only lower it"
        )
    return dataclasses.replace(site, imaging_capacity=capacity)


def check_site_membership(
    hosts: Iterable[Host],
    site: Site,
    site_groups: Mapping[str, frozenset[str]],
    networks: Networks,
    *,
    inventory_label: str = "the inventory",
) -> None:
    """Refuse when any host the inventory ties to `site` by its site variable or its site group is
    not tied to it by all three of variable, group and address (one wrong variable must not put a
    machine of another site on the wipe list). Names every such host and what disagrees."""
    problems: list[str] = []
    for host in hosts:
        groups = site_groups.get(host.hostname, frozenset())
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host.ip)
        except ValueError:
            address = None
        inside = address is not None and any(address in n for n in networks)
        named = host.site == site.name or site.group_name in groups
        if not named or (host.site == site.name and groups == {site.group_name} and inside):
            continue  # another site's host (its own run checks its address), or all three agree
        why = []
        if host.site != site.name:
            why.append(f"rebuild_site is {host.site!r}")
        if groups != {site.group_name}:
            why.append(f"site groups are {', '.join(sorted(groups)) or 'none'} (expected {site.group_name})")
        if not inside:
            where = host.ip or "none"
            why.append(f"address {where} is outside {site.name}'s networks")
        problems.append(f"{host.hostname}: {'; '.join(why)}")
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise SafetyError(
            f"refused: {len(problems)} host(s) of {inventory_label} do not clearly belong to site "
            f"{site.name} (site variable, site group and address must agree):\n  "
            + "\n  ".join(shown)
            + "\nFix the inventory. Nothing was touched."
        )


def select_hosts(
    inventory_hosts: Iterable[Host],
    site: str,
    *,
    limit: Sequence[str] = (),
    tier: int | None = None,
    force_hosts: Sequence[str] = (),
    inventory_label: str = "the inventory",
) -> list[Host]:
    """The site's hosts this run may touch; refuses names outside the site's inventory."""
    all_hosts = list(inventory_hosts)
    own = {h.hostname.upper(): h for h in all_hosts if h.site == site}
    if not own:
        sites = sorted({h.site for h in all_hosts})
        raise SafetyError(
            f"{inventory_label} has no host of site {site!r} (it holds: {', '.join(sites) or 'none'})"
        )
    outsiders = [n for n in (*limit, *force_hosts) if n.upper() not in own]
    if outsiders:
        elsewhere = {h.hostname.upper(): h.site for h in all_hosts}
        detail = ", ".join(
            f"{n} ({'site ' + elsewhere[n.upper()] if n.upper() in elsewhere else 'unknown host'})"
            for n in outsiders
        )
        raise SafetyError(
            f"refused: not hosts of site {site} in {inventory_label}: {detail}. Nothing was touched."
        )
    # A name given twice, in any case, is one host (never twice in a batch).
    chosen = [own[n] for n in dict.fromkeys(n.upper() for n in limit)] if limit else list(own.values())
    if tier is not None:
        chosen = [h for h in chosen if h.tier == tier]
        if not chosen:
            raise SafetyError(f"no host of site {site} in tier {tier}{' within --limit' if limit else ''}")
    # A forced host must also be inside the --limit/--tier selection: a typo never widens a run.
    chosen_names = {h.hostname.upper() for h in chosen}
    stray = [n for n in force_hosts if n.upper() not in chosen_names]
    if stray:
        raise SafetyError(f"--force-host {', '.join(stray)} is outside this run's --limit/--tier selection")
    return sorted(chosen, key=lambda h: (h.tier, h.hostname))


def wipe_summary(site_label: str, hosts: Sequence[Host], work: dict[str, HostWork]) -> str:
    """Machines to be wiped per tier, for the operator to read before confirming."""
    wiping = [h for h in hosts if work[h.hostname].wipes and not work[h.hostname].recheck]
    recheck = [h for h in hosts if work[h.hostname].recheck]
    resuming = [h for h in hosts if work[h.hostname].phases and not work[h.hostname].wipes]
    untouched = [h for h in hosts if not work[h.hostname].phases]
    lines = [f"{site_label}: {len(wiping)} machines will be WIPED and reinstalled"]
    per_tier: dict[int, Counter[str]] = {}
    for h in wiping:
        per_tier.setdefault(h.tier, Counter())["servers" if h.kind is Kind.SERVER else "PCs"] += 1
    for tier in sorted(per_tier):
        c = per_tier[tier]
        names = [h.hostname for h in wiping if h.tier == tier]
        shown = ", ".join(names[:8]) + (f", ... (+{len(names) - 8})" if len(names) > 8 else "")
        lines.append(f"  tier {tier}: {c['servers']} servers, {c['PCs']} PCs: {shown}")
    forced = [h.hostname for h in hosts if work[h.hostname].forced]
    if forced:
        lines.append(f"  FORCED (already verified or quarantined, rebuilt again): {', '.join(forced)}")
    if recheck:
        lines.append(f"  re-checked first, wiped only if not back: {', '.join(h.hostname for h in recheck)}")
    if resuming:
        lines.append(f"  resumed without wipe: {len(resuming)}")
    if untouched:
        lines.append(f"  left alone (verified / quarantined / done): {len(untouched)}")
    return "\n".join(lines)


def confirm_site(site: str, prompt: str, *, yes: bool, ask: Callable[[str], str]) -> str:
    """How the operator confirmed (for the journal); SafetyError when they did not."""
    if yes:
        return "--yes"
    try:
        answer = ask(prompt)
    except EOFError:
        answer = ""
    if answer.strip() != site:
        raise SafetyError(
            f"confirmation {answer.strip()!r} does not match the site name {site!r}: nothing was wiped"
        )
    return "typed site name"


def refuse_fresh_journal(state_dir: Path, site: str, *, rehearsal: bool, new_journal: bool) -> None:
    """A journal that does not know the site yet is a first run, or a wrong state directory
    (run from another folder, a typo): then verified hosts would be listed for WIPE again.
    Only `--new-journal` says it is a first run, and not while another journal this run can
    know of (the project's, $REBUILD_STATE_DIR's, ./state) holds the site - except for a
    rehearsal, whose lab keeps its own journal."""
    if journal_holds_site(Journal.path_in(state_dir), site):
        return
    elsewhere = other_journals(site, state_dir)
    if elsewhere and not rehearsal:
        raise SafetyError(
            f"no journal of site {site} in the state directory {state_dir}, but the site's "
            f"journal is at {', '.join(map(str, elsewhere))}: give --state-dir "
            f"{elsewhere[0].parent} (a new, empty journal would list verified hosts for WIPE "
            "again). Nothing was touched."
        )
    if not new_journal:
        raise SafetyError(
            f"no journal of site {site} in the state directory {state_dir}: refusing to "
            "start a new, empty one. If this is the site's first run here, pass --new-journal. "
            "Nothing was touched."
        )
