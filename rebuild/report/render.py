"""Render a Report as HTML (for people), CSV and JSON (for other tools). Pure: text in, text out."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime

import jinja2

from rebuild.csvsafe import SafeWriter
from rebuild.report.chart import progress_svg
from rebuild.report.model import STATUS_LABELS, Report, format_duration
from rebuild.verify.conditions import CONDITION_LABELS

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("rebuild.report", "templates"),
    autoescape=True,  # reasons and check messages come from hosts: never trust them as HTML
    undefined=jinja2.StrictUndefined,
)


def _clock(ts: float | None) -> str:
    return "—" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def render_html(
    report: Report,
    *,
    site_labels: Mapping[str, str] | None = None,
    tier_labels: Mapping[int, str] | None = None,
) -> str:
    site_labels = dict(site_labels or {})
    charts = {
        site: progress_svg(
            points,
            report.sites[site].total,
            title=f"Machines per status over time — {site_labels.get(site, site)}",
        )
        for site, points in report.timeline.items()
    }
    scope_label = site_labels.get(report.scope, report.scope)
    return _ENV.get_template("report.html.j2").render(
        r=report,
        scope_label=scope_label,
        site_labels=site_labels,
        tier_labels=dict(tier_labels or {}),
        status_labels=STATUS_LABELS,
        condition_labels=CONDITION_LABELS,
        charts=charts,
        generated=_clock(report.generated_at),
        dur=format_duration,
        clock=_clock,
    )


SERVICE_COLUMNS = (
    "simulated",
    "site",
    "tier",
    "service",
    "machines",
    "back",
    "in_progress",
    "pending",
    "failed",
    "quarantined",
    "promoted",
    "rebuild_secret_retired",
    "rebuild_secret_kept",
)
HELD_BACK_PREFIX = "held_back_"  # then one column per condition: held_back_patch_level, ...


def render_csv(report: Report) -> str:
    """One line per site and service (what the crisis cell pastes into its spreadsheet)."""
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")  # host names, reasons: no formulas
    writer.writerow([*SERVICE_COLUMNS, *(HELD_BACK_PREFIX + c for c in report.conditions)])
    for line in report.services:
        c = line.counts
        writer.writerow(
            [
                "yes" if report.simulated else "no",
                line.site,
                line.tier,
                line.service,
                c.total,
                c.back,
                c.in_progress,
                c.pending,
                c.failed,
                c.quarantined,
                c.promoted,
                c.secret_retired,
                c.secret_kept,
                *(c.held_back.get(name, 0) for name in report.conditions),
            ]
        )
    return out.getvalue()


PROBLEM_COLUMNS = (
    "simulated",
    "host",
    "site",
    "tier",
    "service",
    "status",
    "phase",
    "reason",
    "failing_checks",
    "conditions",
)


def render_problems_csv(report: Report) -> str:
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")  # host names, reasons: no formulas
    writer.writerow(PROBLEM_COLUMNS)
    for p in report.problems:
        writer.writerow(
            [
                "yes" if report.simulated else "no",
                p.host,
                p.site,
                p.tier,
                p.service,
                p.status.value,
                p.phase,
                p.reason,
                " | ".join(p.failing_checks),
                " ".join(p.conditions),
            ]
        )
    return out.getvalue()


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str)
