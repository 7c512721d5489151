"""pytest plugin: the statement coverage of the product's PowerShell modules, printed at the end.

The lab's evaluator records which statements of `win_rebuild_apps.ps1` and `win_rebuild_baseline.ps1`
ran in this test process (issue 13: coverage printed, target >= 90 %). Runs of the lab daemon in
another process (site runs) are not counted, so the figure is a floor. Nothing here asserts it:
tests/lab/ps_coverage.py prints the same table for a chosen set of tests.
"""

from __future__ import annotations

import pytest

SCRIPTS = ("win_rebuild_apps", "win_rebuild_baseline")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from rebuild.lab.exec.modules import product
    from rebuild.lab.ps.coverage import measure, render

    if not any(product.COVERAGE.get(f"{name}.ps1") for name in SCRIPTS):
        return  # no test of this session ran a product module
    rows = [
        measure(f"{name}.ps1", product.script_source(name), product.COVERAGE.get(f"{name}.ps1", set()))
        for name in SCRIPTS
    ]
    terminalreporter.section("PowerShell statement coverage (this process)")
    for line in render(rows).splitlines():
        terminalreporter.write_line(line)
