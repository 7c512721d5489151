"""Read the journal and write one report's files (HTML, CSV, problems CSV, JSON) atomically."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rebuild import atomicfile
from rebuild.errors import ConfigError, RebuildError
from rebuild.journal import JOURNAL_FILE, Journal
from rebuild.report.model import Report, build_report
from rebuild.report.render import render_csv, render_html, render_json, render_problems_csv


@dataclass(frozen=True)
class ReportFiles:
    report: Report
    html: Path
    csv: Path
    problems_csv: Path
    json: Path


def _labels() -> tuple[dict[str, str], dict[int, str]]:
    # Labels are cosmetic: a report must still be produced if the data files moved or are wrong
    # (the loaders say so as a RebuildError); any other exception is a bug and shows as one.
    try:
        from rebuild.sites import load_sites
        from rebuild.tiers import load_tiers

        return {s.name: s.label for s in load_sites()}, {t.id: t.label for t in load_tiers()}
    except RebuildError:
        return {}, {}


def write_report(
    state_dir: Path, out_dir: Path, site: str | None = None, *, now: float | None = None
) -> ReportFiles:
    """Build the report for `site` (or every site) from the journal in `state_dir`."""
    journal_path = state_dir / JOURNAL_FILE
    if not journal_path.exists():
        raise ConfigError(f"{journal_path}: no journal here — run `rebuild site` first or pass --state-dir")
    with Journal(journal_path) as journal:
        hosts = journal.hosts(site)
        if site and not hosts:
            known = sorted({h.site for h in journal.hosts()})
            raise ConfigError(
                f"site {site!r} has no host in the journal {journal_path} "
                f"(sites there: {', '.join(known) or 'none'})"
            )
        report = build_report(hosts, journal.transitions(), journal.runs(), site=site, now=now or time.time())
    site_labels, tier_labels = _labels()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"report-{site or 'all'}"
    files = ReportFiles(
        report=report,
        html=out_dir / f"{stem}.html",
        csv=out_dir / f"{stem}.csv",
        problems_csv=out_dir / f"{stem}-problems.csv",
        json=out_dir / f"{stem}.json",
    )
    atomicfile.write_text(files.html, render_html(report, site_labels=site_labels, tier_labels=tier_labels))
    atomicfile.write_text(files.csv, render_csv(report))
    atomicfile.write_text(files.problems_csv, render_problems_csv(report))
    atomicfile.write_text(files.json, render_json(report))
    return files
