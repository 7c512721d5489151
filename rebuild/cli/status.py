"""`rebuild status [SITE]`: hosts per state, per site, tier and service, and failures (parse and delegate)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rebuild.cli.options import name_arg, path_arg
from rebuild.errors import ConfigError
from rebuild.statedir import resolve_state_dir


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "status", help="where every host stands, from the journal"
    )
    p.add_argument("site", nargs="?", type=name_arg("SITE"), help="one site (default: all)")
    p.add_argument(
        "--state-dir",
        type=path_arg("--state-dir"),
        help="default $REBUILD_STATE_DIR, else state/ of the project",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rebuild.journal import JOURNAL_FILE, Journal
    from rebuild.orchestrator.status import render_text, site_status

    path = resolve_state_dir(args.state_dir) / JOURNAL_FILE
    if not path.exists():
        raise ConfigError(f"{path}: no journal here - run `rebuild site` first or pass --state-dir")
    with Journal(path) as journal:
        statuses = site_status(journal, args.site)
    if args.site and not statuses:
        raise ConfigError(f"site {args.site!r} has no host in the journal {path}")
    if args.json:
        print(json.dumps([s.to_dict() for s in statuses], indent=2))
    else:
        print(render_text(statuses), end="")
    return 0
