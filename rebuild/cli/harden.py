"""`rebuild harden audit SITE`: audit a site against the baseline, nothing changed (parse and delegate)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rebuild.secrets import default_state_dir


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser("harden", help="hardening baseline: audit a site")
    sub = p.add_subparsers(dest="harden_command", required=True, metavar="COMMAND")
    audit = sub.add_parser("audit", help="check every host of a site against the baseline without change")
    audit.add_argument("site", help="site key (inventories/data/sites.yml)")
    audit.add_argument("--inventory", type=Path, help="inventory (default inventories/hospital/<site>.yml)")
    audit.add_argument("--state-dir", type=Path, help="default $REBUILD_STATE_DIR or state/")
    audit.set_defaults(func=run_audit)


def run_audit(args: argparse.Namespace) -> int:
    from rebuild.harden.audit import audit_site

    inventory = args.inventory or Path("inventories/hospital") / f"{args.site}.yml"
    result = audit_site(args.site, inventory, args.state_dir or default_state_dir())
    for rep in result.reports:
        counts = ", ".join(f"{k} {v}" for k, v in rep.counts().items() if v)
        print(f"{rep.host}: {counts}")
    for host, why in sorted(result.unreachable.items()):
        print(f"{host}: NOT AUDITED - {why}")
    print(f"report: {result.text_path}\n        {result.html_path}")
    return result.exit_code
