"""The crisis-cell report: per site and service, what is back, in progress, failed or quarantined.

model   pure functions over journal rows (counts, timeline, tier times, problems)
chart   inline SVG progress chart
render  HTML / CSV / JSON text
write   read the journal, write the files of one report
"""

from rebuild.report.model import Report, build_report
from rebuild.report.write import ReportFiles, write_report

__all__ = ["Report", "ReportFiles", "build_report", "write_report"]
