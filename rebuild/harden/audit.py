"""Audit a whole site against the baseline without changing anything: one command, one report.

One playbook run (rebuild.launcher) of playbooks/harden_audit.yml (the harden role in check mode) on
every host of the site; each host costs one module call. The per-host reports are written
as text and HTML under `<state>/runs/<run-id>/` and, for hosts the journal knows, kept as
their `harden_audit` result (an audit never overwrites the `harden` result of a real run).
Unreachable or failed hosts are listed in the report, never silently dropped. A host whose rebuild
secret is retired (rebuild.secret_retirement: rb-admin disabled, Windows LAPS manages it) is not
logged on to - rebuild has no account there any more - and is listed as such, not as a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild.datadir import PROJECT_ROOT
from rebuild.errors import ConfigError
from rebuild.harden.report import HostReport, render_html, render_text
from rebuild.launcher import Playbook, new_run_id, run_playbook
from rebuild.secrets import SecretStore

AUDIT_PLAYBOOK = PROJECT_ROOT / "playbooks" / "harden_audit.yml"
HARDEN_ACTION = "rebuild_harden"


@dataclass
class AuditResult:
    run_id: str
    run_dir: Path
    reports: list[HostReport]
    unreachable: dict[str, str] = field(default_factory=dict)  # host -> why no report
    retired: dict[str, str] = field(default_factory=dict)  # host -> why not audited (not a failure)
    text_path: Path | None = None
    html_path: Path | None = None

    @property
    def exit_code(self) -> int:
        if self.unreachable:
            return 1
        return 0


class _Collector:
    """ansible-runner event handler: keeps the rebuild_harden result per host."""

    def __init__(self) -> None:
        self.reports: dict[str, HostReport] = {}
        self.problems: dict[str, str] = {}

    def __call__(self, event: Mapping[str, Any]) -> bool:
        data = event.get("event_data") or {}
        host = data.get("host")
        kind = event.get("event", "")
        if not host:
            return True
        res = data.get("res") or {}
        if kind == "runner_on_unreachable":
            self.problems[host] = f"unreachable: {res.get('msg', '')}".strip()
        elif data.get("task_action", "").endswith(HARDEN_ACTION):
            if kind == "runner_on_ok" and isinstance(res.get("report"), dict):
                self.reports[host] = HostReport.from_dict(res["report"])
            elif kind == "runner_on_failed":
                self.problems[host] = f"{data.get('task', '')}: {res.get('msg', 'failed')}"
        return True  # keep the event in the artifacts


def audit_site(site: str, inventory: Path, state_dir: Path, run_id: str | None = None) -> AuditResult:
    if not inventory.exists():
        raise ConfigError(f"{inventory}: no such inventory (build it with `rebuild inventory build`)")
    SecretStore(state_dir).check_opens()  # the hosts' passwords come from it: refuse a bad key now
    run_id = run_id or new_run_id()
    run_dir = state_dir / "runs" / run_id
    retired = _retired_hosts(state_dir, site)
    collector = _Collector()
    run_playbook(  # the same environment allow-list as a site run: no credential in the artifacts
        Playbook(
            what=f"harden audit of {site}",
            playbook=AUDIT_PLAYBOOK,
            inventory=inventory.resolve(),
            state_dir=state_dir,
            private_dir=run_dir / "runner" / "harden-audit",
            artifact_dir=run_dir / "artifacts",
            ident="harden-audit",
            limit=f"site_{site}" + "".join(f":!{host}" for host in sorted(retired)),
            extravars={"rebuild_harden_check_mode": True, "rebuild_run_id": run_id},
            cmdline="--check",
            event_handler=collector,
        )
    )
    if not collector.reports and not collector.problems and not retired:
        raise ConfigError(
            f"harden audit: no host of site {site!r} in {inventory} (group site_{site} is empty)"
        )
    reports = [collector.reports[h] for h in sorted(collector.reports)]
    unreachable = {h: why for h, why in collector.problems.items() if h not in collector.reports}
    result = AuditResult(
        run_id=run_id, run_dir=run_dir, reports=reports, unreachable=unreachable, retired=retired
    )
    write_reports(result, site)
    _journal(state_dir, reports)
    return result


def write_reports(result: AuditResult, site: str) -> None:
    title = f"Hardening audit - site {site} - run {result.run_id}"
    text = render_text(result.reports, title)
    if result.unreachable:
        text += "\nNo report (host not audited):\n" + "".join(
            f"  {h}: {why}\n" for h, why in sorted(result.unreachable.items())
        )
    if result.retired:
        text += "\nNot audited (rebuild secret retired, no rebuild account on the host):\n" + "".join(
            f"  {h}: {why}\n" for h, why in sorted(result.retired.items())
        )
    result.text_path = result.run_dir / "harden-audit.txt"
    result.html_path = result.run_dir / "harden-audit.html"
    result.text_path.write_text(text, encoding="utf-8")
    result.html_path.write_text(render_html(result.reports, title), encoding="utf-8")


def _retired_hosts(state_dir: Path, site: str) -> dict[str, str]:
    """Verified hosts of `site` whose rebuild secret is retired: rb-admin is disabled there."""
    from rebuild.journal import JOURNAL_FILE, Journal, Phase
    from rebuild.secret_retirement import RESULT_KEY, RETIRED

    path = state_dir / JOURNAL_FILE
    if not path.exists():
        return {}
    with Journal(path) as journal:
        return {
            h.name: "rebuild secret retired: rb-admin is disabled and Windows LAPS manages the local "
            "administrator; audit it with domain accounts"
            for h in journal.hosts(site)
            if h.phase is Phase.VERIFIED and (h.results.get(RESULT_KEY) or {}).get("status") == RETIRED
        }


def _journal(state_dir: Path, reports: list[HostReport]) -> None:
    from rebuild.journal import JOURNAL_FILE, Journal

    path = state_dir / JOURNAL_FILE
    if not path.exists():
        return
    with Journal(path) as journal:
        for rep in reports:
            if journal.find_host(rep.host) is not None:
                journal.set_result(rep.host, "harden_audit", rep.to_dict())
