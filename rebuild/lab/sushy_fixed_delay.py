"""sushy-emulator whose fake driver lands every power change a set number of seconds after the
request, instead of its own random delay of up to 11 s (the lab's `bmc_power_seconds`).

sushy-tools' fake driver (sushy_tools/emulator/resources/systems/fakedriver.py, set_power_state)
stands for a BMC whose power actions are not immediate: it sets `apply_time = int(now) +
random.randint(1, 11)` and applies the change at the first read after it. That delay is a
property of the simulated hardware, not of Redfish (DMTF Redfish does not bound it), so it is
the lab's timing configuration like the imaging time: a rehearsal may set it (0: the change
lands at the next read, within the second) and says so. Nothing else of the emulator changes.

    python -m rebuild.lab.sushy_fixed_delay SECONDS [sushy-emulator arguments...]
"""

from __future__ import annotations

import sys


class _FixedDelay:
    """Stands in for the `random` module the fake driver draws its delay from."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    def randint(self, low: int, high: int) -> int:
        return self.seconds


def main(argv: list[str]) -> int:
    from sushy_tools.emulator import main as emulator
    from sushy_tools.emulator.resources.systems import fakedriver

    seconds = int(argv[1])
    if seconds < 0:
        raise SystemExit(f"BMC power seconds must be 0 or more, not {seconds}")
    if not hasattr(fakedriver, "random"):  # another sushy-tools: fail loudly, never run unset
        raise SystemExit(
            "the rebuild lab (a simulation) cannot set bmc_power_seconds with this sushy-tools: its "
            "fake driver draws no random power delay (sushy_tools...fakedriver has no `random`)"
        )
    fakedriver.random = _FixedDelay(seconds)
    sys.argv = ["sushy-emulator", *argv[2:]]
    return int(emulator.main() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
