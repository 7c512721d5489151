"""ansible.windows.win_optional_feature and win_feature on the twin's optional features."""

from __future__ import annotations

from typing import Any

from rebuild.lab.exec.cmdlets import SERVER_FEATURE_ALIASES
from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.state import TwinState


@module_twin("ansible.windows.win_optional_feature")
def win_optional_feature(ctx: ModuleContext) -> dict[str, Any]:
    state = ctx.state()
    want = ctx.params["state"] == "present"
    if ctx.params.get("source"):
        raise ModuleFailed("the rebuild lab (a simulation) does not simulate feature sources (source)")
    changes: dict[str, bool] = {}
    for name in ctx.params["name"]:
        hit = next((f for f in state.features if f.lower() == str(name).lower()), None)
        if hit is None:
            raise ModuleFailed(f"Failed to find feature '{name}'")
        if bool(state.features[hit]) != want:
            changes[hit] = want
    result: dict[str, Any] = {"changed": bool(changes), "reboot_required": bool(changes)}
    if changes and not ctx.check_mode:

        def put(s: TwinState) -> None:
            s.features.update(changes)

        ctx.update(put)
        ctx.record("features_changed", features=sorted(changes))
    return result


@module_twin("ansible.windows.win_feature")
def win_feature(ctx: ModuleContext) -> dict[str, Any]:
    state = ctx.state()
    if state.kind != "server":
        raise ModuleFailed(
            "This version of Windows does not support the Install-WindowsFeature cmdlet (client SKU)"
        )
    want = ctx.params["state"] == "present"
    changes: dict[str, bool] = {}
    results = []
    for name in ctx.params["name"]:
        real = SERVER_FEATURE_ALIASES.get(str(name).lower(), str(name))
        hit = next((f for f in state.features if f.lower() == real.lower()), None)
        if hit is None:
            raise ModuleFailed(
                f"Failed to {'install' if want else 'remove'} Windows Feature: ArgumentNotValid: "
                f"The role, role service, or feature name is not valid: '{name}'. The name was not found."
            )
        if bool(state.features[hit]) != want:
            changes[hit] = want
            results.append(
                {
                    "display_name": str(name),
                    "id": 0,
                    "message": [],
                    "reboot_required": True,
                    "restart_needed": True,
                    "skip_reason": "NotSkipped",
                    "success": True,
                }
            )
    if changes and not ctx.check_mode:
        ctx.update(lambda s: s.features.update(changes))
    return {
        "changed": bool(changes),
        "exitcode": "Success" if changes else "NoChangeNeeded",
        "feature_result": results,
        "reboot_required": bool(changes),
        "success": True,
    }
