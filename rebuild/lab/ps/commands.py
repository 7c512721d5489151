"""What a command implementation and the host see of the evaluator (SIMULATION): the call a cmdlet
receives, a cmdlet's entry, a native program's result, and `Host`, what a script reaches outside
the engine (a twin plugs in by subclassing it: rebuild/lab/exec/twin_host.py).

A leaf below `evaluator` and `builtins`: the engine cmdlets (builtins) and the twin's cmdlets
register `Cmdlet` entries without importing the evaluator that runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rebuild.lab.ps import values as v
from rebuild.lab.ps.binding import Bound, Signature
from rebuild.lab.ps.errors import ErrorRecord, NotSimulated, PSRuntimeError
from rebuild.lab.ps.parser import Node

if TYPE_CHECKING:
    from rebuild.lab.ps.evaluator import Evaluator


@dataclass
class Call:
    """What a cmdlet implementation receives."""

    ev: Evaluator
    name: str
    bound: Bound
    input: list[Any]
    has_input: bool
    node: Node | None
    errors: list[ErrorRecord] = field(default_factory=list)

    def write_error(
        self,
        message: str,
        exception_type: str = "System.Management.Automation.RuntimeException",
        category: str = "NotSpecified",
        error_id: str = "",
        target: Any = None,
    ) -> None:
        """A non-terminating error (terminating if this call's ErrorAction is Stop)."""
        rec = ErrorRecord(
            message, exception_type, command=self.name, category=category, error_id=error_id, target=target
        )
        self.errors.append(rec)
        self.ev.non_terminating(rec, self.bound.get("ErrorAction"))

    def fail(
        self,
        message: str,
        exception_type: str = "System.Management.Automation.RuntimeException",
        category: str = "NotSpecified",
    ) -> PSRuntimeError:
        """A terminating error of this command (what `ThrowTerminatingError` does)."""
        return PSRuntimeError(ErrorRecord(message, exception_type, command=self.name, category=category))

    def not_simulated(self, what: str) -> NotSimulated:
        return NotSimulated(what, self.ev.where(self.node))

    def whatif(self) -> bool:
        return v.truthy(self.bound.get("WhatIf")) or v.truthy(self.ev.get_var("WhatIfPreference"))


CmdletFn = Callable[[Call], list[Any]]


@dataclass(frozen=True)
class Cmdlet:
    sig: Signature
    run: CmdletFn
    doc: str = ""  # the Microsoft Learn page it follows


@dataclass
class NativeResult:
    rc: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


class Host:
    """What a script can reach outside the engine: cmdlets, native programs, static .NET members."""

    def cmdlet(self, name: str) -> Cmdlet | None:
        return None

    def native(self, call: Call, name: str, args: list[str]) -> NativeResult | None:
        return None

    def static(self, ev: Evaluator, type_name: str, member: str, args: list[Any] | None, node: Node) -> Any:
        raise NotSimulated(f"the .NET member [{type_name}]::{member}", ev.where(node))

    def static_set(self, ev: Evaluator, type_name: str, member: str, value: Any, node: Node) -> None:
        raise NotSimulated(f"setting the .NET member [{type_name}]::{member}", ev.where(node))

    def env(self) -> dict[str, str]:
        return {}

    def time_zone(self) -> str:
        """The machine's time zone (IANA key): the clock of a Local date (Get-Date, [DateTime]::Now)."""
        return "UTC"

    def finish(self) -> None:
        """The top-level script has ended (normally, by exit, or by an error)."""
