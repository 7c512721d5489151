"""ansible.windows.setup: the facts the project reads, honouring gather_subset.

Subsets as setup.ps1 names them. `min` (always, unless `!min`): platform, distribution,
date_time, powershell_version, user, env, local. Others collected here when asked (or `all`):
interfaces (ansible_interfaces, ansible_ip_addresses), uptime/boot. Facts the lab does not
model (memory, processor, bios, virtual, facter) are absent, not invented.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from rebuild.lab.exec.cmdlets import machine_sid
from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.exec.winenv import environment

MIN = {"date_time", "distribution", "dns", "env", "local", "platform", "powershell_version", "user"}
ALL = MIN | {
    "all_ipv4_addresses",
    "all_ipv6_addresses",
    "interfaces",
    "uptime",
    "bios",
    "memory",
    "processor",
    "virtual",
    "facter",
    "windows_domain",
    "winrm",
    "checksum",
}
SIMULATED = MIN | {
    "all_ipv4_addresses",
    "all_ipv6_addresses",
    "interfaces",
    "uptime",
    "windows_domain",
    "winrm",
}


def _subsets(raw: list[str]) -> set[str]:
    """gather_subset as setup.ps1 reads it: `min` unless `!min`; `!all` drops the rest; names win
    over `!all`."""
    include: set[str] = set()
    exclude: set[str] = set()
    named: set[str] = set()
    with_min = True
    for item in raw:
        name = str(item).strip()
        neg = name.startswith("!")
        name = name.lstrip("!")
        if name not in ALL | {"all", "min"}:
            raise ModuleFailed(
                f"Invalid subset '{name}' specified. Valid subsets: {', '.join(sorted(ALL | {'all', 'min'}))}"
            )
        if name == "min":
            with_min = not neg
        elif name == "all":
            (exclude if neg else include).update(ALL - MIN)
        elif neg:
            exclude.add(name)
        else:
            named.add(name)
    chosen = (include - exclude) | named
    return chosen | MIN if with_min else chosen


@module_twin("ansible.windows.setup")
def setup(ctx: ModuleContext) -> dict[str, Any]:
    from rebuild.lab.exec.cmdlets import boot_time

    state = ctx.state()
    subsets = _subsets(list(ctx.params.get("gather_subset") or ["all"]))
    if ctx.params.get("fact_path"):
        raise ModuleFailed("the rebuild lab (a simulation) does not simulate local fact files (fact_path)")
    host = state.hostname.upper()[:15]
    facts: dict[str, Any] = {
        "gather_subset": list(ctx.params.get("gather_subset") or ["all"]),
        "module_setup": True,
    }
    if "platform" in subsets:
        version = f"10.0.{state.os_build}.0"
        product = "server" if state.kind == "server" else "workstation"
        facts.update(
            {
                "ansible_architecture": "64-bit",
                "ansible_architecture2": "x86_64",
                "ansible_hostname": host,
                "ansible_nodename": f"{host.lower()}.{state.domain}" if state.domain_joined else host,
                "ansible_fqdn": f"{state.hostname.lower()}.{state.domain}"
                if state.domain_joined
                else state.hostname.lower(),
                "ansible_domain": state.domain if state.domain_joined else "",
                "ansible_kernel": version,
                "ansible_machine_id": machine_sid(state),
                "ansible_owner_contact": "",
                "ansible_owner_name": "",
                "ansible_system": "Win32NT",
                "ansible_system_description": "",
                "ansible_os_family": "Windows",
                "ansible_os_name": state.os_caption,
                "ansible_os_product_type": product,
                "ansible_os_installation_type": "Server" if state.kind == "server" else "Client",
                "ansible_windows_domain": state.domain if state.domain_joined else "WORKGROUP",
                "ansible_windows_domain_member": state.domain_joined,
                "ansible_windows_domain_role": (
                    "Member server" if state.domain_joined else "Stand-alone server"
                )
                if state.kind == "server"
                else ("Member workstation" if state.domain_joined else "Stand-alone workstation"),
                "ansible_reboot_pending": any(
                    "pendingfilerename" in k.lower() or "rebootrequired" in k.lower() for k in state.registry
                ),
            }
        )
    if "distribution" in subsets:
        facts.update(
            {
                "ansible_distribution": state.os_caption,
                "ansible_distribution_version": f"10.0.{state.os_build}.0",
                "ansible_distribution_major_version": "10",
            }
        )
    if "powershell_version" in subsets:
        facts["ansible_powershell_version"] = 5
    if "user" in subsets:
        facts.update(
            {
                "ansible_user_dir": "C:\\Users\\Administrator",
                "ansible_user_gecos": "",
                "ansible_user_id": "Administrator",
                "ansible_user_sid": f"{machine_sid(state)}-500",
            }
        )
    if "env" in subsets:
        facts["ansible_env"] = environment(state, ctx.twin)
    if "date_time" in subsets:
        now = dt.datetime.now(dt.UTC)
        facts["ansible_date_time"] = {
            "date": now.strftime("%Y-%m-%d"),
            "time": now.strftime("%H:%M:%S"),
            "iso8601": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "epoch": str(int(now.timestamp())),
            "year": now.strftime("%Y"),
            "month": now.strftime("%m"),
            "day": now.strftime("%d"),
            "hour": now.strftime("%H"),
            "minute": now.strftime("%M"),
            "second": now.strftime("%S"),
            "tz": state.time_zone,
            "tz_offset": "+00:00",
        }
    if "local" in subsets:
        facts["ansible_local"] = {}
    if subsets & {"interfaces", "all_ipv4_addresses"}:
        facts["ansible_ip_addresses"] = [ctx.twin.address]
        facts["ansible_interfaces"] = [
            {
                "connection_name": "Ethernet",
                "interface_index": 4,
                "interface_name": "Simulated Ethernet Adapter (rebuild lab)",
                "macaddress": ctx.twin.mac.upper().replace(":", "-"),
                "dns_domain": state.domain if state.domain_joined else None,
                "default_gateway": None,
                "mtu": 1500,
                "speed": 1000,
            }
        ]
    if "uptime" in subsets:
        boot = boot_time(ctx.lab, ctx.twin).when
        facts["ansible_lastboot"] = boot.strftime("%Y-%m-%d %H:%M:%SZ")
        facts["ansible_uptime_seconds"] = max(0, int(time.time() - boot.timestamp()))
    return {"changed": False, "ansible_facts": facts}
