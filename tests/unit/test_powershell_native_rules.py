"""Windows PowerShell 5.1 rules our modules must follow, checked on their source (issue 12 items 10, 14).

The lab runs Python twins of the modules, so these two PS 5.1 behaviours cannot fail there
until the PowerShell evaluator (issue 13) runs the real .ps1; this is the gate until then:

- about_Redirection / about_Preference_Variables: redirecting a native program's stderr
  (`2>&1`, `2>$null`) wraps each stderr line in an ErrorRecord; under Ansible's
  `$ErrorActionPreference = 'Stop'` the first one is terminating. Allowed only inside a
  function that sets `$ErrorActionPreference = 'Continue'` for its own scope.
- Start-Process: `-Wait` waits for the process and all its descendants; an installer that
  leaves a child running hangs the task. Our modules wait for the process itself.
- A hive is unloaded only after `[GC]::WaitForPendingFinalizers()` released the handles
  the provider's RegistryKey objects held (reg unload fails while one is open).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

MODULES = sorted((Path(__file__).resolve().parents[2] / "plugins" / "modules").glob("win_rebuild_*.ps1"))
_STDERR_REDIRECT = re.compile(r"(?<![\w$])2>(&1|\s*\$null)")


def _functions(source: bytes) -> list[tuple[int, int, str]]:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    found, stack = [], [parser.parse(source).root_node]
    while stack:
        node = stack.pop()
        if node.type == "function_statement":
            found.append((node.start_byte, node.end_byte, source[node.start_byte : node.end_byte].decode()))
        stack.extend(node.children)
    return found


def _code_lines(text: str) -> list[tuple[int, str]]:
    """(byte offset, line without its # comment) for every line."""
    out, offset = [], 0
    for line in text.splitlines(keepends=True):
        out.append((offset, line.split("#", 1)[0]))
        offset += len(line.encode())
    return out


def stderr_redirect_violations(source: bytes) -> list[str]:
    safe = [(a, b) for a, b, body in _functions(source) if "$ErrorActionPreference = 'Continue'" in body]
    bad = []
    for number, (offset, code) in enumerate(_code_lines(source.decode()), start=1):
        if _STDERR_REDIRECT.search(code) and not any(a <= offset < b for a, b in safe):
            bad.append(f"line {number}: {code.strip()}")
    return bad


def start_process_wait_violations(source: bytes) -> list[str]:
    return [
        f"line {n}: {code.strip()}"
        for n, (_, code) in enumerate(_code_lines(source.decode()), start=1)
        if "Start-Process" in code and re.search(r"-Wait\b", code)
    ]


def gc_without_finalizers(source: bytes) -> list[str]:
    """Every [GC]::Collect() with no WaitForPendingFinalizers within three lines of it."""
    lines = [code for _, code in _code_lines(source.decode())]
    return [
        f"line {i + 1}: {code.strip()}"
        for i, code in enumerate(lines)
        if "[GC]::Collect()" in code
        and not any("[GC]::WaitForPendingFinalizers()" in later for later in lines[max(0, i - 3) : i + 4])
    ]


@pytest.mark.parametrize("module", MODULES, ids=[m.name for m in MODULES])
def test_native_stderr_never_redirected_under_stop(module: Path) -> None:
    assert stderr_redirect_violations(module.read_bytes()) == []


@pytest.mark.parametrize("module", MODULES, ids=[m.name for m in MODULES])
def test_installers_waited_for_as_their_own_process(module: Path) -> None:
    assert start_process_wait_violations(module.read_bytes()) == []


@pytest.mark.parametrize("module", MODULES, ids=[m.name for m in MODULES])
def test_gc_collect_waits_for_finalizers(module: Path) -> None:
    assert gc_without_finalizers(module.read_bytes()) == []
    assert "[GC]::Collect()" in module.read_text() or module.name != "win_rebuild_baseline.ps1"


def test_the_checks_catch_the_old_code() -> None:
    old = b"""
Function Convert-RegistryPath {
    $null = & reg.exe load "HKU\\x" "C:\\Users\\Default\\NTUSER.DAT" 2>&1
}
Function Dismount { [GC]::Collect(); $null = & reg.exe unload "HKU\\x" 2>&1 }
$proc = Start-Process -FilePath $exe -ArgumentList $a -Wait -PassThru
"""
    assert len(stderr_redirect_violations(old)) == 2
    assert len(start_process_wait_violations(old)) == 1
    assert len(gc_without_finalizers(old)) == 1
    fixed = b"""
Function Invoke-NativeCommand {
    param([string]$FilePath, [string[]]$Arguments)
    $ErrorActionPreference = 'Continue'
    $text = @(& $FilePath @Arguments 2>&1 | ForEach-Object { [string]$_ })
}
"""
    assert stderr_redirect_violations(fixed) == []
