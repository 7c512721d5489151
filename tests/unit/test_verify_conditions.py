"""Failed verification checks map to named hold-back conditions the journal and report keep."""

from __future__ import annotations

from rebuild.verify.conditions import conditions_of
from rebuild.verify.runner import VerifyResult


def test_patch_level_check_is_the_patch_level_condition() -> None:
    failed = [
        {"check": "test_defender_realtime_protection_on", "message": "off"},
        {"check": "test_patch_level", "message": "below patch level: 20348.2700"},
    ]
    assert conditions_of(failed) == ["patch_level"]
    assert conditions_of(failed[:1]) == []


def test_summary_names_the_condition() -> None:
    result = VerifyResult(
        "ARL-SRV-0001",
        False,
        50,
        1,
        0,
        0,
        [{"check": "test_patch_level", "message": "x"}],
        [],
        "j",
        "l",
        1.0,
        conditions=["patch_level"],
    )
    assert result.summary() == "ARL-SRV-0001: verification failed: held back by patch_level: test_patch_level"
