"""pytest plugin: the suite's wall time per group (unit, lab, integration), printed before the summary.

CI's output then shows where the suite's time goes (issue 15); nothing here asserts a time.
A test's time is its setup, call and teardown; a session fixture's start-up counts for the first
test that needed it.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

_seconds: defaultdict[str, float] = defaultdict(float)
_counts: defaultdict[str, int] = defaultdict(int)


def _group(nodeid: str) -> str:
    parts = nodeid.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else parts[0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    group = _group(report.nodeid)
    _seconds[group] += report.duration
    if report.when == "call":
        _counts[group] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _seconds:
        return
    terminalreporter.section("wall time per test group")
    for group in sorted(_seconds, key=lambda g: -_seconds[g]):
        terminalreporter.write_line(f"{group:<12} {_counts[group]:>4} tests  {_seconds[group]:8.1f} s")
