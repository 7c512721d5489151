"""win_rebuild_baseline (plugins/modules/win_rebuild_baseline.ps1): SIMULATED against twin state.

Same argument spec (the lab validates from the module's .py documentation), same result
shape and the same rules as the PowerShell module: per control before/after/changed/
compliant/error; controls independent of each other, and inside a remote-management cutting
control the first failing setting stops the ones after it; manual controls audited only;
protected accounts and the connection
account never changed; check mode changes nothing.

Realism: settings Windows enforces only after a restart stay `pending_reboot` until the
twin has booted since they were written (same marker key and boot-time rule as the .ps1).
Defender's running status follows its policy keys and service, except tamper protection,
which nothing on the host can switch on. NetBT interface keys exist only if the twin's
image modelled them. `HKDU:\\` keys are kept as such: the twin's Default User hive.

Fault `drift_after_harden: {settings: [...]}`: after a non-check run, the listed settings
revert to their value before the run (a control id, a setting key, or an alias from DRIFT_ALIASES).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from rebuild.lab.exec.modules import ModuleContext, module_twin
from rebuild.lab.firewall import credential_guard_configured, effective_profile, secure_boot
from rebuild.lab.state import TwinState

MARKER_KEY = "HKLM:\\SOFTWARE\\GHAL\\Rebuild\\Harden"
FIREWALL_RULES_KEY = (
    "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules"
)

WELL_KNOWN_SIDS = {
    "S-1-1-0": "Everyone",
    "S-1-5-113": "Local account",
    "S-1-5-114": "Local account and member of Administrators group",
    "S-1-5-32-544": "Administrators",
    "S-1-5-32-545": "Users",
    "S-1-5-32-546": "Guests",
    "S-1-5-32-551": "Backup Operators",
    "S-1-5-32-555": "Remote Desktop Users",
}
NAME_TO_SID = {v.lower(): k for k, v in WELL_KNOWN_SIDS.items()}

_AUTOMATIC = {"automatic": "Automatic", "manual": "Manual", "disabled": "Disabled"}

DRIFT_ALIASES = {
    "smb1": [
        "registry:HKLM:\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters\\SMB1",
        "feature:SMB1Protocol",
    ],
    "defender_realtime": [
        "registry:HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\Real-Time Protection"
        "\\DisableRealtimeMonitoring"
    ],
    "wdigest": [
        "registry:HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest\\UseLogonCredential"
    ],
    "llmnr": ["registry:HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\DNSClient\\EnableMulticast"],
    "firewall_domain": ["firewall_profile:Domain"],
}


class SettingError(Exception):
    pass


# ------------------------------------------------------------------ registry helpers


def _find_key(state: TwinState, path: str) -> str | None:
    low = path.lower()
    return next((k for k in state.registry if k.lower() == low), None)


def _expand(state: TwinState, path: str) -> list[str]:
    """Expand `*` segments over existing keys (a key exists if it or a subkey is in the state)."""
    parts = path.split("\\")
    paths = [parts[0]]
    for seg in parts[1:]:
        nxt: list[str] = []
        for p in paths:
            if seg != "*":
                nxt.append(f"{p}\\{seg}")
                continue
            prefix = (p + "\\").lower()
            children: dict[str, str] = {}
            for k in state.registry:
                if k.lower().startswith(prefix):
                    child = k[len(prefix) :].split("\\")[0]
                    children.setdefault(child.lower(), f"{p}\\{child}")
            nxt.extend(children.values())
        paths = nxt
    return paths


def _reg_get(state: TwinState, path: str, name: str) -> Any:
    key = _find_key(state, path)
    if key is None:
        return None
    values = state.registry[key]
    match = next((n for n in values if n.lower() == name.lower()), None)
    return None if match is None else values[match]


def _reg_set(state: TwinState, path: str, name: str, data: Any) -> None:
    key = _find_key(state, path) or path
    values = state.registry.setdefault(key, {})
    match = next((n for n in values if n.lower() == name.lower()), name)
    values[match] = data


def _equal(actual: Any, expected: Any) -> bool:
    if actual is None:
        return False
    if isinstance(expected, list):
        return list(actual) == expected if isinstance(actual, list) else False
    return str(actual) == str(expected)


def _firewall_rule(state: TwinState, name: str) -> dict[str, Any] | None:
    """A rule as Get-NetFirewallRule shows it, from its registry rule string (None if absent)."""
    key = _find_key(state, FIREWALL_RULES_KEY)
    values = state.registry.get(key, {}) if key else {}
    for data in values.values():
        fields = dict(f.split("=", 1) for f in str(data).split("|") if "=" in f)
        if fields.get("Name") == name:
            return {
                "direction": fields.get("Dir", "").lower(),
                "protocol": {"6": "tcp", "17": "udp"}.get(
                    fields.get("Protocol", ""), fields.get("Protocol", "")
                ),
                "local_port": fields.get("LPort", ""),
                "action": fields.get("Action", "").lower(),
                "enabled": fields.get("Active", "").upper() == "TRUE",
            }
    return None


# ------------------------------------------------------------------ per setting type


def _local(state: TwinState, name: str) -> str:
    return name if "\\" in name else f"{state.hostname.upper()}\\{name}"


def _user_by_rid(state: TwinState, rid: int) -> Any:
    return next((u for u in state.users.values() if u.sid_suffix == rid), None)


def _to_sid(member: str) -> str:
    if member.startswith("*"):
        return member.upper()
    sid = NAME_TO_SID.get(member.split("\\")[-1].lower())
    return f"*{sid}" if sid else member


def _group_name(sid: str) -> str:
    name = WELL_KNOWN_SIDS.get(sid)
    if name is None:
        raise SettingError(f"group {sid} does not exist")
    return name


def _allowed(name: str, patterns: list[str]) -> bool:
    """Test-Allowed of the .ps1: `X_*` also names the per-user service template `X`."""
    n = name.lower()
    return any(fnmatchcase(n, p.lower()) or (p.endswith("_*") and n == p[:-2].lower()) for p in patterns)


def get_setting(
    state: TwinState, s: dict[str, Any], protected: set[str], pending: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`pending`: controls whose restart has not happened yet (for what runs only after one)."""
    t = s["type"]
    v: Any
    if t == "registry":
        paths = _expand(state, s["path"])
        values = {p: _reg_get(state, p, s["name"]) for p in paths}
        ok = all(_equal(v, s["data"]) for v in values.values())
        shown: Any = values[paths[0]] if len(paths) == 1 else values
        return {"value": shown, "compliant": ok}
    if t == "service":
        svc = state.services.get(s["name"])
        if svc is None:
            return {"value": None, "compliant": s["start_mode"] == "disabled", "missing": True}
        mode, run = svc.start_mode.lower(), svc.state.lower()
        ok = mode == s["start_mode"] and (not s.get("state") or run == s["state"])
        return {"value": {"start_mode": mode, "state": run}, "compliant": ok}
    if t == "feature":
        if s["name"] not in state.features:
            return {"value": None, "compliant": not s["enabled"], "missing": True}
        enabled = bool(state.features[s["name"]])
        return {"value": enabled, "compliant": enabled == bool(s["enabled"])}
    if t == "firewall_profile":
        p = effective_profile(state, s["profile"])  # -PolicyStore ActiveStore
        v = {
            "enabled": bool(p.get("Enabled")),
            "default_inbound_action": str(p.get("DefaultInboundAction", "NotConfigured")),
            "default_outbound_action": str(p.get("DefaultOutboundAction", "NotConfigured")),
            "log_allowed": bool(p.get("LogAllowed")),
            "log_blocked": bool(p.get("LogBlocked")),
            "log_max_size_kb": int(p.get("LogMaxSizeKilobytes", 0)),
        }
        ok = v["enabled"] == bool(s["enabled"])
        for k in ("default_inbound_action", "default_outbound_action", "log_allowed", "log_blocked"):
            if k in s and str(v[k]) != str(s[k]):
                ok = False
        if "log_max_size_kb" in s and v["log_max_size_kb"] < int(s["log_max_size_kb"]):
            ok = False
        return {"value": v, "compliant": ok}
    if t == "firewall_rule":
        rule = _firewall_rule(state, s["name"])
        if rule is None:
            return {"value": None, "compliant": False}
        v = rule
        ok = all(str(v[k]) == str(s[k]) for k in ("direction", "protocol", "local_port", "action"))
        ok = ok and bool(v["enabled"]) == bool(s["enabled"])
        return {"value": v, "compliant": ok}
    if t == "audit_policy":
        v = state.audit_policy.get(s["subcategory"], "No Auditing")
        return {"value": v, "compliant": v == s["value"]}
    if t == "user_right":
        members = sorted({_to_sid(m) for m in state.user_rights.get(s["name"], [])})
        want = sorted({m.upper() for m in s["members"]})
        return {"value": members, "compliant": members == want}
    if t == "security_policy":
        v = state.security_policy.get(s["section"], {}).get(s["key"])
        return {"value": v, "compliant": str(v) == str(s["value"])}
    if t == "device_guard_running":
        # Running = configured (with Secure Boot where required) and restarted since.
        running = [1] if credential_guard_configured(state) and not pending else []
        v = {"security_services_running": running, "vbs_status": 2 if running else 0}
        return {"value": v, "compliant": int(s["service"]) in running}
    if t == "defender_status":
        v = state.defender.get(s["property"])
        return {"value": v, "compliant": str(v) == str(s["expected"])}
    if t == "local_user":
        u = _user_by_rid(state, int(s["rid"]))
        if u is None:
            return {"value": None, "compliant": True, "missing": True}
        ok = ("name" not in s or u.name == s["name"]) and (
            "enabled" not in s or u.enabled == bool(s["enabled"])
        )
        return {"value": {"name": u.name, "enabled": u.enabled}, "compliant": ok}
    if t == "group_members":
        group = _group_name(s["group_sid"])
        members = list(state.groups.get(group, []))
        unknown = []
        for m in members:
            local = "\\" not in m
            allowed = any(
                a == m or (local and "\\" not in a and a.lower() == m.lower()) for a in s["allowed"]
            )
            if not allowed and m.lower() not in protected:
                unknown.append(m)
        return {"value": [_local(state, m) for m in members], "compliant": not unknown, "unknown": unknown}
    if t == "service_allowlist":
        unknown = sorted(
            n
            for n, svc in state.services.items()
            if not _allowed(n, s["allowed"]) and (svc.start_mode != "Disabled" or svc.state != "Stopped")
        )
        return {"value": unknown, "compliant": not unknown, "unknown": unknown}
    if t == "task_allowlist":
        commands = s.get("allowed_commands") or []
        unknown = []
        for path, task in state.tasks.items():
            if not task.enabled:
                continue
            known = any(fnmatchcase(path.lower(), p.lower()) for p in s["allowed"])
            if known and commands and task.command:
                known = any(fnmatchcase(task.command.lower(), p.lower()) for p in commands)
            if not known:
                unknown.append(path)
        return {"value": sorted(unknown), "compliant": not unknown, "unknown": sorted(unknown)}
    raise SettingError(f"unknown setting type '{t}'")


def set_setting(state: TwinState, s: dict[str, Any], current: dict[str, Any], protected: set[str]) -> bool:
    """Make one setting compliant on the twin. Returns True when a restart is needed to enforce it."""
    t = s["type"]
    p: Any
    if t == "registry":
        for p in _expand(state, s["path"]):
            _reg_set(state, p, s["name"], s["data"])
    elif t == "service":
        if current.get("missing"):
            raise SettingError(f"service {s['name']} is not installed")
        svc = state.services[s["name"]]
        svc.start_mode = _AUTOMATIC[s["start_mode"]]
        if s.get("state") == "running":
            svc.state = "Running"
        elif s.get("state") == "stopped" or s["start_mode"] == "disabled":
            svc.state = "Stopped"
    elif t == "feature":
        if current.get("missing"):
            raise SettingError(f"optional feature {s['name']} is not available on this edition")
        state.features[s["name"]] = bool(s["enabled"])
        return True  # DISM: RestartNeeded for SMB1 and the like
    elif t == "firewall_profile":
        p = state.firewall.setdefault(s["profile"], {})
        p["Enabled"] = bool(s["enabled"])
        for key, name in (
            ("default_inbound_action", "DefaultInboundAction"),
            ("default_outbound_action", "DefaultOutboundAction"),
            ("log_allowed", "LogAllowed"),
            ("log_blocked", "LogBlocked"),
            ("log_max_size_kb", "LogMaxSizeKilobytes"),
        ):
            if key in s:
                p[name] = s[key]
    elif t == "firewall_rule":
        # Where Windows keeps rules: one REG_SZ per rule under FirewallPolicy\FirewallRules.
        proto = {"tcp": 6, "udp": 17}[s["protocol"]]
        data = (
            f"v2.30|Action={s['action'].capitalize()}|Active={'TRUE' if s['enabled'] else 'FALSE'}|"
            f"Dir={s['direction'].capitalize()}|Protocol={proto}|LPort={s['local_port']}|Name={s['name']}|"
        )
        _reg_set(state, FIREWALL_RULES_KEY, s["name"], data)
    elif t == "audit_policy":
        state.audit_policy[s["subcategory"]] = s["value"]
    elif t == "user_right":
        state.user_rights[s["name"]] = [WELL_KNOWN_SIDS.get(m.lstrip("*"), m) for m in s["members"]]
    elif t == "security_policy":
        state.security_policy.setdefault(s["section"], {})[s["key"]] = s["value"]
    elif t == "device_guard_running":
        return True  # the control's registry settings configure it; the restart starts it
    elif t == "defender_status":
        raise SettingError(
            f"{s['property']} cannot be set on the host (Windows offers no supported local way); turn it on "
            "from the Defender portal, Intune or Configuration Manager"
        )
    elif t == "local_user":
        u = _user_by_rid(state, int(s["rid"]))
        if u is None:
            return False
        if u.name.lower() in protected:
            raise SettingError(f"refusing to change protected account {u.name}")
        if "name" in s and u.name != s["name"]:
            if s["name"].lower() in protected:
                raise SettingError(f"refusing to rename an account to protected name {s['name']}")
            old = u.name
            del state.users[old]
            u.name = s["name"]
            state.users[u.name] = u
            for members in state.groups.values():
                members[:] = [u.name if m == old else m for m in members]
            key = {500: "NewAdministratorName", 501: "NewGuestName"}[u.sid_suffix]
            state.security_policy.setdefault("System Access", {})[key] = u.name
        if "enabled" in s:
            u.enabled = bool(s["enabled"])
            key = {500: "EnableAdminAccount", 501: "EnableGuestAccount"}[u.sid_suffix]
            state.security_policy.setdefault("System Access", {})[key] = int(u.enabled)
    elif t == "group_members":
        group = _group_name(s["group_sid"])
        for m in current["unknown"]:
            state.groups[group].remove(m)
            if m in state.users:
                state.users[m].groups = [g for g in state.users[m].groups if g != group]
    elif t == "service_allowlist":
        # Per service, as the .ps1: a refused one does not spare the others.
        refused = []
        for name in current["unknown"]:
            try:
                set_service_disabled(state, name)
            except SettingError as exc:
                refused.append(f"{name} ({exc})")
        if refused:
            raise SettingError("could not disable: " + "; ".join(refused))
    elif t == "task_allowlist":
        for path in current["unknown"]:
            state.tasks[path].enabled = False
    return False


def set_service_disabled(state: TwinState, name: str) -> None:
    """Set-Service -StartupType Disabled + Stop-Service on the twin (the evaluator's cmdlets
    carry the protected-service refusal; this twin only mirrors the module's flow)."""
    state.services[name].start_mode = "Disabled"
    state.services[name].state = "Stopped"


def _sync_defender(state: TwinState) -> None:
    """Defender's running status follows its policy keys and service (not tamper protection)."""
    policy = state.registry.get("HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows Defender", {})
    rtp = state.registry.get(
        "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\Real-Time Protection", {}
    )
    svc = state.services.get("WinDefend")
    running = svc is not None and svc.state == "Running" and not policy.get("DisableAntiSpyware")
    state.defender.update(
        AMServiceEnabled=running,
        AntispywareEnabled=running,
        AntivirusEnabled=running,
        RealTimeProtectionEnabled=running and not rtp.get("DisableRealtimeMonitoring"),
        BehaviorMonitorEnabled=running and not rtp.get("DisableBehaviorMonitoring"),
        OnAccessProtectionEnabled=running and not rtp.get("DisableRealtimeMonitoring"),
        AMRunningMode="Normal" if running else "Not running",
    )


def _boot_marker(state: TwinState) -> str:
    for entry in reversed(state.history):
        event = str(entry.get("event", "")).lower()
        if any(word in event for word in ("boot", "reset", "reimage", "power")):
            return repr(float(entry["at"]))
    return "initial"


def run_baseline(
    state: TwinState, controls: list[dict[str, Any]], protected: set[str], check_mode: bool
) -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
    """Evaluate/apply on `state` in place. Returns (per-control results, [(setting key, before)])."""
    boot = _boot_marker(state)
    marker = state.registry.get(MARKER_KEY, {})
    pending: list[str] = (
        list(marker.get("PendingReboot", [])) if marker.get("PendingBootTime") == boot else []
    )
    results: list[dict[str, Any]] = []
    befores: list[tuple[str, Any]] = []
    any_changed = False
    for control in controls:
        r: dict[str, Any] = {
            "id": control["id"], "title": control.get("title", ""), "changed": False, "compliant": False,
            "before": {}, "after": {}, "error": None, "skipped": False, "skip_reason": "",
            "not_applicable": False, "pending_reboot": False, "noncompliant": [],
        }  # fmt: skip
        results.append(r)
        try:
            if control.get("requires") == "virtualization_based_security" and not _vbs_capable(state):
                r.update(
                    skipped=True,
                    not_applicable=True,
                    compliant=True,
                    skip_reason="hardware lacks virtualization-based security support with Secure Boot "
                    "(the baseline requires Secure Boot for VBS)",
                )
                continue
            states: dict[str, dict[str, Any]] = {}
            non_compliant = []
            waiting = tuple(c for c in pending if c == control["id"])
            for s in control["settings"]:
                st = get_setting(state, s, protected, waiting)
                states[s["key"]] = st
                r["before"][s["key"]] = st["value"]
                if not st["compliant"] and not (s["type"] == "device_guard_running" and waiting):
                    non_compliant.append(s)
            r["compliant"] = not non_compliant and all(st["compliant"] for st in states.values())
            r["noncompliant"] = [s["key"] for s in non_compliant]
            if not non_compliant or check_mode:
                r["after"] = dict(r["before"])
                if non_compliant:
                    r["changed"] = control.get("remediation") != "manual"
                if control.get("reboot_required") and control["id"] in pending:
                    r["pending_reboot"] = True
                continue
            if control.get("remediation") == "manual":
                r["after"] = dict(r["before"])
                r["error"] = (
                    "not compliant and cannot be set on the host: "
                    + ", ".join(s["key"] for s in non_compliant)
                    + " (manual remediation: Defender portal, Intune or Configuration Manager)"
                )
                continue
            needs_reboot = bool(control.get("reboot_required"))
            errors: list[str] = []
            for s in non_compliant:
                if errors and control.get("cuts_remote_management"):
                    errors.append(
                        f"{s['key']}: not applied, an earlier setting of this control failed and it "
                        "can cut remote management"
                    )
                    continue
                befores.append((s["key"], states[s["key"]]["value"]))
                try:
                    if set_setting(state, s, states[s["key"]], protected):
                        needs_reboot = True
                    r["changed"] = True
                except SettingError as exc:
                    errors.append(f"{s['key']}: {exc}")
            _sync_defender(state)
            ok = True
            if r["changed"] and needs_reboot and control["id"] not in pending:
                pending.append(control["id"])
            waiting = tuple(c for c in pending if c == control["id"])
            for s in control["settings"]:
                st = get_setting(state, s, protected, waiting)
                r["after"][s["key"]] = st["value"]
                if not st["compliant"]:
                    ok = False
                    if s["type"] == "device_guard_running" and waiting:
                        continue  # in effect after the restart: pending, not failed
                    if s["type"] in ("firewall_profile", "firewall_rule"):
                        if not any(e.startswith(f"{s['key']}:") for e in errors):
                            errors.append(
                                f"{s['key']}: set locally but not in effect (ActiveStore): "
                                "a Group Policy overrides it"
                            )
                        continue
                    if not any(e.startswith(f"{s['key']}:") for e in errors):
                        errors.append(f"{s['key']}: still not compliant after setting it")
            r["compliant"] = ok
            any_changed = any_changed or r["changed"]
            if control.get("reboot_required") or needs_reboot:
                r["pending_reboot"] = control["id"] in pending
            if errors:
                r["error"] = "; ".join(errors)
        except SettingError as exc:
            r["error"] = str(exc)
    if not check_mode and any_changed:
        state.registry[MARKER_KEY] = {"PendingReboot": pending, "PendingBootTime": boot}
    return results, befores


def _vbs_capable(state: TwinState) -> bool:
    # Hypervisor support from Windows 10 1607 / Server 2016 on, and Secure Boot (the baseline's
    # RequirePlatformSecurityFeatures = 1): both in Win32_DeviceGuard.AvailableSecurityProperties.
    return int(state.os_build or 0) >= 14393 and secure_boot(state)


def _summary(results: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "compliant": sum(1 for r in results if r["compliant"] and not r["error"]),
        "changed": sum(1 for r in results if r["changed"]),
        "failed": sum(1 for r in results if r["error"]),
        "skipped": sum(1 for r in results if r["skipped"] and not r["not_applicable"]),
    }


@module_twin("win_rebuild_baseline")
def win_rebuild_baseline(ctx: ModuleContext) -> dict[str, Any]:
    protected = {a.lower() for a in ctx.params["protected_accounts"]}
    controls = ctx.params["controls"]
    if ctx.check_mode:
        results, _ = run_baseline(ctx.state(), controls, protected, check_mode=True)
    else:
        holder: dict[str, Any] = {}

        def apply(state: TwinState) -> None:
            holder["results"], holder["befores"] = run_baseline(state, controls, protected, check_mode=False)

        ctx.update(apply)
        results = holder["results"]
        drift = ctx.lab.fault(ctx.twin.name, "drift_after_harden")
        if drift:
            _drift(ctx, drift.get("settings", []), controls, holder["befores"])
    out: dict[str, Any] = {
        "changed": any(r["changed"] for r in results),
        "controls": results,
        "pending_reboot": any(r["pending_reboot"] for r in results),
        "summary": _summary(results),
    }
    if ctx.diff_mode:
        out["diff"] = {
            "before": {r["id"]: r["before"] for r in results},
            "after": {r["id"]: r["after"] for r in results},
        }
    return out


def _drift(
    ctx: ModuleContext, names: list[str], controls: list[dict[str, Any]], befores: list[tuple[str, Any]]
) -> None:
    """Revert the listed settings to their value before the run (the fault's meaning)."""
    keys: set[str] = set()
    for name in names:
        keys.update(DRIFT_ALIASES.get(name, []))
        for control in controls:
            if control["id"] == name:
                keys.update(s["key"] for s in control["settings"])
        keys.add(name)
    by_key = {s["key"]: s for c in controls for s in c["settings"]}
    reverted = [(k, v) for k, v in befores if k in keys and k in by_key]
    if not reverted:
        return

    def revert(state: TwinState) -> None:
        for key, value in reverted:
            s = by_key[key]
            if s["type"] == "registry" and not isinstance(value, dict):
                if value is None:
                    found = _find_key(state, s["path"])
                    if found:
                        state.registry[found].pop(s["name"], None)
                else:
                    _reg_set(state, s["path"], s["name"], value)
            elif s["type"] == "feature" and value is not None:
                state.features[s["name"]] = bool(value)
            elif s["type"] == "firewall_profile" and isinstance(value, dict):
                p = state.firewall.setdefault(s["profile"], {})
                p.update(
                    Enabled=value["enabled"],
                    DefaultInboundAction=value["default_inbound_action"],
                    LogAllowed=value["log_allowed"],
                    LogBlocked=value["log_blocked"],
                    LogMaxSizeKilobytes=value["log_max_size_kb"],
                )
            elif s["type"] == "service" and isinstance(value, dict):
                svc = state.services[s["name"]]
                svc.start_mode = _AUTOMATIC[value["start_mode"]]
                svc.state = value["state"].capitalize()
        _sync_defender(state)

    ctx.update(revert)
    ctx.record("drift_after_harden", settings=[k for k, _ in reverted])
