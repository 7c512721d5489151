"""Compile the baseline for one host: what the win_rebuild_baseline module gets in one call.

Runs on the controller (from the rebuild_harden action plugin and the audit command).
Controls are chosen by OS key and kind, minus exceptions (kept aside with their reason for
the report). Controls that can cut remote management go last; controls are independent
(one failing never holds back another), and inside such a control the module stops at its
first failing setting. The connection account is written into the
module's protected accounts and every administrators allowlist, so hardening can never
remove or disable the account it is connected with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from rebuild.errors import ConfigError
from rebuild.harden.baseline import Baseline, Control, setting_key
from rebuild.harden.exceptions import HardenException

ADMINISTRATORS_SID = "S-1-5-32-544"
# Services without which the host cannot be managed after hardening.
MANAGEMENT_SERVICES = ("WinRM", "RpcSs", "LanmanServer", "mpssvc", "BFE")


@dataclass(frozen=True)
class HostFacts:
    """What the compiler needs to know about a host (from inventory variables)."""

    name: str
    os: str  # image catalogue key, rebuild_os
    kind: str  # server | workstation
    site: str = ""
    groups: tuple[str, ...] = ()
    service: str = ""

    @classmethod
    def from_hostvars(cls, name: str, hostvars: dict[str, Any]) -> HostFacts:
        missing = [v for v in ("rebuild_os", "rebuild_kind") if not hostvars.get(v)]
        if missing:
            raise ConfigError(f"host {name}: missing inventory variable(s) {', '.join(missing)}")
        return cls(
            name=name,
            os=str(hostvars["rebuild_os"]),
            kind=str(hostvars["rebuild_kind"]),
            site=str(hostvars.get("rebuild_site", "")),
            groups=tuple(hostvars.get("group_names", ())),
            service=str(hostvars.get("rebuild_service", "")),
        )


@dataclass(frozen=True)
class Excepted:
    control: str
    title: str
    reason: str
    scope: str
    target: str
    approved_by: str
    expires: str | None = None


@dataclass
class CompiledHost:
    host: str
    controls: list[dict[str, Any]]  # module-ready, remote-management cutting ones last
    excepted: list[Excepted] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)
    protected_accounts: list[str] = field(default_factory=list)

    def module_args(self) -> dict[str, Any]:
        return {"controls": self.controls, "protected_accounts": self.protected_accounts}


def applies(control: Control, facts: HostFacts) -> bool:
    if facts.kind not in control.kinds:
        return False
    if facts.service and facts.service in control.exclude_services:
        return False
    return any(fnmatchcase(facts.os, pattern) for pattern in control.os)


def compile_host(
    baseline: Baseline,
    facts: HostFacts,
    exceptions: Sequence[HardenException] = (),
    protected_accounts: Iterable[str] = ("rb-admin",),
    today: dt.date | None = None,
) -> CompiledHost:
    today = today or dt.date.today()
    protected = sorted({a for a in protected_accounts if a})
    if not protected:
        raise ConfigError(f"host {facts.name}: no connection account given to protect from hardening")
    active = [e for e in exceptions if e.active(today) and e.matches(facts.name, facts.groups, facts.site)]
    compiled = CompiledHost(host=facts.name, controls=[], protected_accounts=protected)
    first: list[dict[str, Any]] = []
    last: list[dict[str, Any]] = []
    for control in baseline.controls:
        if not applies(control, facts):
            compiled.not_applicable.append(control.id)
            continue
        exc = next((e for e in active if e.control == control.id), None)
        if exc is not None:
            compiled.excepted.append(
                Excepted(
                    control=control.id,
                    title=control.title,
                    reason=exc.reason,
                    scope=exc.scope,
                    target=exc.target,
                    approved_by=exc.approved_by,
                    expires=exc.expires.isoformat() if exc.expires else None,
                )
            )
            continue
        entry = _module_control(control, protected, facts.name)
        (last if control.cuts_remote_management else first).append(entry)
    compiled.controls = first + last
    return compiled


def _module_control(control: Control, protected: list[str], host: str) -> dict[str, Any]:
    settings = []
    for setting in control.settings:
        s = {**setting, "key": setting_key(setting)}
        _guard(control, s, protected, host)
        if s["type"] == "group_members" and s["group_sid"] == ADMINISTRATORS_SID:
            s["allowed"] = list(dict.fromkeys([*s["allowed"], *protected]))
        settings.append(s)
    return {
        "id": control.id,
        "title": control.title,
        "cuts_remote_management": control.cuts_remote_management,
        "reboot_required": control.reboot_required,
        "requires": control.requires or "",
        "remediation": control.remediation,
        "settings": settings,
    }


def _guard(control: Control, setting: dict[str, Any], protected: list[str], host: str) -> None:
    """Refuse a compiled list that would lock the operator out (the reference roles' top complaint)."""
    where = f"host {host}: control {control.id}"
    lowered = {p.lower() for p in protected}
    if setting["type"] == "local_user" and str(setting.get("name", "")).lower() in lowered:
        raise ConfigError(
            f"{where}: would rename a built-in account to the connection account {setting['name']!r}"
        )
    if setting["type"] == "service_allowlist":
        for svc in MANAGEMENT_SERVICES:
            if not any(fnmatchcase(svc.lower(), p.lower()) for p in setting["allowed"]):
                raise ConfigError(
                    f"{where}: service allowlist lacks {svc}; hardening would stop remote management"
                )
    if (
        setting["type"] == "service"
        and setting["name"] in MANAGEMENT_SERVICES
        and setting["start_mode"] == "disabled"
    ):
        raise ConfigError(f"{where}: disables {setting['name']}, which remote management needs")
