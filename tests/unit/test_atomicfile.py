"""rebuild.atomicfile: a file is replaced whole or left as it was."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rebuild import atomicfile


def test_write_text_replaces_the_file_with_the_mode_asked(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "inventory.yml"
    atomicfile.write_text(target, "old\n")
    atomicfile.write_text(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    atomicfile.write_bytes(target, b"secret", mode=atomicfile.PRIVATE)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["inventory.yml"]  # no temp file left


def test_an_error_while_writing_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomicfile.staged_text(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


def test_write_temp_stages_without_renaming(tmp_path: Path) -> None:
    target = tmp_path / "arlon.yml"
    tmp = atomicfile.write_temp(target, "all: {}\n")
    assert not target.exists() and tmp.parent == tmp_path
    assert tmp.read_text(encoding="utf-8") == "all: {}\n"
