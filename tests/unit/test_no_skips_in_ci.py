"""In CI a skipped test fails the run and is named (tests/no_skips_in_ci.py); elsewhere it is a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _pytest(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_needs_a_package.py").write_text(
        "import pytest\n\ndef test_browser():\n    pytest.skip('chromium is not installed')\n\n"
        "def test_other():\n    assert True\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(TESTS)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no_skips_in_ci",
            "-p",
            "no:cacheprovider",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_skip_fails_the_run_in_ci_and_is_named(tmp_path: Path) -> None:
    result = _pytest(tmp_path, ci=True)
    assert result.returncode == 1, result.stdout
    assert "test_needs_a_package.py::test_browser: Skipped: chromium is not installed" in result.stdout


def test_a_skip_is_only_a_skip_outside_ci(tmp_path: Path) -> None:
    result = _pytest(tmp_path, ci=False)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout
