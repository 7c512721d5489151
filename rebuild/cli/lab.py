"""`rebuild lab up|status|down|fault`: the SIMULATED lab. Parses and delegates to rebuild.lab.daemon.

The lab is imported only when a lab command runs: product commands (`rebuild site` on a real
hospital) must never load the simulation (tests/unit/test_cli_imports.py).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rebuild.cli.options import name_arg

_LAB_DIR_HELP = "the lab's folder (default $REBUILD_LAB_DIR or .lab)"
_REGISTER_HELP = "asset register (default: the bundled inventories/example/register.csv)"
# `lab up`: a restart as short as a small virtual machine's, so that a client meets the listener
# gone and win_reboot's back-off (1, 2, 4, 8 s) runs as against real hosts (docs/lab.md).
UP_RESTART_SECONDS = 20.0
_BMC_HELP = (
    "seconds a simulated server BMC takes to land a power change (default: the emulator's random "
    "up to 11 s per change; 0: at once)"
)


def _bmc_seconds(text: str) -> int:
    """--bmc-power-seconds: a whole number of seconds, 0 or more (the emulator counts whole seconds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _restart_seconds(text: str) -> float:
    """--restart-seconds: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("lab", help="the SIMULATED lab: twins of the fleet on loopback")
    verbs = parser.add_subparsers(dest="lab_verb", required=True, metavar="ACTION")

    up = verbs.add_parser("up", help="start the lab daemon in the background")
    up.add_argument("--site", type=name_arg("--site"), help="only this site's hosts")
    up.add_argument("--register", type=Path, help=_REGISTER_HELP)
    up.add_argument("--lab-dir", type=Path, help=_LAB_DIR_HELP)
    up.add_argument("--imaging-seconds", type=float, default=5.0, help="how long a simulated reimage takes")
    up.add_argument("--bmc-power-seconds", type=_bmc_seconds, help=_BMC_HELP)
    up.add_argument(
        "--restart-seconds",
        type=_restart_seconds,
        default=UP_RESTART_SECONDS,
        help=f"seconds a restarting twin refuses WinRM (default {UP_RESTART_SECONDS:g}; 0: back at once)",
    )
    up.add_argument("--address-prefix", default="127.20", help="twins get <prefix>.X.Y (127.N only)")
    up.add_argument("--http-port", type=int, default=5985, help=argparse.SUPPRESS)
    up.add_argument("--https-port", type=int, default=5986, help=argparse.SUPPRESS)
    up.set_defaults(func=_up)

    status = verbs.add_parser("status", help="phase of every twin, and counts")
    status.add_argument("--lab-dir", type=Path, help=_LAB_DIR_HELP)
    status.add_argument("--summary", action="store_true", help="counts only")
    status.set_defaults(func=_status)

    down = verbs.add_parser("down", help="stop the lab cleanly")
    down.add_argument("--lab-dir", type=Path, help=_LAB_DIR_HELP)
    down.set_defaults(func=_down)

    fault = verbs.add_parser("fault", help="inject a fault: HOST NAME [key=value ...] or --file F")
    fault.add_argument("--lab-dir", type=Path, help=_LAB_DIR_HELP)
    fault.add_argument("--file", type=Path, help="YAML file: host -> fault -> parameters")
    fault.add_argument("--clear", action="store_true", help="remove HOST's fault NAME (or all its faults)")
    fault.add_argument("host", nargs="?")
    fault.add_argument("name", nargs="?", help="a fault name (docs/lab.md lists them)")
    fault.add_argument("params", nargs="*", help="key=value, e.g. delay=3, count=1, settings=a,b")
    fault.set_defaults(func=_fault)

    power = verbs.add_parser("power", help="press a twin's power button: HOST on|off")
    power.add_argument("--lab-dir", type=Path, help=_LAB_DIR_HELP)
    power.add_argument("host", type=name_arg("HOST"))
    power.add_argument("action", choices=("on", "off"))
    power.set_defaults(func=_power)

    rehearse = verbs.add_parser(
        "rehearse", help="lab up for SITE, rebuild the site against it, write the report (all SIMULATED)"
    )
    rehearse.add_argument("site", type=name_arg("SITE"), help="site key, e.g. arlon")
    rehearse.add_argument("--register", type=Path, help=_REGISTER_HELP)
    rehearse.add_argument("--lab-dir", type=Path, help=_LAB_DIR_HELP)
    rehearse.add_argument(
        "--imaging-seconds", type=float, default=2.0, help="how long a simulated reimage takes"
    )
    rehearse.add_argument(
        "--bmc-power-seconds",
        type=_bmc_seconds,
        default=1,
        help="seconds a simulated server BMC takes to land a power change (rehearsal default 1 s, "
        "shortened like imaging; `lab up` keeps the emulator's random up to 11 s; 0: at once)",
    )
    rehearse.add_argument(
        "--restart-seconds",
        type=_restart_seconds,
        default=1.0,
        help="seconds a restarting twin refuses WinRM (rehearsal default 1 s, shortened like imaging; "
        f"`lab up` keeps {UP_RESTART_SECONDS:g} s; 0: back at once)",
    )
    rehearse.add_argument("--address-prefix", default="127.20", help="twins get <prefix>.X.Y (127.N only)")
    rehearse.add_argument(
        "--stop-lab", action="store_true", help="stop the lab afterwards (default: keep it up)"
    )
    rehearse.add_argument("--json", action="store_true", help="quiet JSON-lines progress")
    rehearse.set_defaults(func=_rehearse)


def _lab_dir(args: argparse.Namespace) -> Path:
    from rebuild.lab import daemon

    return args.lab_dir if args.lab_dir is not None else daemon.DEFAULT_LAB_DIR


def _register(args: argparse.Namespace) -> Path:
    from rebuild.lab import fleet

    return args.register if args.register is not None else fleet.DEFAULT_REGISTER


def _up(args: argparse.Namespace) -> int:
    from rebuild.lab import daemon

    options = daemon.DaemonOptions(
        _lab_dir(args),
        _register(args),
        args.site,
        args.address_prefix,
        args.imaging_seconds,
        args.http_port,
        args.https_port,
        args.bmc_power_seconds,
        args.restart_seconds,
    )
    info = daemon.up(options)
    print(daemon.BANNER)
    print(
        f"lab up in {info['lab_dir']}: {info['twins']} twins on {info['address_prefix']}.x.y "
        f"(ready in {info['seconds_to_ready']} s, pid {info['pid']})"
    )
    for site, path in info["inventory"].items():
        print(f"  inventory {site}: {path}")
    print(f"  state dir (seeded secrets): {info['state_dir']}")
    print(f"  control API: {info['control_url']}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from rebuild.lab import daemon

    status = daemon.LabClient(_lab_dir(args)).status()
    print(daemon.BANNER)
    if not args.summary:
        for twin in status["twins"]:
            extra = f"  faults: {','.join(twin['faults'])}" if twin["faults"] else ""
            print(f"{twin['name']:<20} {twin['site']:<10} {twin['address']:<16} {twin['phase']}{extra}")
    counts = ", ".join(f"{phase}: {n}" for phase, n in sorted(status["counts"].items()))
    print(f"{len(status['twins'])} twins ({'ready' if status['ready'] else 'starting'}) - {counts}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from rebuild.lab import daemon

    lab_dir = _lab_dir(args)
    stopped = daemon.down(lab_dir)
    print("SIMULATED lab stopped" if stopped else f"no lab running in {lab_dir}")
    return 0


def _fault(args: argparse.Namespace) -> int:
    from rebuild.lab import daemon, faults

    client = daemon.LabClient(_lab_dir(args))
    if args.file:
        known = [t["name"] for t in client.status()["twins"]]
        result = client.set_faults(faults.load_file(args.file, known))
    elif args.clear and args.host:
        result = client.clear_fault(args.host, args.name)
    elif args.host and args.name:
        result = client.set_faults({args.host: {args.name: faults.parse_params(args.params)}})
    else:
        from rebuild.errors import ConfigError

        raise ConfigError("lab fault: give HOST NAME [key=value ...], --clear HOST [NAME], or --file F")
    for host, named in sorted(result.items()):
        for name, params in sorted(named.items()):
            print(f"{host}: {name} {params if params else ''}".rstrip())
    return 0


def _power(args: argparse.Namespace) -> int:
    from rebuild.lab import daemon

    result = daemon.LabClient(_lab_dir(args)).power(args.host, args.action)
    print(f"{result['host']}: {result['booted']} (SIMULATED power button)")
    return 0


def _rehearse(args: argparse.Namespace) -> int:
    from rebuild.lab.rehearsal import RehearsalOptions, rehearse

    result = rehearse(
        RehearsalOptions(
            site=args.site,
            register=_register(args),
            lab_dir=_lab_dir(args),
            imaging_seconds=args.imaging_seconds,
            bmc_power_seconds=args.bmc_power_seconds,
            restart_seconds=args.restart_seconds,
            address_prefix=args.address_prefix,
            keep_lab=not args.stop_lab,
            json=args.json,
        )
    )
    run = result.run
    print(f"rehearsal run {run.run_id}: {run.status}" + (f" - {run.reason}" if run.reason else ""))
    print(f"report (SIMULATED): {result.report.html}")
    if not args.stop_lab:
        lab_dir = _lab_dir(args)
        print(f"the lab is still up: `rebuild lab status --lab-dir {lab_dir}`; `rebuild lab down` stops it")
    return run.exit_code
