"""Evaluate a parsed PowerShell 5.1 script (SIMULATION of the subset in docs/lab-powershell.md).

The evaluator walks tree-sitter-powershell's tree. Commands resolve as PowerShell resolves them
(about_Command_Precedence: alias, function, cmdlet, native program); cmdlets and natives come
from a `Host` the caller supplies (the twin's state lives there), the engine cmdlets from
`builtins`. Error semantics follow about_Preference_Variables / about_CommonParameters /
about_Try_Catch_Finally: a command's non-terminating error is recorded in `$Error` and shown
unless `-ErrorAction`/`$ErrorActionPreference` says otherwise, and becomes terminating under
`Stop`; `throw` is terminating; `$?` tells whether the last command succeeded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from types import FunctionType
from typing import Any

from rebuild.lab.exec.psobjects import PSObj
from rebuild.lab.ps import builtins
from rebuild.lab.ps import values as v
from rebuild.lab.ps.binding import Argument, Bound, Param, Signature, bind

# Call, Cmdlet, Host and NativeResult live in `commands` (a leaf, so `builtins` needs no import of
# this module); named here too for the modules that import them from the evaluator.
from rebuild.lab.ps.commands import Call as Call
from rebuild.lab.ps.commands import Cmdlet as Cmdlet
from rebuild.lab.ps.commands import CmdletFn as CmdletFn
from rebuild.lab.ps.commands import Host as Host
from rebuild.lab.ps.commands import NativeResult as NativeResult
from rebuild.lab.ps.errors import ErrorRecord, NotSimulated, PSRuntimeError, exception_isa
from rebuild.lab.ps.parser import Node, Script, parse
from rebuild.lab.ps.values import Hashtable, ScriptBlock, TypeRef

# --- control flow ------------------------------------------------------------------------------


class _Flow(Exception):
    pass


class _Break(_Flow):
    pass


class _Continue(_Flow):
    pass


class _Return(_Flow):
    def __init__(self, out: list[Any]) -> None:
        super().__init__()
        self.out = out


class ExitScript(_Flow):
    """`exit N`, or an Ansible module's ExitJson/FailJson (which end the script the same way)."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code


@dataclass
class Function:
    name: str
    node: Node  # function_statement
    script: Script
    sig: Signature
    params: list[tuple[Param, str | None, Node | None]]  # param, type name, default node
    body: Node  # script_block
    advanced: bool


@dataclass
class RunResult:
    output: list[Any]
    errors: list[ErrorRecord]
    exit_code: int
    host_lines: list[str]
    warnings: list[str]
    last_succeeded: bool = True  # $? after the script's last statement
    native_stderr: list[str] = field(default_factory=list)


class Scope:
    def __init__(self, parent: Scope | None) -> None:
        self.parent = parent
        self.vars: dict[str, Any] = {}
        self.functions: dict[str, Function] = {}


_UNSET = object()

# Cmdlets of the modules Windows 10/11 and Server 2016+ ship (Microsoft.PowerShell.*, LocalAccounts,
# NetSecurity, Dism, ScheduledTasks, Defender, CimCmdlets, PrintManagement, PKI, NetAdapter, NetTCPIP,
# DnsClient, Storage, BitLocker), by noun: one the lab does not simulate fails loudly. The nouns of
# Microsoft.PowerShell.Utility/Management/Core (Format-Table, Invoke-Expression, Get-Member ...) are
# from their Learn module pages (learn.microsoft.com/powershell/module/microsoft.powershell.utility).
WINDOWS_CMDLET = re.compile(
    r"[a-z]+-(NetFirewall\w*|Local(User|Group|GroupMember)|Windows(OptionalFeature|Feature|Capability)|"
    r"ScheduledTask\w*|Mp\w+|Service|Item\w*|Content|Csv|Sleep|Acl|Cim\w+|Wmi\w*|Printer\w*|Certificate|"
    r"NetAdapter\w*|NetIPAddress|NetIPConfiguration|DnsClient\w*|Disk|Partition|Volume|BitLocker\w*|"
    r"Process|Computer|Location|ExecutionPolicy|AuthenticodeSignature|WSManInstance|PSSession\w*|"
    r"ChildItem|Path|Object|Member|Expression|Table|List|Wide|Custom|String|Json|Csv|Xml|CliXml|Html|"
    r"Host|Variable|Alias|Random|Culture|UICulture|Event\w*|WinEvent|EventLog|WebRequest|RestMethod|"
    r"Command|Module|History|Help|Job|PSDrive|PSProvider|TimeSpan|Unique|HotFix|TimeZone|SecureString|"
    r"FileHash|Error|Output|Warning|Verbose|Debug|Information|Progress|Default|Null|Printer)",
    re.I,
)

# Literals whose value depends only on their text (strings and numbers are immutable in Python).
_CONSTANT_TYPES = {
    "verbatim_string_characters",
    "verbatim_here_string_characters",
    "integer_literal",
    "real_literal",
}
# Expandable strings with nothing to expand ("text", @"..."@ without $): their text alone.
_EXPANDABLE_TYPES = {"expandable_string_literal", "expandable_here_string_literal"}

# Programs every Windows installation has: calling one the lab does not simulate fails loudly
# instead of pretending the program does not exist.
WINDOWS_PROGRAMS = {
    "auditpol",
    "bcdedit",
    "certutil",
    "cmd",
    "dism",
    "find",
    "findstr",
    "gpupdate",
    "hostname",
    "icacls",
    "ipconfig",
    "klist",
    "manage-bde",
    "msiexec",
    "net",
    "netsh",
    "nltest",
    "powercfg",
    "reg",
    "robocopy",
    "sc",
    "schtasks",
    "secedit",
    "setspn",
    "shutdown",
    "systeminfo",
    "takeown",
    "taskkill",
    "tasklist",
    "w32tm",
    "wevtutil",
    "where",
    "whoami",
    "xcopy",
}

ALIASES = {
    "%": "ForEach-Object",
    "foreach": "ForEach-Object",
    "?": "Where-Object",
    "where": "Where-Object",
    "select": "Select-Object",
    "sort": "Sort-Object",
    "group": "Group-Object",
    "measure": "Measure-Object",
    "gci": "Get-ChildItem",
    "dir": "Get-ChildItem",
    "ls": "Get-ChildItem",
    "gi": "Get-Item",
    "gp": "Get-ItemProperty",
    "gpv": "Get-ItemPropertyValue",
    "gc": "Get-Content",
    "type": "Get-Content",
    "cat": "Get-Content",
    "gsv": "Get-Service",
    "gwmi": "Get-WmiObject",
    "echo": "Write-Output",
    "write": "Write-Output",
    "rm": "Remove-Item",
    "del": "Remove-Item",
    "ri": "Remove-Item",
    "copy": "Copy-Item",
    "cp": "Copy-Item",
    "ni": "New-Item",
    "sc": "Set-Content",
}


def _strip_scope(name: str) -> tuple[str, str]:
    if ":" in name:
        prefix, rest = name.split(":", 1)
        return prefix.lower(), rest
    return "", name


# CPython 3.11 and 3.12 keep Python frames in 16 KiB chunks and free a chunk as soon as its
# first frame returns: a loop whose calls cross a chunk's end maps and unmaps memory on every
# call (CPython issue gh-142183, "Calls across stack chunks perform badly"; fixed by keeping one
# spare chunk per thread, python/cpython PR 145789, backported to 3.13). The evaluator recurses
# deeply, so a script's hot loop can sit on that edge: the baseline module's service allow-list
# loop ran ~6x slower there. A run starts in a frame whose value stack has _STACK_BALLAST_SLOTS
# unused slots (never written, so never touched): CPython gives that frame a new 1 MiB chunk
# (sizes double from 16 KiB), and the run's own frames fill the ~480 KiB after it first.
# Costs ~20 us per run (one mmap and munmap).
_STACK_BALLAST_SLOTS = 70_000


def _run_on_own_stack_chunk(run: Callable[[], RunResult]) -> RunResult:
    return run()


_on_own_stack_chunk: Callable[[Callable[[], RunResult]], RunResult] = FunctionType(
    _run_on_own_stack_chunk.__code__.replace(co_stacksize=_STACK_BALLAST_SLOTS),
    globals(),
    "_on_own_stack_chunk",
)


@lru_cache(maxsize=4096)
def _variable_name(name: str) -> tuple[str, str, str]:
    """A variable's scope prefix, its name as written, and its lookup key (case-insensitive):
    a pure function of the name, derived once per name rather than on every read."""
    prefix, bare = _strip_scope(name)
    return prefix, bare, bare.lower()


_BINARY_PRECEDENCE_TYPES = {
    "logical_expression",
    "bitwise_expression",
    "comparison_expression",
    "additive_expression",
    "multiplicative_expression",
    "format_expression",
    "range_expression",
    "logical_argument_expression",
    "bitwise_argument_expression",
    "comparison_argument_expression",
    "additive_argument_expression",
    "multiplicative_argument_expression",
    "format_argument_expression",
    "range_argument_expression",
}

_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unescape(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "`" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


class Evaluator:
    """One PowerShell session (a runspace): global scope, $Error, output streams."""

    def __init__(self, host: Host | None = None, *, coverage: dict[str, set[int]] | None = None) -> None:
        self.host = host or Host()
        self.global_scope = Scope(None)
        self.scope = self.global_scope
        self.errors_shown: list[ErrorRecord] = []
        self.error_list: list[ErrorRecord] = []
        self.host_lines: list[str] = []
        self.native_stderr: list[str] = []  # a native program's stderr when not redirected
        self.warnings: list[str] = []
        self.strict = 0
        self.try_depth = 0
        self._last_failed = False
        self.script: Script | None = None
        self.coverage = coverage
        self._covering: tuple[Script, set[int]] | None = None  # (script, its set in coverage)
        self._builtins = builtins
        g = self.global_scope.vars
        g.update(
            {
                "true": True,
                "false": False,
                "null": None,
                "erroractionpreference": "Continue",
                "warningpreference": "Continue",
                "verbosepreference": "SilentlyContinue",
                "progresspreference": "Continue",
                "whatifpreference": False,
                "?": True,
                "ofs": " ",
                "error": self.error_list,
                "psversiontable": builtins.ps_version_table(),
            }
        )

    # --- entry points ---

    def run(self, source: str | bytes, name: str = "<script>", args: list[Any] | None = None) -> RunResult:
        return _on_own_stack_chunk(partial(self._run, source, name, args))

    def _run(self, source: str | bytes, name: str, args: list[Any] | None) -> RunResult:
        script = parse(source, name)
        code = 0
        out: list[Any] = []
        succeeded = True
        exited = False  # `exit N` sets the exit code itself, whatever $? says
        previous = self.script
        self.script = script
        self.scope = Scope(self.global_scope)  # the script scope
        self.scope.vars["args"] = list(args or [])
        try:
            self._statement_list_with_traps(script.root, out)
        except ExitScript as e:
            code = e.code
            exited = True
        except PSRuntimeError as e:
            self._show(e.record)
            code = 1
        except (_Break, _Continue):
            pass
        except _Return as r:
            out.extend(r.out)
        finally:
            succeeded = v.truthy(self.scope.vars.get("?", True))
            self.scope = self.global_scope
            self.script = previous
            if previous is None:
                self.host.finish()  # the script ended, however it ended
        return RunResult(
            out,
            list(self.errors_shown),
            code,
            list(self.host_lines),
            list(self.warnings),
            succeeded or exited,
            list(self.native_stderr),
        )

    def where(self, node: Node | None) -> str:
        if node is None or self.script is None:
            return self.script.name if self.script else "<script>"
        return self.script.where(node)

    @staticmethod
    def text(node: Node) -> str:
        return node.text

    def not_simulated(self, what: str, node: Node | None) -> NotSimulated:
        return NotSimulated(what, self.where(node))

    # --- variables ---

    def get_var(self, name: str, node: Node | None = None) -> Any:
        prefix, bare, key = _variable_name(name)
        if not prefix:  # the common case, first: the current scope, then its parents
            scope: Scope | None = self.scope
            while scope is not None:
                found = scope.vars.get(key, _UNSET)
                if found is not _UNSET:
                    return found
                scope = scope.parent
            return self._unset_var(bare, key, node)
        if prefix == "env":
            return self.host.env().get(next((k for k in self.host.env() if k.lower() == key), ""), None)
        if prefix in ("script", "global", "local", "private"):
            scope = self.global_scope if prefix == "global" else self.scope
            if prefix == "script":
                scope = self._script_scope()
            while scope is not None:
                if key in scope.vars:
                    return scope.vars[key]
                if prefix == "local":
                    break
                scope = scope.parent
            return self._unset_var(bare, key, node)
        raise self.not_simulated(f"the variable drive '{prefix}:'", node)

    def _unset_var(self, bare: str, key: str, node: Node | None) -> Any:
        """Reading a variable no scope holds: $null, or an error under Set-StrictMode."""
        if self.strict >= 1 and key not in ("_", "input", "matches"):
            raise PSRuntimeError(
                ErrorRecord(
                    f"The variable '${bare}' cannot be retrieved because it has not been set.",
                    "System.Management.Automation.RuntimeException",
                    category="InvalidOperation",
                    error_id="VariableIsUndefined",
                    where=self.where(node),
                )
            )
        return None

    def set_var(self, name: str, value: Any, node: Node | None = None) -> None:
        prefix, bare, key = _variable_name(name)
        if key in ("true", "false", "null") and not prefix:
            if key == "null":
                return  # $null = ... discards
            raise PSRuntimeError(
                ErrorRecord(f"Cannot overwrite variable {bare} because it is read-only or constant.")
            )
        if prefix == "env":
            raise self.not_simulated("writing environment variables", node)
        if prefix == "global":
            self.global_scope.vars[key] = value
        elif prefix == "script":
            self._script_scope().vars[key] = value
        elif prefix in ("", "local", "private"):
            self.scope.vars[key] = value
        else:
            raise self.not_simulated(f"the variable drive '{prefix}:'", node)

    def _script_scope(self) -> Scope:
        s = self.scope
        while s.parent is not None and s.parent is not self.global_scope:
            s = s.parent
        return s

    def find_function(self, name: str) -> Function | None:
        key = name.lower()
        s: Scope | None = self.scope
        while s is not None:
            if key in s.functions:
                return s.functions[key]
            s = s.parent
        return None

    # --- errors ---

    def preference(self, explicit: Any) -> str:
        pref = explicit if explicit is not None else self.get_var("ErrorActionPreference")
        text = v.to_string(pref)
        valid = {
            "stop": "Stop",
            "continue": "Continue",
            "silentlycontinue": "SilentlyContinue",
            "ignore": "Ignore",
            "inquire": "Inquire",
            "suspend": "Suspend",
        }
        if text.lower() not in valid:
            raise PSRuntimeError(
                ErrorRecord(
                    f"Cannot bind parameter 'ErrorAction'. Cannot convert value \"{text}\" to type "
                    '"System.Management.Automation.ActionPreference". Error: "Unable to match the identifier '
                    f"name {text} to a valid enumerator name. Specify one of the following enumerator names "
                    "and try "
                    'again: SilentlyContinue, Stop, Continue, Inquire, Ignore, Suspend"',
                    "System.Management.Automation.ParameterBindingException",
                )
            )
        chosen = valid[text.lower()]
        if chosen in ("Inquire", "Suspend"):
            raise NotSimulated(f"ErrorAction {chosen} (there is no one to ask)")
        return chosen

    def non_terminating(self, rec: ErrorRecord, explicit: Any = None) -> None:
        """about_CommonParameters -ErrorAction: Stop makes it terminating; Ignore drops it from $Error."""
        action = self.preference(explicit)
        self.scope.vars["?"] = False
        self._mark_failed()
        if action == "Stop":
            raise PSRuntimeError(rec, script_terminating=True)
        if action != "Ignore":
            self.error_list.insert(0, rec)
        if action == "Continue":
            self._show(rec)

    def _mark_failed(self) -> None:
        self._last_failed = True

    def _show(self, rec: ErrorRecord) -> None:
        self.errors_shown.append(rec)

    # --- statements ---

    def cover(self, node: Node) -> None:
        if self.coverage is not None and self.script is not None:
            script = self.script
            if self._covering is None or self._covering[0] is not script:  # the set, once per script
                self._covering = (script, self.coverage.setdefault(script.name, set()))
            self._covering[1].add(node.start_byte)

    def _statement_list_with_traps(self, node: Node, out: list[Any]) -> None:
        """Run a program/statement list, honouring `trap` statements declared in it."""
        stmts, traps = node.memo.get("statements") or self._statements(node)
        for s in stmts:
            try:
                self.statement(s, out)
            except PSRuntimeError as e:
                if traps and self._run_trap(traps, e, out):
                    continue
                if e.script_terminating or self.try_depth > 0 or self.preference(None) == "Stop":
                    raise
                # A statement-terminating error outside any try: shown, and the script goes on.
                if not e.record.where:
                    e.record.where = self.where(s)
                self.error_list.insert(0, e.record)
                self._show(e.record)
                self.scope.vars["?"] = False

    def _run_trap(self, traps: list[Node], e: PSRuntimeError, out: list[Any]) -> bool:
        """about_Trap: `continue` resumes after the statement silently, `break` rethrows,
        neither writes the error and resumes."""
        for t in traps:
            type_node = next((c for c in t.named_children if c.type == "type_literal"), None)
            if type_node is not None and not exception_isa(
                e.record.exception_type, self.type_name(type_node).name
            ):
                continue
            body = next(c for c in t.named_children if c.type == "statement_block")
            self.scope.vars["_"] = e.record
            try:
                self.block(body, out)
            except _Continue:
                return True
            except _Break:
                return False
            self._show(e.record)
            return True
        return False

    def _statements(self, node: Node) -> tuple[list[Node], list[Node]]:
        """The statements to run and the `trap` statements of a block: read once per node."""
        every = self._statements_of(node)
        found = node.memo["statements"] = (
            [s for s in every if s.type != "trap_statement"],
            [s for s in every if s.type == "trap_statement"],
        )
        return found

    def _statements_of(self, node: Node) -> list[Node]:
        if node.type in ("program", "statement_block", "script_block_body", "script_block"):
            sl = next((c for c in node.named_children if c.type == "statement_list"), None)
            if sl is None:
                if node.type == "script_block":
                    body = next((c for c in node.named_children if c.type == "script_block_body"), None)
                    return self._statements_of(body) if body is not None else []
                return []
            node = sl
        return [c for c in node.named_children if c.type not in ("empty_statement", "comment")]

    def block(self, node: Node, out: list[Any]) -> None:
        self._statement_list_with_traps(node, out)

    def statement(self, node: Node, out: list[Any]) -> None:
        if self.coverage is not None:
            self.cover(node)
        t = node.type
        if t == "pipeline":
            self._last_failed = False
            value = self.pipeline(node, out_direct=True)
            out.extend(value)
            # $? tells whether the last statement succeeded, a command's or an expression's
            # (about_Automatic_Variables): `Get-Service nope; 'after'` leaves it $true.
            self.scope.vars["?"] = not self._last_failed
        elif t == "if_statement":
            self.if_statement(node, out)
        elif t == "foreach_statement":
            self.foreach_statement(node, out)
        elif t == "for_statement":
            self.for_statement(node, out)
        elif t in ("while_statement", "do_statement"):
            self.while_statement(node, out)
        elif t == "switch_statement":
            self.switch_statement(node, out)
        elif t == "try_statement":
            self.try_statement(node, out)
        elif t == "flow_control_statement":
            self.flow_control(node, out)
        elif t == "function_statement":
            self.define_function(node)
        elif t == "param_block":
            pass  # handled by the function/script call
        elif t in ("statement_block",):
            self.block(node, out)
        else:
            raise self.not_simulated(f"the statement '{t}'", node)

    def if_statement(self, node: Node, out: list[Any]) -> None:
        branches, otherwise = node.memo.get("if") or self._if_parts(node)
        for cond, block in branches:
            if v.truthy(self.pipeline_value(cond)):
                self.block(block, out)
                return
        if otherwise is not None:
            self.block(otherwise, out)

    @staticmethod
    def _if_parts(node: Node) -> tuple[list[tuple[Node, Node]], Node | None]:
        """The (condition, block) of `if` and each `elseif` in order, and the `else` block: read
        from the tree once per node."""
        cond = node.child_by_field_name("condition")
        blocks = [c for c in node.children if c.type == "statement_block"]
        assert cond is not None
        branches = [(cond, blocks[0])]
        elifs = node.child_by_field_name("elseif_clauses")
        if elifs is not None:
            for clause in elifs.named_children:
                c = clause.child_by_field_name("condition")
                assert c is not None
                branches.append((c, next(x for x in clause.children if x.type == "statement_block")))
        els = node.child_by_field_name("else_clause")
        otherwise = next(x for x in els.children if x.type == "statement_block") if els is not None else None
        parts = node.memo["if"] = (branches, otherwise)
        return parts

    def _loop_body(self, body: Node, out: list[Any]) -> bool:
        """Run a loop body; False when `break` ended the loop."""
        try:
            self.block(body, out)
        except _Break:
            return False
        except _Continue:
            pass
        return True

    def foreach_statement(self, node: Node, out: list[Any]) -> None:
        parts = node.memo.get("foreach")
        if parts is None:  # the loop variable, the collection and the body: read once per node
            var = next(c for c in node.named_children if c.type == "variable")
            source = next(c for c in node.named_children if c.type == "pipeline")
            body = next(c for c in node.named_children if c.type == "statement_block")
            parts = node.memo["foreach"] = (var, var.text[1:], source, body)
        var, name, source, body = parts
        items = v.as_list(self.pipeline_value(source))
        for item in items:
            self.set_var(name, item, var)
            if not self._loop_body(body, out):
                break

    def for_statement(self, node: Node, out: list[Any]) -> None:
        init = next((c for c in node.named_children if c.type == "for_initializer"), None)
        cond = next((c for c in node.named_children if c.type == "for_condition"), None)
        step = next((c for c in node.named_children if c.type == "for_iterator"), None)
        body = next(c for c in node.named_children if c.type == "statement_block")
        if init is not None:
            self.expression(init.named_children[0])
        while cond is None or v.truthy(self.expression(cond.named_children[0])):
            if not self._loop_body(body, out):
                break
            if step is not None:
                self.expression(step.named_children[0])

    def while_statement(self, node: Node, out: list[Any]) -> None:
        cond = node.child_by_field_name("condition") or next(
            c for c in node.named_children if c.type in ("while_condition", "pipeline")
        )
        body = next(c for c in node.named_children if c.type == "statement_block")
        cond_pipe = cond if cond.type == "pipeline" else cond.named_children[0]
        is_do = node.type == "do_statement"
        until = is_do and any(c.type == "until" for c in node.children)
        guard = 0
        while True:
            if not is_do and not v.truthy(self.pipeline_value(cond_pipe)):
                break
            if not self._loop_body(body, out):
                break
            if is_do:
                r = v.truthy(self.pipeline_value(cond_pipe))
                if r == until:
                    break
            guard += 1
            if guard > 1_000_000:
                raise self.not_simulated("a loop of more than a million iterations", node)

    def switch_statement(self, node: Node, out: list[Any]) -> None:
        """about_Switch: each input item is tested against every clause; `break` leaves the
        switch, `continue` moves to the next item; `default` runs when nothing matched."""
        flags, subject_node, clauses = node.memo.get("switch") or self._switch_parts(node)
        for f in flags - {"-wildcard", "-regex", "-exact", "-casesensitive"}:
            raise self.not_simulated(f"switch {f}", node)
        subject = self.pipeline_value(subject_node)
        case = "-casesensitive" in flags
        items = v.as_list(subject) if v.is_collection(subject) else [subject]
        for item in items:
            matched = False
            try:
                default: Node | None = None
                for cnode, block, ctext in clauses:
                    if ctext.lower() == "default":
                        default = block
                        continue
                    if self._switch_match(cnode, ctext, item, flags, case):
                        matched = True
                        self.scope.vars["_"] = item
                        self.block(block, out)
                if not matched and default is not None:
                    self.scope.vars["_"] = item
                    self.block(default, out)
            except _Continue:
                continue
            except _Break:
                break

    @staticmethod
    def _switch_parts(node: Node) -> tuple[set[str], Node, list[tuple[Node, Node, str]]]:
        """A switch's flags, its subject pipeline and its clauses (condition, block, condition
        text): read from the tree once per node."""
        flags = {
            p.text.lower()
            for p in node.named_children
            if p.type == "switch_parameters"
            for p in p.named_children
        }
        cond = next(c for c in node.named_children if c.type == "switch_condition")
        subject = next(c for c in cond.named_children if c.type == "pipeline")
        body = next(c for c in node.named_children if c.type == "switch_body")
        clauses_node = next((c for c in body.named_children if c.type == "switch_clauses"), None)
        clauses = []
        for clause in clauses_node.named_children if clauses_node is not None else []:
            cnode = next(c for c in clause.named_children if c.type == "switch_clause_condition")
            block = next(c for c in clause.named_children if c.type == "statement_block")
            clauses.append((cnode, block, cnode.text.strip()))
        parts = node.memo["switch"] = (flags, subject, clauses)
        return parts

    def _switch_literal(self, cnode: Node, ctext: str) -> Any:
        """A clause condition the grammar leaves as text: a quoted string, a number or a bare word."""
        if ctext[:1] == "'" and ctext.endswith("'"):
            return ctext[1:-1].replace("''", "'")
        if ctext[:1] == '"' and ctext.endswith('"') and "$" not in ctext:
            return _unescape(ctext[1:-1].replace('""', '"'))
        if re.fullmatch(r"-?\d+", ctext):
            return int(ctext)
        if re.fullmatch(r"[\w.*?\[\]-]+", ctext):
            return ctext
        raise self.not_simulated(f"the switch clause {ctext}", cnode)

    def _switch_match(self, cnode: Node, ctext: str, item: Any, flags: set[str], case: bool) -> bool:
        inner = cnode.named_children[0] if cnode.named_children else None
        value: Any = self.expression(inner) if inner is not None else self._switch_literal(cnode, ctext)
        if isinstance(value, ScriptBlock):
            # about_Switch: a script-block condition matches when it returns true for $_.
            return v.truthy(self.invoke_block_value(value, dollar_under=item))
        if "-wildcard" in flags:
            return v.like(item, value, case)
        if "-regex" in flags:
            return self.match(item, value, case)
        return (
            v.equals(item, value, case)
            if not isinstance(item, str)
            else v.equals(item, v.to_string(value), case)
        )

    def try_statement(self, node: Node, out: list[Any]) -> None:
        """about_Try_Catch_Finally: the first catch whose type matches handles a terminating
        error ($_ is its ErrorRecord); finally always runs, even after exit/return."""
        body = next(c for c in node.named_children if c.type == "statement_block")
        catches_node = next((c for c in node.named_children if c.type == "catch_clauses"), None)
        fin = next((c for c in node.named_children if c.type == "finally_clause"), None)
        try:
            try:
                self.try_depth += 1
                try:
                    self.block(body, out)
                finally:
                    self.try_depth -= 1
            except PSRuntimeError as e:
                handler = self._find_catch(catches_node, e.record)
                if handler is None:
                    raise
                saved = self.scope.vars.get("_", _UNSET)
                self.scope.vars["_"] = e.record
                self.error_list.insert(0, e.record)
                try:
                    self.block(handler, out)
                finally:
                    if saved is _UNSET:
                        self.scope.vars.pop("_", None)
                    else:
                        self.scope.vars["_"] = saved
        finally:
            if fin is not None:
                self.block(next(c for c in fin.named_children if c.type == "statement_block"), out)

    def _find_catch(self, catches: Node | None, rec: ErrorRecord) -> Node | None:
        if catches is None:
            return None
        for clause in catches.named_children:
            types = next((c for c in clause.named_children if c.type == "catch_type_list"), None)
            block = next(c for c in clause.named_children if c.type == "statement_block")
            if types is None:
                return block
            for t in types.named_children:
                if exception_isa(rec.exception_type, self.type_name(t).name):
                    return block
        return None

    def flow_control(self, node: Node, out: list[Any]) -> None:
        kw = node.children[0].type
        arg = next((c for c in node.named_children if c.type == "pipeline"), None)
        if kw == "break":
            raise _Break()
        if kw == "continue":
            raise _Continue()
        if kw == "return":
            ret: list[Any] = []
            if arg is not None:
                ret.extend(self.pipeline(arg, out_direct=True))
            raise _Return(ret)
        if kw == "exit":
            code = 0
            if arg is not None:
                code = v.to_int(self.pipeline_value(arg))
            raise ExitScript(code)
        if kw == "throw":
            self._throw(arg, node)
        raise self.not_simulated(f"the statement {kw}", node)

    def _throw(self, arg: Node | None, node: Node) -> None:
        """about_Throw: a string becomes a RuntimeException; an ErrorRecord is rethrown as is;
        `throw` alone inside catch rethrows the current error."""
        if arg is None:
            current = self.scope.vars.get("_")
            if isinstance(current, ErrorRecord):
                raise PSRuntimeError(current, script_terminating=True)
            raise PSRuntimeError(ErrorRecord("ScriptHalted", where=self.where(node)), script_terminating=True)
        value = self.pipeline_value(arg)
        if isinstance(value, ErrorRecord):
            raise PSRuntimeError(value, script_terminating=True)
        if isinstance(value, v.DotNetObject) and value.type_name.endswith("Exception"):
            raise PSRuntimeError(
                ErrorRecord(v.to_string(value.data.get("Message")), value.type_name, where=self.where(node)),
                script_terminating=True,
            )
        raise PSRuntimeError(
            ErrorRecord(v.to_string(value), where=self.where(node), target=value), script_terminating=True
        )

    # --- functions ---

    def define_function(self, node: Node) -> None:
        assert self.script is not None
        name_node = next(c for c in node.named_children if c.type == "function_name")
        name = self.text(name_node)
        body = next(c for c in node.named_children if c.type == "script_block")
        kw = node.children[0].type.lower()
        if kw in ("filter", "workflow", "configuration"):
            raise self.not_simulated(f"'{kw}' definitions", node)
        params_nodes: list[Node] = []
        inline = next((c for c in node.named_children if c.type == "function_parameter_declaration"), None)
        if inline is not None:
            pl = next((c for c in inline.named_children if c.type == "parameter_list"), None)
            if pl is not None:
                params_nodes = [c for c in pl.named_children if c.type == "script_parameter"]
        advanced = False
        pb = next((c for c in body.named_children if c.type == "param_block"), None)
        if pb is not None:
            pl = next((c for c in pb.named_children if c.type == "parameter_list"), None)
            if pl is not None:
                params_nodes = [c for c in pl.named_children if c.type == "script_parameter"]
            advanced = "cmdletbinding" in self.text(pb).lower() or "[parameter" in self.text(pb).lower()
        params, should_process = self._params(params_nodes, pb)
        sig = Signature(name, tuple(p for p, _, _ in params), should_process=should_process, common=advanced)
        self.scope.functions[name.lower()] = Function(name, node, self.script, sig, params, body, advanced)

    def _params(
        self, nodes: list[Node], pb: Node | None
    ) -> tuple[list[tuple[Param, str | None, Node | None]], bool]:
        out: list[tuple[Param, str | None, Node | None]] = []
        should_process = pb is not None and "supportsshouldprocess" in self.text(pb).lower()
        for index, pn in enumerate(nodes):
            var = next(c for c in pn.named_children if c.type == "variable")
            default = next((c for c in pn.named_children if c.type == "script_parameter_default"), None)
            default_node = default.named_children[-1] if default is not None else None
            type_name: str | None = None
            mandatory = False
            position: int | None = index
            pipeline = False
            aliases: tuple[str, ...] = ()
            attrs = next((c for c in pn.named_children if c.type == "attribute_list"), None)
            for attr in attrs.named_children if attrs is not None else []:
                tl = next((c for c in attr.named_children if c.type == "type_literal"), None)
                if tl is not None:
                    type_name = self.type_name(tl).name
                    continue
                atext = self.text(attr).lower().replace(" ", "")
                if atext.startswith("[parameter"):
                    mandatory = (
                        "mandatory=$true" in atext or re.search(r"[(,]mandatory[),]", atext) is not None
                    )
                    pipeline = (
                        "valuefrompipeline=$true" in atext
                        or re.search(r"[(,]valuefrompipeline[),]", atext) is not None
                    )
                    m = re.search(r"position=(\d+)", atext)
                    if m:
                        position = int(m.group(1))
                elif atext.startswith("[alias("):
                    aliases = tuple(re.findall(r"'([^']*)'|\"([^\"]*)\"", atext)[0])
                elif atext.startswith(("[validate", "[allownull", "[allowempty")):
                    pass
                else:
                    raise self.not_simulated(f"the parameter attribute {self.text(attr)}", attr)
            switch = type_name == "System.Management.Automation.SwitchParameter"
            pname = self.text(var)[1:]
            out.append(
                (
                    Param(
                        pname,
                        aliases,
                        switch=switch,
                        position=None if switch else position,
                        mandatory=mandatory,
                        pipeline=pipeline,
                    ),
                    type_name,
                    default_node,
                )
            )
        return out, should_process

    def call_function(
        self,
        fn: Function,
        args: list[Argument],
        pipeline_input: list[Any],
        has_input: bool,
        node: Node | None,
    ) -> list[Any]:
        bound = bind(fn.sig, args, collect_extra=not fn.advanced, pipeline_input=has_input)
        if fn.advanced and bound.extra:
            raise PSRuntimeError(
                ErrorRecord(
                    f"A positional parameter cannot be found that accepts argument '{bound.extra[0]}'.",
                    "System.Management.Automation.ParameterBindingException",
                    command=fn.name,
                )
            )
        caller_scope, caller_script = self.scope, self.script
        self.scope = Scope(caller_scope)
        self.script = fn.script
        out: list[Any] = []
        try:
            self.scope.vars["args"] = list(bound.extra)
            if "ErrorAction" in bound:
                self.scope.vars["erroractionpreference"] = self.preference(bound.get("ErrorAction"))
            if "WhatIf" in bound:
                self.scope.vars["whatifpreference"] = v.truthy(bound.get("WhatIf"))
            psbound = Hashtable()
            pipe_param = next((p for p, _, _ in fn.params if p.pipeline), None)
            for p, type_name, default in fn.params:
                if p.name in bound:
                    value = bound.get(p.name)
                    psbound.set(p.name, value)
                elif default is not None:
                    value = self.expression(default)
                elif p.switch:
                    value = v.SwitchParameter(False)
                else:
                    value = None
                value = self.convert_param(value, type_name, p, fn, p.name in bound)
                self.scope.vars[p.name.lower()] = value
            self.scope.vars["psboundparameters"] = psbound
            body, named, blocks = fn.body.memo.get("function_body") or self._function_body(fn.body)
            if body is None:
                return out
            if named is None:
                self._run_body(body, out)
                return out
            unknown = set(blocks) - {"begin", "process", "end"}
            if unknown:
                raise self.not_simulated(f"the named block {sorted(unknown)[0]}", named)
            if "begin" in blocks:
                self._run_body(blocks["begin"], out)
            if "process" in blocks:
                items = pipeline_input if has_input else [None]
                for item in items:
                    self.scope.vars["_"] = item
                    if pipe_param is not None and has_input:
                        self.scope.vars[pipe_param.name.lower()] = item
                    self._run_body(blocks["process"], out)
            if "end" in blocks:
                self._run_body(blocks["end"], out)
            return out
        finally:
            self.scope = caller_scope
            self.script = caller_script

    @staticmethod
    def _function_body(
        script_block: Node,
    ) -> tuple[Node | None, Node | None, dict[str, Node]]:
        """A function's body, its named block list (`begin`/`process`/`end`) and those blocks by
        lower-case name: read from the tree once per function."""
        body = next((c for c in script_block.named_children if c.type == "script_block_body"), None)
        named = (
            next((c for c in body.named_children if c.type == "named_block_list"), None)
            if body is not None
            else None
        )
        blocks = (
            {b.named_children[0].text.lower(): b.named_children[1] for b in named.named_children}
            if named is not None
            else {}
        )
        parts = script_block.memo["function_body"] = (body, named, blocks)
        return parts

    def _run_body(self, node: Node, out: list[Any]) -> None:
        try:
            self.block(node, out)
        except _Return as r:
            out.extend(r.out)

    def convert_param(self, value: Any, type_name: str | None, p: Param, fn: Function, given: bool) -> Any:
        if p.switch:
            return v.SwitchParameter(v.truthy(value))
        if type_name is None:
            return value
        try:
            return self.cast(value, TypeRef(type_name), None)
        except PSRuntimeError as e:
            raise PSRuntimeError(
                ErrorRecord(
                    f"Cannot process argument transformation on parameter '{p.name}'. {e.record.message}",
                    "System.Management.Automation.ParameterBindingException",
                    command=fn.name,
                )
            ) from None

    def invoke_block_value(
        self,
        sb: ScriptBlock,
        args: list[Any] | None = None,
        dollar_under: Any = _UNSET,
        new_scope: bool = True,
    ) -> Any:
        out = self.invoke_block(sb, args, dollar_under, new_scope)
        return v.collapse(out)

    def invoke_block(
        self,
        sb: ScriptBlock,
        args: list[Any] | None = None,
        dollar_under: Any = _UNSET,
        new_scope: bool = True,
    ) -> list[Any]:
        """Run a script block: `& {}` (child scope) or dot-sourced (current scope)."""
        caller_scope, caller_script = self.scope, self.script
        if new_scope:
            self.scope = Scope(caller_scope)
        self.script = sb.script
        out: list[Any] = []
        try:
            self.scope.vars["args"] = list(args or [])
            if dollar_under is not _UNSET:
                self.scope.vars["_"] = dollar_under
            node = sb.node
            pb = next((c for c in node.named_children if c.type == "param_block"), None)
            if pb is not None:
                pl = next((c for c in pb.named_children if c.type == "parameter_list"), None)
                pnodes = (
                    [c for c in pl.named_children if c.type == "script_parameter"] if pl is not None else []
                )
                for i, pn in enumerate(pnodes):
                    var = next(c for c in pn.named_children if c.type == "variable")
                    self.scope.vars[self.text(var)[1:].lower()] = (
                        (args or [])[i] if i < len(args or []) else None
                    )
            body = next((c for c in node.named_children if c.type == "script_block_body"), None)
            if body is not None:
                if any(c.type == "named_block_list" for c in body.named_children):
                    raise self.not_simulated("named blocks in a script block", body)
                self._run_body(body, out)
            return out
        finally:
            self.scope = caller_scope
            self.script = caller_script

    # --- pipelines ---

    def pipeline_value(self, node: Node) -> Any:
        """A pipeline used as a value (conditions, assignments): the expression itself, or the
        collected output of commands (nothing -> $null, one object -> it, more -> array)."""
        inner = self._pipeline_inner(node)
        if inner is not None and inner.type not in ("command", "pipeline_chain"):
            return self.expression(inner)
        out = self.pipeline(node, out_direct=False)
        return v.collapse(out)

    def _pipeline_inner(self, node: Node) -> Node | None:
        """The single expression/statement a pipeline consists of, or its pipeline_chain."""
        if node.type != "pipeline":
            return node
        memo = node.memo
        if "pipeline" not in memo:
            memo["pipeline"] = self._pipeline_inner_of(node)
        found: Node | None = memo["pipeline"]
        return found

    def _pipeline_inner_of(self, node: Node) -> Node | None:
        kids = [c for c in node.named_children if c.type != "comment"]
        if len(kids) != 1:
            return None
        kid = kids[0]
        if kid.type == "pipeline_chain":
            stages = [c for c in kid.named_children if c.type != "comment"]
            if len(stages) == 1 and stages[0].type != "command":
                return stages[0]
        return kid

    def pipeline(self, node: Node, out_direct: bool) -> list[Any]:
        """Run a pipeline; return the objects it writes to the output stream."""
        inner = self._pipeline_inner(node)
        if inner is None:
            raise self.not_simulated("this pipeline form", node)
        if inner.type == "assignment_expression":
            self.assignment(inner)
            return []
        if inner.type == "pipeline_chain":
            stages = [c for c in inner.named_children if c.type != "comment"]
            data: list[Any] = []
            has_input = False
            first = True
            for stage in stages:
                if stage.type == "command":
                    data = self.command(stage, data, has_input)
                else:
                    if not first:
                        raise self.not_simulated("an expression after '|'", stage)
                    data = self._unroll(self.expression(stage))
                has_input = True
                first = False
            return data
        if inner.type == "command":
            return self.command(inner, [], False)
        if inner.type in (
            "if_statement",
            "switch_statement",
            "foreach_statement",
            "try_statement",
            "for_statement",
        ):
            out: list[Any] = []
            self.statement(inner, out)
            return out
        value = self.expression(inner)
        kind = inner.memo.get("writes")
        if kind is None:
            kind = inner.memo["writes"] = self._expression_statement_kind(inner)
        if value is None and kind == "method":
            return []  # a method called as a statement: void methods write nothing (not $null)
        if kind == "step":
            return []
        return self._unroll(value)

    def _expression_statement_kind(self, inner: Node) -> str:
        """What an expression used as a statement writes: `step` (`$i++`, `++$i`: nothing), `method`
        (a method call: nothing when it returns void) or `value`."""
        node = self._unwrap(inner)
        if node.type == "invokation_expression":
            return "method"
        if node.type == "expression_with_unary_operator" and self.text(node.children[0]) in ("++", "--"):
            return "step"
        if node.type in (
            "post_increment_expression",
            "post_decrement_expression",
            "pre_increment_expression",
            "pre_decrement_expression",
        ):
            return "step"
        return "value"

    @staticmethod
    def _unwrap(node: Node) -> Node:
        """The node under single-child precedence wrappers (logical_expression > ... > unary)."""
        while node.child_count == 1 and (
            node.type in _BINARY_PRECEDENCE_TYPES
            or node.type in ("unary_expression", "array_literal_expression")
        ):
            node = node.children[0]
        return node

    @staticmethod
    def _unroll(value: Any) -> list[Any]:
        """An expression written to the pipeline: collections are enumerated one level."""
        if isinstance(value, list):
            return list(value)
        return [value]

    def assignment(self, node: Node) -> None:
        op, value_node, target = node.memo.get("assignment") or self._assignment_parts(node)
        if value_node.type == "pipeline":
            value = self.pipeline_value(value_node)
        else:
            out: list[Any] = []
            self.statement(value_node, out)
            value = v.collapse(out)
        if op != "=":
            current = self.expression(target)
            ops = {"+=": "+", "-=": "-", "*=": "*", "/=": "/", "%=": "%"}
            if op not in ops:
                raise self.not_simulated(f"the assignment operator {op}", node)
            value = self.binary(ops[op], current, value, node)
        self.assign_to(target, value)

    @staticmethod
    def _assignment_parts(node: Node) -> tuple[str, Node, Node]:
        """The operator, value and target of an assignment: read from the tree once per node."""
        left = node.named_children[0]
        op = next(c for c in node.named_children if c.type == "assignement_operator").text.strip()
        value_node = node.child_by_field_name("value")
        assert value_node is not None
        target = left.named_children[0] if left.type == "left_assignment_expression" else left
        parts = node.memo["assignment"] = (op, value_node, target)
        return parts

    def assign_to(self, target: Node, value: Any) -> None:
        target = target.memo.get("assign") or self._assign_target(target)
        t = target.type
        if t == "variable":
            self.set_var(self.text(target)[1:], value, target)
            return
        if t == "expression_with_unary_operator" and target.named_children[0].type == "cast_expression":
            cast = target.named_children[0]
            tl = cast.named_children[0]
            var = cast.named_children[1]
            self.assign_to(var, self.cast(value, self.type_name(tl), target))
            return
        if t == "cast_expression":
            self.assign_to(
                target.named_children[1], self.cast(value, self.type_name(target.named_children[0]), target)
            )
            return
        if t == "member_access" and self._is_static(target):
            tref = self.type_name(target.named_children[0])
            self.host.static_set(self, tref.name, self._member_name(target), value, target)
            return
        if t == "member_access":
            obj = self.expression(target.named_children[0])
            name = self._member_name(target)
            self.set_member(obj, name, value, target)
            return
        if t == "element_access":
            obj = self.expression(target.named_children[0])
            index = self.expression(target.named_children[1])
            if isinstance(obj, Hashtable):
                obj.set(index, value)
                return
            if isinstance(obj, list):
                i = v.to_int(index)
                if not -len(obj) <= i < len(obj):
                    raise PSRuntimeError(
                        ErrorRecord(
                            "Index was outside the bounds of the array.", "System.IndexOutOfRangeException"
                        )
                    )
                obj[i] = value
                return
            raise self.not_simulated(f"index assignment on {type(obj).__name__}", target)
        if t == "array_literal_expression":
            targets = [c for c in target.named_children]
            items = v.as_list(value)
            for i, tn in enumerate(targets):
                if i == len(targets) - 1:
                    rest = items[i:]
                    self.assign_to(tn, v.collapse(rest))
                else:
                    self.assign_to(tn, items[i] if i < len(items) else None)
            return
        raise self.not_simulated(f"assignment to {t}", target)

    @staticmethod
    def _assign_target(node: Node) -> Node:
        """What an assignment writes to, under the grammar's one-child wrappers (precedence
        expressions, unary, a one-element array literal), followed once per node."""
        target = node
        while True:
            t = target.type
            wrapper = t in _BINARY_PRECEDENCE_TYPES or t == "unary_expression"
            if not (wrapper or (t == "array_literal_expression" and len(target.named_children) == 1)):
                break
            target = target.named_children[0]
        node.memo["assign"] = target
        return target

    def set_member(self, obj: Any, name: str, value: Any, node: Node) -> None:
        if isinstance(obj, Hashtable):
            obj.set(name, value)
            return
        if isinstance(obj, PSObj):
            for k in obj.props:
                if k.lower() == name.lower():
                    obj.props[k] = value
                    return
            raise PSRuntimeError(
                ErrorRecord(
                    f"The property '{name}' cannot be found on this object. "
                    "Verify that the property exists and can be set."
                )
            )
        self._builtins.set_member(self, obj, name, value, node)

    # --- commands ---

    def command_args(self, elements: Node | None) -> tuple[list[Argument], list[tuple[str, Node | None]]]:
        """The arguments and redirections of a command's elements."""
        args: list[Argument] = []
        redirs: list[tuple[str, Node | None]] = []
        if elements is None:
            return args, redirs
        kids = elements.children
        i = 0
        while i < len(kids):
            k = kids[i]
            if k.type == "command_argument_sep" or k.type == "comment":
                i += 1
                continue
            if k.type == "redirection":
                op = self.text(k.children[0]).strip()
                tgt = next((c for c in k.named_children if c.type == "redirected_file_name"), None)
                redirs.append((op, tgt))
                i += 1
                continue
            if k.type == "command_parameter":
                written = self.text(k)
                colon = written.endswith(":")
                name = written[1:].rstrip(":")
                nxt = kids[i + 1] if i + 1 < len(kids) else None
                if (
                    not colon
                    and nxt is not None
                    and nxt.type == "command_argument_sep"
                    and self.text(nxt).strip() == ":"
                ):
                    colon = True
                    i += 1
                if colon:
                    j = i + 1
                    while j < len(kids) and kids[j].type == "command_argument_sep":
                        j += 1
                    args.append(Argument(name, self.argument_value(kids[j]), True, written))
                    i = j + 1
                    continue
                args.append(Argument(name, None, False, written))
                i += 1
                continue
            inner = self._unwrap(k)
            splat_node = inner
            if splat_node.type == "variable" and self.text(splat_node).startswith("@"):
                splat = self.get_var(self.text(splat_node)[1:], splat_node)
                if isinstance(splat, Hashtable):
                    for key, val in splat.items():
                        args.append(Argument(str(key), val, True, f"-{key}"))
                else:
                    for val in v.as_list(splat):
                        args.append(Argument(None, val, True, v.to_string(val)))
                i += 1
                continue
            if inner.type == "member_access" and i + 1 < len(kids) and kids[i + 1].type == "argument_list":
                # `-Param $x.Method(args)`: the grammar splits a method call in argument mode in two.
                value = self._invoke_member(inner, kids[i + 1])
                args.append(Argument(None, value, True, self.text(k)))
                i += 2
                continue
            if k.type == "argument_list":
                # `New-Object T('a', $b)`: about_Parsing, a bare word ends at `(`, which opens an
                # expression argument of its own (here the array -ArgumentList binds to).
                items = self._call_args(k)
                args.append(Argument(None, items[0] if len(items) == 1 else items, True, self.text(k)))
                i += 1
                continue
            value = self.argument_value(k)
            if k.type == "generic_token" and self.text(k).startswith(",") and args and args[-1].name is None:
                prev = args[-1]
                prev.value = [*v.as_list(prev.value), self.text(k)[1:]]
                i += 1
                continue
            args.append(Argument(None, value, True, self.text(k)))
            i += 1
        return args, redirs

    def argument_value(self, node: Node) -> Any:
        """Argument mode (about_Parsing): bare words are strings, everything else an expression."""
        if node.type == "generic_token":
            text = self.text(node)
            if text.count('"') % 2 or text.count("'") % 2:
                # `/subcategory:"Process Creation"` is one argument to PowerShell; the grammar ends the
                # bare word at the space inside the quotes.
                raise self.not_simulated(
                    f"a bare-word argument with a quoted part holding a space ({text})", node
                )
            return _unescape(text)
        if node.type == "command_parameter":
            return self.text(node)
        return self.expression(node)

    def command(self, node: Node, pipeline_input: list[Any], has_input: bool) -> list[Any]:
        name_node = node.child_by_field_name("command_name")
        elements = node.child_by_field_name("command_elements")
        invoke_op = next((c for c in node.children if c.type == "command_invokation_operator"), None)
        args, redirs = self.command_args(elements)
        if name_node is None:
            raise self.not_simulated("a command without a name", node)
        if (
            name_node.type == "command_name_expr"
            and name_node.named_children
            and name_node.named_children[0].type != "command_name"
        ):
            target = self.expression(
                name_node.named_children[0].named_children[0]
                if name_node.named_children[0].type == "path_command_name"
                else name_node.named_children[0]
            )
            if isinstance(target, ScriptBlock):
                dot = invoke_op is not None and self.text(invoke_op).strip() == "."
                return self.invoke_block(
                    target, [a.value for a in args], new_scope=not dot, dollar_under=_UNSET
                )
            name = v.to_string(target)
        else:
            name = self.text(name_node)
        if re.fullmatch(r"-?\d+\.\.-?\d+", name):  # grammar quirk: `1..3 | ...` parsed as a command name
            a, b = (int(x) for x in name.split(".."))
            return list(range(a, b + 1) if a <= b else range(a, b - 1, -1))
        return self.invoke_command(name, args, redirs, pipeline_input, has_input, node)

    def invoke_command(
        self,
        name: str,
        args: list[Argument],
        redirs: list[tuple[str, Node | None]],
        pipeline_input: list[Any],
        has_input: bool,
        node: Node | None,
    ) -> list[Any]:
        merge_err = False
        discard_out = False
        err_redirected = False
        for op, tgt in redirs:
            target_text = self.text(tgt).strip() if tgt is not None else ""
            if op == "2>&1":
                merge_err = True
                err_redirected = True
            elif op in (">", "*>") and target_text.lower() == "$null":
                discard_out = True
                if op == "*>":
                    err_redirected = True
            elif op == "2>" and target_text.lower() == "$null":
                err_redirected = True
            else:
                raise self.not_simulated(f"the redirection {op} {target_text}", node)
        resolved = ALIASES.get(name.lower(), name)
        fn = self.find_function(resolved)
        shown_before = len(self.errors_shown)
        if fn is not None:
            out = self.call_function(fn, args, pipeline_input, has_input, node)
        else:
            cmdlet = self._builtins.engine_cmdlet(resolved) or self.host.cmdlet(resolved)
            if cmdlet is not None:
                bound = bind(cmdlet.sig, args, pipeline_input=has_input)
                call = Call(self, cmdlet.sig.name, bound, pipeline_input, has_input, node)
                if "ErrorAction" in bound:
                    self.preference(bound.get("ErrorAction"))  # validate the value now
                out = cmdlet.run(call)
            else:
                out = self.native(name, args, merge_err, err_redirected, node)
        if err_redirected and not merge_err:
            del self.errors_shown[shown_before:]
        if merge_err:
            moved = self.errors_shown[shown_before:]
            del self.errors_shown[shown_before:]
            out = list(out) + moved
        return [] if discard_out else out

    def native(
        self, name: str, args: list[Argument], merge_err: bool, err_redirected: bool, node: Node | None
    ) -> list[Any]:
        """A native program: stdout lines are strings on the pipeline, the exit code is
        $LASTEXITCODE. With stderr redirected (2>&1, 2>$null) Windows PowerShell 5.1 wraps each
        stderr line in an ErrorRecord (NativeCommandError), so under ErrorAction Stop the first
        line is terminating (about_Redirection; PowerShell 7.2 changed this)."""
        argv = []
        for a in args:
            if a.name is not None:
                argv.append(a.text if not a.has_value else f"{a.text}{v.to_string(a.value)}")
            else:
                argv.extend(v.to_string(x) for x in v.as_list(a.value))
        call = Call(self, name, Bound(), [], False, node)
        result = self.host.native(call, name, argv)
        if result is None:
            program = name.lower().rsplit("\\", 1)[-1].removesuffix(".exe")
            if re.search(r"\.(exe|com|bat|cmd)$", name, re.I) or "\\" in name or program in WINDOWS_PROGRAMS:
                raise self.not_simulated(f"the native command {name}", node)
            if WINDOWS_CMDLET.fullmatch(name):
                # Windows has it; a script catching "not recognized" must not run on as if it had not.
                raise self.not_simulated(f"the cmdlet {name}", node)
            raise PSRuntimeError(
                ErrorRecord(
                    f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
                    "operable program. Check the spelling of the name, or if a path was included, "
                    "verify that the path is correct and try again.",
                    "System.Management.Automation.CommandNotFoundException",
                    command=name,
                    category="ObjectNotFound",
                    error_id="CommandNotFoundException",
                    where=self.where(node),
                )
            )
        self.global_scope.vars["lastexitcode"] = result.rc
        out: list[Any] = list(result.stdout)
        if result.rc != 0:
            self._mark_failed()
        if result.stderr:
            if err_redirected:
                for line in result.stderr:
                    rec = ErrorRecord(
                        line,
                        "System.Management.Automation.RemoteException",
                        command=name,
                        category="NotSpecified",
                        error_id="NativeCommandError",
                    )
                    self.non_terminating(rec)
            else:
                self.native_stderr.extend(result.stderr)  # straight to the process's stderr
        return out

    # --- expressions ---

    def expression(self, node: Node) -> Any:
        # The grammar wraps a plain value in a chain of one-child precedence nodes: follow the chain
        # once per node and remember where it ends (per parsed script, so every twin's run reuses it).
        # The evaluating function is chosen then too (a table by node type, not a lookup by name).
        hit = node.memo.get("expression")
        if hit is None:
            target, kind = self._resolve_expression(node)
            if kind == "const":
                hit = (None, _EXPRESSIONS[target.type](self, target))  # the literal's value, once
            elif kind == "method":
                hit = (_EXPRESSIONS[target.type], target)
            elif kind == "array":
                hit = (Evaluator._array_items, target)
            elif kind == "binary":
                hit = (Evaluator._binary_node, target)
            else:
                hit = (Evaluator._unknown_expression, target)
            node.memo["expression"] = hit
        fn, target = hit
        if fn is None:
            return target
        return fn(self, target)

    def _array_items(self, node: Node) -> list[Any]:
        return [self.expression(k) for k in node.named_children]

    def _unknown_expression(self, node: Node) -> Any:
        raise self.not_simulated(f"the expression '{node.type}' ({self.text(node)[:40]})", node)

    def _resolve_expression(self, node: Node) -> tuple[Any, str]:
        while True:
            t = node.type
            if t in _CONSTANT_TYPES:
                return node, "const"
            if t == "string_literal" and node.named_children:
                kid = node.named_children[0]
                if kid.type in _CONSTANT_TYPES or (kid.type in _EXPANDABLE_TYPES and not kid.named_children):
                    return node, "const"
            if t in _EXPRESSIONS:
                return node, "method"
            if not (
                t in _BINARY_PRECEDENCE_TYPES
                or t in ("unary_expression", "array_literal_expression", "argument_expression")
            ):
                return node, "unknown"
            kids = node.named_children
            if t == "array_literal_expression":
                if len(kids) == 1 and not any(c.type == "," for c in node.children):
                    node = kids[0]
                    continue
                return node, "array"
            if len(kids) == 1 and node.child_count == 1:
                node = kids[0]
                continue
            if t in _BINARY_PRECEDENCE_TYPES:
                return node, "binary"
            if len(kids) == 1:
                node = kids[0]
                continue
            return node, "unknown"

    def _binary_node(self, node: Node) -> Any:
        parts = node.memo.get("binary")
        if parts is None:  # the operands and the operator (lower case), read once per node
            kids = node.children
            parts = node.memo["binary"] = (kids[0], self.text(kids[1]).strip().lower(), kids[2])
        left_node, op, right_node = parts
        if op in ("-and", "-or"):
            left = v.truthy(self.expression(left_node))
            if op == "-and" and not left:
                return False
            if op == "-or" and left:
                return True
            return v.truthy(self.expression(right_node))
        left = self.expression(left_node)
        if op in ("-is", "-isnot", "-as"):
            tref = (
                self.type_name(right_node)
                if right_node.type == "type_literal"
                else TypeRef(v.to_string(self.expression(right_node)))
            )
            if op == "-as":
                try:
                    return self.cast(left, tref, node)
                except PSRuntimeError:
                    return None
            result = self._builtins.is_type(left, tref)
            return result if op == "-is" else not result
        right = self.expression(right_node)
        return self.binary(op, left, right, node)

    def binary(self, op: str, left: Any, right: Any, node: Node) -> Any:
        return self._builtins.binary(self, op, left, right, node)

    def match(self, value: Any, pattern: Any, case: bool) -> bool:
        m = re.search(v.to_string(pattern), v.to_string(value), 0 if case else re.I)
        if m:
            matches = Hashtable()
            matches.set(0, m.group(0))
            for i, g in enumerate(m.groups(), 1):
                if g is not None:
                    matches.set(i, g)
            for k, g in m.groupdict().items():
                if g is not None:
                    matches.set(k, g)
            self.scope.vars["matches"] = matches
        return m is not None

    def _x_parenthesized_expression(self, node: Node) -> Any:
        inner = next(c for c in node.named_children if c.type not in ("comment",))
        if inner.type == "pipeline":
            kid = self._pipeline_inner(inner)
            if kid is not None and kid.type == "assignment_expression":
                self.assignment(kid)
                return self.expression(kid.named_children[0].named_children[0])
            return self.pipeline_value(inner)
        return self.expression(inner)

    def _x_assignment_expression(self, node: Node) -> Any:
        self.assignment(node)
        return None

    def _x_pipeline(self, node: Node) -> Any:
        return self.pipeline_value(node)

    def _inner_output(self, node: Node) -> list[Any]:
        """What the statements inside `$( )` or `@( )` write."""
        out: list[Any] = []
        if "inner" not in node.memo:  # the statement list, found once per node
            node.memo["inner"] = next((c for c in node.named_children if c.type == "statement_list"), None)
        sl: Node | None = node.memo["inner"]
        if sl is not None:
            self.block(sl, out)
        return out

    def _x_sub_expression(self, node: Node) -> Any:
        return v.collapse(self._inner_output(node))

    def _x_array_expression(self, node: Node) -> Any:
        return self._inner_output(node)

    def _x_statement_list(self, node: Node) -> Any:
        out: list[Any] = []
        self.block(node, out)
        return v.collapse(out)

    def _x_variable(self, node: Node) -> Any:
        name = node.memo.get("variable")
        if name is None:
            text = self.text(node)
            if text.startswith("${") and text.endswith("}"):
                name = text[2:-1]
            elif text.startswith("@"):
                raise self.not_simulated("splatting outside a command", node)
            else:
                name = text[1:]
            node.memo["variable"] = name  # the name as written, read once per node
        return self.get_var(name, node)

    def _x_braced_variable(self, node: Node) -> Any:
        return self.get_var(self.text(node)[2:-1], node)

    def _x_integer_literal(self, node: Node) -> Any:
        text = self.text(node).lower().replace("_", "")
        mult = 1
        for suffix, m in (("kb", 1024), ("mb", 1024**2), ("gb", 1024**3), ("tb", 1024**4), ("pb", 1024**5)):
            if text.endswith(suffix):
                text, mult = text[: -len(suffix)], m
        if text.endswith("l"):
            text = text[:-1]
        return (int(text, 16) if text.startswith("0x") else int(text)) * mult

    def _x_real_literal(self, node: Node) -> Any:
        text = self.text(node).lower()
        if text.endswith("d"):
            raise self.not_simulated("decimal literals", node)
        return float(text)

    def _x_string_literal(self, node: Node) -> Any:
        return self.expression(node.named_children[0])

    def _x_verbatim_string_characters(self, node: Node) -> Any:
        text = self.text(node)
        return text[1:-1].replace("''", "'")

    def _x_verbatim_here_string_characters(self, node: Node) -> Any:
        text = self.text(node)
        body = text[2:-2]
        return body.removeprefix("\r\n").removeprefix("\n").removesuffix("\n").removesuffix("\r")

    def _x_expandable_string_literal(self, node: Node) -> Any:
        return self._expand(node, 1, 1)

    def _x_expandable_here_string_literal(self, node: Node) -> Any:
        text = self._expand(node, 2, 2)
        return text.removeprefix("\r\n").removeprefix("\n").removesuffix("\n").removesuffix("\r")

    def _expand(self, node: Node, open_len: int, close_len: int) -> str:
        """about_Quoting_Rules: `$name`, `${name}` and `$(...)` expand; backtick escapes;
        `""` is a literal quote. Arrays join with $OFS (a space)."""
        src = self.text(node)
        start = node.start_byte
        pos = open_len
        parts: list[str] = []
        ofs = v.to_string(self.get_var("OFS")) if "ofs" in self.global_scope.vars else " "
        for child in node.named_children:
            cs, ce = child.start_byte - start, child.end_byte - start
            cs += max(src[cs:ce].find("$"), 0)  # the grammar may start the node at a preceding newline
            parts.append(self._literal_part(src[pos:cs], open_len == 1))
            if child.type == "sub_expression" or child.type == "variable":
                parts.append(v.to_string(self.expression(child), ofs))
            else:
                raise self.not_simulated(f"'{child.type}' inside a string", child)
            pos = ce
        parts.append(self._literal_part(src[pos : len(src) - close_len], open_len == 1))
        return "".join(parts)

    @staticmethod
    def _literal_part(text: str, double_quotes: bool) -> str:
        if double_quotes:
            text = text.replace('""', '"')
        return _unescape(text)

    def _x_hash_literal_expression(self, node: Node) -> Any:
        h = Hashtable()
        body = next((c for c in node.named_children if c.type == "hash_literal_body"), None)
        for entry in body.named_children if body is not None else []:
            if entry.type != "hash_entry":
                continue
            key_node = entry.named_children[0]
            key_inner = key_node.named_children[0] if key_node.named_children else key_node
            key: Any = self.text(key_inner) if key_inner.type == "simple_name" else self.expression(key_inner)
            value_node = entry.named_children[-1]
            if value_node.type == "pipeline":
                value = self.pipeline_value(value_node)
            else:
                out: list[Any] = []
                self.statement(value_node, out)
                value = v.collapse(out)
            if key in h:
                raise PSRuntimeError(
                    ErrorRecord(
                        f"Duplicate keys '{key}' are not allowed in hash literals.", where=self.where(entry)
                    )
                )
            h.set(key, value)
        return h

    def _x_script_block_expression(self, node: Node) -> Any:
        assert self.script is not None
        sb = next(c for c in node.named_children if c.type == "script_block") if node.named_children else node
        return ScriptBlock(sb, self.script, self.text(node)[1:-1])

    def _x_type_literal(self, node: Node) -> Any:
        return self.type_name(node)

    def _x_expression_with_unary_operator(self, node: Node) -> Any:
        first = node.children[0]
        if first.type == "cast_expression":
            return self.expression(first)
        op = self.text(first).strip().lower()
        operand = node.children[1]
        if op in ("-not", "!"):
            return not v.truthy(self.expression(operand))
        if op == ",":
            return [self.expression(operand)]
        if op == "-":
            return self.binary("*", self.expression(operand), -1, node)
        if op == "+":
            return v.to_number(self.expression(operand))
        if op in ("++", "--"):
            current = self.expression(operand)
            new = self.binary("+" if op == "++" else "-", current, 1, node)
            self.assign_to(operand, new)
            return new
        if op in ("-join",):
            return "".join(v.to_string(x) for x in v.as_list(self.expression(operand)))
        if op in ("-split",):
            return re.split(r"\s+", v.to_string(self.expression(operand)).strip())
        if op == "-bnot":
            return ~v.to_int(self.expression(operand))
        raise self.not_simulated(f"the unary operator {op}", node)

    def _x_cast_expression(self, node: Node) -> Any:
        tref = self.type_name(node.named_children[0])
        inner = node.named_children[1]
        while inner.type == "unary_expression" and len(inner.named_children) == 1:
            inner = inner.named_children[0]
        if (
            tref.name == "System.Collections.Specialized.OrderedDictionary"
            and inner.type == "hash_literal_expression"
        ):
            h = self.expression(inner)
            assert isinstance(h, Hashtable)
            h.ordered = True
            return h
        return self.cast(self.expression(inner), tref, node)

    def cast(self, value: Any, tref: TypeRef, node: Node | None) -> Any:
        return self._builtins.cast(self, value, tref, node)

    def _x_post_increment_expression(self, node: Node) -> Any:
        target = node.named_children[0]
        current = self.expression(target)
        self.assign_to(target, self.binary("+", current, 1, node))
        return current

    def _x_post_decrement_expression(self, node: Node) -> Any:
        target = node.named_children[0]
        current = self.expression(target)
        self.assign_to(target, self.binary("-", current, 1, node))
        return current

    def _x_pre_increment_expression(self, node: Node) -> Any:
        return self._x_expression_with_unary_operator(node)

    def _member_name(self, node: Node) -> str:
        found = node.memo.get("member")
        if found is None:
            mn = next(c for c in node.named_children if c.type == "member_name")
            inner = mn.named_children[0] if mn.named_children else mn
            # A plain name is its text; anything else (`$o.$name`) is evaluated on every access.
            found = node.memo["member"] = self.text(inner) if inner.type == "simple_name" else inner
        if isinstance(found, str):
            return found
        return v.to_string(self.expression(found))

    @staticmethod
    def _is_static(node: Node) -> bool:
        """`[Type]::Member` rather than `$obj.Member`: read once per node."""
        found = node.memo.get("static")
        if found is None:
            found = node.memo["static"] = any(c.type == "::" for c in node.children)
        return bool(found)

    def _x_member_access(self, node: Node) -> Any:
        static = self._is_static(node)
        name = self._member_name(node)
        target_node = node.named_children[0]
        if static:
            tref = self.type_name(target_node)
            return self.host_static(tref, name, None, node)
        obj = self.expression(target_node)
        return self._builtins.get_member(self, obj, name, node)

    def _x_invokation_expression(self, node: Node) -> Any:
        static = self._is_static(node)
        name = self._member_name(node)
        arg_list = node.memo.get("arg_list")
        if arg_list is None:
            arg_list = next(c for c in node.named_children if c.type == "argument_list")
            node.memo["arg_list"] = arg_list
        args = self._call_args(arg_list)
        target_node = node.named_children[0]
        if static:
            return self.host_static(self.type_name(target_node), name, args, node)
        obj = self.expression(target_node)
        return self._builtins.call_method(self, obj, name, args, node)

    def _invoke_member(self, member: Node, arg_list: Node) -> Any:
        name = self._member_name(member)
        args = self._call_args(arg_list)
        if self._is_static(member):
            return self.host_static(self.type_name(member.named_children[0]), name, args, member)
        return self._builtins.call_method(self, self.expression(member.named_children[0]), name, args, member)

    def _call_args(self, arg_list: Node) -> list[Any]:
        nodes: list[Node] | None = arg_list.memo.get("arguments")
        if nodes is None:  # the argument expressions, found once per node
            ael = next((c for c in arg_list.named_children if c.type == "argument_expression_list"), None)
            nodes = [] if ael is None else [a for a in ael.named_children if a.type == "argument_expression"]
            arg_list.memo["arguments"] = nodes
        return [self.expression(a) for a in nodes]

    def host_static(self, tref: TypeRef, member: str, args: list[Any] | None, node: Node) -> Any:
        handled, value = self._builtins.static_member(self, tref, member, args, node)
        if handled:
            return value
        return self.host.static(self, tref.name, member, args, node)

    def _x_element_access(self, node: Node) -> Any:
        obj = self.expression(node.named_children[0])
        index = self.expression(node.named_children[1])
        return self._builtins.index(self, obj, index, node)

    def type_name(self, node: Node) -> TypeRef:
        text = self.text(node).strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1].strip()
        return self._builtins.resolve_type(self, text, node)


# How each expression node type evaluates: `Evaluator._x_<node type>`, looked up once per node.
_EXPRESSIONS: dict[str, Callable[[Evaluator, Node], Any]] = {
    name.removeprefix("_x_"): fn for name, fn in vars(Evaluator).items() if name.startswith("_x_")
}
