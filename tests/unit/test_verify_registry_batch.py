"""Verification reads a host's registry keys in one command (or a few): the same answers as one
command per key, a failing key fails only its checks, a failing batch falls back to per-key reads."""

from __future__ import annotations

import base64
import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from rebuild.harden.exceptions import HardenException
from rebuild.verify.expect import build_expectations
from rebuild.verify.registry_keys import PRINTER_KEY, RESTART_PENDING_KEY, registry_keys_read
from rebuild.verify.suites.test_hardening import test_control_compliant as control_compliant
from rebuild.verify.windows import (
    MAX_COMMAND_LINE,
    STAMP_KEY,
    ReadError,
    WindowsReads,
    registry_batches,
)

PRESENT = r"HKLM:\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters"
EMPTY = r"HKLM:\SOFTWARE\GHAL\Empty"
MISSING = r"HKLM:\SOFTWARE\NoSuchKey"
WILDCARD = r"HKLM:\SYSTEM\CurrentControlSet\Services\NetBT\Parameters\Interfaces\*"
DENIED = r"HKLM:\SECURITY\Policy"
DENIED_MESSAGE = "Requested registry access is not allowed."

REGISTRY: dict[str, dict[str, Any]] = {
    PRESENT: {"SMB1": 0, "RequireSecuritySignature": 1},
    EMPTY: {},
    r"HKLM:\SYSTEM\CurrentControlSet\Services\NetBT\Parameters\Interfaces\Tcpip_{A}": {"NetbiosOptions": 2},
    r"HKLM:\SYSTEM\CurrentControlSet\Services\NetBT\Parameters\Interfaces\Tcpip_{B}": {"NetbiosOptions": 0},
    DENIED: {"x": 1},
}


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str = ""


def script_of(command: str) -> str:
    return base64.b64decode(command.rsplit(" ", 1)[1]).decode("utf-16-le")


def ps_literals(text: str) -> list[str]:
    return [m.replace("''", "'") for m in re.findall(r"'((?:[^']|'')*)'", text)]


class RegistryHost:
    """A host answering the two registry reads as Windows PowerShell 5.1 would for REGISTRY:
    Get-ItemProperty objects with their PS* properties, a list for a wildcard, no object for a key
    without values, and access denied on DENIED. Counts the commands it is sent."""

    def __init__(self, *, batch_fails: bool = False, batch_raises: bool = False) -> None:
        self.batch_fails = batch_fails
        self.batch_raises = batch_raises
        self.commands: list[str] = []

    @staticmethod
    def _values(path: str) -> str | None:
        """What `registry_key_script` prints: nothing for a missing key, else the JSON."""
        keys = [k for k in REGISTRY if fnmatch.fnmatchcase(k.lower(), path.lower())]
        if not keys:
            return None
        objects = [
            {
                **REGISTRY[k],
                "PSPath": "Microsoft.PowerShell.Core\\Registry::" + k,
                "PSChildName": k.rsplit("\\")[-1],
            }
            for k in keys
            if REGISTRY[k]
        ]
        if not objects:
            return "{}"
        return json.dumps(objects[0] if len(objects) == 1 else objects, separators=(",", ":"))

    def run(self, command: str, *args: str) -> Result:
        self.commands.append(command)
        script = script_of(command)
        if script.startswith("@(foreach"):
            if self.batch_raises:
                raise requests.exceptions.ConnectionError("connection reset")
            if self.batch_fails:
                return Result(1, "", "At line:1 char:12\r\n+ ParserError: Missing closing ')' in expression.")
            paths = ps_literals(script.split("))", 1)[0])
            rows = [
                {"P": p, "J": None, "E": DENIED_MESSAGE}
                if p == DENIED
                else {"P": p, "J": self._values(p), "E": None}
                for p in paths
            ]
            return Result(0, json.dumps(rows[0] if len(rows) == 1 else rows))
        path = ps_literals(script)[0]
        if path == DENIED:
            return Result(1, "", f"Get-ItemProperty : {DENIED_MESSAGE}")
        return Result(0, self._values(path) or "")


ALL = [PRESENT, EMPTY, MISSING, WILDCARD]


def test_planned_keys_are_read_in_one_command_with_the_shapes_of_per_key_reads() -> None:
    one_by_one = WindowsReads(RegistryHost())
    expected = {path: one_by_one.registry_key(path) for path in ALL}
    assert (expected[MISSING], expected[EMPTY]) == (None, {})
    assert isinstance(expected[WILDCARD], list) and len(expected[WILDCARD]) == 2
    assert expected[PRESENT] is not None and expected[PRESENT]["SMB1"] == 0
    assert "PSPath" in expected[PRESENT]

    host = RegistryHost()
    batched = WindowsReads(host)
    batched.plan_registry_keys(ALL)
    assert host.commands == []  # planning sends nothing
    assert {path: batched.registry_key(path) for path in ALL} == expected
    assert len(host.commands) == 1 and batched.commands == 1
    assert batched.registry_key(PRESENT) == expected[PRESENT] and len(host.commands) == 1


def test_a_key_not_planned_is_read_by_its_own_command() -> None:
    host = RegistryHost()
    reads = WindowsReads(host)
    reads.plan_registry_keys([PRESENT])
    assert reads.registry_key(MISSING) is None
    assert len(host.commands) == 1 and not script_of(host.commands[0]).startswith("@(foreach")


def test_many_keys_are_cut_into_command_lines_cmd_exe_accepts() -> None:
    paths = [rf"HKLM:\SOFTWARE\Policies\Microsoft\Windows\Component{i:03}\Settings" for i in range(120)]
    host = RegistryHost()
    reads = WindowsReads(host)
    reads.plan_registry_keys(paths)
    assert all(reads.registry_key(p) is None for p in paths)
    assert 2 <= len(host.commands) <= 6
    assert all(len(c) <= MAX_COMMAND_LINE < 8191 for c in host.commands)
    batched = [p for c in host.commands for p in ps_literals(script_of(c).split("))", 1)[0])]
    assert batched == paths  # each key once, in order
    assert registry_batches([]) == []


@pytest.mark.parametrize("failure", ["batch_fails", "batch_raises"])
def test_a_failing_batch_falls_back_to_per_key_reads(failure: str) -> None:
    host = RegistryHost(**{failure: True})
    reads = WindowsReads(host)
    reads.plan_registry_keys(ALL)
    answers = {path: reads.registry_key(path) for path in ALL}
    assert answers == {path: WindowsReads(RegistryHost()).registry_key(path) for path in ALL}
    assert len(reads.batch_failures) == 1
    batch_sends = 3 if failure == "batch_raises" else 1  # a transport error is retried first
    assert len(host.commands) == batch_sends + len(ALL)


def test_a_key_that_fails_to_read_fails_only_the_checks_that_need_it() -> None:
    host = RegistryHost()
    reads = WindowsReads(host)
    denied = {"id": "C-1", "title": "denied", "settings": [{"type": "registry", "path": DENIED, "name": "x",
              "value_type": "dword", "data": 1}]}  # fmt: skip
    smb = {"id": "C-2", "title": "SMB1 off", "settings": [{"type": "registry", "path": PRESENT,
           "name": "SMB1", "value_type": "dword", "data": 0}]}  # fmt: skip
    reads.plan_registry_keys([DENIED, PRESENT])
    with pytest.raises(ReadError, match=rf"HKLM:.SECURITY.Policy failed on the host: {DENIED_MESSAGE}"):
        control_compliant(reads, denied)
    control_compliant(reads, smb)  # the other key of the same batch is answered
    assert len(host.commands) == 1


def _hostvars(**changes: Any) -> dict[str, Any]:
    return {
        "inventory_hostname": "ARL-RAD-0001", "rebuild_kind": "workstation", "rebuild_service": "radiology",
        "rebuild_os": "windows-11-23h2", "rebuild_site": "arlon", "rebuild_domain": "ghal.lan",
        "rebuild_location": "Radiologie 3",
        "group_names": ["site_arlon"], **changes,
    }  # fmt: skip


def test_the_keys_planned_are_those_this_hosts_suites_read(monkeypatch: pytest.MonkeyPatch) -> None:
    expect = build_expectations(_hostvars())
    keys = registry_keys_read(expect)
    settings = [s for c in expect.hardening for s in c["settings"]]
    assert {s["path"] for s in settings if s["type"] == "registry"} < set(keys)
    assert len(keys) == len(set(keys))
    printer = PRINTER_KEY.format(name="ARL-RX-PRT01")
    edr = [str(e["registry_key"]) for e in expect.edr]
    assert edr and {RESTART_PENDING_KEY, printer, STAMP_KEY, *edr} <= set(keys)
    assert r"HKLM:\Software\Microsoft\Windows\CurrentVersion\Policies\LAPS" in keys  # LAPS manages it
    workgroup = registry_keys_read(build_expectations(_hostvars(rebuild_domain=""), with_hardening=False))
    assert r"HKLM:\Software\Microsoft\Windows\CurrentVersion\Policies\LAPS" not in workgroup
    assert not any(k.upper().startswith("HKDU:") for k in keys)  # never read by verification

    # An excepted control's keys are not read (the compiled baseline, exceptions applied).
    control = next(c for c in expect.hardening if c["id"] == "GHAL-RDP-002")
    own = {s["path"] for s in control["settings"] if s["type"] == "registry"}
    own -= {
        s["path"]
        for c in expect.hardening
        if c is not control
        for s in c["settings"]
        if s["type"] == "registry"
    }
    assert own
    excepted = HardenException("GHAL-RDP-002", "host", "ARL-RAD-0001", "vendor support", "CISO")
    monkeypatch.setattr("rebuild.harden.exceptions.load_exceptions", lambda *a, **k: [excepted])
    assert not own & set(registry_keys_read(build_expectations(_hostvars())))
