"""`rebuild plan site ...` through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rebuild.cli import main
from rebuild.register import SMALL_REGISTER


def test_plan_site_arlon_on_the_bundled_register(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "site", "arlon"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Rebuild plan for Arlon (arlon): 680 machines (80 servers, 600 PCs)")
    assert "Wave 1 - tier 0 Shared infrastructure" in out and "Wave 8 - tier 7 Other services" in out


def test_plan_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "site", "Bastogne", "--register", str(SMALL_REGISTER), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["site"] == "bastogne" and data["hosts"] == 11
    assert [w["tier"] for w in data["waves"]] == list(range(8))


def test_unknown_site_lists_known_sites(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "site", "namur"]) == 2
    err = capsys.readouterr().err
    assert "unknown site 'namur'; known sites: arlon, marche, libramont, bastogne" in err


def test_plan_from_inventory_equals_plan_from_register(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inventory", "build", str(SMALL_REGISTER), "--out", str(tmp_path / "inv")]) == 0
    capsys.readouterr()
    main(["plan", "site", "arlon", "--register", str(SMALL_REGISTER), "--format", "json"])
    from_register = json.loads(capsys.readouterr().out)
    main(["plan", "site", "arlon", "--inventory", str(tmp_path / "inv" / "arlon.yml"), "--format", "json"])
    from_inventory = json.loads(capsys.readouterr().out)
    assert from_inventory == from_register


def test_bad_register_fails_with_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(SMALL_REGISTER.read_text(encoding="utf-8").replace(",Urgences,", ",Urgense,"), "utf-8")
    assert main(["plan", "site", "arlon", "--register", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "row 11, column 'Department': unknown service 'Urgense'" in err


def test_console_script_pipes_plain_text() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rebuild", "plan", "site", "bastogne", "--register", str(SMALL_REGISTER)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "Wave 1 - tier 0" in done.stdout and "\x1b[" not in done.stdout
