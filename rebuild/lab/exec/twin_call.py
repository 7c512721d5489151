"""What a twin cmdlet reads from its call (SIMULATION): the twin it runs on and its one path.

A leaf under `twin_host` and the `twin_*` modules whose cmdlets TwinHost serves: they use these
helpers without importing `twin_host`, which imports them (no import circle, even a late one:
tests/unit/test_import_cycles.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rebuild.lab.ps import values as v

if TYPE_CHECKING:
    from rebuild.lab.exec.twin_host import TwinHost
    from rebuild.lab.ps.commands import Call


def host_of(c: Call) -> TwinHost:
    """The twin host a twin cmdlet runs on. Twin cmdlets are found only through `TwinHost.cmdlet`,
    so the evaluator that calls one always has a TwinHost."""
    return cast("TwinHost", c.ev.host)


def single_path(c: Call) -> str:
    """The one -LiteralPath/-Path of a cmdlet the lab simulates for a single path."""
    items = v.as_list(c.bound.get("LiteralPath", c.bound.get("Path")))
    if len(items) != 1:
        raise c.not_simulated(f"{c.name} with {len(items)} paths")
    return v.to_string(items[0])
