"""pytest plugin: in CI (`CI` set, as .ci/run's machine sets it), a skipped test fails the run.

Some tests skip on a developer's machine that lacks a system package (Chromium, qemu, openssh-server);
CI installs them all with scripts/setup.sh, so a skip there means a test did not run while the
run would look green. It is reported by name and the session fails.
"""

from __future__ import annotations

import os

import pytest

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        why = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        _skipped.append(f"{report.nodeid}: {why}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") and _skipped and exitstatus == 0:
        session.exitstatus = 1
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("")
            reporter.write_line("CI: a skipped test did not run, so the run fails; skipped:")
            for line in _skipped:
                reporter.write_line(f"  {line}")
