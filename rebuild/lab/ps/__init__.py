"""A Windows PowerShell 5.1 subset evaluator for the rebuild lab (SIMULATION).

The lab cannot run real PowerShell, so it runs the product's scripts itself: `parser` reads them
with the real grammar (tree-sitter-powershell) and refuses syntax 5.1 does not have,
`evaluator` executes the subset listed in docs/lab-powershell.md, `binding` binds command
parameters as PowerShell does, `builtins` holds the engine cmdlets (pipeline, strings, paths)
and the few .NET members our scripts call, `commands` the types a cmdlet and the host see (`Call`,
`Cmdlet`, `Host`: a twin plugs in by subclassing `Host`). Anything outside the subset fails loudly with
"the rebuild lab (a simulation) does not simulate X at <script>:<line>".
"""

from __future__ import annotations

from rebuild.lab.ps.errors import NotSimulated, PSParseError, PSRuntimeError
from rebuild.lab.ps.evaluator import Evaluator, RunResult

__all__ = ["Evaluator", "NotSimulated", "PSParseError", "PSRuntimeError", "RunResult"]
