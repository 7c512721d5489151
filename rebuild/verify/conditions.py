"""Conditions a host can be held back by, named after the verification check that finds them.

The journal keeps them with the verify result (`conditions`) and the crisis cell's report counts
each as its own column, so "verified but below patch level" is not a generic failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# check name (JUnit test case, parameters stripped) -> condition
CHECK_CONDITIONS: dict[str, str] = {
    "test_patch_level": "patch_level",
    "test_secure_boot": "secure_boot",
    "test_uefi_ca_2023": "secure_boot",
    "test_edr_onboarded": "edr_onboarded",
    "test_bitlocker": "bitlocker",
    "test_bitlocker_escrowed": "bitlocker",
    "test_laps": "laps",
    "test_restart_bound_hardening_in_effect": "restart_pending",
}

CONDITION_LABELS: dict[str, str] = {
    "patch_level": "below patch level",
    "secure_boot": "Secure Boot off or 2011 CAs only",
    "edr_onboarded": "EDR not onboarded",
    "bitlocker": "not BitLocker-protected or key not escrowed",
    "laps": "local admin not under Windows LAPS",
    "restart_pending": "hardening waits for a restart",
}


def conditions_of(failed_checks: Iterable[Mapping[str, str]]) -> list[str]:
    """The named conditions among failed checks, each once, in check order."""
    found: list[str] = []
    for check in failed_checks:
        name = str(check.get("check", "")).split("[", 1)[0]
        condition = CHECK_CONDITIONS.get(name)
        if condition and condition not in found:
            found.append(condition)
    return found
