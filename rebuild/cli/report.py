"""`rebuild report [SITE]`: write the crisis-cell report (HTML, CSV, JSON) from the journal."""

from __future__ import annotations

import argparse

from rebuild.cli.options import dir_arg, name_arg, path_arg
from rebuild.report import write_report
from rebuild.statedir import resolve_state_dir


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("report", help="crisis-cell report per site and service, from the journal")
    p.add_argument(
        "site", nargs="?", type=name_arg("SITE"), help="one site (default: every site in the journal)"
    )
    p.add_argument(
        "--state-dir",
        type=path_arg("--state-dir"),
        default=None,
        help="journal location (default $REBUILD_STATE_DIR, else state/ of the project)",
    )
    p.add_argument(
        "--out", type=dir_arg("--out"), default=None, help="output directory (default <state-dir>/reports)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    files = write_report(state_dir, args.out or state_dir / "reports", args.site)
    r = files.report
    if r.simulated:
        print("SIMULATED — lab rehearsal")
    for site, c in r.sites.items():
        print(
            f"{site}: {c.back}/{c.total} back, {c.in_progress} in progress, {c.failed} failed, "
            f"{c.quarantined} quarantined"
        )
    for path in (files.html, files.csv, files.problems_csv, files.json):
        print(path)
    return 0
