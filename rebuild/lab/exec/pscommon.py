"""What the lab's powershell.exe (powershell.py) and its cmdlets (cmdlets.py) share: PowerShell's
error records, the lab's "does not simulate" refusal, parameter binding, the session of one
script, and the twin's last boot time. Imports neither of them, so neither imports the other back.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.exec.psobjects import PSDate, scalar_text


class NotSimulated(Exception):
    """The script uses PowerShell the lab does not simulate."""


class PSError(Exception):
    """A PowerShell error record: `Cmdlet : message` on stderr."""

    def __init__(self, command: str, message: str, terminating: bool = False) -> None:
        super().__init__(message)
        self.command = command
        self.message = message
        self.terminating = terminating

    def render(self) -> str:
        return f"{self.command} : {self.message}\r\n" if self.command else f"{self.message}\r\n"


def not_simulated(what: str) -> NotSimulated:
    return NotSimulated(f"the rebuild lab (a simulation) does not simulate {what}")


@dataclass
class Session:
    lab: Lab
    twin: TwinRecord
    error_action: str = "Continue"
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    last_ok: bool = True


@dataclass(frozen=True)
class Param:
    name: str
    value: Any = None
    has_value: bool = False  # -Name:value form


def bind(
    command: str,
    args: list[Any],
    params: list[str],
    positional: list[str] | None = None,
    switches: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Bind tokens to a cmdlet's parameters as PowerShell does (unique prefixes, positions)."""
    bound: dict[str, Any] = {}
    pos_index = 0
    positional = positional or []
    i = 0
    common = ["ErrorAction", "WarningAction", "Verbose", "Debug", "InformationAction"]
    while i < len(args):
        a = args[i]
        if isinstance(a, Param):
            candidates = [p for p in params + list(switches) + common if p.lower().startswith(a.name.lower())]
            exact = [p for p in candidates if p.lower() == a.name.lower()]
            if a.name.lower() == "ea":
                exact = ["ErrorAction"]
            if not candidates and not exact:
                raise PSError(
                    command,
                    f"A parameter cannot be found that matches parameter name '{a.name}'.",
                    terminating=True,
                )
            if len(candidates) > 1 and not exact:
                raise PSError(
                    command,
                    f"Parameter cannot be processed because the parameter name '{a.name}' is ambiguous. "
                    f"Possible matches include: {' '.join('-' + c for c in candidates)}.",
                    terminating=True,
                )
            pname = exact[0] if exact else candidates[0]
            if pname in switches or pname in ("Verbose", "Debug"):
                bound[pname] = True
                i += 1
                continue
            if i + 1 >= len(args) or isinstance(args[i + 1], Param):
                raise PSError(
                    command,
                    f"Missing an argument for parameter '{pname}'. Specify a parameter of type "
                    "'System.String' and try again.",
                    terminating=True,
                )
            bound[pname] = args[i + 1]
            i += 2
            continue
        while pos_index < len(positional) and positional[pos_index] in bound:
            pos_index += 1
        if pos_index >= len(positional):
            raise PSError(
                command,
                f"A positional parameter cannot be found that accepts argument '{scalar_text(a)}'.",
                terminating=True,
            )
        bound[positional[pos_index]] = a
        pos_index += 1
        i += 1
    ea = bound.get("ErrorAction")
    if ea is not None and str(ea).lower() not in ("stop", "continue", "silentlycontinue", "ignore"):
        raise not_simulated(f"-ErrorAction {ea}")
    return bound


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def boot_time(lab: Lab, twin: TwinRecord) -> PSDate:
    """Last boot: the latest boot-like event in the twin's history (a fixed date before any)."""
    state = lab.state(twin.name)
    now = time.time()
    booted: float | None = None
    for entry in state.history:
        event = str(entry.get("event", "")).lower()
        if any(word in event for word in ("boot", "reset", "reimage", "power")):
            # A restart requested with a delay (shutdown /r /t N) boots N seconds later, and a
            # machine boots after its previous boot: each restart moves the boot time forward
            # by at least a second (the WMI value's resolution), as on a real host.
            at = float(entry["at"]) + float(entry.get("delay") or 0)
            if at > now:
                continue  # restart scheduled, not happened yet: still the previous boot
            booted = at if booted is None else max(at, int(booted) + 1.0)
    if booted is None:
        return PSDate(dt.datetime(2026, 1, 5, 7, 30, tzinfo=dt.UTC))
    return PSDate(dt.datetime.fromtimestamp(booted, tz=dt.UTC).replace(microsecond=0))
