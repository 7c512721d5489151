"""Verification's restart check on a twin: the real harden module leaves its volatile pending-restart
key, the real read (WindowsReads through the lab's PowerShell evaluator) finds it and the check holds
the host back as `restart_pending`; after `shutdown /r` (what win_reboot sends) the key is gone and
the check passes. The registry value the control set is the same before and after the restart: only
the key tells them apart.
"""

from __future__ import annotations

import pytest
from test_baseline_module import HOST, PENDING_KEY, TEST_KEY, call, restart_bound_control
from test_baseline_module import lab as lab
from twins import ReadHost, ps

from rebuild.lab.context import Lab
from rebuild.verify.conditions import conditions_of
from rebuild.verify.suites import test_hardening as hardening_suite
from rebuild.verify.windows import WindowsReads


def restart_check(lab: Lab) -> str | None:
    """The check's failure message, or None when it passes (fresh reads, as a new verification)."""
    try:
        hardening_suite.test_restart_bound_hardening_in_effect(WindowsReads(ReadHost(lab, lab.twins[HOST])))
    except AssertionError as exc:
        return str(exc)
    return None


def test_check_holds_back_a_host_not_restarted_since_harden_and_passes_after_the_restart(lab: Lab) -> None:
    assert restart_check(lab) is None  # never hardened: nothing waits for a restart

    assert call(lab, args=restart_bound_control())["pending_reboot"] is True
    assert lab.state(HOST).registry[TEST_KEY]["X"] == "y"  # the value is set before any restart
    message = restart_check(lab)
    assert message is not None
    assert message.startswith(
        "restart-bound hardening not in effect: the host has not restarted since harden"
    )
    assert "T-REBOOT" in message and PENDING_KEY in message
    assert conditions_of([{"check": "test_restart_bound_hardening_in_effect", "message": message}]) == [
        "restart_pending"
    ]

    rc, _out, err = ps(lab, "shutdown.exe /r /t 2 /c 'rebuild test'", lab.twins[HOST])
    assert rc == 0, err
    assert restart_check(lab) is None
    assert lab.state(HOST).registry[TEST_KEY]["X"] == "y"  # unchanged: only the key told them apart


def test_fault_restart_refused_once_refuses_one_restart_and_keeps_the_key(lab: Lab) -> None:
    """`restart_refused_once`: the next `shutdown /r` fails as Windows does when the restart is not
    initiated (Access is denied, 5) and nothing restarts; the fault is then spent."""
    from rebuild.lab import faults

    faults.apply(
        lab.faults, {HOST: {"restart_refused_once": faults.validate(HOST, "restart_refused_once", None)}}
    )
    call(lab, args=restart_bound_control())

    rc, _out, err = ps(lab, "shutdown.exe /r /t 2 /c 'rebuild test'", lab.twins[HOST])
    assert rc == 5 and "Access is denied.(5)" in err
    assert [e["event"] for e in lab.state(HOST).history] == ["restart_refused"]  # no reboot
    assert PENDING_KEY in lab.state(HOST).registry
    assert lab.fault(HOST, "restart_refused_once") is None  # spent

    rc, _out, err = ps(lab, "shutdown.exe /r /t 2 /c 'rebuild test'", lab.twins[HOST])
    assert rc == 0, err
    assert [e["event"] for e in lab.state(HOST).history] == ["restart_refused", "reboot"]
    assert PENDING_KEY not in lab.state(HOST).registry


def test_fault_restart_refused_once_takes_no_parameter() -> None:
    from rebuild.errors import ConfigError
    from rebuild.lab import faults

    with pytest.raises(ConfigError, match="fault restart_refused_once: unknown parameter"):
        faults.validate(HOST, "restart_refused_once", {"count": 2})
