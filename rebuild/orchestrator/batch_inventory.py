"""One inventory file per batch: only the batch's hosts, as Ansible read them from the site's.

Each batch is one ansible-playbook run. Given the whole site's inventory (680 hosts for Arlon)
it spent about a quarter of its CPU parsing it, and every worker it forked for a host and task
copied the bigger process, to work on 20 hosts. The batch file keeps what the playbook can see
of those hosts: the same groups (with their variables and nesting), the same host variables,
and the site inventory's group_vars/ and host_vars/ directories (linked, not copied). It is
also an interlock: the playbook run cannot reach a host outside its batch, `--limit` or not.
Vault-encrypted values stay encrypted (`!vault`); nothing is templated or decrypted here.

The file also says what each host does this run, as groups the plays of playbooks/site.yml
target (`work_groups`): one group per phase it runs, `rebuild_recheck` for a host caught
mid-reimage, `rebuild_render` for a dry run, `rebuild_redeploy_gate` for a host its batch holds
before redeploy (a batch of a wave's later stage, started while the stage before still runs).
A host outside a play's group is not in that play, so it costs no skipped task per host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from rebuild import atomicfile
from rebuild.contract import (
    PHASES,
    RECHECK_GROUP,
    REDEPLOY_GATE_GROUP,
    REDEPLOY_GATE_PHASE,
    RENDER_GROUP,
    phase_group,
)
from rebuild.errors import RebuildError


def work_groups(
    host_phases: Mapping[str, Sequence[str]],
    recheck: Sequence[str],
    *,
    dry_run: bool,
    held: bool = False,
) -> dict[str, list[str]]:
    """Every work group, empty ones too (a play whose group is missing would warn, not skip).
    A dry run puts hosts in the render group only: they are in no play that can boot them.
    `held`: the batch waits at its redeploy gate; every host with a phase from redeploy on does."""
    groups: dict[str, list[str]] = {phase_group(p): [] for p in PHASES}
    groups[RECHECK_GROUP] = [] if dry_run else list(recheck)
    groups[RENDER_GROUP] = []
    later = PHASES[PHASES.index(REDEPLOY_GATE_PHASE) :]
    groups[REDEPLOY_GATE_GROUP] = [
        host for host, phases in host_phases.items() if held and not dry_run and set(phases) & set(later)
    ]
    for host, phases in host_phases.items():
        if dry_run:
            if phases:
                groups[RENDER_GROUP].append(host)
            continue
        for phase in phases:
            groups[phase_group(phase)].append(host)
    return groups


# Set again by Ansible for the file it reads; copying them would point at the site inventory.
_PER_SOURCE_VARS = frozenset({"inventory_file", "inventory_dir"})
_VARS_DIRS = ("group_vars", "host_vars")


class BatchInventories:
    """Writes `<directory>/<ident>.yml` per batch from the site inventory Ansible read once."""

    def __init__(self, manager: Any, source: Path, directory: Path) -> None:
        self._manager = manager
        self._source = Path(source)
        self.directory = Path(directory)

    def write(
        self, ident: str, names: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None
    ) -> Path:
        """The batch's hosts as the site inventory has them, plus `groups` (work_groups) of them."""
        wanted = set(names)
        missing = sorted(wanted - set(self._manager.hosts))
        if missing:
            raise RebuildError(f"batch {ident}: not in inventory {self._source}: {', '.join(missing)}")
        groups = groups or {}
        taken = sorted(set(groups) & set(self._manager.groups))
        if taken:
            raise RebuildError(
                f"inventory {self._source}: group(s) {', '.join(taken)} are reserved for `rebuild site` "
                "(what each host does in a batch); rename them"
            )
        strays = sorted({h for members in groups.values() for h in members} - wanted)
        if strays:
            raise RebuildError(
                f"batch {ident}: work groups name hosts outside the batch: {', '.join(strays)}"
            )
        self._link_vars_dirs()
        doc = {"all": self._group(self._manager.groups["all"], wanted, placed=set())}
        children = doc["all"].setdefault("children", {})
        for group, members in groups.items():
            children[group] = {"hosts": dict.fromkeys(members)} if members else {}
        header = (
            f"# Batch {ident} of inventory {self._source}, written by `rebuild site`"
            " for this batch's playbook run only: edit the site inventory, not this file.\n"
        )
        from ansible.parsing.yaml.dumper import AnsibleDumper

        text = yaml.dump(
            doc, Dumper=AnsibleDumper, default_flow_style=False, sort_keys=False, allow_unicode=True
        )
        path = self.directory / f"{ident}.yml"
        atomicfile.write_text(path, header + text)  # a batch never reads a half-written inventory
        return path

    def _group(self, group: Any, wanted: set[str], placed: set[str]) -> dict[str, Any]:
        entry: dict[str, Any] = {}
        group_vars = dict(group.vars)
        if group.priority != 1:  # Ansible keeps it out of the group's vars
            group_vars["ansible_group_priority"] = group.priority
        if group_vars:
            entry["vars"] = group_vars
        hosts: dict[str, Any] = {}
        for host in group.hosts:
            if host.name not in wanted:
                continue
            # A host's own variables once, where it first appears; elsewhere only membership.
            own = {k: v for k, v in host.vars.items() if k not in _PER_SOURCE_VARS}
            hosts[host.name] = own if host.name not in placed and own else None
            placed.add(host.name)
        if hosts:
            entry["hosts"] = hosts
        children = {
            child.name: self._group(child, wanted, placed)
            for child in group.child_groups
            if child.name != "ungrouped" or child.hosts
        }
        if children:
            entry["children"] = children
        return entry

    def _link_vars_dirs(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        base = self._source if self._source.is_dir() else self._source.parent
        for name in _VARS_DIRS:
            target, link = base / name, self.directory / name
            if target.is_dir() and not link.is_symlink():
                link.symlink_to(target.resolve(), target_is_directory=True)
