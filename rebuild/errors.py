"""Errors an operator can act on. Their text is printed as is: name the file, row or host."""

from __future__ import annotations


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
