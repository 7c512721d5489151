"""The project's own modules (plugins/modules/*.ps1) run for real through the PowerShell evaluator.

No Python twin: the `.ps1` Ansible sends is parsed once (cached) and executed by
`rebuild.lab.ps` against the twin (`rebuild.lab.exec.twin_host.TwinHost`), as ansible-core's
module wrapper runs it: `$ErrorActionPreference = 'Stop'` (module_wrapper.ps1), arguments
through `Ansible.Basic`, the result from `ExitJson`/`FailJson`. An uncaught terminating error
is "Unhandled exception while executing module". A construct the lab does not simulate fails
the task with its script line; a write in check mode fails the task (the module is wrong).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rebuild.lab.exec.modules import ModuleContext, ModuleCrashed, ModuleFailed, module_twin
from rebuild.lab.exec.twin_host import CheckModeWrite, ScriptHangs, TwinHost
from rebuild.lab.ps import Evaluator, NotSimulated, PSParseError
from rebuild.lab.ps.ansible_basic import ModuleExit
from rebuild.lab.state import RANSOM_NOTE, TwinState

PLUGINS = Path(__file__).resolve().parents[4] / "plugins" / "modules"
# Which statements of each product script ran (script name -> statement start bytes), for the
# coverage report (tests/lab/ps_coverage.py).
COVERAGE: dict[str, set[int]] = {}


def script_source(name: str) -> str:
    return (PLUGINS / f"{name}.ps1").read_text(encoding="utf-8-sig")


def run_product_module(ctx: ModuleContext, name: str) -> dict[str, Any]:
    source = ctx.script or script_source(name)
    complex_args = {
        **ctx.raw_args,
        "_ansible_check_mode": ctx.check_mode,
        "_ansible_diff": ctx.diff_mode,
        "_ansible_module_name": ctx.module_name,
    }
    host = TwinHost(
        ctx.lab,
        ctx.twin,
        complex_args=complex_args,
        module_name=ctx.module_name,
        check_mode=ctx.check_mode,
        session_user=ctx.session_user,
    )
    host.network_credentials = ctx.delegated_credentials
    # Coverage is of the product's script: a test's modified copy must not count for it.
    ev = Evaluator(host, coverage=COVERAGE if source == script_source(name) else None)
    ev.global_scope.vars["erroractionpreference"] = "Stop"  # ansible-core module_wrapper.ps1
    try:
        try:
            run = ev.run(source, f"{name}.ps1")
        finally:
            host.flush()
            if ctx.check_mode and host.left_mounted():
                hives = ", ".join("HKU\\" + h for h in host.left_mounted())
                raise CheckModeWrite(
                    f"{ctx.module_name} changed the twin in check mode: "
                    f"it left the registry hive(s) {hives} loaded"
                )
    except ModuleExit as done:
        result = dict(done.result)
        if done.rc != 0:
            msg = str(result.pop("msg", ""))
            result.pop("failed", None)
            raise ModuleFailed(msg, **result) from None
        return result
    except (NotSimulated, PSParseError, CheckModeWrite, ScriptHangs) as exc:
        raise ModuleFailed(str(exc)) from None
    if run.exit_code != 0 and run.errors:
        raise ModuleCrashed(run.errors[-1].render())
    raise ModuleCrashed(f"{name}.ps1 ended without ExitJson/FailJson (exit code {run.exit_code})")


DRIFTS = ("defender_off", "ransom_note")


def _drift(ctx: ModuleContext) -> None:
    """Injected fault `drift_after_redeploy`: the host is re-infected right after redeploy.

    SIMULATION of what verification must catch: Defender turned back off and a ransom note.
    The module's own result does not show it - on Windows it would not either.
    """
    fault = ctx.lab.fault(ctx.twin.name, "drift_after_redeploy")
    if not fault:
        return
    changes = [str(c) for c in fault.get("changes", [])]
    unknown = [c for c in changes if c not in DRIFTS]
    if unknown:
        raise ModuleFailed(
            f"lab fault drift_after_redeploy: unknown change(s) {unknown} (known: {list(DRIFTS)})"
        )

    def apply(s: TwinState) -> None:
        if "defender_off" in changes:
            for key in (
                "RealTimeProtectionEnabled",
                "BehaviorMonitorEnabled",
                "IoavProtectionEnabled",
                "OnAccessProtectionEnabled",
            ):
                s.defender[key] = False
            s.registry.setdefault(
                "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\Real-Time Protection", {}
            )["DisableRealtimeMonitoring"] = 1
        if "ransom_note" in changes:
            s.files[RANSOM_NOTE] = (
                "SIMULATED ransom note (rebuild lab drift fault).\r\nRestore-My-Files.txt\r\n"
            )

    ctx.lab.update(ctx.twin.name, apply)
    ctx.record("drift_after_redeploy", changes=changes)


@module_twin("win_rebuild_apps")
def win_rebuild_apps(ctx: ModuleContext) -> dict[str, Any]:
    result = run_product_module(ctx, "win_rebuild_apps")
    if not ctx.check_mode:
        _drift(ctx)
    return result


# --- win_rebuild_baseline ----------------------------------------------------------------------

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
_START_MODES = {"automatic": "Automatic", "manual": "Manual", "disabled": "Disabled"}


@module_twin("win_rebuild_baseline")
def win_rebuild_baseline(ctx: ModuleContext) -> dict[str, Any]:
    result = run_product_module(ctx, "win_rebuild_baseline")
    if not ctx.check_mode:
        fault = ctx.lab.fault(ctx.twin.name, "drift_after_harden")
        if fault:
            _drift_after_harden(ctx, [str(x) for x in fault.get("settings", [])], result)
    return result


def _drift_after_harden(ctx: ModuleContext, names: list[str], result: dict[str, Any]) -> None:
    """Injected fault `drift_after_harden: {settings: [...]}`: after the run, the listed settings
    (a control id, a setting key or an alias of DRIFT_ALIASES) go back to their value before it.
    SIMULATION of what verification must catch; the module's own result does not show it."""
    from rebuild.lab.exec.twin_system import sync_defender

    by_key = {s["key"]: s for c in ctx.params["controls"] for s in c["settings"]}
    keys: set[str] = set()
    for name in names:
        keys.update(DRIFT_ALIASES.get(name, []))
        keys.update(s["key"] for c in ctx.params["controls"] if c["id"] == name for s in c["settings"])
        keys.add(name)
    reverted = [
        (k, r["before"].get(k))
        for r in result.get("controls", [])
        if r.get("changed")
        for k in r.get("noncompliant", [])
        if k in keys and k in by_key
    ]
    if not reverted:
        return

    def revert(state: TwinState) -> None:
        for key, value in reverted:
            s = by_key[key]
            if s["type"] == "registry" and not isinstance(value, dict):
                stored = next((k for k in state.registry if k.lower() == s["path"].lower()), None)
                if value is None and stored:
                    state.registry[stored].pop(s["name"], None)
                elif value is not None:
                    state.registry.setdefault(stored or s["path"], {})[s["name"]] = value
            elif s["type"] == "feature" and value is not None:
                state.features[s["name"]] = bool(value)
            elif s["type"] == "firewall_profile" and isinstance(value, dict):
                state.firewall.setdefault(s["profile"], {}).update(
                    Enabled=value["enabled"],
                    DefaultInboundAction=value["default_inbound_action"],
                    LogAllowed=value["log_allowed"],
                    LogBlocked=value["log_blocked"],
                    LogMaxSizeKilobytes=value["log_max_size_kb"],
                )
            elif s["type"] == "service" and isinstance(value, dict):
                svc = state.services[s["name"]]
                svc.start_mode = _START_MODES[value["start_mode"]]
                svc.state = value["state"].capitalize()
        sync_defender(state)

    ctx.lab.update(ctx.twin.name, revert)
    ctx.record("drift_after_harden", settings=[k for k, _ in reverted])
