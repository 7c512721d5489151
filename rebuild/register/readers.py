"""Read a register file as it comes out of real tools: CSV, XLSX or a JSON export.

Every reader returns the same `RawTable`: the headers as written and rows of strings, each
tagged with the row number a person sees in that file (spreadsheet row, CSV line of the
record, JSON record index) so problems can point at it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuild.errors import RegisterError


@dataclass
class RawTable:
    path: Path
    headers: list[str]
    rows: list[tuple[int, list[str]]]  # (row number as the person sees it, cell values)
    unit: str = "row"  # "row" for CSV/XLSX, "record" for JSON
    delimiter: str = ","  # CSV only: kept so a rejects file looks like the input
    has_braces: bool = True  # False when no cell can hold "{": lets the validator skip a scan


def read_table(path: Path, *, sheet: str | None = None) -> RawTable:
    """Read a register by its extension (.csv/.txt, .xlsx/.xlsm, .json)."""
    if not path.is_file():
        raise RegisterError([f"{path}: no such register file"])
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path, sheet=sheet)
    if sheet is not None:
        raise RegisterError([f"{path}: --sheet only applies to .xlsx registers"])
    if suffix == ".json":
        return read_json(path)
    if suffix in (".csv", ".txt", ".tsv"):
        return read_csv(path)
    raise RegisterError([f"{path}: unsupported register format {suffix!r} (use .csv, .xlsx or .json)"])


def _decode(path: Path, data: bytes) -> str:
    # Real exports: Excel "CSV UTF-8" (BOM), LibreOffice (UTF-8), older Excel (Windows-1252),
    # Excel "Unicode text" (UTF-16 with BOM, tab-separated).
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise RegisterError(
            [f"{path}: cannot decode as UTF-8 or Windows-1252 (byte {exc.start}); re-export as CSV UTF-8"]
        ) from exc


def _sniff_delimiter(header_line: str) -> str:
    # The header decides: a French Excel writes ';', an English one ',', "Unicode text" a tab.
    counts = {d: header_line.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(path: Path) -> RawTable:
    try:
        text = _decode(path, path.read_bytes())
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
                continue
            if not "".join(record).strip():
                continue
            rows.append((reader.line_num, record))
    except csv.Error as exc:
        raise RegisterError([f"{path} row {reader.line_num}: malformed CSV: {exc}"]) from exc
    if headers is None:
        raise RegisterError([f"{path}: empty register (no header row)"])
    return RawTable(path, headers, rows, "row", delimiter, has_braces="{" in text)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores asset numbers as floats
    return str(value).strip()


def read_xlsx(path: Path, *, sheet: str | None = None) -> RawTable:
    import openpyxl  # imported here: only XLSX registers pay for it

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken files
        raise RegisterError([f"{path}: cannot open as an Excel workbook: {exc}"]) from exc
    try:
        if sheet is None:
            ws = book.worksheets[0]
        elif sheet in book.sheetnames:
            ws = book[sheet]
        else:
            raise RegisterError([f"{path}: no sheet {sheet!r}; sheets: {', '.join(book.sheetnames)}"])
        headers: list[str] | None = None
        rows: list[tuple[int, list[str]]] = []
        for number, values in enumerate(ws.iter_rows(values_only=True), 1):
            cells = [_cell(v) for v in values]
            if not any(cells):
                continue
            if headers is None:
                headers = cells
                continue
            rows.append((number, cells))
    finally:
        book.close()
    if headers is None:
        raise RegisterError([f"{path}: sheet {ws.title!r} is empty (no header row)"])
    while headers and not headers[-1]:
        headers.pop()
    return RawTable(path, headers, rows, "row")


def _records(path: Path, data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]  # {"assets": [...]} or {"data": [...]}: one list of records
    raise RegisterError([f"{path}: expected a JSON list of asset records (or an object holding one list)"])


def _json_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(_json_value(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return _cell(value)


def read_json(path: Path) -> RawTable:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegisterError([f"{path}: not a readable JSON export: {exc}"]) from exc
    records = _records(path, data)
    headers: dict[str, None] = {}
    for record in records:
        if isinstance(record, dict):
            headers.update(dict.fromkeys(str(k) for k in record))
    names = list(headers)
    rows: list[tuple[int, list[str]]] = []
    bad: list[str] = []
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            bad.append(f"{path} record {number}: expected an object, got {type(record).__name__}")
            continue
        rows.append((number, [_json_value(record.get(h)) for h in names]))
    if bad:
        raise RegisterError(bad)
    return RawTable(path, names, rows, "record")


def write_csv_atomic(
    path: Path, headers: Iterable[str], rows: Iterable[Iterable[str]], delimiter: str
) -> None:
    """Write a CSV (UTF-8 with BOM so Excel opens it right) via temp file + rename."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow(list(headers))
            writer.writerows(list(r) for r in rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
