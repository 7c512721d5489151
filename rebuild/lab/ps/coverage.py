"""Statement coverage of PowerShell scripts run by the evaluator (issue 13: target >= 90 %)."""

from __future__ import annotations

from dataclasses import dataclass

from rebuild.lab.ps.parser import parse


@dataclass(frozen=True)
class ScriptCoverage:
    name: str
    executed: int
    total: int
    missed_lines: tuple[int, ...]

    @property
    def percent(self) -> float:
        return 100.0 * self.executed / self.total if self.total else 100.0


def measure(name: str, source: str, executed: set[int]) -> ScriptCoverage:
    """Coverage of one script: `executed` holds the start bytes the evaluator recorded."""
    script = parse(source, name)
    hit = [s for s in script.statements if s in executed]
    missed = sorted({script.source.count(b"\n", 0, s) + 1 for s in script.statements if s not in executed})
    return ScriptCoverage(name, len(hit), len(script.statements), tuple(missed))


def render(rows: list[ScriptCoverage]) -> str:
    lines = [f"{'script':<32} {'statements':>10} {'run':>6} {'cover':>7}  lines not run"]
    for r in rows:
        missed = ", ".join(str(n) for n in r.missed_lines[:40]) + (" …" if len(r.missed_lines) > 40 else "")
        lines.append(f"{r.name:<32} {r.total:>10} {r.executed:>6} {r.percent:>6.1f}%  {missed}")
    return "\n".join(lines)
