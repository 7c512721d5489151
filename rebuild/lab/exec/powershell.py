"""powershell.exe as the lab simulates it: option parsing, Ansible's bootstrap, and the read subset.

SIMULATION, and deliberately small: this is a recogniser of the pipelines listed in
docs/lab-powershell.md, not a PowerShell interpreter. A script is split into statements
(`;`/newlines) and pipelines (`|`); every command and parameter must be in the subset or the
script fails with "the rebuild lab (a simulation) does not simulate ..." on stderr and exit 1.
Unknown parameters of a supported cmdlet fail as PowerShell does ("A parameter cannot be found
that matches parameter name ..."). Nothing here changes state except `Remove-Item` of files
(Ansible's temp-dir cleanup) and the reboot that win_reboot's own script asks for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.exec import cmdlets
from rebuild.lab.exec.ansible_payload import PayloadError, decode_encoded_command, is_bootstrap_wrapper
from rebuild.lab.exec.pscommon import (  # shared with cmdlets.py; the names stay importable from here
    NotSimulated as NotSimulated,
)
from rebuild.lab.exec.pscommon import Param as Param
from rebuild.lab.exec.pscommon import PSError as PSError
from rebuild.lab.exec.pscommon import Session as Session
from rebuild.lab.exec.pscommon import as_list as as_list
from rebuild.lab.exec.pscommon import bind as bind
from rebuild.lab.exec.pscommon import boot_time as boot_time
from rebuild.lab.exec.pscommon import not_simulated as not_simulated
from rebuild.lab.exec.psobjects import PSDate, PSObj, convert_to_json, format_default, scalar_text

Output = tuple[int, bytes, bytes]


# --- powershell.exe ------------------------------------------------------------------------

_EXE_SWITCHES = ("noprofile", "noninteractive", "nologo", "noexit", "sta", "mta")
_EXE_VALUED = (
    "executionpolicy",
    "inputformat",
    "outputformat",
    "windowstyle",
    "version",
    "configurationname",
)


def _exe_option(token: str, names: tuple[str, ...]) -> str | None:
    """powershell.exe accepts any unambiguous prefix of its parameter names (-NoP, -enc, -ep)."""
    word = token[1:].lower()
    if not word:
        return None
    aliases = {
        "ep": "executionpolicy",
        "ex": "executionpolicy",
        "exec": "executionpolicy",
        "ec": "encodedcommand",
        "e": "encodedcommand",
        "c": "command",
        "f": "file",
        "nop": "noprofile",
        "noni": "noninteractive",
    }
    if word in aliases and aliases[word] in names:
        return aliases[word]
    hits = [n for n in names if n.startswith(word)]
    return hits[0] if len(hits) == 1 else None


def run_powershell_exe(lab: Lab, twin: TwinRecord, args: list[str], stdin: bytes) -> Output:
    """Interpret powershell.exe's own arguments, then the script they name."""
    all_names = _EXE_SWITCHES + _EXE_VALUED + ("encodedcommand", "command", "file")
    script: str | None = None
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith(("-", "/")):
            script = " ".join(args[i:])  # bare text after the options is the command
            break
        name = _exe_option(tok, all_names)
        if name is None:
            return (
                1,
                b"",
                (
                    f"-{tok[1:]} : The term '{tok}' is not recognized as a valid parameter of "
                    "powershell.exe\r\n"
                ).encode(),
            )
        if name in _EXE_SWITCHES:
            i += 1
            continue
        if name in _EXE_VALUED:
            i += 2
            continue
        if name == "encodedcommand":
            if i + 1 >= len(args):
                return 1, b"", b"Cannot process the command because -EncodedCommand requires an argument.\r\n"
            try:
                script = decode_encoded_command(args[i + 1])
            except PayloadError as exc:
                return (
                    1,
                    b"",
                    (
                        "Cannot process the command because the value specified with -EncodedCommand "
                        f"is not properly encoded: {exc}\r\n"
                    ).encode(),
                )
            break
        if name == "command":
            rest = args[i + 1 :]
            script = stdin.decode("utf-8", "replace") if rest == ["-"] else " ".join(rest)
            break
        if name == "file":
            return _fail(not_simulated("powershell.exe -File (scripts on the twin's disk are not run)"))
    if script is None:
        return _fail(not_simulated("an interactive powershell.exe session (no -Command/-EncodedCommand)"))
    if is_bootstrap_wrapper(script):
        from rebuild.lab.exec.ansible_exec import run_bootstrap

        return run_bootstrap(lab, twin, stdin)
    return run_script(lab, twin, script)


def _fail(exc: Exception) -> Output:
    return 1, b"", (str(exc) + "\r\n").encode()


# --- scripts --------------------------------------------------------------------------------

# Wrapping that Ansible's shell plugin and win_reboot add around a command (no effect in the subset).
_ANSIBLE_RC_TRAILER = re.compile(
    r"If\s*\(-not\s+\$\?\)\s*\{\s*If\s*\(Get-Variable\s+LASTEXITCODE\s+-ErrorAction\s+SilentlyContinue\)\s*"
    r"\{\s*exit\s+\$LASTEXITCODE\s*\}\s*Else\s*\{\s*exit\s+1\s*\}\s*\}\s*;?\s*$",
    re.IGNORECASE,
)
_HARMLESS = [
    re.compile(r"^Set-StrictMode\s+-Version\s+\w+$", re.I),
    re.compile(r"^\$ProgressPreference\s*=\s*'(SilentlyContinue|Continue)'$", re.I),
    re.compile(
        r"^try\s*\{\s*\[Console\]::OutputEncoding\s*=\s*New-Object\s+System\.Text\.UTF8Encoding\s*\}\s*catch\s*\{\s*\}$",
        re.I,
    ),
]
_EAP = re.compile(r"^\$ErrorActionPreference\s*=\s*['\"](Stop|Continue|SilentlyContinue)['\"]$", re.I)


def run_script(lab: Lab, twin: TwinRecord, script: str) -> Output:
    from rebuild.lab.exec import reboot

    special = reboot.match_reboot_script(script)
    if special is not None:
        return reboot.run_reboot_script(lab, twin, special)
    session = Session(lab, twin)
    body = _ANSIBLE_RC_TRAILER.sub("", script.strip())
    try:
        statements = split_statements(body)
        for stmt in statements:
            if any(p.match(stmt) for p in _HARMLESS):
                continue
            if m := _EAP.match(stmt):
                session.error_action = m.group(1)
                continue
            if m := re.fullmatch(r"exit\s*(-?\d+)?", stmt, re.I):
                return _finish(session, int(m.group(1) or 0))
            try:
                values = eval_statement(session, stmt)
                session.last_ok = True
            except PSError as exc:
                session.last_ok = False
                values = []
                if exc.terminating or session.error_action == "Stop":
                    session.err.append(exc.render())
                    return _finish(session, 1)
                if exc.message:
                    session.err.append(exc.render())
            if values is not None:
                session.out.append(_render(values))
    except NotSimulated as exc:
        session.err.append(str(exc) + "\r\n")
        return _finish(session, 1)
    return _finish(session, 0 if session.last_ok else 1)


def _render(values: list[Any] | str) -> str:
    if isinstance(values, str):
        return values
    return format_default(values)


def _finish(session: Session, rc: int) -> Output:
    return rc, "".join(session.out).encode("utf-8"), "".join(session.err).encode("utf-8")


def _scan(text: str, stop: Callable[[str, int], bool]) -> list[str]:
    """Split `text` where `stop` says so, outside quotes, parentheses, braces and brackets."""
    parts, buf, depth, quote = [], [], 0, ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            buf.append(c)
            if c == "`" and quote == '"' and i + 1 < len(text):
                buf.append(text[i + 1])
                i += 2
                continue
            if c == quote:
                if i + 1 < len(text) and text[i + 1] == quote:
                    buf.append(text[i + 1])
                    i += 2
                    continue
                quote = ""
            i += 1
            continue
        if c in "'\"":
            quote = c
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif depth == 0 and stop(text, i):
            parts.append("".join(buf).strip())
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    if quote:
        raise NotSimulated("the script has an unterminated string (PowerShell would fail to parse it)")
    parts.append("".join(buf).strip())
    return [p for p in parts if p]


def split_statements(script: str) -> list[str]:
    return _scan(script.replace("\r\n", "\n"), lambda t, i: t[i] in ";\n")


def split_pipeline(stmt: str) -> list[str]:
    stages = _scan(stmt, lambda t, i: t[i] == "|")
    return stages


# --- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    text: str


@dataclass(frozen=True)
class TypeLit:
    name: str


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<sq>'(?:[^']|'')*')
  | (?P<dq>"(?:[^"`]|`.|"")*")
  | (?P<comma>,)
  | (?P<block>\{)
  | (?P<type>\[[\w.+]+\](?!:))
  | (?P<typestatic>\[[\w.+]+\]::\w+)
  | (?P<array>@\()
  | (?P<paren>\()
  | (?P<param>-[A-Za-z][\w]*(?::)?)
  | (?P<var>\$\w+)
  | (?P<word>[^\s,'"{}()|;]+)
""",
    re.VERBOSE,
)


def _string_literal(tok: str) -> str:
    if tok.startswith("'"):
        return tok[1:-1].replace("''", "'")
    inner = tok[1:-1]
    if "$" in inner:
        raise not_simulated(f"variable expansion in double-quoted strings ({tok})")
    return re.sub(
        r"`(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t", "0": "\0"}.get(m.group(1), m.group(1)), inner
    ).replace('""', '"')


def _matching(text: str, start: int, open_c: str, close_c: str) -> int:
    depth, quote = 0, ""
    for j in range(start, len(text)):
        c = text[j]
        if quote:
            if c == quote:
                quote = ""
            continue
        if c in "'\"":
            quote = c
        elif c == open_c:
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return j
    raise NotSimulated("the script has unbalanced brackets (PowerShell would fail to parse it)")


def tokenize(stage: str) -> list[Any]:
    """Command-mode tokens: strings, Param, Block, TypeLit, lists (from commas), $true/$false/$null."""
    items: list[Any] = []
    pos = 0
    pending_comma = False
    while pos < len(stage):
        m = _TOKEN.match(stage, pos)
        if not m:
            raise not_simulated(f"this PowerShell syntax: {stage[pos : pos + 40]!r}")
        kind, tok = m.lastgroup, m.group(0)
        value: Any
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "comma":
            if not items:
                raise not_simulated(f"a leading comma in {stage!r}")
            pending_comma = True
            pos = m.end()
            continue
        if kind in ("sq", "dq"):
            value = _string_literal(tok)
        elif kind == "block":
            end = _matching(stage, m.start(), "{", "}")
            value = Block(stage[m.start() + 1 : end].strip())
            m_end = end + 1
            items.append(value)
            pos = m_end
            continue
        elif kind == "array":
            end = _matching(stage, m.start() + 1, "(", ")")
            inner = tokenize(stage[m.start() + 2 : end])
            value = [x for x in (inner[0] if len(inner) == 1 and isinstance(inner[0], list) else inner)]
            pos = end + 1
            items.append(value)
            continue
        elif kind == "paren":
            raise not_simulated(f"sub-expressions as command arguments ({stage!r})")
        elif kind == "type":
            value = TypeLit(tok[1:-1])
        elif kind == "typestatic":
            raise not_simulated(f"static .NET members ({tok})")
        elif kind == "param":
            if pending_comma:
                raise not_simulated(f"this argument list: {stage!r}")
            value = Param(tok[1:].rstrip(":"), has_value=tok.endswith(":"))
        elif kind == "var":
            low = tok.lower()
            if low in ("$true", "$false", "$null"):
                value = {"$true": True, "$false": False, "$null": None}[low]
            else:
                raise not_simulated(f"variables ({tok})")
        else:
            value = tok
        if pending_comma:
            prev = items[-1]
            if isinstance(prev, _CommaList):
                prev.append(value)
            else:
                items[-1] = _CommaList([prev, value])
            pending_comma = False
        else:
            items.append(value)
        pos = m.end()
    if pending_comma:
        raise not_simulated(f"a trailing comma in {stage!r}")
    return items


class _CommaList(list):  # type: ignore[type-arg]
    _commalist = True


# --- evaluation -----------------------------------------------------------------------------

_MEMBER = re.compile(r"^\((?P<inner>.*)\)(?P<chain>(?:\.\w+)+)(?P<call>\(\))?$", re.S)
_IS = re.compile(r"^\((?P<inner>.*)\)\s+-(?P<op>is|isnot)\s+\[(?P<type>[\w.]+)\]$", re.S | re.I)


def eval_statement(session: Session, stmt: str) -> list[Any] | str:
    if stmt.startswith("$"):
        raise not_simulated(f"variables and assignments ({stmt[:60]!r})")
    return eval_pipeline(session, stmt)


def eval_expression(session: Session, stmt: str) -> list[Any] | str | None:
    """A pipeline's first element when it is an expression, not a command; None if it is a command."""
    if m := _IS.match(stmt):
        values = _objects(eval_pipeline(session, m.group("inner")))
        kinds = {
            "system.io.fileinfo": "System.IO.FileInfo",
            "system.io.directoryinfo": "System.IO.DirectoryInfo",
            "string": "System.String",
            "system.string": "System.String",
        }
        wanted = kinds.get(m.group("type").lower())
        if wanted is None:
            raise not_simulated(f"the -is test against [{m.group('type')}]")
        subject = values[0] if len(values) == 1 else values
        result = isinstance(subject, PSObj) and subject.type_name == wanted
        if wanted == "System.String":
            result = isinstance(subject, str)
        return [result if m.group("op").lower() == "is" else not result]
    if m := _MEMBER.match(stmt):
        values = _objects(eval_pipeline(session, m.group("inner")))
        names = m.group("chain").strip(".").split(".")
        method = names.pop() if m.group("call") else None
        for name in names:
            values = member(values, name)
        if method is not None:
            values = [call_method(v, method) for v in values]
        return values
    if re.fullmatch(r"'(?:[^']|'')*'|\"(?:[^\"`$]|`.)*\"", stmt):
        return [_string_literal(stmt)]
    if re.fullmatch(r"-?\d+", stmt):
        return [int(stmt)]
    if stmt.startswith("$"):
        raise not_simulated(f"variables and assignments ({stmt[:60]!r})")
    if stmt.startswith("("):
        raise not_simulated(f"this expression: {stmt[:80]!r}")
    return None


def _objects(values: list[Any] | str) -> list[Any]:
    if isinstance(values, str):
        raise not_simulated("member access on formatted text (e.g. on ConvertTo-Json output)")
    return values


def member(values: list[Any], name: str) -> list[Any]:
    """Member access with PowerShell's member enumeration over collections."""
    if name.lower() in ("count", "length") and (len(values) != 1 or not isinstance(values[0], PSObj)):
        return [len(values)]
    out: list[Any] = []
    for v in values:
        if isinstance(v, PSObj):
            found, pv = v.get(name)
            if found:
                out.extend(pv if isinstance(pv, list) else [pv])
            continue
        if isinstance(v, str) and name.lower() == "length":
            out.append(len(v))
            continue
        raise not_simulated(f"the member .{name} of {type(v).__name__} values")
    return out


def call_method(value: Any, method: str) -> Any:
    if isinstance(value, PSDate) and method.lower() == "tofiletime":
        return value.to_file_time()
    if isinstance(value, str) and method.lower() in ("trim", "tolower", "toupper"):
        return {"trim": value.strip(), "tolower": value.lower(), "toupper": value.upper()}[method.lower()]
    if method.lower() == "tostring":
        return scalar_text(value)
    raise not_simulated(f"the method .{method}() on {type(value).__name__} values")


def eval_pipeline(session: Session, text: str) -> list[Any] | str:
    stages = split_pipeline(text)
    values: list[Any] | None = None
    rendered: str | None = None
    for index, stage in enumerate(stages):
        if rendered is not None:
            raise not_simulated(f"piping text output into {stage.split()[0]}")
        if index == 0:
            expr = eval_expression(session, stage)
            if expr is not None:
                values = _objects(expr) if len(stages) > 1 else None
                if len(stages) == 1:
                    return expr
                continue
        tokens = tokenize(stage)
        if not tokens or not isinstance(tokens[0], str):
            raise not_simulated(f"this pipeline element: {stage!r}")
        name = tokens[0]
        args = tokens[1:]
        if index == 0:
            values = cmdlets.run_source(session, name, args)
            continue
        assert values is not None
        out = run_filter(name, args, values)
        if isinstance(out, str):
            rendered = out
        else:
            values = out
    return rendered if rendered is not None else (values or [])


# --- parameter binding ----------------------------------------------------------------------


# --- filters --------------------------------------------------------------------------------


def run_filter(name: str, args: list[Any], values: list[Any]) -> list[Any] | str:
    low = name.lower()
    if low in ("select-object", "select"):
        b = bind(
            "Select-Object", args, ["Property", "ExpandProperty", "First", "Last", "Unique"], ["Property"]
        )
        if "Last" in b or "Unique" in b:
            raise not_simulated("Select-Object -Last/-Unique")
        if "First" in b:
            values = values[: int(b["First"])]
        if "ExpandProperty" in b:
            prop = str(b["ExpandProperty"])
            out: list[Any] = []
            for v in values:
                found, pv = v.get(prop) if isinstance(v, PSObj) else (False, None)
                if not found:
                    raise PSError("Select-Object", f'Property "{prop}" cannot be found.')
                out.extend(pv if isinstance(pv, list) else [pv])
            return out
        if "Property" in b:
            props = [str(p) for p in as_list(b["Property"])]
            out = []
            for v in values:
                if not isinstance(v, PSObj):
                    raise not_simulated("Select-Object -Property on non-object values")
                sel = PSObj(f"Selected.{v.type_name}")
                for p in props:
                    if "*" in p:
                        rx = re.compile("^" + re.escape(p).replace("\\*", ".*") + "$", re.I)
                        sel.props.update({k: pv for k, pv in v.props.items() if rx.match(k)})
                    else:
                        found, pv = v.get(p)
                        key = next((k for k in v.props if k.lower() == p.lower()), p)
                        sel.props[key] = pv if found else None
                out.append(sel)
            return out
        return values
    if low in ("where-object", "where", "?"):
        return _where(args, values)
    if low in ("sort-object", "sort"):
        b = bind("Sort-Object", args, ["Property", "Descending"], ["Property"])
        prop = str(b.get("Property", ""))
        return sorted(
            values,
            key=lambda v: scalar_text(v.get(prop)[1] if isinstance(v, PSObj) and prop else v).lower(),
            reverse=bool(b.get("Descending")),
        )
    if low == "convertto-json":
        b = bind("ConvertTo-Json", args, ["Depth", "Compress", "InputObject"], [], switches=("Compress",))
        if "InputObject" in b:
            raise not_simulated("ConvertTo-Json -InputObject with a pipeline")
        text = convert_to_json(values, compress=bool(b.get("Compress")), depth=int(b.get("Depth", 2)))
        return text + "\r\n" if text else ""
    if low in ("out-null",):
        return []
    raise not_simulated(f"the pipeline command {name}")


_CMP = re.compile(
    r"^\$_\.(?P<prop>\w+)\s+-(?P<op>eq|ne|like|notlike|match|gt|lt|ge|le)\s+(?P<val>'[^']*'|\"[^\"$]*\"|-?\d+|\$true|\$false|\$null)$",
    re.I,
)


def _compare(left: Any, op: str, right: Any) -> bool:
    ls = scalar_text(left).lower() if not isinstance(left, (int, float)) or isinstance(left, bool) else left
    rs = (
        scalar_text(right).lower()
        if not isinstance(right, (int, float)) or isinstance(right, bool)
        else right
    )
    op = op.lower()
    if op in ("eq", "ne"):
        same = str(ls) == str(rs)
        return same if op == "eq" else not same
    if op in ("like", "notlike"):
        rx = "^" + re.escape(str(rs)).replace("\\*", ".*").replace("\\?", ".") + "$"
        hit = re.match(rx, str(ls)) is not None
        return hit if op == "like" else not hit
    if op == "match":
        return re.search(str(right), scalar_text(left), re.I) is not None
    try:
        lf, rf = float(str(ls)), float(str(rs))
    except ValueError:
        return False
    return {"gt": lf > rf, "lt": lf < rf, "ge": lf >= rf, "le": lf <= rf}[op]


def _literal(text: str) -> Any:
    low = text.lower()
    if low in ("$true", "$false", "$null"):
        return {"$true": True, "$false": False, "$null": None}[low]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return _string_literal(text)


def _where(args: list[Any], values: list[Any]) -> list[Any]:
    if len(args) == 1 and isinstance(args[0], Block):
        m = _CMP.match(args[0].text)
        if not m:
            raise not_simulated(
                f"this Where-Object script block: {{ {args[0].text} }} (only $_.Prop -op value)"
            )
        prop, op, right = m.group("prop"), m.group("op"), _literal(m.group("val"))
    elif len(args) == 3 and isinstance(args[0], str) and isinstance(args[1], Param):
        prop, op, right = args[0], args[1].name, args[2]
        if op.lower() not in ("eq", "ne", "like", "notlike", "match", "gt", "lt", "ge", "le"):
            raise not_simulated(f"Where-Object -{op}")
    else:
        raise not_simulated("this Where-Object form")
    out = []
    for v in values:
        left = v.get(prop)[1] if isinstance(v, PSObj) else None
        if _compare(left, op, right):
            out.append(v)
    return out
