"""`rebuild lab up/rehearse --bmc-power-seconds / --restart-seconds`: the simulated BMC delay and
restart downtime are configuration, and bad values are refused by name before any lab starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.cli import lab as lab_cli
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


@pytest.mark.parametrize("verb", [["lab", "up"], ["lab", "rehearse", "arlon"]])
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("-1", "must be 0 or more, not -1"),
        ("-0.5", "must be 0 or more, not -0.5"),
        ("soon", "not a number of seconds: 'soon'"),
        ("nan", "must be 0 or more, not nan"),
        ("inf", "must be 0 or more, not inf"),
    ],
)
def test_bad_restart_seconds_are_refused_by_name(
    verb: list[str], value: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*verb, "--restart-seconds", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--restart-seconds" in err and why in err


def test_restart_seconds_reach_the_daemon_and_the_rehearsal_keeps_them_short(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`lab up` passes its documented default (or the given value), `lab rehearse` 1 s (or the given
    value); the daemon's command line carries it into the daemon process's options."""
    from rebuild.lab import daemon

    started: list[daemon.DaemonOptions] = []

    def fake_up(options: daemon.DaemonOptions, timeout: float = 0) -> dict[str, object]:
        started.append(options)
        raise SystemExit(0)  # stop before any lab starts

    monkeypatch.setattr(daemon, "up", fake_up)
    monkeypatch.setattr(daemon, "down", lambda lab_dir, timeout=0: False)
    lab_dir = str(tmp_path / "lab")
    for argv in (
        ["lab", "up", "--lab-dir", lab_dir],
        ["lab", "up", "--lab-dir", lab_dir, "--restart-seconds", "0"],
        ["lab", "rehearse", "arlon", "--lab-dir", lab_dir],
        ["lab", "rehearse", "arlon", "--lab-dir", lab_dir, "--restart-seconds", "2.5"],
    ):
        with pytest.raises(SystemExit):
            main(argv)
    assert [o.restart_seconds for o in started] == [lab_cli.UP_RESTART_SECONDS, 0.0, 1.0, 2.5]

    monkeypatch.undo()
    launched: list[list[str]] = []

    def fake_popen(argv: list[str], **kwargs: object) -> None:
        launched.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(daemon.subprocess, "Popen", fake_popen)
    with pytest.raises(SystemExit):
        daemon.up(started[-1])
    parsed: list[daemon.DaemonOptions] = []

    class Daemon:
        def __init__(self, options: daemon.DaemonOptions) -> None:
            parsed.append(options)

        async def run(self) -> None:
            return None

    monkeypatch.setattr(daemon, "LabDaemon", Daemon)
    assert daemon.main(launched[0][3:]) == 0  # argv after `python -m rebuild.lab.daemon`
    assert parsed[0].restart_seconds == 2.5


def test_a_lab_says_which_simulated_durations_it_runs_with(tmp_path: Path) -> None:
    default = LabConfig(lab_dir=tmp_path, imaging_seconds=2.0).simulated_durations()
    assert default["imaging"] == "2 s" and "random" in default["bmc_power"]
    zero = LabConfig(lab_dir=tmp_path, imaging_seconds=0, bmc_power_seconds=0).simulated_durations()
    assert (zero["imaging"], zero["bmc_power"]) == ("0 s", "0 s")
    assert default["restart"] == "the shutdown /t notice, then back at once"
    down = LabConfig(lab_dir=tmp_path, restart_seconds=1.5).simulated_durations()["restart"]
    assert down == "WinRM refused for 1.5 s after the shutdown /t notice and after a boot from disk"
