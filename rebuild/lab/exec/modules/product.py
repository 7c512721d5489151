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
        ctx.lab, ctx.twin, complex_args=complex_args, module_name=ctx.module_name, check_mode=ctx.check_mode
    )
    host.network_credentials = ctx.delegated_credentials
    ev = Evaluator(host, coverage=COVERAGE)
    ev.global_scope.vars["erroractionpreference"] = "Stop"  # ansible-core module_wrapper.ps1
    try:
        run = ev.run(source, f"{name}.ps1")
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
