"""Errors an operator can act on. Their text is printed as is: name the file, row or host.

Exit codes (README.md, docs/site-run.md): 0 done; 1 done, some hosts failed; 2 refused
(configuration); 3 refused before anything was touched (safety interlock or an invalid option);
4 stopped by the circuit breaker; 5 the state directory cannot be written (disk full, read-only)
or its journal is locked by another process; 6 stopped by a tier-0 recovery gate
(rebuild.orchestrator.tier0_gates); 130 interrupted.
"""

from __future__ import annotations

import errno

# OS errors that mean "no room to write" (full disk, quota, read-only): the state's problem, exit 5.
NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class RebuildError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = 2


class ConfigError(RebuildError):
    """Project data (sites, tiers, catalogues) is missing or wrong."""


class RegisterError(RebuildError):
    """The asset register cannot be used as it is; carries every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the register:\n" + "\n".join(listed(problems)))


MAX_LISTED = 50  # lines of problems printed before a summary line (the rest: --allow-errors' rejects file)


def listed(lines: list[str], limit: int = MAX_LISTED, what: str = "problems") -> list[str]:
    """The first `limit` lines, then "… and N more problems" when there are more: what a person
    reads must stay bounded when a broken register has 100,000 problems."""
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"… and {len(lines) - limit:,} more {what}"]


class SafetyError(RebuildError):
    """A safety interlock refused the operation; nothing was touched."""

    exit_code = 3


class OptionError(SafetyError):
    """A command-line option is empty, malformed or out of range; refused before anything is
    recorded or touched. The message names the option."""


class StateError(RebuildError):
    """The state directory cannot be used right now: disk full, read-only, or its journal locked
    by another process. What was being written is left as it was (one transaction per change)."""

    exit_code = 5
