"""Registers as real tools export them: CSV (UTF-8 with/without BOM, Windows-1252, ';' or ','),
XLSX (first or named sheet) and JSON; column names through the alias table."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from rebuild.errors import RegisterError
from rebuild.register import load_register

DATA = Path(__file__).resolve().parent.parent / "data"

FR_HEADER = "Nom;N° inventaire;Type;Plateforme;Système d'exploitation;Site;Service;Local;Adresse IP;Adresse MAC;Adresse BMC;Référence VM;Statut"  # noqa: E501
FR_ROWS = [
    "ARL-DC01;A-1;Serveur;Physique;Windows Server 2022;Arlon;Contrôleur de domaine;Salle A;10.11.0.10;14:18:77:00:00:01;10.11.2.10;;En service",  # noqa: E501
    "ARL-MAT-0001;A-2;Poste de travail;Physique;Win11;Arlon;Maternité;Maternité 3;10.11.16.10;D0-94-66-00-00-02;;;Actif",  # noqa: E501
    "ARL-OLD-0001;A-3;PC;Physique;Windows 7;Arlon;Urgences;Stock;;;;;Réformé",
]


def french_csv(path: Path, encoding: str, delimiter: str = ";", bom: bool = False) -> Path:
    lines = [FR_HEADER, *FR_ROWS]
    text = "\r\n".join(line.replace(";", delimiter) for line in lines) + "\r\n"
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def check_french(result_path: Path) -> None:
    result = load_register(result_path)
    assert result.problems == [], [str(p) for p in result.problems]
    dc, pc = result.hosts
    assert (dc.hostname, dc.service, dc.service_label) == ("ARL-DC01", "directory", "Contrôleur de domaine")
    assert (pc.service, pc.location, pc.mac) == ("maternity", "Maternité 3", "d0:94:66:00:00:02")
    assert result.skipped["retired"] == 1


@pytest.mark.parametrize(
    ("encoding", "delimiter", "bom"),
    [("utf-8", ";", True), ("utf-8", ";", False), ("cp1252", ";", False), ("utf-8", ",", False),
     ("cp1252", ",", False)],
)  # fmt: skip
def test_csv_encodings_and_delimiters(tmp_path: Path, encoding: str, delimiter: str, bom: bool) -> None:
    check_french(french_csv(tmp_path / "parc.csv", encoding, delimiter, bom))


def test_csv_utf16_tab_separated_excel_unicode_text(tmp_path: Path) -> None:
    path = tmp_path / "parc.txt"
    text = "\r\n".join(line.replace(";", "\t") for line in [FR_HEADER, *FR_ROWS]) + "\r\n"
    path.write_bytes(text.encode("utf-16"))  # with BOM, as Excel writes it
    check_french(path)


def test_csv_with_quoted_delimiters_in_cells(tmp_path: Path) -> None:
    path = tmp_path / "apps.csv"
    path.write_text(
        "Hostname,Asset,Kind,Platform,OS,Site,Service,IP,MAC,Applications\n"
        'ARL-LAB-0001,Z1,PC,Physical,Win11,Arlon,Labo,10.11.16.20,d0:94:66:00:00:09,"lis-client, edr-agent"\n',  # noqa: E501
        encoding="utf-8",
    )
    result = load_register(path)
    assert result.ok, [str(p) for p in result.problems]
    assert result.hosts[0].applications == ("lis-client", "edr-agent")


def test_undecodable_csv_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"Hostname;Site\nARL\x81\x8d;Arlon\n")  # invalid in UTF-8 and undefined in cp1252
    with pytest.raises(RegisterError, match="line 2: byte 0x81 is neither UTF-8 nor Windows-1252"):
        load_register(path)


def make_xlsx(path: Path) -> Path:
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "Notes"
    notes.append(["Export du parc informatique - ne pas modifier"])
    sheet = book.create_sheet("Inventaire")
    sheet.append([])  # a blank line above the header, as people leave them
    sheet.append(FR_HEADER.split(";"))
    for line in FR_ROWS:
        cells: list[object] = list(line.split(";"))
        sheet.append(cells)
    sheet["B3"] = 1001.0  # an asset number Excel stored as a float
    book.save(path)
    return path


def test_xlsx_named_sheet(tmp_path: Path) -> None:
    result = load_register(make_xlsx(tmp_path / "parc.xlsx"), sheet="Inventaire")
    assert result.ok, [str(p) for p in result.problems]
    assert [h.hostname for h in result.hosts] == ["ARL-DC01", "ARL-MAT-0001"]
    assert result.hosts[0].asset_tag == "1001"
    assert result.skipped["retired"] == 1


def test_xlsx_rows_are_numbered_as_in_the_sheet(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "parc.xlsx")
    book = openpyxl.load_workbook(path)
    book["Inventaire"]["I4"] = "10.99.0.1"  # ARL-MAT-0001's IP, sheet row 4
    book.save(path)
    result = load_register(path, sheet="Inventaire")
    assert [(p.row, p.column) for p in result.problems] == [(4, "Adresse IP")]


def test_xlsx_first_sheet_by_default_and_unknown_sheet(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "parc.xlsx")
    result = load_register(path)  # "Notes" sheet: no register columns
    assert any(p.row is None and "no column for hostname" in p.message for p in result.problems)
    with pytest.raises(RegisterError, match="no sheet 'Feuil1'; sheets: Notes, Inventaire"):
        load_register(path, sheet="Feuil1")


def test_json_export() -> None:
    result = load_register(DATA / "register-export.json")
    assert [h.hostname for h in result.hosts] == ["ARL-DC01", "BAS-URG-0001"]
    dc, vdi = result.hosts
    assert dc.applications == ("directory-audit-agent", "edr-agent")
    assert vdi.vm_ref == "vm-77" and str(vdi.platform) == "virtual"
    assert result.skipped["retired"] == 1
    (problem,) = result.problems
    assert (problem.row, problem.column, problem.unit) == (4, "ip", "record")
    assert str(problem).startswith(f"{DATA / 'register-export.json'} record 4, column 'ip': IP 10.14.99.10")


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(RegisterError, match="no such register file"):
        load_register(tmp_path / "nope.csv")
    odd = tmp_path / "parc.ods"
    odd.write_bytes(b"x")
    with pytest.raises(RegisterError, match="unsupported register format"):
        load_register(odd)
