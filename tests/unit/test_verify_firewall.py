"""Verification's firewall check: the profile in effect, its inbound action and its logging."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rebuild.verify.suites.test_hardening import _firewall
from rebuild.verify.windows import WindowsReads

WANT = {"type": "firewall_profile", "profile": "Domain", "enabled": True, "default_inbound_action": "Block",
        "default_outbound_action": "Allow", "log_allowed": True, "log_blocked": True}  # fmt: skip


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str = ""


class Host:
    """Answers Get-NetFirewallProfile as PowerShell 5.1's ConvertTo-Json writes it (enums as numbers)."""

    def __init__(self, profile: dict[str, Any]) -> None:
        self.profile = profile
        self.commands: list[str] = []

    def run(self, command: str, *args: str) -> Result:
        self.commands.append(command)
        return Result(0, json.dumps([self.profile]))


def profile(**changes: Any) -> dict[str, Any]:
    log = r"%systemroot%\system32\LogFiles\Firewall\pfirewall.log"
    base = {"Name": "Domain", "Enabled": 1, "DefaultInboundAction": 4, "DefaultOutboundAction": 2,
            "LogAllowed": 1, "LogBlocked": 1, "LogFileName": log}  # fmt: skip
    return base | changes


def test_compliant_profile_passes() -> None:
    assert _firewall(WindowsReads(Host(profile())), WANT) is None


def test_inbound_allowed_fails() -> None:
    problem = _firewall(WindowsReads(Host(profile(DefaultInboundAction=2))), WANT)
    assert problem is not None and "DefaultInboundAction is Allow, baseline wants Block" in problem


def test_dropped_packets_not_logged_fails() -> None:
    problem = _firewall(WindowsReads(Host(profile(LogBlocked=0))), WANT)
    assert problem is not None and "LogBlocked" in problem


def test_logging_without_a_log_file_fails() -> None:
    problem = _firewall(WindowsReads(Host(profile(LogFileName=""))), WANT)
    assert problem is not None and "LogFileName is empty" in problem


def test_reads_the_active_store() -> None:
    import base64

    host = Host(profile())
    _firewall(WindowsReads(host), WANT)
    script = base64.b64decode(host.commands[0].rsplit(" ", 1)[1]).decode("utf-16-le")
    assert "-PolicyStore ActiveStore" in script
