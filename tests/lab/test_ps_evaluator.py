"""The lab's PowerShell 5.1 subset evaluator, construct by construct, against Microsoft's documentation.

Each test names the about_* page whose documented behaviour it checks.
"""

from __future__ import annotations

from typing import Any

import pytest

from rebuild.lab.ps import Evaluator, NotSimulated, PSParseError
from rebuild.lab.ps.evaluator import Host, NativeResult, RunResult


def run(src: str, host: Host | None = None) -> RunResult:
    return Evaluator(host).run(src, "test.ps1")


def out(src: str) -> list[Any]:
    result = run(src)
    assert not result.errors, result.errors
    return result.output


# --- about_Comparison_Operators -------------------------------------------------------------


def test_equality_is_case_insensitive_unless_c_prefixed() -> None:
    """about_Comparison_Operators: string comparisons are case-insensitive; -ceq is case-sensitive."""
    assert out("'ABC' -eq 'abc'; 'ABC' -ceq 'abc'") == [True, False]


def test_comparison_with_a_collection_on_the_left_filters_it() -> None:
    """about_Comparison_Operators: when the left operand is a collection the operator returns
    the matching members."""
    assert out("1,2,3,2 -eq 2") == [2, 2]
    assert out("@('a','b') -ne 'a'") == ["b"]
    assert out("(@() -eq 1).Count") == [0]


def test_right_operand_is_converted_to_the_left_type() -> None:
    """about_Comparison_Operators: the right operand is converted to the left operand's type."""
    assert out("'1' -eq 1; 1 -eq '1'; 10 -gt '9'; '10' -gt '9'") == [True, True, True, False]


def test_contains_and_in_test_membership() -> None:
    """about_Comparison_Operators: -contains/-in/-notin test whether a value is in a collection."""
    assert out("'a','B' -contains 'b'; 'a','B' -ccontains 'b'; 3 -in 1,2; 3 -notin 1,2") == [
        True,
        False,
        False,
        True,
    ]


def test_like_and_match() -> None:
    """about_Comparison_Operators: -like uses wildcards; -match regex and fills $Matches."""
    assert out("'Server01' -like 'server*'; 'abc123' -match '(\\d+)'; $Matches[1]") == [True, True, "123"]


def test_replace_and_join_and_split() -> None:
    """about_Comparison_Operators -replace (regex, case-insensitive); about_Join; about_Split."""
    assert out("'Hello' -replace 'l','L'; (1,2,3) -join '-'; ('a,b' -split ',').Count") == [
        "HeLLo",
        "1-2-3",
        2,
    ]


def test_logical_operators_short_circuit() -> None:
    """about_Logical_Operators: -and/-or evaluate the right side only when needed."""
    assert out("$false -and (1/0); $true -or (1/0); -not $null; !1") == [False, True, True, False]


# --- about_Operators / about_Arithmetic_Operators --------------------------------------------


def test_plus_concatenates_strings_and_arrays() -> None:
    """about_Arithmetic_Operators: + concatenates strings and arrays, adds numbers."""
    assert out("'a' + 1; 1 + '2'; (@(1) + 2).Count") == ["a1", 3, 2]


def test_doubles_print_with_15_significant_digits() -> None:
    """.NET Framework Double.ToString() ("G", 15 digits), as Windows PowerShell 5.1 prints doubles."""
    assert out('[string](0.1 + 0.2); "$(1 / 3)"; [string]2.5') == ["0.3", "0.333333333333333", "2.5"]


def test_format_operator() -> None:
    """about_Operators -f: .NET composite formatting."""
    assert out("'{0}-{1:D3}-{0}' -f 'a', 7") == ["a-007-a"]


def test_range_operator() -> None:
    """about_Operators: .. yields the integers between its operands."""
    assert out("$r = 3..1; $r -join ','") == ["3,2,1"]


# --- about_Booleans / casts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("$null", False),
        ("0", False),
        ("''", False),
        ("'False'", True),
        ("@()", False),
        ("@(0)", False),
        ("@(0,0)", True),
        ("@{}", True),
    ],
)
def test_truthiness(expr: str, expected: bool) -> None:
    """about_Booleans: how values convert to [bool] in conditions."""
    assert out(f"if ({expr}) {{ $true }} else {{ $false }}") == [expected]


def test_casts() -> None:
    """about_Type_Conversion: [int] rounds to even, [string] of an array joins with spaces,
    [version] compares numerically."""
    assert out("[int]'42'; [int]2.5; [string](1,2); [version]'10.0.2' -gt [version]'9.9'") == [
        42,
        2,
        "1 2",
        True,
    ]


def test_invalid_cast_is_a_terminating_error() -> None:
    """about_Type_Conversion: a failed conversion throws (caught by try/catch)."""
    assert out("try { [int]'abc' } catch { 'caught' }") == ["caught"]


# --- variables, strings, hashtables ----------------------------------------------------------


def test_string_expansion() -> None:
    """about_Quoting_Rules: variables and $() expand in double quotes, not in single; `` ` `` escapes."""
    assert out("$n = 'x'; $h = @{a=1}; \"v=$n ${n}: $($h.a) `$n\"; 'v=$n'") == ["v=x x: 1 $n", "v=$n"]


def test_hashtable_keys_are_case_insensitive_and_ordered_keeps_order() -> None:
    """about_Hash_Tables: keys are case-insensitive; [ordered] keeps insertion order."""
    assert out("$h = @{Name='a'}; $h.NAME; $o = [ordered]@{z=1; a=2}; $o.Keys -join ','") == ["a", "z,a"]


def test_duplicate_key_in_a_hash_literal_fails() -> None:
    """about_Hash_Tables: a hash literal cannot repeat a key."""
    result = run("$h = @{a=1; A=2}")
    assert "Duplicate keys" in result.errors[0].message


def test_member_enumeration() -> None:
    """about_Properties (member enumeration, PowerShell 3.0+): a property of a collection
    returns that property of each element."""
    assert out("$a = @(@{n=1}, @{n=2}); $a.n -join ','") == ["1,2"]


def test_strict_mode_refuses_unset_variables() -> None:
    """Set-StrictMode -Version 1.0+: referencing an unassigned variable is an error."""
    result = run("Set-StrictMode -Version Latest\n$undefined\n'after'")
    assert "cannot be retrieved because it has not been set" in result.errors[0].message


CUSTOM_OBJECTS = """
$cast = [pscustomobject]@{ Name = 'a' }
$new = New-Object PSObject -Property @{ Name = 'b' }
$selected = $cast | Select-Object Name
"""


def test_a_missing_property_of_a_custom_object_is_null() -> None:
    """Set-StrictMode (5.1), strict mode off: "References to non-existent properties return $null"
    (about_Properties: a PSCustomObject has the note properties it was given)."""
    got = out(
        CUSTOM_OBJECTS + "$null -eq $cast.Missing; $null -eq $new.Missing; $null -eq $selected.Missing\n"
        "[pscustomobject]@{ A = 1 }, [pscustomobject]@{ B = 2 } | ForEach-Object { $null -eq $_.A }"
    )
    assert got == [True, True, True, False, True]


def test_count_and_length_of_a_single_object_and_of_null() -> None:
    """about_Intrinsic_Members (5.1): Count and Length exist on every scalar object (1) and on $null
    (0), unless the object has its own; under Set-StrictMode 2.0+ 5.1 refuses them as missing."""
    assert out(
        CUSTOM_OBJECTS + "$cast.Count; $cast.Length; $null.Count; ([pscustomobject]@{ Count = 7 }).Count"
    ) == [
        1,
        1,
        0,
        7,
    ]
    strict = run(
        CUSTOM_OBJECTS
        + "Set-StrictMode -Version Latest\ntry { $cast.Count } catch { $_.FullyQualifiedErrorId }"
    )
    assert strict.output == ["PropertyNotFoundStrict"]


@pytest.mark.parametrize("version", ["2.0", "3.0", "Latest"])
def test_strict_mode_2_refuses_a_missing_property(version: str) -> None:
    """Set-StrictMode -Version 2.0 and later "prohibits references to non-existent properties of an
    object": a terminating PropertyNotFoundStrict error a catch sees; 1.0 does not."""
    script = CUSTOM_OBJECTS + (
        f"Set-StrictMode -Version {version}\n"
        "try { $cast.Missing; 'read' } catch { $_.FullyQualifiedErrorId; $_.Exception.Message }\n"
        "try { $null.Missing } catch [System.Management.Automation.RuntimeException] { 'caught' }\n"
        "$cast.Name"
    )
    assert out(script) == [
        "PropertyNotFoundStrict",
        "The property 'Missing' cannot be found on this object. Verify that the property exists.",
        "caught",
        "a",
    ]
    assert out(CUSTOM_OBJECTS + "Set-StrictMode -Version 1.0\n$null -eq $cast.Missing") == [True]


def test_a_missing_member_of_a_typed_object_stays_loud() -> None:
    """The lab models only some properties of a .NET object (a service, a registry key): a name it
    lacks may exist on Windows, so reading it fails loudly in either mode instead of giving $null."""
    for strict in ("", "Set-StrictMode -Version Latest\n"):
        with pytest.raises(NotSimulated, match=r"the member 'Nonexistent' of \[\S+\.GroupInfo\] at test.ps1"):
            run(f"{strict}$g = New-Object PSObject | Group-Object\n$g.Nonexistent")


# --- functions and parameter binding ---------------------------------------------------------


FN = """
function Get-Thing {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][string]$Name,
        [int]$Count = 1,
        [switch]$Force
    )
    "$Name/$Count/$Force"
}
"""


def test_function_parameters_bind_by_name_prefix_and_position() -> None:
    """about_Functions_Advanced_Parameters / about_Parameters: names, unique prefixes, positions,
    switches and defaults."""
    assert out(FN + "Get-Thing -Name a; Get-Thing b 3 -F; Get-Thing -Cou 2 -N c") == [
        "a/1/False",
        "b/3/True",
        "c/2/False",
    ]


def test_unknown_parameter_fails_with_powershells_message() -> None:
    """about_Parameters: an unknown parameter is a ParameterBindingException."""
    result = run(FN + "Get-Thing -Name a -Nmae b")
    assert result.errors[0].message == "A parameter cannot be found that matches parameter name 'Nmae'."


def test_ambiguous_prefix_fails() -> None:
    """about_Parameters: a prefix matching several parameters is ambiguous."""
    result = run("Select-Object -E x")
    assert (
        "is ambiguous. Possible matches include: -ExpandProperty -ExcludeProperty" in result.errors[0].message
    )


def test_missing_mandatory_parameter_fails_non_interactively() -> None:
    """about_Functions_Advanced_Parameters: a missing Mandatory parameter in a non-interactive session."""
    result = run(FN + "Get-Thing")
    assert "missing mandatory parameters: Name" in result.errors[0].message


def test_common_parameters_exist_on_advanced_functions_only() -> None:
    """about_CommonParameters: -ErrorAction exists on advanced functions, not simple ones."""
    assert out(FN + "Get-Thing -Name a -ErrorAction Stop") == ["a/1/False"]
    result = run("function Simple {\n    param($a)\n    $a\n}\nSimple -ErrorAction Stop")
    assert result.errors  # -ErrorAction is not a parameter of a simple function


def test_return_unrolls_and_output_collects() -> None:
    """about_Return: every statement's output is returned, not only `return`'s."""
    assert out("function F { 'a'; return 'b'; 'c' }\n$x = F; $x -join ','") == ["a,b"]


# --- pipelines -------------------------------------------------------------------------------


def test_pipeline_cmdlets() -> None:
    """ForEach-Object / Where-Object / Sort-Object / Select-Object / Measure-Object / Group-Object."""
    assert out(
        "$v = 3,1,2 | Where-Object { $_ -gt 1 } | Sort-Object | ForEach-Object { $_ * 10 }; $v -join ','\n"
        "(1,2,3 | Measure-Object -Sum).Sum\n"
        "(@{k='a'},@{k='b'},@{k='a'} | Group-Object -Property { $_.k }).Count\n"
        "(1..5 | Select-Object -First 2) -join ','"
    ) == ["20,30", 6.0, 2, "1,2"]


def test_where_object_comparison_form() -> None:
    """Where-Object: the `Where-Object Property -eq Value` parameter set."""
    assert out(
        "$a = @([pscustomobject]@{N='x'}, [pscustomobject]@{N='y'}); ($a | Where-Object N -eq 'y').N"
    ) == ["y"]


# --- flow control ----------------------------------------------------------------------------


def test_loops_break_continue() -> None:
    """about_Foreach / about_For / about_While / about_Break / about_Continue."""
    assert out(
        "foreach ($i in 1..5) { if ($i -eq 2) { continue }; if ($i -eq 4) { break }; $i }\n"
        'for ($i = 0; $i -lt 2; $i++) { "f$i" }\n'
        "$n = 0; while ($n -lt 2) { $n++ }; $n"
    ) == [1, 3, "f0", "f1", 2]


def test_switch() -> None:
    """about_Switch: every matching clause runs; -Wildcard; default; break leaves the switch."""
    src = """
switch -Wildcard ('abc') {
    'a*' { 'wild' }
    'ABC' { 'exact' }
    default { 'none' }
}
switch (1, 2) {
    1 { 'one'; break }
    2 { 'two' }
}
"""
    assert out(src) == ["wild", "exact", "one"]


def test_switch_script_block_and_bare_word_clauses() -> None:
    """about_Switch: a script-block clause matches when it returns true for $_; bare words are strings."""
    src = (
        "switch (3, 8) {\n    { $_ -gt 5 } { \"big $_\" }\n    3 { 'three' }\n}\n"
        "switch ('b') {\n    a { 'A' }\n    b { 'B' }\n}"
    )
    assert out(src) == ["three", "big 8", "B"]


# --- errors: about_Try_Catch_Finally, about_Preference_Variables, about_Throw ----------------


def test_try_catch_finally_and_typed_catch() -> None:
    """about_Try_Catch_Finally: the first matching catch runs, $_ is the ErrorRecord, finally always runs."""
    src = """
try { [int]'x' } catch [System.InvalidCastException] { 'cast' } catch { 'other' } finally { 'fin' }
try { throw 'boom' } catch { $_.Exception.Message }
"""
    assert out(src) == ["cast", "fin", "boom"]


def test_throw_is_script_terminating() -> None:
    """about_Throw: throw outside try stops the script."""
    result = run("'a'; throw 'stop here'; 'b'")
    assert result.output == ["a"] and result.errors[0].message == "stop here" and result.exit_code == 1


def test_statement_terminating_error_continues_the_script_unless_stop() -> None:
    """about_Preference_Variables ($ErrorActionPreference): a statement-terminating error ends only
    its statement under Continue; under Stop it ends the script."""
    assert run("$n = $null; $n.Foo(); 'after'").output == ["after"]
    result = run("$ErrorActionPreference = 'Stop'; $n = $null; $n.Foo(); 'after'")
    assert result.output == [] and result.exit_code == 1


class _Natives(Host):
    def native(self, call: Any, name: str, args: list[str]) -> NativeResult | None:
        if name.lower() == "tool.exe":
            return NativeResult(int(args[0]), ["out line"], ["err line"] if len(args) > 1 else [])
        return None


def test_native_command_exit_code_and_dollar_question() -> None:
    """about_Automatic_Variables: $LASTEXITCODE is the native program's exit code, $? is false
    when it is not 0; a later statement that succeeds, a pure value included, sets $? back to
    true (PowerShell's own tests, "Tests for setting $? for execution success": 'Write-Error
    "Bad"; "Hi"; Hook $?' hooks $true)."""
    result = run("tool.exe 3; $failed = -not $?; $LASTEXITCODE; $failed; $?", _Natives())
    assert result.output == ["out line", 3, True, True]
    result = run("tool.exe 3; 'value'", _Natives())
    assert result.last_succeeded is True
    assert run("tool.exe 3", _Natives()).last_succeeded is False


def test_native_stderr_with_2to1_under_stop_is_terminating() -> None:
    """about_Redirection (Windows PowerShell 5.1): with 2>&1 each stderr line of a native program
    becomes an ErrorRecord in the error stream, so $ErrorActionPreference = 'Stop' makes the first
    one terminating (PowerShell 7.2 changed this; 5.1 did not)."""
    src = (
        "$ErrorActionPreference = 'Stop'\n"
        "try { $o = tool.exe 0 x 2>&1; 'no error' } catch { \"caught: $($_.Exception.Message)\" }"
    )
    assert run(src, _Natives()).output == ["caught: err line"]
    # Under Continue the stderr line is merged into the output as an ErrorRecord.
    merged = run("$o = tool.exe 0 x 2>&1; $o.Count", _Natives())
    assert merged.output == [2]


def test_error_action_on_a_cmdlet() -> None:
    """about_CommonParameters -ErrorAction: SilentlyContinue hides a non-terminating error (still in
    $Error), Stop makes it terminating."""
    src = (
        "Write-Error 'quiet' -ErrorAction SilentlyContinue; $Error.Count; "
        "try { Write-Error 'loud' -ErrorAction Stop } catch { 'stopped' }"
    )
    assert out(src) == [1, "stopped"]


def test_trap_continue_resumes() -> None:
    """about_Trap: `continue` in a trap resumes after the failing statement without showing the error."""
    assert out("trap { 'trapped'; continue }\nthrow 'x'\n'after'") == ["trapped", "after"]


# --- loud, never lenient ---------------------------------------------------------------------


@pytest.mark.parametrize("src", ["$a ?? 'b'", "$a = $b ? 1 : 2", "$a?.b", "Get-X && Get-Y", "Get-X || Get-Y"])
def test_powershell_7_syntax_is_a_51_parse_error(src: str) -> None:
    """about_Operators (PowerShell 7): ??, ?:, ?. and && / || do not exist in Windows PowerShell 5.1."""
    with pytest.raises(PSParseError, match=r"Windows PowerShell 5\.1 cannot parse"):
        run(src)


def test_unknown_dotnet_member_is_not_simulated() -> None:
    """The lab never pretends: a .NET member outside the subset fails loudly with the script line."""
    with pytest.raises(
        NotSimulated, match=r"does not simulate the .NET member \[System.IO.Directory\]::Delete at test.ps1:2"
    ):
        run("'a'\n[IO.Directory]::Delete('c:\\x')")


def test_unknown_command_is_commandnotfound() -> None:
    """about_Command_Precedence: a name that is no alias, function, cmdlet or program is not recognized."""
    result = run("Get-Nothing")
    assert "The term 'Get-Nothing' is not recognized" in result.errors[0].message


PIPED = """
function Get-Piped {
    [CmdletBinding()]
    param([Parameter(ValueFromPipeline = $true)][int]$N, [string]$Tag = 'x')
    begin { $sum = 0 }
    process { $sum += $N }
    end { "$Tag=$sum"; $PSBoundParameters.ContainsKey('Tag') }
}
"""


def test_advanced_function_pipeline_input_and_psboundparameters() -> None:
    """about_Functions_Advanced_Methods: begin once, process per input object (ValueFromPipeline),
    end once; about_Automatic_Variables: $PSBoundParameters holds only the parameters passed."""
    assert out(PIPED + "1, 2, 3 | Get-Piped\n1 | Get-Piped -Tag y") == ["x=6", False, "y=1", True]


def test_switch_regex_sets_matches() -> None:
    """about_Switch -Regex: clauses are regular expressions; $Matches is set."""
    src = (
        "switch -Regex ('abc123') {\n"
        "    '^\\d' { 'starts digit' }\n"
        "    '\\d+$' { \"ends $($Matches[0])\" }\n"
        "}"
    )
    assert out(src) == ["ends 123"]


def test_hashtable_addition_refuses_duplicate_keys() -> None:
    """about_Hash_Tables: adding hashtables merges them; a key present in both is an error."""
    assert out("$h = @{a = 1} + @{b = 2}; $h.Count; try { $h + @{A = 3} } catch { 'dup' }") == [2, "dup"]


def test_here_string_expands_and_keeps_newlines() -> None:
    """about_Quoting_Rules (here-strings): the text between the delimiter lines, expanded."""
    assert out('$h = @{b = 2}\n$s = @"\nline1\n$($h.b)\n"@\n$s') == ["line1\n2"]


def test_splatting_binds_named_and_switch_parameters() -> None:
    """about_Splatting: a hashtable's keys bind as parameter names, $true to a switch."""
    src = (
        'function Show {\n    param($Name, [switch]$Force)\n    "$Name $Force"\n}\n'
        "$p = @{Name = 'x'; Force = $true}\nShow @p"
    )
    assert out(src) == ["x True"]


def test_array_append_and_typed_array_cast() -> None:
    """about_Arrays: += makes a new array; [int[]] converts each element."""
    assert out("$a = @(); $a += 'a'; $a += 'b'; $a.Count; [int[]]$n = '1','2'; $n[1] + 1") == [2, 3]


def test_adding_to_an_array_with_add_fails_fixed_size() -> None:
    """about_Arrays: arrays are fixed size; .Add() throws (use a List)."""
    assert out("$a = @(1); try { $a.Add(2) } catch { 'fixed' }") == ["fixed"]


def test_void_method_writes_nothing() -> None:
    """A method returning void writes nothing to the pipeline (List.Add), unlike $null."""
    assert out("$l = [System.Collections.Generic.List[string]]@(); $l.Add('a'); $l.Count") == [1]


def test_foreach_object_parallel_does_not_exist_in_51() -> None:
    """ForEach-Object -Parallel is PowerShell 7.0+: 5.1 binds it as an unknown parameter."""
    result = run("1, 2 | ForEach-Object -Parallel { $_ }")
    assert result.errors[0].message == "A parameter cannot be found that matches parameter name 'Parallel'."


def test_clean_block_is_a_51_parse_error() -> None:
    """about_Functions (PowerShell 7.3+): the clean block does not exist in 5.1."""
    with pytest.raises(PSParseError, match=r"'clean' block exists only in PowerShell 7\.3"):
        run("function F {\n    process { $_ }\n    clean { 'x' }\n}")


def test_a_windows_program_the_lab_does_not_simulate_fails_loudly() -> None:
    """whoami exists on every Windows: the lab says it does not simulate it, never "not recognized"."""
    with pytest.raises(NotSimulated, match=r"does not simulate the native command whoami at test\.ps1:1"):
        run("whoami")


def test_select_object_adds_missing_hashtable_keys_as_null() -> None:
    """Select-Object -Property: a property the input lacks is added with a $null value."""
    assert out("$h = @{a = 1}\n$o = $h | Select-Object -Property 'a', 'b'\n$null -eq $o.b; $o.a") == [True, 1]
