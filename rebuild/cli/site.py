"""`rebuild site SITE`: rebuild one site wave by wave (parse and delegate only)."""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

from rebuild.cli.options import fraction_arg, hosts_arg, int_arg, name_arg, path_arg, unique_names
from rebuild.errors import OptionError
from rebuild.inventory import DEFAULT_OUT_DIR
from rebuild.statedir import resolve_state_dir


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "site", help="reimage, harden, redeploy and verify one site, wave by wave (resumes where it stopped)"
    )
    p.add_argument("site", type=name_arg("SITE"), help="site key, e.g. arlon (one site per run)")
    p.add_argument(
        "--inventory",
        type=path_arg("--inventory"),
        help="inventory file/dir (default inventories/hospital/<site>.yml)",
    )
    p.add_argument(
        "--state-dir",
        type=path_arg("--state-dir"),
        help="journal, runs and secrets (default $REBUILD_STATE_DIR, else state/ of the project)",
    )
    p.add_argument(
        "--new-journal",
        action="store_true",
        help="allow starting a new, empty journal for this site (first run of a site in this state "
        "directory); without it a run refuses, so a wrong --state-dir never re-wipes verified hosts",
    )
    p.add_argument("--yes", action="store_true", help="do not ask to type the site name (automation)")
    p.add_argument(
        "--dry-run", action="store_true", help="plan and render boot files only: no boot, reset or packet"
    )
    p.add_argument(
        "--limit",
        type=hosts_arg("--limit"),
        default=(),
        help="only these hosts (comma separated), all of this site; an empty list is refused",
    )
    p.add_argument("--tier", type=int_arg("--tier"), help="only this tier")
    p.add_argument(
        "--force-host",
        type=hosts_arg("--force-host"),
        action="append",
        default=[],
        metavar="HOST",
        help="rebuild this verified/quarantined host again (repeatable)",
    )
    p.add_argument(
        "--override-gate",
        type=name_arg("--override-gate"),
        action="append",
        default=[],
        metavar="NAME",
        help="go on although this tier-0 gate does not hold (repeatable; needs --reason, journaled; "
        "--yes never overrides a gate)",
    )
    p.add_argument(
        "--reason", default=None, help="why the --override-gate gates are let go (kept in the journal)"
    )
    p.add_argument("--confirm-each-wave", action="store_true", help="ask again before every wave")
    p.add_argument(
        "--breaker-threshold",
        type=fraction_arg("--breaker-threshold"),
        default=0.2,
        help="stop the site when more than this share of a wave fails (0 < x <= 1, default 0.2)",
    )
    p.add_argument(
        "--capacity",
        type=int_arg("--capacity"),
        help="reimage fewer machines at once than the site's capacity",
    )
    p.add_argument(
        "--pipeline-depth",
        type=int_arg("--pipeline-depth"),
        default=4,
        metavar="N",
        help="batches in flight at once; a batch touches hosts only once the one before it has "
        "finished reimaging (default 4; 1 = one batch after another)",
    )
    p.add_argument(
        "--playbook", type=path_arg("--playbook"), help="top playbook (default playbooks/site.yml)"
    )
    p.add_argument("--json", action="store_true", help="quiet JSON-lines progress for automation")
    p.add_argument(
        "--operator",
        type=name_arg("--operator"),
        default=None,
        help="who runs this (default $USER); kept in the journal",
    )
    p.add_argument(
        "--rehearsal",
        action="store_true",
        help="mark the run as a rehearsal against a simulated lab (reports say SIMULATED)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rebuild.orchestrator import SiteRunOptions, run_site

    state_dir = resolve_state_dir(args.state_dir)
    inventory = args.inventory or DEFAULT_OUT_DIR / f"{args.site}.yml"
    operator = args.operator or os.environ.get("USER") or getpass.getuser()
    forced = unique_names(n for names in args.force_host for n in names)
    say = (lambda text: None) if args.json else print
    if args.reason is not None and not args.override_gate:
        raise OptionError("--reason is given without --override-gate: name the gate it lets go")
    if args.override_gate and not (args.reason or "").strip():
        raise OptionError(
            f"--override-gate {args.override_gate[0]}: needs --reason TEXT (kept in the journal)"
        )
    overrides = {name: args.reason for name in args.override_gate}
    result = run_site(
        SiteRunOptions(
            site=args.site,
            inventory=inventory,
            state_dir=state_dir,
            operator=operator,
            yes=args.yes,
            dry_run=args.dry_run,
            limit=args.limit,
            tier=args.tier,
            force_hosts=forced,
            confirm_each_wave=args.confirm_each_wave,
            breaker_threshold=args.breaker_threshold,
            json=args.json,
            rehearsal=args.rehearsal,
            new_journal=args.new_journal,
            say=say,
            imaging_capacity=args.capacity,
            pipeline_depth=args.pipeline_depth,
            override_gates=overrides,
            **({"playbook": args.playbook} if args.playbook else {}),
        )
    )
    if not args.json:
        print(f"run {result.run_id}: {result.status}" + (f" - {result.reason}" if result.reason else ""))
        print(f"run directory: {result.run_dir}")
    return result.exit_code
