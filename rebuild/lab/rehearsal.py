"""A full rehearsal in one command: start the SIMULATED lab for a site, rebuild the site
against it exactly as against a real hospital, then write the crisis-cell report.

This module composes the lab and the product; the product never imports it. The site run
gets nothing but the lab's inventory and state directory, as it would get a real one's.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rebuild.lab import daemon
from rebuild.orchestrator import SiteRunOptions, SiteRunResult, run_site
from rebuild.report import ReportFiles, write_report


@dataclass(frozen=True)
class RehearsalOptions:
    site: str
    register: Path
    lab_dir: Path
    imaging_seconds: float = 2.0
    bmc_power_seconds: int | None = 1  # shortened like imaging; None: the emulator's random up to 11 s
    # WinRM refused while a twin restarts, shortened like imaging: 1 s fits inside win_reboot's first
    # back-off after the roles' post_reboot_delay (docs/site-run.md, "Timeouts and poll intervals").
    restart_seconds: float = 1.0
    address_prefix: str = "127.20"
    keep_lab: bool = True  # leave the twins up so the operator can look at them afterwards
    json: bool = False


@dataclass(frozen=True)
class RehearsalResult:
    run: SiteRunResult
    report: ReportFiles
    lab_dir: Path


def rehearse(options: RehearsalOptions, say: Callable[[str], None] = print) -> RehearsalResult:
    say(daemon.BANNER)
    # A rehearsal starts from a freshly compromised fleet: stop any lab left in this directory.
    if daemon.down(options.lab_dir):
        say(f"stopped the previous lab in {options.lab_dir}")
    info = daemon.up(
        daemon.DaemonOptions(
            lab_dir=options.lab_dir,
            register=options.register,
            site=options.site,
            address_prefix=options.address_prefix,
            imaging_seconds=options.imaging_seconds,
            bmc_power_seconds=options.bmc_power_seconds,
            restart_seconds=options.restart_seconds,
        )
    )
    inventory = Path(info["inventory"][options.site])
    state_dir = Path(info["state_dir"])
    say(f"lab up: {info['twins']} twins of {options.site} in {info['seconds_to_ready']} s; rebuilding them")
    durations = "; ".join(f"{what} {took}" for what, took in info["simulated_durations"].items())
    say(f"simulated durations (SIMULATED hardware, not measured): {durations}")
    try:
        result = run_site(
            SiteRunOptions(
                site=options.site,
                inventory=inventory,
                state_dir=state_dir,
                operator=os.environ.get("USER") or getpass.getuser(),
                yes=True,  # the operator asked for a rehearsal of this site by name
                rehearsal=True,
                new_journal=True,  # `lab up` reset the lab's state directory: a first run by design
                json=options.json,
                say=(lambda text: None) if options.json else say,
            )
        )
        files = write_report(state_dir, state_dir / "reports", options.site)
    finally:
        if not options.keep_lab:
            daemon.down(options.lab_dir)
    return RehearsalResult(run=result, report=files, lab_dir=options.lab_dir)
