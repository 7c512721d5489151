"""Print the statement coverage of the product's PowerShell modules by the lab tests.

    python -m tests.lab.ps_coverage [pytest args...]

Runs the tests that execute product modules through the evaluator (default:
tests/lab/test_win_rebuild_apps.py) in this process, then prints, per script, how many of its
statements ran and the lines of those that did not.
"""

from __future__ import annotations

import sys

import pytest

from rebuild.lab.exec.modules import product
from rebuild.lab.ps.coverage import measure, render

SCRIPTS = ("win_rebuild_apps",)


def main(argv: list[str]) -> int:
    rc = pytest.main(["-q", "-p", "no:cacheprovider", *(argv or ["tests/lab/test_win_rebuild_apps.py"])])
    rows = [
        measure(f"{name}.ps1", product.script_source(name), product.COVERAGE.get(f"{name}.ps1", set()))
        for name in SCRIPTS
    ]
    print(render(rows))
    return int(rc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
