"""What reading a register gives: the hosts to rebuild, every problem, what was left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rebuild.errors import RebuildError, RegisterError
from rebuild.model import Host
from rebuild.register.limits import shown
from rebuild.register.readers import write_csv_atomic


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in the register, located so a person can fix it."""

    file: str
    row: int | None  # None: about the whole file (e.g. a missing column)
    column: str  # the column as the register names it ("" when not about one column)
    message: str
    unit: str = "row"  # "row" (CSV/XLSX) or "record" (JSON)

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file} {self.unit} {self.row}"
        if self.column:
            where += f", column {shown(self.column)}"
        return f"{where}: {self.message}"


@dataclass
class Reject:
    row: int
    cells: list[str]
    problems: list[Problem]


@dataclass
class RegisterResult:
    path: Path
    hosts: list[Host]
    problems: list[Problem]
    skipped: dict[str, int]  # status -> rows left out (retired, spare)
    warnings: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    delimiter: str = ","

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        """Strict mode: any problem stops everything (RegisterError lists them all)."""
        if self.problems:
            raise RegisterError([str(p) for p in self.problems])

    def write_rejects(self, path: Path) -> int:
        """Write rejected rows with their problems (for --allow-errors); returns the row count.

        Columns: the register row number, the problems, then the row as it was, so the file
        can be fixed and fed back. File-level problems (missing column) have no row and are
        not in it: with those, nothing is usable and strict mode applies anyway.
        """
        rows = [
            [
                str(r.row),
                " | ".join(p.message if not p.column else f"{p.column}: {p.message}" for p in r.problems),
                *r.cells,
            ]
            for r in self.rejects
        ]
        try:
            write_csv_atomic(path, ["register row", "problems", *self.headers], rows, self.delimiter)
        except OSError as exc:  # a directory, a read-only or full disk: say so, write nothing
            raise RebuildError(f"{path}: cannot write the rejects file: {exc.strerror or exc}") from None
        return len(rows)

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {status}" for status, n in sorted(self.skipped.items()) if n)
        return (
            f"{self.path}: {len(self.hosts)} host(s) valid, {len(self.rejects)} row(s) rejected, "
            f"{len(self.problems)} problem(s)" + (f", left out: {skipped}" if skipped else "")
        )
