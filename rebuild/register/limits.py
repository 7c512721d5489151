"""What a register may be (sizes, characters) and how its values appear in messages.

A register comes from outside: an export, a hand-edited sheet, or a hostile file. Every
limit below is documented in docs/register.md ("Limits") and sized so that a real export of
a large hospital (5,000 rows, and the 100,000-row bench) passes with room to spare.
"""

from __future__ import annotations

import re

MAX_REGISTER_BYTES = 64 * 2**20  # the file on disk (a 100,000-row CSV is about 15 MB)
MAX_ROWS = 250_000  # rows or records (the bench fleet: 100,000)
MAX_COLUMNS = 256  # columns or distinct JSON keys (a CMDB export: 15 to 40)
MAX_CELL_CHARS = 1024  # one cell or JSON value (the longest real field, applications, is < 200)
MAX_XLSX_UNCOMPRESSED = 256 * 2**20  # all members of an .xlsx together, as declared in the zip
MAX_XLSX_RATIO = 100  # uncompressed / compressed size of one member (real sheets: under 20)
MAX_XLSX_MEMBERS = 1000  # files inside an .xlsx (Excel writes about a dozen)
RATIO_FLOOR = 2**20  # members smaller than this are not ratio-checked (tiny XML compresses oddly)
MAX_ROWS_NAMED = 5  # other rows a duplicate message names before "and N more"

# Characters no register field needs and that hide or corrupt what a person reads:
# C0 controls but tab/CR/LF (cells may hold line breaks), DEL, C1 controls, and the
# bidirectional overrides/isolates that make text display in another order (Trojan Source).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(value: str, limit: int = 40) -> str:
    """A value as a message quotes it: stripped, repr'd, and cut with its length when long.

    >>> shown("A" * 100)
    "'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'… (100 characters)"
    """
    text = value.strip()
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


def cell_problem(text: str) -> str | None:
    """Why a cell cannot be taken as it is (too long, control character), or None."""
    if len(text) > MAX_CELL_CHARS:
        return f"cell is {len(text):,} characters long (limit {MAX_CELL_CHARS:,}): {shown(text)}"
    found = CONTROL.search(text)
    if found is not None:
        return (
            f"contains the control character U+{ord(found.group()):04X} at position {found.start() + 1} "
            "(control characters are refused in every field)"
        )
    return None
