"""Windows Firewall (NetSecurity cmdlets) and Device Guard status on a twin (SIMULATION).

Part of `TwinHost` (twin_host.py). Rules live where Windows keeps them: one REG_SZ per rule
under ...\\FirewallPolicy\\FirewallRules (the PersistentStore), named by the rule's Name (a GUID
when `New-NetFirewallRule` is not given one), its data the rule string
`v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=5986|Name=<DisplayName>|`. Group Policy
rules are under HKLM\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\FirewallRules; the ActiveStore
is both (Microsoft Learn, Get-NetFirewallRule -PolicyStore). Profiles: `rebuild.lab.firewall`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from rebuild.lab.exec import cmdlets
from rebuild.lab.exec.psobjects import PSEnum, PSObj
from rebuild.lab.exec.twin_call import host_of
from rebuild.lab.firewall import DEVICE_GUARD_POLICY, credential_guard_configured, secure_boot
from rebuild.lab.ps import values as v
from rebuild.lab.state import TwinState

if TYPE_CHECKING:
    from rebuild.lab.ps.evaluator import Call

RULES_KEY = (
    "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules"
)
GPO_RULES_KEY = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\FirewallRules"
# SIMULATION: the boot during which the Device Guard policy was last written (it applies at the next boot).
DEVICE_GUARD_WRITTEN = "HKLM:\\SYSTEM\\RebuildLab\\DeviceGuardPolicyWritten"
_PROTOCOLS = {"TCP": 6, "UDP": 17, "ICMPV4": 1, "ICMPV6": 58}
_DIRECTION = {"in": ("Inbound", 1), "out": ("Outbound", 2)}
_ACTION = {"allow": ("Allow", 2), "block": ("Block", 4)}


def _fields(data: Any) -> dict[str, str]:
    return dict(f.split("=", 1) for f in str(data).split("|") if "=" in f)


def _rules(state: TwinState, active: bool) -> list[tuple[str, str, dict[str, str]]]:
    """(store, rule name, fields) of each rule the store shows."""
    view = cmdlets.registry_view(state)
    out = []
    for store, key in (("PersistentStore", RULES_KEY), ("GroupPolicy", GPO_RULES_KEY)):
        if store == "GroupPolicy" and not active:
            continue
        stored = cmdlets.reg_find(view, key)
        for name, data in (view.get(stored, {}) if stored else {}).items():
            out.append((store, name, _fields(data)))
    return out


def _rule_object(store: str, name: str, f: dict[str, str]) -> PSObj:
    direction = _DIRECTION.get(f.get("Dir", "").lower(), ("Inbound", 1))
    action = _ACTION.get(f.get("Action", "").lower(), ("Allow", 2))
    enabled = f.get("Active", "").upper() == "TRUE"
    return PSObj(
        "Microsoft.Management.Infrastructure.CimInstance#root/standardcimv2/MSFT_NetFirewallRule",
        {
            "Name": name,
            "DisplayName": f.get("Name", name),
            "Direction": PSEnum(*direction),
            "Action": PSEnum(*action),
            "Enabled": cmdlets.GPO_BOOL[enabled],
            "Profile": PSEnum(f.get("Profile", "Any"), 0),
            "PolicyStoreSourceType": PSEnum("Local" if store == "PersistentStore" else "GroupPolicy", 1),
            "_Fields": f,
            "_Store": store,
        },
        f'MSFT_NetFirewallRule (InstanceID = "{name}")',
    )


def get_net_firewall_rule(c: Call) -> list[Any]:
    """Get-NetFirewallRule -DisplayName [-PolicyStore ActiveStore|PersistentStore]; nothing found is
    ObjectNotFound "No MSFT_NetFirewallRule objects found with property 'DisplayName' equal to …"."""
    store = v.to_string(c.bound.get("PolicyStore") or "PersistentStore")
    if store.lower() not in ("activestore", "persistentstore"):
        raise c.not_simulated(f"Get-NetFirewallRule -PolicyStore {store}")
    wanted = [v.to_string(x) for x in v.as_list(c.bound.get("DisplayName"))]
    rules = _rules(host_of(c).state(), store.lower() == "activestore")
    out = [_rule_object(s, n, f) for s, n, f in rules if not wanted or f.get("Name", n) in wanted]
    if wanted and not out:
        c.write_error(
            f"No MSFT_NetFirewallRule objects found with property 'DisplayName' equal to '{wanted[0]}'.  "
            "Verify the value of the property and retry.",
            "Microsoft.Management.Infrastructure.CimException",
            "ObjectNotFound",
            "CmdletizationQuery_NotFound_DisplayName,Get-NetFirewallRule",
            wanted[0],
        )
    return out


def get_net_firewall_port_filter(c: Call) -> list[Any]:
    """Get-NetFirewallPortFilter -AssociatedNetFirewallRule <rule>: Protocol and LocalPort ('Any')."""
    rules = v.as_list(c.bound.get("AssociatedNetFirewallRule"))
    out: list[Any] = []
    for rule in rules:
        if not isinstance(rule, PSObj) or "_Fields" not in rule.props:
            raise c.not_simulated("Get-NetFirewallPortFilter of something other than a firewall rule")
        f = rule.props["_Fields"]
        number = f.get("Protocol")
        protocol = next((k for k, x in _PROTOCOLS.items() if str(x) == number), number or "Any")
        out.append(
            PSObj(
                "Microsoft.Management.Infrastructure.CimInstance#root/standardcimv2/MSFT_NetProtocolPortFilter",
                {
                    "Protocol": protocol,
                    "LocalPort": f.get("LPort", "Any"),
                    "RemotePort": f.get("RPort", "Any"),
                },
            )
        )
    return out


def remove_net_firewall_rule(c: Call) -> list[Any]:
    """Remove-NetFirewallRule (rules from the pipeline): a Group Policy rule cannot be removed locally."""
    host = host_of(c)
    for rule in v.as_list(c.bound.get("InputObject")):
        if not isinstance(rule, PSObj) or "_Store" not in rule.props:
            raise c.not_simulated("Remove-NetFirewallRule of something other than a firewall rule")
        if rule.props["_Store"] != "PersistentStore":
            c.write_error(
                "Access is denied.",
                "Microsoft.Management.Infrastructure.CimException",
                "PermissionDenied",
                "Windows System Error 5,Remove-NetFirewallRule",
            )
            continue
        name = str(rule.props["Name"])

        def drop(s: TwinState, name: str = name) -> None:
            stored = cmdlets.reg_find(s.registry, RULES_KEY)
            if stored:
                s.registry[stored].pop(name, None)

        host.write(f"Remove-NetFirewallRule {name}", drop)
    return []


def new_net_firewall_rule(c: Call) -> list[Any]:
    """New-NetFirewallRule -DisplayName -Direction -Protocol -LocalPort -Action -Enabled -Profile
    (Microsoft Learn, new-netfirewallrule): Name defaults to a new GUID; LocalPort needs TCP or UDP."""
    host = host_of(c)
    display = v.to_string(c.bound.get("DisplayName"))
    direction = v.to_string(c.bound.get("Direction") or "Inbound")
    action = v.to_string(c.bound.get("Action") or "Allow")
    protocol = v.to_string(c.bound.get("Protocol") or "Any").upper()
    enabled = v.to_string(c.bound.get("Enabled") or "True")
    ports = ",".join(v.to_string(x) for x in v.as_list(c.bound.get("LocalPort")))
    profile = v.to_string(c.bound.get("Profile") or "Any")
    if direction.lower() not in ("inbound", "outbound") or action.lower() not in ("allow", "block"):
        raise c.fail(
            f"Cannot process argument transformation: '{direction}'/'{action}' "
            "is not a valid direction/action.",
            "System.Management.Automation.ParameterBindingException",
        )
    if enabled not in ("True", "False"):
        raise c.fail(
            f'Cannot convert value "{enabled}" to type "Microsoft.PowerShell.Cmdletization.GeneratedTypes.'
            'NetSecurity.Enabled".',
            "System.Management.Automation.ParameterBindingException",
        )
    if protocol not in _PROTOCOLS and protocol != "ANY":
        raise c.not_simulated(f"New-NetFirewallRule -Protocol {protocol}")
    if ports and protocol not in ("TCP", "UDP"):
        c.write_error(
            "The port parameters can only be specified when the protocol is TCP or UDP.",
            "Microsoft.Management.Infrastructure.CimException",
            "InvalidArgument",
            "HRESULT 0x80070057,New-NetFirewallRule",
        )
        return []
    name = v.to_string(c.bound.get("Name")) if "Name" in c.bound else "{" + str(uuid.uuid4()) + "}"
    parts = [
        "v2.30",
        f"Action={action.capitalize()}",
        f"Active={enabled.upper()}",
        f"Dir={'In' if direction.lower() == 'inbound' else 'Out'}",
    ]
    if protocol != "ANY":
        parts.append(f"Protocol={_PROTOCOLS[protocol]}")
    if profile.lower() != "any":
        parts.append(f"Profile={profile}")
    if ports:
        parts.append(f"LPort={ports}")
    data = "|".join([*parts, f"Name={display}", ""])

    def put(s: TwinState) -> None:
        stored = cmdlets.reg_find(s.registry, RULES_KEY) or RULES_KEY
        s.registry.setdefault(stored, {})[name] = data

    host.write(f"New-NetFirewallRule {display}", put)
    return [_rule_object("PersistentStore", name, _fields(data))]


_PROFILE_SETTINGS = {
    "Enabled": "Enabled",
    "DefaultInboundAction": "DefaultInboundAction",
    "DefaultOutboundAction": "DefaultOutboundAction",
    "LogAllowed": "LogAllowed",
    "LogBlocked": "LogBlocked",
    "LogMaxSizeKilobytes": "LogMaxSizeKilobytes",
}


def _netsecurity_enum(c: Call, value: Any, type_name: str, names: tuple[str, ...]) -> str:
    """A NetSecurity enum parameter's value; another is the binder's conversion error."""
    text = v.to_string(value)
    if text not in names:
        raise c.fail(
            f'Cannot convert value "{text}" to type '
            f'"Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetSecurity.{type_name}".',
            "System.Management.Automation.ParameterBindingException",
        )
    return text


def set_net_firewall_profile(c: Call) -> list[Any]:
    """Set-NetFirewallProfile -Name <profile> -Enabled True|False -DefaultInboundAction … : the local
    PersistentStore (Group Policy values still win in the ActiveStore)."""
    host = host_of(c)
    names = [v.to_string(x) for x in v.as_list(c.bound.get("Name"))]
    state = host.state()
    changes: dict[str, Any] = {}
    for param, prop in _PROFILE_SETTINGS.items():
        if param not in c.bound:
            continue
        value = c.bound.get(param)
        if param in ("Enabled", "LogAllowed", "LogBlocked"):
            changes[prop] = (
                _netsecurity_enum(c, value, "GpoBoolean", ("True", "False", "NotConfigured")) == "True"
            )
        elif param in ("DefaultInboundAction", "DefaultOutboundAction"):
            changes[prop] = _netsecurity_enum(c, value, "Action", ("Allow", "Block", "NotConfigured"))
        else:
            changes[prop] = v.to_int(value)
    hits = []
    for n in names:
        hit = next((p for p in state.firewall if p.lower() == n.lower()), None)
        if hit is None:
            c.write_error(
                f"No MSFT_NetFirewallProfile objects found with property 'Name' equal to '{n}'.  "
                "Verify the value of the property and retry.",
                "Microsoft.Management.Infrastructure.CimException",
                "ObjectNotFound",
            )
            continue
        hits.append(hit)
    if not hits:
        return []

    def put(s: TwinState) -> None:
        for hit in hits:
            s.firewall[hit].update(changes)

    host.write(f"Set-NetFirewallProfile {','.join(hits)}", put)
    return []


# --- Device Guard ------------------------------------------------------------------------------


def device_guard_written(host: Any) -> None:
    """A write to the Device Guard policy applies from the next boot: remember this boot."""
    boot = cmdlets.boot_time(host.lab, host.twin).when.isoformat()

    def mark(s: TwinState) -> None:
        s.registry[DEVICE_GUARD_WRITTEN] = {"BootTime": boot}

    host.write("Device Guard policy pending the next boot", mark)


def is_device_guard_key(key: str) -> bool:
    return key.lower() == DEVICE_GUARD_POLICY.lower()


def win32_device_guard(host: Any) -> PSObj:
    """Win32_DeviceGuard (Microsoft Learn, "Configure Credential Guard"): AvailableSecurityProperties
    1 = hypervisor support (Windows 10 1607 / Server 2016 on), 2 = Secure Boot; Credential Guard (1)
    is in SecurityServicesRunning and VirtualizationBasedSecurityStatus is 2 once the policy has
    been through a restart."""
    state = host.state()
    available = [1] if int(state.os_build or 0) >= 14393 else []
    if secure_boot(state):
        available.append(2)
    written = state.registry.get(DEVICE_GUARD_WRITTEN, {}).get("BootTime")
    boot = cmdlets.boot_time(host.lab, host.twin).when.isoformat()
    running = credential_guard_configured(state) and written != boot and 1 in available
    return PSObj(
        "Microsoft.Management.Infrastructure.CimInstance#root/Microsoft/Windows/DeviceGuard/Win32_DeviceGuard",
        {
            "AvailableSecurityProperties": available,
            "SecurityServicesConfigured": [1] if credential_guard_configured(state) else [0],
            "SecurityServicesRunning": [1] if running else [0],
            "VirtualizationBasedSecurityStatus": 2 if running else 0,
        },
        "Win32_DeviceGuard",
    )
