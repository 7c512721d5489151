"""`rebuild harden audit SITE`: audit a site against the baseline, nothing changed (parse and delegate)."""

from __future__ import annotations

import argparse
from typing import Any

from rebuild.cli.options import name_arg, path_arg, site_key
from rebuild.inventory import DEFAULT_OUT_DIR, load_inventory_hosts
from rebuild.statedir import resolve_state_dir

_STATE_DIR_HELP = "default $REBUILD_STATE_DIR, else state/ of the project"


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser("harden", help="hardening baseline: audit a site")
    sub = p.add_subparsers(dest="harden_command", required=True, metavar="COMMAND")
    audit = sub.add_parser("audit", help="check every host of a site against the baseline without change")
    audit.add_argument("site", type=name_arg("SITE"), help="site key (inventories/data/sites.yml)")
    audit.add_argument(
        "--inventory",
        type=path_arg("--inventory"),
        help="inventory (default inventories/hospital/<site>.yml)",
    )
    audit.add_argument("--state-dir", type=path_arg("--state-dir"), help=_STATE_DIR_HELP)
    audit.set_defaults(func=run_audit)
    show = sub.add_parser("report", help="per-control hardening report of a site, from the journal")
    show.add_argument("site", type=name_arg("SITE"), help="site key")
    show.add_argument(
        "--audit", action="store_true", help="the last audit's reports instead of the last run's"
    )
    show.add_argument("--html", type=path_arg("--html"), help="also write the report as HTML to this file")
    show.add_argument("--state-dir", type=path_arg("--state-dir"), help=_STATE_DIR_HELP)
    show.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from rebuild.errors import ConfigError
    from rebuild.harden.report import journal_reports, render_html, render_text
    from rebuild.journal import JOURNAL_FILE, Journal

    path = resolve_state_dir(args.state_dir) / JOURNAL_FILE
    if not path.exists():
        raise ConfigError(f"{path}: no journal here - run `rebuild site` first or pass --state-dir")
    key = "harden_audit" if args.audit else "harden"
    with Journal(path) as journal:
        reports = journal_reports(journal, args.site, key)
    if not reports:
        raise ConfigError(f"site {args.site!r}: no {key} report in the journal {path}")
    title = f"Hardening {'audit' if args.audit else 'report'} - site {args.site}"
    print(render_text(reports, title), end="")
    if args.html:
        args.html.write_text(render_html(reports, title), encoding="utf-8")
        print(f"HTML: {args.html}")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    from rebuild.harden.audit import audit_site

    site = site_key(args.site)  # the audit's --limit is site_<key>: never a pattern of hosts
    inventory = args.inventory or DEFAULT_OUT_DIR / f"{site}.yml"
    load_inventory_hosts(inventory)  # the register's hostname rule, as for every inventory read
    result = audit_site(site, inventory, resolve_state_dir(args.state_dir))
    for rep in result.reports:
        counts = ", ".join(f"{k} {v}" for k, v in rep.counts().items() if v)
        print(f"{rep.host}: {counts}")
    for host, why in sorted(result.unreachable.items()):
        print(f"{host}: NOT AUDITED - {why}")
    for host, why in sorted(result.retired.items()):
        print(f"{host}: not audited - {why}")
    print(f"report: {result.text_path}\n        {result.html_path}")
    return result.exit_code
