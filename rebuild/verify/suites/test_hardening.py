"""Hardening controls still compliant at verification time (drift after harden fails here).

The controls are the harden baseline compiled for this host (same data, same compiler as
the harden phase, exceptions honoured). Setting types read here: registry, service,
optional feature, firewall profile, Defender status; controls holding other types are
also audited by the harden phase and listed in the results as not re-verified here.

Restart-bound controls (LSA protection, Credential Guard, feature removal) have their registry
values set before Windows enforces them at the next boot: their values alone do not show them in
effect. The harden module lists them in a volatile key that Windows discards at the next restart
(RegCreateKeyEx REG_OPTION_VOLATILE), so a host where that key is still present has not restarted
since harden set them (condition `restart_pending`).
"""

# mypy: disable-error-code="no-untyped-def"
# (pytest test functions: fixtures are typed by name in rebuild/verify/plugin.py)

from __future__ import annotations

from typing import Any

from rebuild.verify.registry_keys import RESTART_PENDING_KEY
from rebuild.verify.windows import WindowsReads, as_list

_START = {"0": "boot", "1": "system", "2": "automatic", "3": "manual", "4": "disabled"}
_STATUS = {"1": "stopped", "4": "running"}


def _value(values: Any, name: str) -> Any:
    """Registry value names are case-insensitive on Windows (NoLmHash is NoLMHash)."""
    if not isinstance(values, dict):
        return None
    return next((v for k, v in values.items() if k.casefold() == name.casefold()), None)


def _registry(win: WindowsReads, s: dict[str, Any]) -> str | None:
    values = win.registry_key(s["path"])
    if "*" in s["path"]:
        # A wildcard path names every matching key (e.g. each network interface): all must comply.
        keys = values if isinstance(values, list) else ([values] if values else [])
        if not keys:
            return None  # nothing to configure (the harden module applies it to the same keys)
        bad = [_registry_one(_value(k, s["name"]), s) for k in keys]
        bad = [b for b in bad if b]
        return f"{s['path']}\\{s['name']}: {len(bad)} of {len(keys)} key(s) wrong ({bad[0]})" if bad else None
    problem = _registry_one(_value(values, s["name"]), s)
    return f"{s['path']}\\{s['name']} {problem}" if problem else None


def _registry_one(actual: Any, s: dict[str, Any]) -> str | None:
    want = s["data"]
    if isinstance(want, list):
        ok = isinstance(actual, list) and [str(a) for a in actual] == [str(w) for w in want]
    elif s["value_type"] in ("dword", "qword"):
        ok = actual is not None and str(actual) == str(int(want))
    else:
        ok = actual is not None and str(actual) == str(want)
    return None if ok else f"is {actual!r}, baseline wants {want!r}"


def _service(win: WindowsReads, s: dict[str, Any]) -> str | None:
    svc = next((x for x in win.services() if str(x.get("Name", "")).casefold() == s["name"].casefold()), None)
    if svc is None:
        return None if s["start_mode"] == "disabled" else f"service {s['name']} is missing"
    start = _START.get(str(svc.get("StartType")), str(svc.get("StartType")).lower())
    problems = []
    if start != s["start_mode"]:
        problems.append(f"start type {start}, baseline wants {s['start_mode']}")
    if s.get("state"):
        status = _STATUS.get(str(svc.get("Status")), str(svc.get("Status")).lower())
        if status != s["state"]:
            problems.append(f"status {status}, baseline wants {s['state']}")
    return f"service {s['name']}: {'; '.join(problems)}" if problems else None


def _feature(win: WindowsReads, s: dict[str, Any]) -> str | None:
    f = win.optional_feature(s["name"]) or {}
    state = str(f.get("State", "absent"))
    enabled = state in ("2", "Enabled")  # FeatureState enum: 2 = Enabled
    return (
        None
        if enabled == bool(s["enabled"])
        else f"feature {s['name']} state {state}, baseline wants enabled={s['enabled']}"
    )


# ConvertTo-Json writes enums as numbers: GpoBoolean (0 False, 1 True, 2 NotConfigured) and
# Action (0 NotConfigured, 2 Allow, 4 Block).
_GPO_TRUE = (True, 1, "1", "True")
_FW_ACTION = {0: "NotConfigured", 2: "Allow", 4: "Block"}


def _action(value: Any) -> str:
    return _FW_ACTION.get(value, str(value)) if isinstance(value, int) else str(value)


def _firewall(win: WindowsReads, s: dict[str, Any]) -> str | None:
    """The profile in effect: on, inbound action, logging of drops (with a log file)."""
    prof = next((p for p in win.firewall_profiles() if p.get("Name") == s["profile"]), None)
    name = f"firewall profile {s['profile']}"
    if prof is None:
        return f"{name} not found"
    problems = []
    if (prof.get("Enabled") in _GPO_TRUE) != bool(s["enabled"]):
        problems.append(f"Enabled is {prof.get('Enabled')}, baseline wants {s['enabled']}")
    for key, prop in (
        ("default_inbound_action", "DefaultInboundAction"),
        ("default_outbound_action", "DefaultOutboundAction"),
    ):
        if key in s and _action(prof.get(prop)) != s[key]:
            problems.append(f"{prop} is {_action(prof.get(prop))}, baseline wants {s[key]}")
    for key, prop in (("log_blocked", "LogBlocked"), ("log_allowed", "LogAllowed")):
        if key in s and (prof.get(prop) in _GPO_TRUE) != bool(s[key]):
            problems.append(f"{prop} is {prof.get(prop)}, baseline wants {s[key]}")
    if (s.get("log_blocked") or s.get("log_allowed")) and not str(prof.get("LogFileName") or "").strip():
        problems.append("logging is on but LogFileName is empty (no log to read)")
    return f"{name}: " + "; ".join(problems) if problems else None


def _defender(win: WindowsReads, s: dict[str, Any]) -> str | None:
    actual = win.defender().get(s["property"])
    if actual is None:
        actual = win.json(f"(Get-MpComputerStatus).{s['property']} | ConvertTo-Json -Compress")
    return (
        None
        if actual == s["expected"]
        else f"Defender {s['property']} is {actual!r}, baseline wants {s['expected']!r}"
    )


CHECKS = {
    "registry": _registry,
    "service": _service,
    "feature": _feature,
    "firewall_profile": _firewall,
    "defender_status": _defender,
}


def test_control_compliant(win: WindowsReads, control):
    problems = [p for s in control["settings"] if (p := CHECKS[s["type"]](win, s))]
    assert not problems, f"{control['id']} {control['title']}: " + "; ".join(problems)


def test_restart_bound_hardening_in_effect(win: WindowsReads):
    pending = win.registry_key(RESTART_PENDING_KEY)
    controls = ", ".join(str(c) for c in as_list(_value(pending, "Controls"))) or "its controls"
    assert pending is None, (
        "restart-bound hardening not in effect: the host has not restarted since harden set "
        f"{controls} ({RESTART_PENDING_KEY}, a volatile key Windows discards at restart, is still "
        "there); restart the host, then verify it again"
    )
