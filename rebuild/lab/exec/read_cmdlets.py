"""The one table of the read cmdlets a twin answers (SIMULATION).

A module that answers reads registers each one with `@read_cmdlet(name, learn page, *parameters)`
on the function that answers it, `fn(ReadContext, bound values) -> objects` (cmdlets.py,
twin_firmware.py). TwinHost (twin_host.py) binds the parameters with the evaluator's binder (an
unknown one fails there, as PowerShell's binder does) and runs the function. Parameters are as on
each cmdlet's Learn page (learn.microsoft.com/powershell/module/<page>); a value the twin does
not answer fails loudly in the function. twin_host imports every registering module, so the
table is whole once twin_host is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rebuild.lab.ps.binding import Param, Signature

if TYPE_CHECKING:
    from rebuild.lab.exec.cmdlets import Bound, ReadContext

ReadFn = Callable[["ReadContext", "Bound"], list[Any]]


@dataclass(frozen=True)
class ReadCmdlet:
    read: ReadFn
    signature: Signature
    learn: str  # page under learn.microsoft.com/powershell/module/


READ_CMDLETS: dict[str, ReadCmdlet] = {}


def read_cmdlet(name: str, learn: str, *params: Param) -> Callable[[ReadFn], ReadFn]:
    """Register the decorated function as the answer of read cmdlet `name`."""

    def register(read: ReadFn) -> ReadFn:
        if name in READ_CMDLETS:
            raise ValueError(f"read cmdlet {name} registered twice")
        READ_CMDLETS[name] = ReadCmdlet(read, Signature(name, params), learn)
        return read

    return register
