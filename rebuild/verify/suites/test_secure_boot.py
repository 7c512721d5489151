"""Secure Boot on, and the firmware's db trusting the Windows UEFI CA 2023 (condition `secure_boot`).

The Secure Boot policy (inventories/data/secure_boot.yml) says per kind and service whether each
is required (a failure holds the host back) or only reported (a skipped check naming the state).
"""

# mypy: disable-error-code="no-untyped-def"
# (pytest test functions: fixtures are typed by name in rebuild/verify/plugin.py)

from __future__ import annotations

import pytest

from rebuild.verify.windows import WindowsReads


def _check(ok: bool, level: str, problem: str) -> None:
    if not ok and level == "reported":
        pytest.skip(f"reported, not required by the Secure Boot policy: {problem}")
    assert ok, problem


def test_secure_boot(win: WindowsReads, expect):
    state = win.secure_boot()
    _check(state.uefi and state.enabled, expect.secure_boot, f"secure boot: {state.describe()}")


def test_uefi_ca_2023(win: WindowsReads, expect):
    state = win.secure_boot()
    _check(state.uefi_ca_2023, expect.uefi_ca_2023, f"secure boot: {state.describe()}")
