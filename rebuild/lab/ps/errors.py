"""Errors of the evaluator: what PowerShell reports, and what the lab cannot simulate.

PowerShell 5.1 has two kinds of errors (about_Try_Catch_Finally, about_Preference_Variables):
a *non-terminating* error is written to the error stream and the command goes on; a
*terminating* error stops the statement and is what `try/catch` and `trap` see. `throw`,
`-ErrorAction Stop` / `$ErrorActionPreference = 'Stop'` and .NET exceptions are terminating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class NotSimulated(Exception):
    """The script uses PowerShell the lab does not simulate. Never caught by the script's catch."""

    def __init__(self, what: str, where: str = "") -> None:
        msg = f"the rebuild lab (a simulation) does not simulate {what}"
        super().__init__(f"{msg} at {where}" if where else msg)
        self.what = what
        self.where = where


class PSParseError(Exception):
    """The script does not parse as Windows PowerShell 5.1 (the real engine refuses to run it)."""


@dataclass
class ErrorRecord:
    """An error record ($_ in catch, entries of $Error): message, exception type, source command."""

    message: str
    exception_type: str = "System.Management.Automation.RuntimeException"
    command: str = ""
    category: str = "NotSpecified"
    error_id: str = ""
    target: Any = None
    where: str = ""
    inner: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        return f"{self.command} : {self.message}" if self.command else self.message

    def __str__(self) -> str:
        return self.message


class PSRuntimeError(Exception):
    """A terminating error travelling up to the nearest try/catch or trap."""

    def __init__(self, record: ErrorRecord, script_terminating: bool = False) -> None:
        super().__init__(record.render())
        self.record = record
        # `throw` and ErrorAction Stop end the script; other terminating errors (a failed method
        # call, a parameter binding error) end only their statement unless a try/catch is around.
        self.script_terminating = script_terminating


def exception_isa(exception_type: str, catch_type: str) -> bool:
    """Does `catch [catch_type]` catch an exception of `exception_type`? (a small .NET hierarchy)"""
    want = catch_type.lower().removeprefix("system.")
    chain = [exception_type]
    while chain[-1] in _PARENT:
        chain.append(_PARENT[chain[-1]])
    return any(c.lower().removeprefix("system.") == want for c in chain)


_PARENT = {
    "System.Management.Automation.ActionPreferenceStopException": "System.Management.Automation.RuntimeException",  # noqa: E501
    "System.Management.Automation.ParameterBindingException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.ItemNotFoundException": "System.Management.Automation.SessionStateException",  # noqa: E501
    "System.Management.Automation.SessionStateException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.MethodInvocationException": "System.Management.Automation.RuntimeException",
    "System.Management.Automation.PropertyNotFoundException": "System.Management.Automation.ExtendedTypeSystemException",  # noqa: E501
    "System.Management.Automation.ExtendedTypeSystemException": "System.Management.Automation.RuntimeException",  # noqa: E501
    "System.Management.Automation.RuntimeException": "System.SystemException",
    "System.Management.Automation.CommandNotFoundException": "System.Management.Automation.RuntimeException",
    "System.UnauthorizedAccessException": "System.SystemException",
    "System.IO.FileNotFoundException": "System.IO.IOException",
    "System.IO.DirectoryNotFoundException": "System.IO.IOException",
    "System.IO.IOException": "System.SystemException",
    "System.InvalidOperationException": "System.SystemException",
    "System.ArgumentException": "System.SystemException",
    "System.FormatException": "System.SystemException",
    "System.InvalidCastException": "System.SystemException",
    "System.Management.Automation.PSInvalidCastException": "System.InvalidCastException",
    "System.ComponentModel.Win32Exception": "System.SystemException",
    "System.SystemException": "System.Exception",
}
