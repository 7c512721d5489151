"""`rebuild inventory build REGISTER`: validated register -> static inventories (parse and delegate)."""

from __future__ import annotations

import argparse
import sys

from rebuild.cli.options import dir_arg, name_arg, path_arg
from rebuild.errors import listed
from rebuild.inventory import DEFAULT_OUT_DIR, build_from_register


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("inventory", help="build Ansible inventories from the asset register")
    what = parser.add_subparsers(dest="inventory_what", required=True, metavar="WHAT")
    build = what.add_parser(
        "build",
        help="validate a register and write one static inventory per site (nothing written on error)",
    )
    build.add_argument("register", type=path_arg("REGISTER"), help="asset register (.csv, .xlsx or .json)")
    build.add_argument(
        "--out",
        type=dir_arg("--out"),
        default=DEFAULT_OUT_DIR,
        help=f"output directory (default: {DEFAULT_OUT_DIR})",
    )
    build.add_argument("--site", type=name_arg("--site"), help="write only this site's inventory")
    build.add_argument(
        "--allow-errors",
        action="store_true",
        help="write the valid rows anyway and the rejected ones to a rejects file (exit code 1)",
    )
    build.add_argument(
        "--rejects", type=path_arg("--rejects"), help="rejects file (default: <out>-rejects.csv)"
    )
    build.add_argument(
        "--sheet", type=name_arg("--sheet"), help="sheet of an .xlsx register (default: the first)"
    )
    build.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = build_from_register(
        args.register,
        args.out,
        site=args.site,
        allow_errors=args.allow_errors,
        sheet=args.sheet,
        rejects_path=args.rejects,
    )
    for warning in listed(report.result.warnings, what="warnings"):
        print(f"rebuild: warning: {warning}", file=sys.stderr)
    for problem in listed([str(p) for p in report.result.problems]):
        print(f"rebuild: rejected: {problem}", file=sys.stderr)
    for line in report.lines():
        print(line)
    return 1 if report.result.problems else 0
