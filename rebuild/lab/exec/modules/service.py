"""ansible.windows.win_service on the twin's services (start mode and run state)."""

from __future__ import annotations

from typing import Any

from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.state import Service, TwinState

_MODE_TO_STATE = {
    "auto": "Automatic",
    "manual": "Manual",
    "disabled": "Disabled",
    "delayed": "Automatic (Delayed Start)",
}
_STATE_TO_MODE = {v.lower(): k for k, v in _MODE_TO_STATE.items()}


def _describe(svc: Service) -> dict[str, Any]:
    return {
        "exists": True,
        "name": svc.name,
        "display_name": svc.display_name,
        "path": svc.path,
        "state": svc.state.lower(),
        "start_mode": _STATE_TO_MODE.get(svc.start_mode.lower(), "manual"),
        "description": "",
        "username": "LocalSystem",
        "desktop_interact": False,
        "dependencies": [],
        "depended_by": [],
        "can_pause_and_continue": False,
    }


@module_twin("ansible.windows.win_service")
def win_service(ctx: ModuleContext) -> dict[str, Any]:
    p = ctx.params
    state = ctx.state()
    name = str(p["name"])
    key = next(
        (
            k
            for k, s in state.services.items()
            if k.lower() == name.lower() or s.display_name.lower() == name.lower()
        ),
        None,
    )
    unsupported = [
        o
        for o in (
            "dependencies",
            "failure_actions",
            "failure_command",
            "sid_info",
            "required_privileges",
            "username",
            "password",
            "load_order_group",
            "error_control",
            "service_type",
        )
        if p.get(o) is not None
    ]
    if unsupported:
        raise ModuleFailed(
            "the rebuild lab (a simulation) does not simulate win_service options: " + ", ".join(unsupported)
        )
    result: dict[str, Any] = {"changed": False}
    if p.get("state") == "absent":
        if key is None:
            return {**result, "exists": False}
        result.update(changed=True, exists=False)
        if not ctx.check_mode:

            def remove(s: TwinState) -> None:
                s.services.pop(key, None)

            ctx.update(remove)
            ctx.record("service_removed", service=key)
        return result
    if key is None:
        if not p.get("path"):
            if p.get("state") or p.get("start_mode"):
                raise ModuleFailed(
                    f"Service '{name}' is not installed, need to set 'path' to create a new service"
                )
            return {**result, "exists": False}
        svc = Service(name, p.get("display_name") or name, "Automatic", "Stopped", str(p["path"]))
        result["changed"] = True
    else:
        svc = Service(**vars(state.services[key]))
    before = (svc.start_mode, svc.state, svc.display_name, svc.path)
    if p.get("display_name"):
        svc.display_name = str(p["display_name"])
    if p.get("path") and key is not None and p["path"] != svc.path:
        svc.path = str(p["path"])
    if p.get("start_mode"):
        svc.start_mode = _MODE_TO_STATE[str(p["start_mode"])]
    wanted = p.get("state")
    if wanted in ("started", "restarted"):
        if svc.start_mode == "Disabled":
            raise ModuleFailed(
                f"Failed to start service '{svc.name}': Service '{svc.display_name} ({svc.name})' cannot be "
                "started due to the following error: Cannot start service "
                f"{svc.name} on computer '.'."
            )
        svc.state = "Running"
    elif wanted == "stopped":
        svc.state = "Stopped"
    elif wanted == "paused":
        raise ModuleFailed(
            f"Service '{svc.name}' cannot be paused (the twin's services do not support pause and continue)"
        )
    changed = (
        result["changed"]
        or before != (svc.start_mode, svc.state, svc.display_name, svc.path)
        or wanted == "restarted"
    )
    result["changed"] = changed
    if changed and not ctx.check_mode:

        def put(s: TwinState) -> None:
            if key is not None and key != svc.name:
                s.services.pop(key, None)
            s.services[key or svc.name] = svc

        ctx.update(put)
        if wanted == "restarted":
            ctx.record("service_restarted", service=svc.name)
    shown = svc if not ctx.check_mode else (Service(**vars(state.services[key])) if key else svc)
    return {**result, **_describe(svc if changed and not ctx.check_mode else shown)}
