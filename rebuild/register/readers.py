"""Read a register file as it comes out of real tools: CSV, XLSX or a JSON export.

Every reader returns the same `RawTable`: the headers as written and rows of strings, each
tagged with the row number a person sees in that file (spreadsheet row, CSV line of the
record, JSON record index) so problems can point at it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild import atomicfile
from rebuild.csvsafe import SafeWriter
from rebuild.errors import RegisterError
from rebuild.register.limits import (
    CONTROL,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_REGISTER_BYTES,
    MAX_ROWS,
    MAX_XLSX_MEMBERS,
    MAX_XLSX_RATIO,
    MAX_XLSX_UNCOMPRESSED,
    RATIO_FLOOR,
    shown,
)

LIMITS_DOC = "docs/register.md, Limits"


@dataclass
class RawTable:
    path: Path
    headers: list[str]
    rows: list[tuple[int, list[str]]]  # (row number as the person sees it, cell values)
    unit: str = "row"  # "row" for CSV/XLSX, "record" for JSON
    delimiter: str = ","  # CSV only: kept so a rejects file looks like the input
    has_braces: bool = True  # False when no cell can hold "{": lets the validator skip a scan
    has_controls: bool = True  # False when no cell can hold a control character (same idea)
    # Cells whose value had the wrong type (JSON true, an object...): row number -> column
    # index -> what is wrong. The cell itself reads "" and the validator reports this instead.
    bad_cells: dict[int, dict[int, str]] = field(default_factory=dict)


def _too_many(path: Path, what: str, count: int, limit: int) -> RegisterError:
    # Rows are padded to the header's width: columns times rows must stay small.
    return RegisterError([f"{path}: {count:,} {what} (limit {limit:,}, {LIMITS_DOC}); nothing was read"])


def read_table(path: Path, *, sheet: str | None = None) -> RawTable:
    """Read a register by its extension (.csv/.txt, .xlsx/.xlsm, .json)."""
    if path.is_dir():
        raise RegisterError([f"{path}: is a folder, not a register file"])
    if not path.is_file():
        raise RegisterError([f"{path}: no such register file"])
    size = path.stat().st_size
    if size > MAX_REGISTER_BYTES:
        raise RegisterError(
            [f"{path}: the file is {size / 2**20:,.0f} MiB, over the {MAX_REGISTER_BYTES // 2**20} MiB "
             f"limit for a register ({LIMITS_DOC}); nothing was read"]
        )  # fmt: skip
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path, sheet=sheet)
    if sheet is not None:
        raise RegisterError([f"{path}: --sheet only applies to .xlsx registers"])
    if suffix == ".json":
        return read_json(path)
    if suffix in (".csv", ".txt", ".tsv"):
        return read_csv(path)
    raise RegisterError([f"{path}: unsupported register format {shown(suffix)} (use .csv, .xlsx or .json)"])


# --- text encodings -------------------------------------------------------------------------

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_CSV_ENCODINGS = "UTF-8, Windows-1252 or UTF-16 with its byte-order mark"


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _utf16_without_bom(data: bytes) -> str | None:
    """'little-endian'/'big-endian' when the start reads as UTF-16 text without a BOM: every
    other byte NUL (what Latin text looks like in UTF-16), else None."""
    sample = data[:4096]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > len(sample) // 4 and even == 0:
        return "little-endian"
    if even > len(sample) // 4 and odd == 0:
        return "big-endian"
    return None


def _first_utf8_line(data: bytes) -> tuple[int, str] | None:
    """The first line holding non-ASCII text that is valid UTF-8 (number, text), or None."""
    for number, line in enumerate(data.split(b"\n"), 1):
        if max(line, default=0) < 0x80:
            continue
        try:
            return number, line.decode("utf-8").strip()
        except UnicodeDecodeError:
            continue
    return None


def _not_utf8(path: Path, data: bytes, exc: UnicodeDecodeError, expected: str) -> RegisterError:
    """Say where the text stops being UTF-8, what it looks like instead, and what was expected."""
    line = _line_of(data, exc.start)
    start = data.rfind(b"\n", 0, exc.start) + 1
    end = data.find(b"\n", exc.start)
    raw = data[start : end if end >= 0 else len(data)]
    as_1252 = raw.decode("cp1252", errors="replace").strip()
    message = (
        f"{path} line {line}: byte 0x{data[exc.start]:02X} is not UTF-8 "
        f"(the line reads as Windows-1252: {shown(as_1252, 60)})"
    )
    utf8 = _first_utf8_line(data)
    if utf8 is not None:
        message += (
            f", but line {utf8[0]} is UTF-8 ({shown(utf8[1], 60)}): the file mixes two encodings "
            "(rows pasted from another export?)"
        )
    return RegisterError([f"{message}; expected {expected} throughout: re-export the register as CSV UTF-8"])


def decode_register(path: Path, data: bytes, *, legacy: bool) -> str:
    """The text of a register file, or a RegisterError saying what is wrong with its encoding.

    Real CSV exports (`legacy`): Excel "CSV UTF-8" (BOM), LibreOffice (UTF-8), older Excel
    (Windows-1252, the whole file), Excel "Unicode text" (UTF-16 with BOM). JSON: UTF-8 only
    (RFC 8259 section 8.1). A file that mixes UTF-8 and Windows-1252 lines, or UTF-16 without
    its BOM, is refused: decoding it either way would silently change names (Réa -> RÃ©a).
    """
    expected = _CSV_ENCODINGS if legacy else "UTF-8 (RFC 8259 section 8.1: JSON is UTF-8)"
    if data.startswith(_UTF16_BOMS):
        if not legacy:
            raise RegisterError([f"{path}: the file is UTF-16; expected {expected}"])
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise RegisterError(
                [f"{path}: starts with a UTF-16 byte-order mark but byte {exc.start} is not UTF-16; "
                 "re-export the register as CSV UTF-8"]
            ) from None  # fmt: skip
    bom = data.startswith(_UTF8_BOM)
    body = data[3:] if bom else data
    order = _utf16_without_bom(body)
    if order is not None:
        raise RegisterError(
            [f"{path} line 1: NUL bytes between the characters: this looks like UTF-16 ({order}) "
             f"without its byte-order mark; expected {expected}: re-export the register as CSV UTF-8"]
        )  # fmt: skip
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if bom or not legacy or _first_utf8_line(body) is not None:
            raise _not_utf8(path, body, exc, "UTF-8" if bom else expected) from None
    try:
        return body.decode("cp1252")  # no UTF-8 anywhere: an older Excel's export, whole
    except UnicodeDecodeError as exc:
        raise RegisterError(
            [f"{path} line {_line_of(body, exc.start)}: byte 0x{body[exc.start]:02X} is neither UTF-8 "
             f"nor Windows-1252; expected {expected}: re-export the register as CSV UTF-8"]
        ) from None  # fmt: skip


# --- CSV ------------------------------------------------------------------------------------


def _sniff_delimiter(header_line: str) -> str:
    # The header decides: a French Excel writes ';', an English one ',', "Unicode text" a tab.
    counts = {d: header_line.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(path: Path) -> RawTable:
    try:
        text = decode_register(path, path.read_bytes(), legacy=True)
    except OSError as exc:
        raise RegisterError([f"{path}: cannot read: {exc}"]) from exc
    first_line = text.split("\n", 1)[0]
    delimiter = _sniff_delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for record in reader:
            # reader.line_num is the line where the record ended; a person counts records,
            # which equals lines for registers without embedded newlines (the common case).
            if headers is None:
                if any(cell.strip() for cell in record):
                    headers = [cell.strip() for cell in record]
                    if len(headers) > MAX_COLUMNS:
                        raise _too_many(path, "columns in the header", len(headers), MAX_COLUMNS)
                continue
            if not "".join(record).strip():
                continue
            if len(rows) == MAX_ROWS:
                raise _too_many(path, "rows or more", MAX_ROWS + 1, MAX_ROWS)
            rows.append((reader.line_num, record))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):  # csv's own bound (131,072 characters)
            raise RegisterError(
                [f"{path} row {reader.line_num}: a cell is longer than {csv.field_size_limit():,} "
                 f"characters (limit {MAX_CELL_CHARS:,}, {LIMITS_DOC})"]
            ) from None  # fmt: skip
        raise RegisterError([f"{path} row {reader.line_num}: malformed CSV: {exc}"]) from None
    if headers is None:
        raise RegisterError([f"{path}: empty register (no header row)"])
    return RawTable(
        path, headers, rows, "row", delimiter, has_braces="{" in text, has_controls=bool(CONTROL.search(text))
    )


# --- XLSX -----------------------------------------------------------------------------------


def check_archive(path: Path) -> None:
    """Refuse an .xlsx whose zip would inflate past the limits, before anything is inflated.

    The sizes are those the zip's directory declares; Python's zipfile never gives more than
    the declared size of a member (and fails the CRC check if the data disagrees), so a
    member cannot grow past what is checked here.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise RegisterError(
            [f"{path}: cannot open as an Excel workbook (not a valid .xlsx zip: {exc})"]
        ) from None
    refuse = f"refused before opening the workbook ({LIMITS_DOC})"
    if len(members) > MAX_XLSX_MEMBERS:
        raise RegisterError(
            [f"{path}: the archive holds {len(members):,} files (limit {MAX_XLSX_MEMBERS:,}); {refuse}"]
        )
    total = sum(m.file_size for m in members)
    if total > MAX_XLSX_UNCOMPRESSED:
        raise RegisterError(
            [f"{path}: the workbook would inflate to {total / 2**20:,.0f} MiB (limit "
             f"{MAX_XLSX_UNCOMPRESSED // 2**20} MiB uncompressed); {refuse}"]
        )  # fmt: skip
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_FLOOR and ratio > MAX_XLSX_RATIO:
            raise RegisterError(
                [f"{path}: {shown(member.filename, 60)} inflates {ratio:,.0f} times "
                 f"({member.compress_size:,} -> {member.file_size:,} bytes; limit {MAX_XLSX_RATIO} times): "
                 f"a zip bomb, not a spreadsheet; {refuse}"]
            )  # fmt: skip


def _xlsx_cell(value: Any) -> str | None:
    """The text of a spreadsheet cell, or None when its type is not one a register holds."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return None  # a TRUE/FALSE cell: never a name, tag or address
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores asset numbers as floats
    return str(value).strip()


def _root_cause(exc: BaseException) -> str:
    """The first error of a chain, named: openpyxl wraps defusedxml's refusal in a ValueError."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    if type(exc).__module__.startswith("defusedxml"):
        return f"its XML declares entities or a DTD (refused by defusedxml: {type(exc).__name__})"
    return f"{type(exc).__name__}: {shown(str(exc), 200)}"


def read_xlsx(path: Path, *, sheet: str | None = None) -> RawTable:
    check_archive(path)
    import openpyxl  # imported here: only XLSX registers pay for it

    if not openpyxl.DEFUSEDXML:
        # openpyxl parses the workbook's XML with defusedxml when it is installed and
        # OPENPYXL_DEFUSEDXML is not "False"; without it, entity expansion is possible.
        raise RegisterError(
            [
                f"{path}: refusing to open an .xlsx without defusedxml "
                "(install it; do not set OPENPYXL_DEFUSEDXML=False)"
            ]
        )
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken files
        raise RegisterError([f"{path}: cannot open as an Excel workbook: {_root_cause(exc)}"]) from None
    try:
        if sheet is None:
            ws = book.worksheets[0]
        elif sheet in book.sheetnames:
            ws = book[sheet]
        else:
            raise RegisterError(
                [
                    f"{path}: no sheet {shown(sheet)}; "
                    f"sheets: {', '.join(s[:40] for s in book.sheetnames[:20])}"
                ]
            )
        # The sheet's declared size first; then, as the declaration may lie, the rows read.
        if (ws.max_row or 0) > MAX_ROWS + 1 or (ws.max_column or 0) > MAX_COLUMNS:
            raise RegisterError(
                [f"{path}: sheet {shown(ws.title)} declares {ws.max_row or 0:,} rows and "
                 f"{ws.max_column or 0:,} columns (limits {MAX_ROWS:,} and {MAX_COLUMNS}, {LIMITS_DOC})"]
            )  # fmt: skip
        headers: list[str] | None = None
        rows: list[tuple[int, list[str]]] = []
        bad_cells: dict[int, dict[int, str]] = {}
        for number, values in enumerate(ws.iter_rows(max_row=MAX_ROWS + 2, values_only=True), 1):
            if number > MAX_ROWS + 1:  # the header and MAX_ROWS rows
                raise _too_many(path, "rows or more", number - 1, MAX_ROWS)
            if len(values) > MAX_COLUMNS:
                raise _too_many(path, f"columns on row {number}", len(values), MAX_COLUMNS)
            if not any(values):
                continue  # blank (or all zero/FALSE: nothing a register row holds)
            cells: list[str] = []
            for i, value in enumerate(values):
                text = _xlsx_cell(value)
                if text is None:
                    bad_cells.setdefault(number, {})[i] = (
                        f"a {str(value).upper()} (true/false) cell; expected text or a number"
                    )
                    text = ""
                cells.append(text)
            if not any(cells) and number not in bad_cells:
                continue
            if headers is None:
                headers = cells
                continue
            rows.append((number, cells))
    except RegisterError:
        raise
    except Exception as exc:  # XML refused by defusedxml, truncated sheets, broken styles...
        raise RegisterError([f"{path}: cannot read the workbook: {_root_cause(exc)}"]) from None
    finally:
        book.close()
    if headers is None:
        raise RegisterError([f"{path}: sheet {shown(ws.title)} is empty (no header row)"])
    while headers and not headers[-1]:
        headers.pop()
    return RawTable(path, headers, rows, "row", bad_cells=bad_cells)


# --- JSON -----------------------------------------------------------------------------------


class _NotJson:
    """What NaN, Infinity and -Infinity parse to: not JSON (RFC 8259 section 6), reported per field."""

    def __init__(self, name: str) -> None:
        self.name = name


def _records(path: Path, data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]  # {"assets": [...]} or {"data": [...]}: one list of records
    raise RegisterError([f"{path}: expected a JSON list of asset records (or an object holding one list)"])


def _json_scalar(value: Any) -> str | None:
    """Text of a JSON value a register field can hold (string, number, null), else None."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | _NotJson):
        return None
    if isinstance(value, int):
        return str(value)  # the parser already refused numbers over 4,300 digits
    if isinstance(value, float):
        if not math.isfinite(value):
            return None  # 1e999
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, _NotJson):
        return f"{value.name}, which is not JSON (RFC 8259 section 6); leave the field empty or null"
    if isinstance(value, bool):
        return f"the JSON boolean {str(value).lower()}; expected text or a number"
    if isinstance(value, float):
        return "a number out of range; expected text or a number"
    if isinstance(value, dict):
        return "a JSON object; expected text or a number"
    if isinstance(value, list):
        return "a list holding something other than text or numbers"
    return f"a JSON {type(value).__name__}; expected text or a number"


def _json_cell(value: Any) -> str | None:
    """A field's text: a scalar, or a flat list of scalars joined by ';' (applications)."""
    if isinstance(value, list):
        parts = [_json_scalar(v) for v in value]
        if any(p is None for p in parts):
            return None
        return ";".join(p for p in parts if p)
    return _json_scalar(value)


def read_json(path: Path) -> RawTable:
    try:
        text = decode_register(path, path.read_bytes(), legacy=False)
        data = json.loads(text, parse_constant=_NotJson)
    except OSError as exc:
        raise RegisterError([f"{path}: cannot read: {exc}"]) from exc
    except json.JSONDecodeError as exc:
        raise RegisterError(
            [f"{path} line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"]
        ) from None
    except RecursionError:
        raise RegisterError(
            [f"{path}: JSON nested too deeply for a register (records are flat: a list of objects "
             "whose values are text, numbers or lists of those)"]
        ) from None  # fmt: skip
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise RegisterError([f"{path}: not a usable JSON export: {shown(str(exc), 120)}"]) from None
    records = _records(path, data)
    if len(records) > MAX_ROWS:
        raise _too_many(path, "records", len(records), MAX_ROWS)
    headers: dict[str, None] = {}
    for record in records:
        if isinstance(record, dict):
            headers.update(dict.fromkeys(record))
            if len(headers) > MAX_COLUMNS:
                raise _too_many(path, "distinct field names or more", len(headers), MAX_COLUMNS)
    names = list(headers)
    rows: list[tuple[int, list[str]]] = []
    bad: list[str] = []
    bad_cells: dict[int, dict[int, str]] = {}
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            bad.append(f"{path} record {number}: expected an object, got a JSON {type(record).__name__}")
            continue
        cells: list[str] = []
        for i, name in enumerate(names):
            value = record.get(name)
            cell = _json_cell(value)
            if cell is None:
                bad_cells.setdefault(number, {})[i] = f"the value is {_json_type(value)}"
                cell = ""
            cells.append(cell)
        rows.append((number, cells))
    if bad:
        raise RegisterError(bad)
    return RawTable(path, names, rows, "record", bad_cells=bad_cells)


def write_csv_atomic(
    path: Path, headers: Iterable[str], rows: Iterable[Iterable[str]], delimiter: str
) -> None:
    """Write a CSV (UTF-8 with BOM so Excel opens it right, formula cells neutralised) via temp
    file + rename."""
    # Owner-only, as before: a rejects file repeats register rows.
    with atomicfile.staged_text(path, mode=atomicfile.PRIVATE, encoding="utf-8-sig", newline="") as handle:
        writer = SafeWriter(handle, delimiter=delimiter)  # no cell runs as a formula
        writer.writerow(list(headers))
        writer.writerows(list(r) for r in rows)
