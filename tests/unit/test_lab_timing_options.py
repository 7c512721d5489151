"""`rebuild lab up/rehearse --bmc-power-seconds`: the simulated BMC delay is configuration, and
bad values are refused by name before any lab starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.cli import main
from rebuild.lab.context import LabConfig


@pytest.mark.parametrize("verb", [["lab", "up"], ["lab", "rehearse", "arlon"]])
@pytest.mark.parametrize(
    ("value", "why"), [("-1", "must be 0 or more, not -1"), ("1.5", "not a whole number of seconds: '1.5'")]
)
def test_bad_bmc_power_seconds_are_refused_by_name(
    verb: list[str], value: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*verb, "--bmc-power-seconds", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--bmc-power-seconds" in err and why in err


def test_a_lab_says_which_simulated_durations_it_runs_with(tmp_path: Path) -> None:
    default = LabConfig(lab_dir=tmp_path, imaging_seconds=2.0).simulated_durations()
    assert default["imaging"] == "2 s" and "random" in default["bmc_power"]
    zero = LabConfig(lab_dir=tmp_path, imaging_seconds=0, bmc_power_seconds=0).simulated_durations()
    assert (zero["imaging"], zero["bmc_power"]) == ("0 s", "0 s")
