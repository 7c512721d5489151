"""Every CSV rebuild writes goes through here, so no cell runs as a spreadsheet formula.

Register cells, host names, failure reasons and check messages come from outside. Excel,
LibreOffice and Google Sheets run a cell starting with = + - @ (and, per OWASP's CSV
injection guidance, tab or carriage return) as a formula: `=HYPERLINK(...)` in a rejects file
would run on the crisis cell's laptop. Such a cell is written with a leading single quote,
which spreadsheets show as text (the quote itself is not displayed in Excel).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading ' ; other values pass."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer whose rows are neutralised cell by cell (same arguments as csv.writer)."""

    def __init__(self, handle: IO[str], **fmt: Any) -> None:
        self._writer = csv.writer(handle, **fmt)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
