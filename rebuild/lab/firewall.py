"""What a twin's firewall and Device Guard show as IN EFFECT (SIMULATION of two Windows rules).

Firewall: Windows keeps the local firewall settings (PersistentStore, `TwinState.firewall`)
apart from what Group Policy sets (the GPO store, registry under
HKLM\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\<Profile>Profile). The ActiveStore is
their merge, a value set by Group Policy winning. `Get-NetFirewallProfile` without
`-PolicyStore` reads the PersistentStore: a host a GPO opened still looks closed there.
Source: Microsoft Learn, Get-NetFirewallProfile -PolicyStore ("ActiveStore: ... the sum of
all policy stores that apply to the computer"; default PersistentStore); the policy value
names are those of the Windows Firewall ADMX (EnableFirewall, DefaultInboundAction 1=Block,
Logging\\LogDroppedPackets ...), as the CIS benchmark section 9 lists them.

Device Guard: Credential Guard runs (Win32_DeviceGuard.SecurityServicesRunning holds 1) only
after a restart that follows its policy (EnableVirtualizationBasedSecurity=1, LsaCfgFlags
1|2), and, when RequirePlatformSecurityFeatures asks for Secure Boot, only with Secure Boot on
(HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecureBoot\\State UEFISecureBootEnabled).
Source: Microsoft Learn, "Configure Credential Guard" (verify with Win32_DeviceGuard;
"Secure Boot" / "Secure Boot and DMA protection" platform security levels). The twin's
hardware is UEFI with Secure Boot unless its state says UEFISecureBootEnabled = 0.
"""

from __future__ import annotations

from typing import Any

from rebuild.lab.state import TwinState

POLICY_KEY = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\{profile}Profile"
DEVICE_GUARD_POLICY = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\DeviceGuard"
SECURE_BOOT_KEY = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecureBoot\\State"
_ACTION = {0: "Allow", 1: "Block"}


def _key(state: TwinState, path: str) -> dict[str, Any]:
    """Values of a registry key, key path and value names case-insensitive as on Windows."""
    hit = next((k for k in state.registry if k.lower() == path.lower()), None)
    return {str(n).lower(): v for n, v in (state.registry.get(hit, {}) if hit else {}).items()}


def effective_profile(state: TwinState, profile: str) -> dict[str, Any]:
    """One profile as the ActiveStore shows it: the local settings, Group Policy values on top."""
    out = dict(state.firewall.get(profile, {}))
    policy = _key(state, POLICY_KEY.format(profile=profile))
    logging = _key(state, POLICY_KEY.format(profile=profile) + "\\Logging")
    if "enablefirewall" in policy:
        out["Enabled"] = bool(policy["enablefirewall"])
    for name in ("DefaultInboundAction", "DefaultOutboundAction"):
        if name.lower() in policy and int(policy[name.lower()]) in _ACTION:
            out[name] = _ACTION[int(policy[name.lower()])]
    for value, prop in (("logdroppedpackets", "LogBlocked"), ("logsuccessfulconnections", "LogAllowed")):
        if value in logging:
            out[prop] = bool(logging[value])
    if "logfilepath" in logging:
        out["LogFileName"] = str(logging["logfilepath"])
    if "logfilesize" in logging:
        out["LogMaxSizeKilobytes"] = int(logging["logfilesize"])
    return out


def secure_boot(state: TwinState) -> bool:
    return int(_key(state, SECURE_BOOT_KEY).get("uefisecurebootenabled", 1)) == 1


def credential_guard_configured(state: TwinState) -> bool:
    """The policy asks for Credential Guard and the platform lets VBS start."""
    policy = _key(state, DEVICE_GUARD_POLICY)
    wanted = int(policy.get("enablevirtualizationbasedsecurity", 0)) == 1 and int(
        policy.get("lsacfgflags", 0)
    ) in (1, 2)
    needs_secure_boot = int(policy.get("requireplatformsecurityfeatures", 1)) in (1, 3)
    return wanted and (secure_boot(state) or not needs_secure_boot)
