"""Every validation case: a bad register names the row, the column and the problem, and
`rebuild inventory build` writes nothing (strict), or valid rows + rejects (--allow-errors)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rebuild.cli import main
from rebuild.register import load_register

HEADERS = ["Hostname", "Asset tag", "Kind", "Platform", "OS", "Site", "Service", "Room", "IP address",
           "MAC address", "BMC address", "VM reference", "Applications", "Status", "Serial"]  # fmt: skip


def good_rows() -> list[dict[str, str]]:
    """Three valid Arlon hosts: a physical server, a VM, a PC (rows 2, 3, 4 of the file)."""
    return [
        {"Hostname": "ARL-DC01", "Asset tag": "T1", "Kind": "Server", "Platform": "Physical",
         "OS": "Windows Server 2022", "Site": "Arlon", "Service": "Active Directory", "Room": "Salle A",
         "IP address": "10.11.0.10", "MAC address": "14:18:77:00:00:01", "BMC address": "10.11.2.10",
         "VM reference": "", "Applications": "", "Status": "In service", "Serial": "S1"},
        {"Hostname": "ARL-OMNI01", "Asset tag": "T2", "Kind": "Server", "Platform": "Virtual",
         "OS": "Windows Server 2019", "Site": "Arlon", "Service": "Omnipro", "Room": "Salle A",
         "IP address": "10.11.0.11", "MAC address": "00:50:56:00:00:02", "BMC address": "",
         "VM reference": "vm-1001", "Applications": "omnipro-server", "Status": "", "Serial": ""},
        {"Hostname": "ARL-URG-0001", "Asset tag": "T3", "Kind": "PC", "Platform": "Physical",
         "OS": "Windows 11", "Site": "Arlon", "Service": "Urgences", "Room": "Urgences 1",
         "IP address": "10.11.16.10", "MAC address": "d0:94:66:00:00:03", "BMC address": "",
         "VM reference": "", "Applications": "omnipro-client; edr-agent", "Status": "En service", "Serial": "S3"},  # noqa: E501
    ]  # fmt: skip


def write(path: Path, rows: list[dict[str, str]], headers: list[str] = HEADERS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=headers, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_good_register_is_valid(tmp_path: Path) -> None:
    result = load_register(write(tmp_path / "r.csv", good_rows()))
    assert result.problems == []
    assert [h.hostname for h in result.hosts] == ["ARL-DC01", "ARL-OMNI01", "ARL-URG-0001"]
    dc, vm, pc = result.hosts
    assert dc.bmc_address == "https://10.11.2.10" and dc.tier == 0 and dc.network == "servers"
    assert vm.vm_ref == "vm-1001" and vm.service == "patient-record"
    assert pc.applications == ("omnipro-client", "edr-agent") and pc.network == "clinical"
    assert pc.os == "windows-11-23h2" and str(pc.kind) == "workstation"


# (what to change: row index -> {column: value}, expected row number, column, words in message)
CASES = {
    "duplicate hostname": ({2: {"Hostname": "arl-dc01"}}, 4, "Hostname", "duplicate hostname ARL-DC01"),
    "duplicate asset tag": ({2: {"Asset tag": "T1"}}, 4, "Asset tag", "duplicate asset tag T1"),
    "duplicate MAC": ({2: {"MAC address": "14-18-77-00-00-01"}}, 4, "MAC address", "duplicate MAC 14:18:77:00:00:01"),  # noqa: E501
    "duplicate IP": ({2: {"IP address": "10.11.0.10"}}, 4, "IP address", "duplicate IP 10.11.0.10"),
    "malformed MAC": ({2: {"MAC address": "d0:94:66:00:03"}}, 4, "MAC address", "malformed MAC"),
    "multicast MAC": ({2: {"MAC address": "01:00:5e:00:00:03"}}, 4, "MAC address", "multicast"),
    "malformed IP": ({2: {"IP address": "10.11.16.300"}}, 4, "IP address", "malformed IP"),
    "IP outside site networks": ({2: {"IP address": "10.12.16.10"}}, 4, "IP address", "outside Arlon's networks"),  # noqa: E501
    "broadcast IP": ({2: {"IP address": "10.11.31.255"}}, 4, "IP address", "network/broadcast"),
    "unknown site": ({2: {"Site": "Namur"}}, 4, "Site", "unknown site 'Namur'"),
    "unknown service": ({2: {"Service": "Urgense"}}, 4, "Service", "closest known: Urgences"),
    "physical server without BMC": ({0: {"BMC address": ""}}, 2, "BMC address", "missing BMC address"),
    "BMC over http": ({0: {"BMC address": "http://10.11.2.10"}}, 2, "BMC address", "https only"),
    "BMC on the host's IP": ({0: {"BMC address": "10.11.0.10"}}, 2, "BMC address", "host's own IP"),
    "VM without reference": ({1: {"VM reference": ""}}, 3, "VM reference", "without hypervisor/VM reference"),
    "missing hostname": ({2: {"Hostname": ""}}, 4, "Hostname", "missing hostname"),
    "invalid hostname": ({2: {"Hostname": "ARL-URGENCES-PC-0001"}}, 4, "Hostname", "invalid hostname"),
    "unknown kind": ({2: {"Kind": "Printer"}}, 4, "Kind", "unknown kind 'Printer'"),
    "unknown OS": ({2: {"OS": "Windows XP"}}, 4, "OS", "unknown os 'Windows XP'"),
    "unknown status": ({2: {"Status": "Lost"}}, 4, "Status", "unknown status 'Lost'"),
    "template in a cell": ({2: {"Room": "{{ lookup('pipe', 'id') }}"}}, 4, "Room", "template markers"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_row_is_reported_with_row_column_and_problem(case: str, tmp_path: Path) -> None:
    change, row, column, words = CASES[case]
    rows = good_rows()
    for index, cells in change.items():
        rows[index].update(cells)
    register = write(tmp_path / "bad.csv", rows)
    result = load_register(register)
    located = [p for p in result.problems if p.row == row and p.column == column]
    assert located, f"no problem on row {row} column {column}: {[str(p) for p in result.problems]}"
    assert any(words in p.message for p in located), [p.message for p in located]
    assert f"bad.csv row {row}, column '{column}'" in str(located[0])
    assert rows[row - 2]["Asset tag"] not in {h.asset_tag for h in result.hosts}  # the bad row yields no host

    # Strict CLI: non-zero exit, the message names the row, and nothing is written.
    out = tmp_path / "out"
    code = main(["inventory", "build", str(register), "--out", str(out)])
    assert code != 0
    assert not out.exists()
    assert not (tmp_path / "out-rejects.csv").exists()


def test_duplicates_reject_every_row_involved(tmp_path: Path) -> None:
    rows = good_rows()
    rows[2]["MAC address"] = rows[0]["MAC address"]
    result = load_register(write(tmp_path / "r.csv", rows))
    assert sorted(r.row for r in result.rejects) == [2, 4]
    assert [h.hostname for h in result.hosts] == ["ARL-OMNI01"]
    messages = [str(p) for p in result.problems]
    assert any("row 2" in m and "also on row 4" in m for m in messages)
    assert any("row 4" in m and "also on row 2" in m for m in messages)


def test_duplicate_found_even_when_the_other_row_is_bad_too(tmp_path: Path) -> None:
    rows = good_rows()
    rows[2]["Asset tag"] = "T1"
    rows[2]["Service"] = "Nowhere"  # row 4 fails for another reason as well
    result = load_register(write(tmp_path / "r.csv", rows))
    assert 2 in [r.row for r in result.rejects]  # row 2 must not pass silently


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    rows = good_rows()
    rows[0]["BMC address"] = ""
    rows[1]["Site"] = "Namur"
    rows[2]["MAC address"] = "zz"
    result = load_register(write(tmp_path / "r.csv", rows))
    assert {p.row for p in result.problems} == {2, 3, 4}
    assert result.hosts == []


def test_missing_column_is_a_file_problem_and_blocks_allow_errors(tmp_path: Path) -> None:
    headers = [h for h in HEADERS if h != "MAC address"]
    register = write(tmp_path / "r.csv", good_rows(), headers)
    result = load_register(register)
    assert any(p.row is None and "no column for mac" in p.message for p in result.problems)
    out = tmp_path / "out"
    assert main(["inventory", "build", str(register), "--out", str(out), "--allow-errors"]) != 0
    assert not out.exists()


def test_retired_and_spare_are_left_out_and_counted_not_validated(tmp_path: Path) -> None:
    rows = good_rows()
    rows.append({"Hostname": "ARL-OLD-1", "Asset tag": "T1", "Kind": "PC", "Platform": "Physical",
                 "OS": "Windows 7", "Site": "Arlon", "Service": "?", "Status": "Réformé"})  # fmt: skip
    rows.append({"Hostname": "ARL-SPARE", "Asset tag": "T9", "Status": "Stock"})
    result = load_register(write(tmp_path / "r.csv", rows))
    assert result.problems == []
    assert result.skipped == {"retired": 1, "spare": 1}
    assert len(result.hosts) == 3


def test_allow_errors_writes_valid_rows_and_rejects(tmp_path: Path) -> None:
    rows = good_rows()
    rows[1]["Site"] = "Namur"
    register = write(tmp_path / "r.csv", rows)
    out = tmp_path / "inv"
    code = main(["inventory", "build", str(register), "--out", str(out), "--allow-errors"])
    assert code == 1  # written, but the operator must see that rows were rejected
    text = (out / "arlon.yml").read_text(encoding="utf-8")
    assert "ARL-DC01" in text and "ARL-URG-0001" in text and "ARL-OMNI01" not in text
    with (tmp_path / "inv-rejects.csv").open(encoding="utf-8-sig", newline="") as handle:
        rejects = list(csv.reader(handle))
    assert rejects[0][:3] == ["register row", "problems", "Hostname"]
    assert len(rejects) == 2
    assert rejects[1][0] == "3" and "unknown site 'Namur'" in rejects[1][1] and rejects[1][2] == "ARL-OMNI01"


def test_unknown_columns_are_warned_not_fatal(tmp_path: Path) -> None:
    register = write(tmp_path / "r.csv", good_rows(), [*HEADERS, "Commentaire"])
    result = load_register(register)
    assert result.ok
    assert any("Commentaire" in w for w in result.warnings)


def test_two_columns_for_one_field_is_a_problem(tmp_path: Path) -> None:
    rows = [dict(r, Nom=r["Hostname"]) for r in good_rows()]
    result = load_register(write(tmp_path / "r.csv", rows, [*HEADERS, "Nom"]))
    assert any(p.column == "Nom" and "already gives the hostname" in p.message for p in result.problems)
