"""Windows LAPS on a twin: Reset-LapsPassword and the LAPS event log read by Get-WinEvent (SIMULATION).

Part of `TwinHost` (twin_host.py). The policy is what the twin's registry holds under the LAPS Group
Policy root; the managed account is the built-in Administrator (RID 500) unless the policy names
one (`AdministratorAccountName`). The outcome of every rotation is only in the event log
`Microsoft-Windows-LAPS/Operational` (`TwinState.laps["events"]`), as Microsoft documents it:
Reset-LapsPassword "doesn't return detailed information about the results of the operation"
(Microsoft Learn, LAPS/Reset-LapsPassword; "Use Windows LAPS event logs"). Fault
`laps_rotation_fails`: the directory refuses the new password (event 10017), the local password is
kept. What the lab cannot know fails loudly (docs/lab-windows-rules.md, "Windows LAPS").
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from typing import TYPE_CHECKING, Any

from rebuild.lab import directory
from rebuild.lab.exec.psobjects import PSDate, PSObj
from rebuild.lab.exec.twin_call import host_of
from rebuild.lab.ps import values as v
from rebuild.lab.state import TwinState

if TYPE_CHECKING:
    from rebuild.lab.ps.evaluator import Call

LAPS_LOG = "Microsoft-Windows-LAPS/Operational"
PROVIDER = "Microsoft-Windows-LAPS"
# Microsoft Learn, "Configure policy settings for Windows LAPS": the CSP root is read before the
# Group Policy root; only the Group Policy root is simulated.
GP_ROOT = "HKLM:\\Software\\Microsoft\\Windows\\CurrentVersion\\Policies\\LAPS"
CSP_ROOT = "HKLM:\\Software\\Microsoft\\Policies\\LAPS"
# Event ids and texts (Microsoft Learn, "Use Windows LAPS event logs": policy processing start and
# end, password update confirmation; the failure twins 10017/10019 of the same catalogue).
EVENTS = {
    10003: "LAPS policy processing is now starting.",
    10004: "LAPS policy processing succeeded.",
    10005: "LAPS policy processing failed with the error code below.\n\nError code: {code}",
    10017: "LAPS failed to update Active Directory with the new password.\n\nError code: {code}",
    10018: "LAPS successfully updated Active Directory with the new password.",
    10020: "LAPS successfully updated the local admin account with the new password.",
}
ACCESS_DENIED = "80070005"
# Windows LAPS ships with the April 11 2023 update: per build, the first UBR that has it (Microsoft
# Learn, LAPS CSP "Applicable OS"; "Windows LAPS availability"). Windows 10 21H2/22H2 share 2004's
# servicing (19041.x UBRs); Windows 11 23H2 (22631) has it from release. A build not listed
# (Windows Server 2016, 14393) never gets it.
LAPS_FROM_UBR = {
    "17763": 4244,
    "19041": 2784,
    "19044": 2784,
    "19045": 2784,
    "20348": 1663,
    "22000": 1754,
    "22621": 1480,
    "22631": 0,
}
CURRENT_VERSION = "HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
# Get-WinEvent with a filter nothing matches (Microsoft Learn, Get-WinEvent: NoMatchingEventsFound).
NO_EVENTS = "No events were found that match the specified selection criteria."


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _event(event_id: int, **fields: str) -> dict[str, Any]:
    return {"id": event_id, "time": _now(), "message": EVENTS[event_id].format(**fields)}


def has_laps(state: TwinState) -> bool:
    """Whether the twin's build and UBR include Windows LAPS (its cmdlets and event log)."""
    version = next((vals for k, vals in state.registry.items() if k.lower() == CURRENT_VERSION.lower()), {})
    first = LAPS_FROM_UBR.get(str(version.get("CurrentBuildNumber") or state.os_build))
    return first is not None and int(version.get("UBR") or 0) >= first


def _managed_account(state: TwinState, policy: dict[str, Any]) -> str | None:
    """The account LAPS manages: AdministratorAccountName, else the built-in Administrator (RID 500,
    found by RID whatever it was renamed to)."""
    named = str(policy.get("AdministratorAccountName") or "")
    for name, user in state.users.items():
        if (named and name.lower() == named.lower()) or (not named and user.sid_suffix == 500):
            return name
    return None


def _new_password(policy: dict[str, Any]) -> str:
    length = int(policy.get("PasswordLength") or 14)  # Microsoft Learn: PasswordLength default 14
    alphabet = string.ascii_letters + string.digits + "!#%+-.:=?@"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def reset_laps_password(c: Call) -> list[Any]:
    """Reset-LapsPassword (Microsoft Learn, LAPS/Reset-LapsPassword): rotate the managed account's
    password now, whatever its age; with BackupDirectory 2 the new password goes to Active
    Directory first, then to the local account. No output: the events say what happened."""
    host = host_of(c)
    state = host.state()
    if not has_laps(state):
        raise c.fail(
            "The term 'Reset-LapsPassword' is not recognized as the name of a cmdlet, function, script "
            "file, or operable program. Check the spelling of the name, or if a path was included, verify "
            "that the path is correct and try again.",
            "System.Management.Automation.CommandNotFoundException",
            "ObjectNotFound",
        )
    registry = state.registry
    if any(k.lower() == CSP_ROOT.lower() for k in registry):
        raise c.not_simulated("Windows LAPS configured through the CSP root")
    policy = next((vals for k, vals in registry.items() if k.lower() == GP_ROOT.lower()), {})
    if int(policy.get("BackupDirectory") or 0) != 2:
        raise c.not_simulated(
            "Reset-LapsPassword without a LAPS policy backing up to Active Directory (BackupDirectory 2)"
        )
    if not state.domain_joined:
        raise c.not_simulated(
            "Reset-LapsPassword backing up to Active Directory on a computer outside a domain"
        )
    if host.twin.service == "directory":
        raise c.not_simulated("Windows LAPS on a domain controller (it manages only the DSRM password)")
    account = _managed_account(state, policy)
    if account is None:
        raise c.not_simulated("Reset-LapsPassword when the managed account does not exist (event 10013)")
    refused = host.lab.fault(host.twin.name, "laps_rotation_fails") is not None
    password = "" if refused else _new_password(policy)
    age_days = int(policy.get("PasswordAgeDays") or 30)  # Microsoft Learn: PasswordAgeDays default 30
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=age_days)

    def rotate(s: TwinState) -> None:
        log = s.laps.setdefault("events", [])
        log.append(_event(10003))
        if refused:
            log += [_event(10017, code=ACCESS_DENIED), _event(10005, code=ACCESS_DENIED)]
            return
        s.users[account].password = password
        s.laps["managed_account"] = account
        s.laps["rotated_at"] = _now()
        log += [_event(10018), _event(10020), _event(10004)]

    host.write("Reset-LapsPassword", rotate)
    if not refused:
        directory.record_laps_password(
            host.lab.config.lab_dir, state.hostname, directory.filetime(expires.timestamp())
        )
    return []


def _record(event: dict[str, Any], computer: str) -> PSObj:
    # Microsoft Learn, Get-WinEvent outputs: System.Diagnostics.Eventing.Reader.EventLogRecord.
    when = dt.datetime.fromisoformat(event["time"])
    return PSObj(
        "System.Diagnostics.Eventing.Reader.EventLogRecord",
        {
            "Id": event["id"],
            "TimeCreated": PSDate(when),
            "ProviderName": PROVIDER,
            "LogName": LAPS_LOG,
            "LevelDisplayName": "Error" if event["id"] in (10005, 10017) else "Information",
            "MachineName": computer,
            "Message": event["message"],
        },
        "System.Diagnostics.Eventing.Reader.EventLogRecord",
    )


def get_win_event(c: Call) -> list[Any]:
    """Get-WinEvent -FilterHashtable @{LogName; Id; StartTime} (Microsoft Learn,
    Microsoft.PowerShell.Diagnostics/Get-WinEvent, "FilterHashtable"): newest first; nothing
    matching is the error NoMatchingEventsFound. Only the LAPS operational log is simulated."""
    host = host_of(c)
    table = c.bound.get("FilterHashtable")
    if not isinstance(table, v.Hashtable):
        raise c.not_simulated("Get-WinEvent without -FilterHashtable")
    keys = [str(k) for k in table.keys()]  # noqa: SIM118 (a PowerShell Hashtable is not iterable)
    unknown = sorted(k for k in keys if k.lower() not in ("logname", "id", "starttime"))
    if unknown:
        raise c.not_simulated(f"Get-WinEvent -FilterHashtable keys {', '.join(unknown)}")
    logs = [v.to_string(x) for x in v.as_list(table.get("LogName"))]
    if [x.lower() for x in logs] != [LAPS_LOG.lower()]:
        raise c.not_simulated(f"Get-WinEvent of the log(s) {', '.join(logs) or '(none)'} (only {LAPS_LOG})")
    state = host.state()
    if not has_laps(state):
        c.write_error(
            f'There is not an event log on the localhost computer that matches "{LAPS_LOG}".',
            "System.Exception",
            "ObjectNotFound",
            "NoMatchingLogsFound,Microsoft.PowerShell.Commands.GetWinEventCommand",
        )
        return []
    ids = {v.to_int(x) for x in v.as_list(table.get("Id"))}
    start = v.parse_datetime(table.get("StartTime")).when if "StartTime" in table else None
    found = [
        e
        for e in state.laps.get("events", [])
        if (not ids or e["id"] in ids) and (start is None or dt.datetime.fromisoformat(e["time"]) >= start)
    ]
    if not found:
        c.write_error(
            NO_EVENTS,
            "System.Exception",
            "ObjectNotFound",
            "NoMatchingEventsFound,Microsoft.PowerShell.Commands.GetWinEventCommand",
        )
        return []
    return [_record(e, state.hostname) for e in reversed(found)]
