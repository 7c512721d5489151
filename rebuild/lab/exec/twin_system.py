"""Optional features, scheduled tasks, local accounts and Defender's status on a twin (SIMULATION).

Part of `TwinHost` (twin_host.py): the write cmdlets of the Dism, ScheduledTasks and
LocalAccounts modules, each following its Microsoft Learn page (docs/lab-powershell.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rebuild.lab.exec import cmdlets
from rebuild.lab.exec.psobjects import PSObj
from rebuild.lab.exec.twin_call import host_of
from rebuild.lab.ps import values as v
from rebuild.lab.state import TwinState

if TYPE_CHECKING:
    from rebuild.lab.ps.evaluator import Call

DEFENDER_POLICY = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows Defender"


# --- optional features -------------------------------------------------------------------------


def set_optional_feature(c: Call, enable: bool) -> list[Any]:
    """Enable-/Disable-WindowsOptionalFeature -Online -FeatureName [-NoRestart] [-All]: an unknown
    feature is "Feature name X is unknown."; the result's RestartNeeded says a restart completes it
    (the features our baseline changes, like SMB1Protocol, need one)."""
    if not v.truthy(c.bound.get("Online")):
        raise c.not_simulated(f"{c.name} on offline images (use -Online)")
    host = host_of(c)
    name = v.to_string(c.bound.get("FeatureName"))
    state = host.state()
    hit = next((f for f in state.features if f.lower() == name.lower()), None)
    if hit is None:
        raise c.fail(f"Feature name {name} is unknown.", "System.Runtime.InteropServices.COMException")
    changed = bool(state.features[hit]) != enable
    if changed:

        def put(s: TwinState) -> None:
            s.features[hit] = enable

        host.write(f"{c.name} {hit}", put)
    return [
        PSObj(
            "Microsoft.Dism.Commands.ImageObject",
            {"Online": True, "RestartNeeded": changed, "Path": None},
            "Microsoft.Dism.Commands.ImageObject",
        )
    ]


# --- scheduled tasks ---------------------------------------------------------------------------


def disable_scheduled_task(c: Call) -> list[Any]:
    """Disable-ScheduledTask -TaskPath -TaskName: the task stays, its State becomes Disabled."""
    host = host_of(c)
    path = v.to_string(c.bound.get("TaskPath") or "\\")
    name = v.to_string(c.bound.get("TaskName"))
    full = path + name
    state = host.state()
    hit = next((t for t in state.tasks if t.lower() == full.lower()), None)
    if hit is None:
        c.write_error(
            "The system cannot find the file specified.",
            "Microsoft.Management.Infrastructure.CimException",
            "ObjectNotFound",
            "HRESULT 0x80070002,Disable-ScheduledTask",
            full,
        )
        return []

    def put(s: TwinState) -> None:
        s.tasks[hit].enabled = False

    host.write(f"Disable-ScheduledTask {hit}", put)
    return []


# --- local accounts ----------------------------------------------------------------------------


def _target_user(c: Call, state: TwinState) -> Any:
    """The local user a cmdlet names by -InputObject, -SID or -Name; else UserNotFound (None)."""
    param = next(p for p in ("InputObject", "SID", "Name") if p in c.bound)
    raw = c.bound.get(param)
    if param == "InputObject" and isinstance(raw, PSObj):
        raw = raw.props.get("SID")
    text = v.to_string(raw).upper()
    machine = cmdlets.machine_sid(state).upper() + "-"
    for u in state.users.values():
        if text == f"{machine}{u.sid_suffix}" or (param == "Name" and u.name.lower() == text.lower()):
            return u
    c.write_error(
        f"User {v.to_string(raw)} was not found.",
        "Microsoft.PowerShell.Commands.UserNotFoundException",
        "ObjectNotFound",
        f"UserNotFound,Microsoft.PowerShell.Commands.{c.name.replace('-', '')}Command",
        v.to_string(raw),
    )
    return None


# What the twin's SAM shows through secedit for the built-in accounts (their [System Access] lines).
_SAM_NAMES = {500: "NewAdministratorName", 501: "NewGuestName"}
_SAM_ENABLED = {500: "EnableAdminAccount", 501: "EnableGuestAccount"}


def rename_local_user(c: Call) -> list[Any]:
    """Rename-LocalUser -InputObject|-SID|-Name -NewName: a name in use is NameInUse."""
    host = host_of(c)
    state = host.state()
    user = _target_user(c, state)
    if user is None:
        return []
    new = v.to_string(c.bound.get("NewName"))
    if any(u.name.lower() == new.lower() for u in state.users.values() if u is not user) or any(
        g.lower() == new.lower() for g in state.groups
    ):
        c.write_error(
            f"The name {new} is already in use.",
            "Microsoft.PowerShell.Commands.NameInUseException",
            "ResourceExists",
            "NameInUse,Microsoft.PowerShell.Commands.RenameLocalUserCommand",
            new,
        )
        return []
    old = user.name

    def put(s: TwinState) -> None:
        u = s.users.pop(old)
        u.name = new
        s.users[new] = u
        for members in s.groups.values():
            members[:] = [new if m == old else m for m in members]
        if u.sid_suffix in _SAM_NAMES:
            s.security_policy.setdefault("System Access", {})[_SAM_NAMES[u.sid_suffix]] = new

    host.write(f"Rename-LocalUser {old} {new}", put)
    return []


def enable_local_user(c: Call, enable: bool) -> list[Any]:
    """Enable-LocalUser / Disable-LocalUser -SID|-Name|-InputObject."""
    host = host_of(c)
    state = host.state()
    user = _target_user(c, state)
    if user is None:
        return []
    name = user.name

    def put(s: TwinState) -> None:
        u = s.users[name]
        u.enabled = enable
        if u.sid_suffix in _SAM_ENABLED:
            s.security_policy.setdefault("System Access", {})[_SAM_ENABLED[u.sid_suffix]] = int(enable)

    host.write(f"{c.name} {name}", put)
    return []


def remove_local_group_member(c: Call) -> list[Any]:
    """Remove-LocalGroupMember -SID|-Group|-Name <group> -Member <SID or name>: a member not in the
    group is MemberNotFound."""
    from rebuild.lab.exec.twin_policy import WELL_KNOWN_SIDS

    host = host_of(c)
    state = host.state()
    group_sid = v.to_string(c.bound.get("SID")).upper() if "SID" in c.bound else ""
    group = WELL_KNOWN_SIDS.get(group_sid) if group_sid else v.to_string(c.bound.get("Group"))
    hit = next((g for g in state.groups if group and g.lower() == group.lower()), None)
    if hit is None:
        c.write_error(
            f"Group {group_sid or group} was not found.",
            "Microsoft.PowerShell.Commands.GroupNotFoundException",
            "ObjectNotFound",
        )
        return []
    removed = []
    for raw in v.as_list(c.bound.get("Member")):
        if isinstance(raw, PSObj) and "SID" in raw.props and raw.type_name.endswith("LocalPrincipal"):
            raw = raw.props["SID"]
        text = v.to_string(raw)
        member = next(
            (
                m
                for m in state.groups[hit]
                if m.lower() == text.lower() or (cmdlets.member_sid(state, m) or "").upper() == text.upper()
            ),
            None,
        )
        if member is None:
            c.write_error(
                f"Principal {text} was not found in group {hit}.",
                "Microsoft.PowerShell.Commands.MemberNotFoundException",
                "ObjectNotFound",
                "MemberNotFound,Microsoft.PowerShell.Commands.RemoveLocalGroupMemberCommand",
                text,
            )
            continue
        removed.append(member)
    if not removed:
        return []

    def put(s: TwinState) -> None:
        for m in removed:
            if m in s.groups[hit]:
                s.groups[hit].remove(m)
            if m in s.users:
                s.users[m].groups = [g for g in s.users[m].groups if g != hit]

    host.write(f"Remove-LocalGroupMember {hit} {removed}", put)
    return []


# --- Defender ----------------------------------------------------------------------------------


def sync_defender(state: TwinState) -> None:
    """Defender's running status follows its policy keys and its service (DisableAntiSpyware,
    Real-Time Protection\\Disable*: Microsoft Learn, Defender Antivirus policy settings). Tamper
    protection is not among them: nothing on the host can switch it on."""
    policy = next((x for k, x in state.registry.items() if k.lower() == DEFENDER_POLICY.lower()), {})
    rtp = next(
        (
            x
            for k, x in state.registry.items()
            if k.lower() == (DEFENDER_POLICY + "\\Real-Time Protection").lower()
        ),
        {},
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


def start_sleep(c: Call) -> list[Any]:
    """Start-Sleep -Seconds|-Milliseconds: nothing on the twin changes while the script waits."""
    for p in ("Seconds", "Milliseconds"):
        if p in c.bound and v.to_number(c.bound.get(p)) < 0:
            raise c.fail(
                f"Cannot validate argument on parameter '{p}'. The {v.to_string(c.bound.get(p))} argument is "
                "less than the minimum allowed range of 0.",
                "System.Management.Automation.ParameterBindingValidationException",
            )
    return []
