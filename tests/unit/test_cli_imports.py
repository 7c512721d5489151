"""Product commands never load the simulated lab (issue 16: the lab walled off at run time)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A fresh interpreter: this test process has imported the lab already through other tests.
_PROBE = """
import sys
from rebuild.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if m == "rebuild.lab" or m.startswith(("rebuild.lab.", "spnego")))
print("LOADED:" + ",".join(loaded))
"""


@pytest.mark.parametrize(
    "argv",
    [["site", "--help"], ["plan", "--help"], ["status", "--help"], ["report", "--help"], ["--help"]],
)
def test_product_commands_do_not_import_the_lab(argv: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=argv)], capture_output=True, text=True, check=True
    ).stdout
    loaded = out.rsplit("LOADED:", 1)[1].strip()
    assert loaded == "", f"rebuild {' '.join(argv)} loaded lab modules: {loaded}"


def test_lab_commands_still_reach_the_lab() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=["lab", "status", "--lab-dir", "/nonexistent-lab"])],
        capture_output=True,
        text=True,
    ).stdout
    assert "rebuild.lab.daemon" in out.rsplit("LOADED:", 1)[1]
