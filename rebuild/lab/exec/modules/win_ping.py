"""ansible.windows.win_ping: answers `pong` (or `data`); data=crash raises, as the real one does."""

from __future__ import annotations

from typing import Any

from rebuild.lab.exec.modules import ModuleContext, ModuleCrashed, module_twin


@module_twin("ansible.windows.win_ping")
def win_ping(ctx: ModuleContext) -> dict[str, Any]:
    data = ctx.params.get("data") or "pong"
    if data == "crash":
        raise ModuleCrashed("boom")
    return {"changed": False, "ping": data}
