"""`rebuild plan site SITE`: show the waves of a site's rebuild (parse and delegate only)."""

from __future__ import annotations

import argparse
import json

from rebuild.cli.options import name_arg, path_arg
from rebuild.orchestrator.tier0_gates import gates_of_plan, gates_text, load_gates
from rebuild.plan import plan_for


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("plan", help="show the order of work (waves and batches) for a site")
    what = parser.add_subparsers(dest="plan_what", required=True, metavar="WHAT")
    site = what.add_parser(
        "site",
        help="waves of one site: tiers in order, servers before PCs, batches within imaging capacity",
    )
    site.add_argument("site", type=name_arg("SITE"), help="site name, e.g. arlon")
    source = site.add_mutually_exclusive_group()
    source.add_argument(
        "--register",
        type=path_arg("--register"),
        help="asset register (.csv/.xlsx/.json); default: the bundled example",
    )
    source.add_argument(
        "--inventory", type=path_arg("--inventory"), help="plan from a built inventory (file or directory)"
    )
    site.add_argument(
        "--sheet", type=name_arg("--sheet"), help="sheet of an .xlsx register (default: the first)"
    )
    site.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    site.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plan = plan_for(args.site, register=args.register, inventory=args.inventory, sheet=args.sheet)
    gates = load_gates()
    if args.format == "json":
        shown = {**plan.to_dict(), "gates": gates_of_plan(plan, gates)}
        print(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        print(plan.to_text() + "\n" + gates_text(plan, gates))
    return 0
