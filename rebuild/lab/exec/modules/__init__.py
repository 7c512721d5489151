"""Module twins: Python stand-ins for Windows modules, run against a twin's state.

Adding a twin for your own module (e.g. the project's `plugins/modules/rebuild_batch.ps1`):

1. Document the module in `plugins/modules/<name>.py` (DOCUMENTATION with `options`): the lab
   validates arguments from it exactly as the real module's parser would.
2. Create `rebuild/lab/exec/modules/<name>.py`::

       from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin

       @module_twin("rebuild_batch")  # FQCN for collection modules, bare name for plugins/modules
       def rebuild_batch(ctx: ModuleContext) -> dict:
           ...  # read ctx.params; change state only via ctx.update(fn) and only when not ctx.check_mode
           return {"changed": True, ...}  # the real module's result keys; raise ModuleFailed(msg) to fail

3. Add the module name to `TWIN_MODULES` below so it is imported.

A twin returns the module's result dict; the runner adds `invocation`, `changed` default and
no_log masking. Check mode: a twin must not change state when `ctx.check_mode` is true and
must still report what would change. A module whose script does not declare check mode
support is skipped in check mode by the runner, as Windows does.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.state import TwinState


class ModuleFailed(Exception):
    """Raised by a twin to fail the task like the real module's FailJson."""

    def __init__(self, msg: str, **result: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.result = result


class ModuleCrashed(Exception):
    """The real module would throw: module_wrapper reports "Unhandled exception while executing module"."""


@dataclass
class ModuleContext:
    lab: Lab
    twin: TwinRecord
    module_name: str  # what the result messages call it (_ansible_module_name)
    params: dict[str, Any]
    raw_args: dict[str, Any]
    check_mode: bool = False
    diff_mode: bool = False
    warnings: list[str] = field(default_factory=list)
    script: str | None = None  # the module source Ansible sent (product modules run it)
    # The session holds credentials for a second hop (CredSSP or Kerberos delegation). The lab's
    # WinRM offers only NTLM and Basic (rebuild/lab/auth.py), so a lab session never does.
    delegated_credentials: bool = False

    def state(self) -> TwinState:
        return self.lab.state(self.twin.name)

    def update(self, change: Callable[[TwinState], None]) -> TwinState:
        """Apply a change to the twin's state; never called in check mode by well-behaved twins."""
        if self.check_mode:
            raise RuntimeError(f"module twin {self.module_name} tried to change state in check mode")
        return self.lab.update(self.twin.name, change)

    def record(self, event: str, **details: Any) -> None:
        self.lab.record(self.twin.name, event, **details)


Handler = Callable[[ModuleContext], dict[str, Any]]


@dataclass(frozen=True)
class ModuleTwin:
    fqcn: str
    handler: Handler


REGISTRY: dict[str, ModuleTwin] = {}


def module_twin(fqcn: str) -> Callable[[Handler], Handler]:
    """Register `fn` as the twin of module `fqcn`."""

    def register(fn: Handler) -> Handler:
        if fqcn in REGISTRY and REGISTRY[fqcn].handler is not fn:
            raise ValueError(f"module twin {fqcn} registered twice")
        REGISTRY[fqcn] = ModuleTwin(fqcn, fn)
        return fn

    return register


# Every module file under this package that registers twins. Others append theirs here.
TWIN_MODULES = [
    "win_ping",
    "setup",
    "registry",
    "service",
    "features",
    "users",
    "files",
    "commands",
    "domain",
    "certificates",  # (win_reboot is an action plugin: its commands are in exec/reboot.py)
    "product",  # plugins/modules/*.ps1 run through the PowerShell evaluator (rebuild/lab/ps)
    "win_rebuild_baseline",  # harden engineer: plugins/modules/win_rebuild_baseline twin
    "updates",  # patch level: win_get_url and win_hotfix (lab update packages)
    "directory",  # tier-0 gates: microsoft.ad.object_info on DC twins (rebuild/lab/directory.py)
]


def load_all() -> dict[str, ModuleTwin]:
    for name in TWIN_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return REGISTRY
