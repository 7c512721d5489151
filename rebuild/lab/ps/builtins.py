"""Engine cmdlets, operators, casts and the .NET members the product scripts use (SIMULATION).

Operators follow about_Comparison_Operators and about_Operators: comparisons are
case-insensitive unless prefixed `c`; with a collection on the left they filter it and return
the matching elements; `-contains`/`-in` test membership; `+` concatenates when the left is a
string or an array; `-f` is .NET composite formatting. Every member not listed here fails loudly.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from typing import TYPE_CHECKING, Any

from rebuild.lab.exec.psobjects import PSDate, PSEnum, PSObj, convert_to_json
from rebuild.lab.ps import values as v
from rebuild.lab.ps.ansible_basic import AnsibleModule
from rebuild.lab.ps.binding import Param, Signature
from rebuild.lab.ps.commands import Call, Cmdlet
from rebuild.lab.ps.errors import ErrorRecord, NotSimulated, PSRuntimeError
from rebuild.lab.ps.values import GenericList, Hashtable, ScriptBlock, TypeRef

if TYPE_CHECKING:
    from rebuild.lab.ps.evaluator import Evaluator, Scope
    from rebuild.lab.ps.parser import Node

LEARN = "https://learn.microsoft.com/powershell/module/"


def ps_version_table() -> Hashtable:
    h = Hashtable()
    h.set("PSVersion", v.PSVersion((5, 1, 19041, 1)))
    h.set("PSEdition", "Desktop")
    return h


# --- types -------------------------------------------------------------------------------------

TYPES = {
    "int": "System.Int32",
    "int32": "System.Int32",
    "long": "System.Int64",
    "int64": "System.Int64",
    "uint32": "System.UInt32",
    "uint64": "System.UInt64",
    "string": "System.String",
    "bool": "System.Boolean",
    "boolean": "System.Boolean",
    "double": "System.Double",
    "datetime": "System.DateTime",
    "version": "System.Version",
    "array": "System.Array",
    "object": "System.Object",
    "hashtable": "System.Collections.Hashtable",
    "ordered": "System.Collections.Specialized.OrderedDictionary",
    "pscustomobject": "System.Management.Automation.PSObject",
    "psobject": "System.Management.Automation.PSObject",
    "switch": "System.Management.Automation.SwitchParameter",
    "char": "System.Char",
    "byte": "System.Byte",
    "guid": "System.Guid",
    "void": "System.Void",
    "scriptblock": "System.Management.Automation.ScriptBlock",
    "regex": "System.Text.RegularExpressions.Regex",
    "exception": "System.Exception",
    "gc": "System.GC",
    "math": "System.Math",
    "bitconverter": "System.BitConverter",
    "globalization.cultureinfo": "System.Globalization.CultureInfo",
    "globalization.datetimestyles": "System.Globalization.DateTimeStyles",
    "environment": "System.Environment",
    "convert": "System.Convert",
    "io.path": "System.IO.Path",
    "io.file": "System.IO.File",
    "timespan": "System.TimeSpan",
}


def resolve_type(ev: Evaluator, text: str, node: Node) -> TypeRef:
    t = re.sub(r"\s+", "", text)
    array = t.endswith("[]")
    if array:
        t = t[:-2]
    m = re.fullmatch(r"(.+?)\[(.+)\]", t)
    args: tuple[str, ...] = ()
    if m:
        t, args = m.group(1), tuple(resolve_type(ev, a, node).name for a in m.group(2).split(","))
    key = t.lower().removeprefix("system.")
    name = TYPES.get(key) or TYPES.get(t.lower())
    if name is None:
        first = t.split(".")[0].lower()
        system_ns = {
            "io",
            "collections",
            "security",
            "net",
            "text",
            "management",
            "diagnostics",
            "componentmodel",
            "globalization",
            "runtime",
            "threading",
        }
        name = "System." + t if "." not in t or first in system_ns else t
        if key in ("collections.generic.list",):
            name = "System.Collections.Generic.List"
    if array:
        return TypeRef(name + "[]", args)
    return TypeRef(name, args)


def is_type(value: Any, tref: TypeRef) -> bool:
    n = tref.name
    if n.endswith("[]") or n == "System.Array":
        return isinstance(value, list) and not isinstance(value, GenericList)
    checks: dict[str, Any] = {
        "System.String": lambda x: isinstance(x, str),
        "System.Int32": lambda x: isinstance(x, int) and not isinstance(x, bool) and -(2**31) <= x < 2**31,
        "System.Int64": lambda x: isinstance(x, int) and not isinstance(x, bool),
        "System.Boolean": lambda x: isinstance(x, bool),
        "System.Double": lambda x: isinstance(x, float),
        "System.Collections.Hashtable": lambda x: isinstance(x, Hashtable) and not x.ordered,
        "System.Collections.IDictionary": lambda x: isinstance(x, Hashtable),
        "System.Collections.Specialized.OrderedDictionary": lambda x: isinstance(x, Hashtable) and x.ordered,
        "System.DateTime": lambda x: isinstance(x, PSDate),
        "System.Version": lambda x: isinstance(x, v.PSVersion),
        "System.Object": lambda x: x is not None,
        "System.Management.Automation.ScriptBlock": lambda x: isinstance(x, ScriptBlock),
        "System.Management.Automation.ErrorRecord": lambda x: isinstance(x, ErrorRecord),
        "System.Management.Automation.PSObject": lambda x: x is not None,
        "System.Collections.Generic.List": lambda x: isinstance(x, GenericList),
        "System.Collections.IEnumerable": lambda x: isinstance(x, list | Hashtable | str),
        "System.Collections.IList": lambda x: isinstance(x, list),  # arrays and List[T] implement IList
    }
    check = checks.get(n)
    if check is None:
        if isinstance(value, PSObj):
            return value.type_name.lower() == n.lower()
        raise NotSimulated(f"the type test -is [{n}]")
    return bool(check(value))


_INT_RANGES = {
    "System.Int32": (-(2**31), 2**31 - 1),
    "System.UInt32": (0, 2**32 - 1),
    "System.UInt64": (0, 2**64 - 1),
    "System.Byte": (0, 255),
}


def cast(ev: Evaluator, value: Any, tref: TypeRef, node: Node | None) -> Any:
    """Conversions of about_Type_Conversion for the types our scripts use."""
    n = tref.name
    if n == "System.String" and type(value) is str:
        return value  # the common case, first ($OFS joins arrays only)
    if n.endswith("[]"):
        element = TypeRef(n[:-2], tref.args)
        items = v.as_list(value) if not isinstance(value, Hashtable) else [value]
        return [cast(ev, x, element, node) for x in items] if element.name != "System.Object" else items
    if n == "System.Collections.Generic.List":
        element_type = tref.args[0] if tref.args else "System.Object"
        items = v.as_list(value)
        if element_type != "System.Object":
            items = [cast(ev, x, TypeRef(element_type), node) for x in items]
        return GenericList(element_type, items)
    if n == "System.Object" or (
        n == "System.Management.Automation.PSObject" and not isinstance(value, Hashtable)
    ):
        return value
    if n == "System.Management.Automation.PSObject":
        assert isinstance(value, Hashtable)
        return PSObj("System.Management.Automation.PSCustomObject", {str(k): x for k, x in value.items()})
    if n == "System.Void":
        return None
    if isinstance(value, list) and n not in ("System.String", "System.Boolean", "System.Array"):
        if len(value) == 1:
            value = value[0]
        else:
            raise PSRuntimeError(
                ErrorRecord(
                    f'Cannot convert the "{v.to_string(value)}" value of type "System.Object[]" '
                    f'to type "{n}".',
                    "System.Management.Automation.PSInvalidCastException",
                )
            )
    if n == "System.String":
        return v.to_string(value, v.to_string(ev.get_var("OFS")))
    if n == "System.Boolean":
        return v.truthy(value)
    if n in ("System.Int32", "System.Int64", "System.UInt32", "System.UInt64", "System.Byte"):
        if isinstance(value, str) and not value.strip():
            return 0
        number = v.to_int(value)
        low, high = _INT_RANGES.get(n, (None, None))
        if low is not None and high is not None and not low <= number <= high:
            # about_Type_Conversion: a value outside the target's range does not convert.
            raise PSRuntimeError(
                ErrorRecord(
                    f'Cannot convert value "{v.to_string(value)}" to type "{n}". Error: "Value was either '
                    f'too large or too small for {n.removeprefix("System.")}."',
                    "System.Management.Automation.PSInvalidCastException",
                )
            )
        return number
    if n == "System.Double":
        return float(v.to_number(value))
    if n == "System.Version":
        return value if isinstance(value, v.PSVersion) else v.parse_version(value)
    if n == "System.DateTime":
        return v.parse_datetime(value)
    if n == "System.Management.Automation.SwitchParameter":
        return v.SwitchParameter(v.truthy(value))
    if n in ("System.Collections.Hashtable", "System.Collections.IDictionary") and isinstance(
        value, Hashtable
    ):
        return value
    if n == "System.Array":
        return v.as_list(value)
    if n == "System.Guid":
        return str(uuid.UUID(v.to_string(value)))
    if n == "System.Management.Automation.ScriptBlock" and isinstance(value, ScriptBlock):
        return value
    raise NotSimulated(f"the conversion to [{n}]", ev.where(node) if ev else "")


# --- operators ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _operator(op: str) -> tuple[str, bool]:
    """An operator without its case prefix, and whether it is case-sensitive:
    about_Comparison_Operators, case-insensitive unless the c prefix says otherwise."""
    if op.startswith(("-c", "-i")) and op[2:] in (
        "eq",
        "ne",
        "gt",
        "ge",
        "lt",
        "le",
        "like",
        "notlike",
        "match",
        "notmatch",
        "contains",
        "notcontains",
        "in",
        "notin",
        "replace",
        "split",
    ):
        return "-" + op[2:], op.startswith("-c")
    return op, False


def binary(ev: Evaluator, op: str, left: Any, right: Any, node: Node) -> Any:
    base, case = _operator(op)
    if base in ("-eq", "-ne", "-gt", "-ge", "-lt", "-le", "-like", "-notlike", "-match", "-notmatch"):
        if isinstance(left, list):  # about_Comparison_Operators: a collection on the left filters
            return [x for x in left if _scalar_compare(ev, base, x, right, case)]
        return _scalar_compare(ev, base, left, right, case)
    if base in ("-contains", "-notcontains"):
        found = any(v.equals(x, right, case) for x in (left if isinstance(left, list) else [left]))
        return found if base == "-contains" else not found
    if base in ("-in", "-notin"):
        found = any(v.equals(x, left, case) for x in (right if isinstance(right, list) else [right]))
        return found if base == "-in" else not found
    if base == "-replace":
        pattern, repl = [*right, ""][:2] if isinstance(right, list) else (right, "")
        repl_py = re.sub(r"\$(\d+)", r"\\\1", v.to_string(repl))
        flags = 0 if case else re.I
        if isinstance(left, list):
            return [re.sub(v.to_string(pattern), repl_py, v.to_string(x), flags=flags) for x in left]
        return re.sub(v.to_string(pattern), repl_py, v.to_string(left), flags=flags)
    if base == "-split":
        return re.split(v.to_string(right), v.to_string(left), flags=0 if case else re.I)
    if op == "-join":
        return v.to_string(right).join(v.to_string(x) for x in v.as_list(left))
    if op == "-f":
        return format_string(v.to_string(left), v.as_list(right) if isinstance(right, list) else [right])
    if op == "..":
        a, b = v.to_int(left), v.to_int(right)
        return list(range(a, b + 1) if a <= b else range(a, b - 1, -1))
    if op == "-band":
        return v.to_int(left) & v.to_int(right)
    if op == "-bor":
        return v.to_int(left) | v.to_int(right)
    if op == "-xor":
        return v.truthy(left) != v.truthy(right)
    if op in ("+", "-", "*", "/", "%"):
        return arithmetic(op, left, right)
    raise NotSimulated(f"the operator {op}", ev.where(node))


def _scalar_compare(ev: Evaluator, op: str, left: Any, right: Any, case: bool) -> bool:
    if op == "-eq":
        return v.equals(left, right, case)
    if op == "-ne":
        return not v.equals(left, right, case)
    if op == "-like":
        return v.like(left, right, case)
    if op == "-notlike":
        return not v.like(left, right, case)
    if op == "-match":
        return ev.match(left, right, case)
    if op == "-notmatch":
        return not ev.match(left, right, case)
    c = v.compare(left, right, case)
    return {"-gt": c > 0, "-ge": c >= 0, "-lt": c < 0, "-le": c <= 0}[op]


def arithmetic(op: str, left: Any, right: Any) -> Any:
    if op == "+":
        if left is None:
            return right if not isinstance(right, list) else list(right)
        if isinstance(left, list):
            return list(left) + (list(right) if isinstance(right, list) else [right])
        if isinstance(left, str):
            return left + v.to_string(right)
        if isinstance(left, Hashtable):
            if not isinstance(right, Hashtable):
                raise PSRuntimeError(ErrorRecord("A hash table can only be added to another hash table."))
            merged = left.copy()
            for k, x in right.items():
                merged.add(k, x)
            return merged
        if isinstance(left, PSDate) and isinstance(right, v.PSTimeSpan):
            return left.shifted(right.delta)
    if op == "-":
        if isinstance(left, PSDate) and isinstance(right, PSDate):
            return v.PSTimeSpan(left.when - right.when)
        if isinstance(left, PSDate) and isinstance(right, v.PSTimeSpan):
            return left.shifted(-right.delta)
    if op == "*" and isinstance(left, str):
        return left * v.to_int(right)
    a, b = v.to_number(left), v.to_number(right)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise PSRuntimeError(ErrorRecord("Attempted to divide by zero.", "System.DivideByZeroException"))
        r = a / b
        return int(r) if float(r).is_integer() and isinstance(a, int) and isinstance(b, int) else r
    return a % b


def format_string(fmt: str, args: list[Any]) -> str:
    """.NET composite formatting for `-f` and String.Format: {0}, {0,-10}, {0:N2}, {{ }}."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        idx = int(m.group(1))
        if idx >= len(args):
            raise PSRuntimeError(
                ErrorRecord(
                    "Error formatting a string: Index (zero based) must be greater than or equal to zero "
                    "and less than the size of the argument list..",
                    "System.FormatException",
                )
            )
        value = args[idx]
        spec = m.group(3)
        text = _format_spec(value, spec) if spec else v.to_string(value)
        if m.group(2):
            width = int(m.group(2))
            text = text.rjust(width) if width > 0 else text.ljust(-width)
        return text

    return re.sub(r"\{\{|\}\}|\{(\d+)(?:,(-?\d+))?(?::([^}]*))?\}", repl, fmt)


def _format_spec(value: Any, spec: str) -> str:
    m = re.fullmatch(r"([NnDdXxFf])(\d*)", spec)
    if m:
        kind, digits = m.group(1), m.group(2)
        if kind in "Dd":
            return str(v.to_int(value)).zfill(int(digits or 0))
        if kind in "Xx":
            text = format(v.to_int(value), "x" if kind == "x" else "X")
            return text.zfill(int(digits or 0))
        if kind in "Ff":
            return f"{float(v.to_number(value)):.{int(digits or 2)}f}"
        return f"{float(v.to_number(value)):,.{int(digits or 2)}f}"
    if isinstance(value, PSDate):
        return date_format(value, spec)
    raise NotSimulated(f"the format specifier '{spec}'")


def date_format(d: PSDate, fmt: str) -> str:
    """DateTime.ToString(fmt) of the date's clock. "o" (round-trip) ends with the Kind: Z for a Utc
    date, the offset for a Local one (learn.microsoft.com/dotnet/standard/base-types/
    standard-date-and-time-format-strings, "The round-trip (O, o) format specifier")."""
    w = d.clock()
    if fmt == "s":
        return w.strftime("%Y-%m-%dT%H:%M:%S")
    if fmt == "o":
        text = w.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"
        if d.kind != "Local":
            return text + "Z"
        offset = w.strftime("%z")
        return f"{text}{offset[:3]}:{offset[3:]}"
    if fmt == "u":
        return w.strftime("%Y-%m-%d %H:%M:%SZ")
    tokens = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
    out = fmt
    if not re.fullmatch(r"[yMdHms\-:T ._/]+", fmt):
        raise NotSimulated(f"the date format '{fmt}'")
    for k, x in tokens.items():
        out = out.replace(k, x)
    return w.strftime(out)


# --- members -----------------------------------------------------------------------------------


def _no_member(ev: Evaluator, obj: Any, name: str, node: Node) -> NotSimulated:
    return NotSimulated(f"the member '{name}' of {type_label(obj)}", ev.where(node))


def type_label(obj: Any) -> str:
    if obj is None:
        return "$null"
    if isinstance(obj, PSObj):
        return f"[{obj.type_name}]"
    if isinstance(obj, Hashtable):
        return (
            "[System.Collections.Generic.Dictionary[string,object]]" if obj.case_sensitive else "[hashtable]"
        )
    if isinstance(obj, list):
        return "[object[]]"
    return f"[{type(obj).__name__}]"


# about_Intrinsic_Members (5.1): every scalar has Count and Length (1; 0 for $null) unless it has its
# own; under Set-StrictMode 2.0+ Windows PowerShell 5.1 refuses them as missing properties.
_INTRINSIC_COUNT = {"count", "length"}


def _all_properties_known(obj: PSObj) -> bool:
    """A PSCustomObject (a [pscustomobject] cast, New-Object PSObject, Get-ItemProperty, Import-Csv)
    or Select-Object's output has exactly the note properties the lab gave it: a name it lacks does
    not exist on Windows either. A typed object (a service, a registry key...) carries only the
    properties the lab models, so a missing name may be one it does not simulate."""
    return obj.type_name == "System.Management.Automation.PSCustomObject" or obj.type_name.startswith(
        "Selected."
    )


def _property_not_found_strict(name: str) -> PSRuntimeError:
    """Reading a property an object does not have under Set-StrictMode -Version 2.0 or later
    (Microsoft Learn, Set-StrictMode, 5.1: "prohibits references to non-existent properties of an
    object"; the error's id is PropertyNotFoundStrict). Without strict mode the read gives $null."""
    return PSRuntimeError(
        ErrorRecord(
            f"The property '{name}' cannot be found on this object. Verify that the property exists.",
            "System.Management.Automation.PropertyNotFoundException",
            category="InvalidOperation",
            error_id="PropertyNotFoundStrict",
        )
    )


def get_member(ev: Evaluator, obj: Any, name: str, node: Node) -> Any:
    low = name.lower()
    if isinstance(obj, AnsibleModule):
        return obj.member(ev, name, node)
    if obj is None:
        if ev.strict >= 2:
            raise _property_not_found_strict(name)
        return 0 if low in _INTRINSIC_COUNT else None
    if isinstance(obj, Hashtable):
        if name in obj:
            return obj.get(name)
        if low == "count":
            return len(obj)
        if low == "keys":
            return obj.keys()
        if low == "values":
            return obj.values()
        return None
    if isinstance(obj, list):
        if low in ("count", "length"):
            return len(obj)
        # Member enumeration (PowerShell 3+): the member of every element.
        out: list[Any] = []
        for x in obj:
            value = get_member(ev, x, name, node)
            out.extend(value if isinstance(value, list) else [value])
        out = [x for x in out if x is not None]
        return out[0] if len(out) == 1 else (out or None)
    if isinstance(obj, str):
        if low == "length":
            return len(obj)
        raise _no_member(ev, obj, name, node)
    if isinstance(obj, PSObj):
        found, value = obj.get(name)
        if found:
            return value
        if low == "psobject":
            return PSObj(
                "PSObject",
                {
                    "Properties": [
                        PSObj("PSNoteProperty", {"Name": k, "Value": x}) for k, x in obj.props.items()
                    ]
                },
            )
        if not _all_properties_known(obj):
            raise _no_member(ev, obj, name, node)  # a .NET member the lab may not model: loud
        if ev.strict >= 2:
            raise _property_not_found_strict(name)
        return 1 if low in _INTRINSIC_COUNT else None
    if isinstance(obj, ErrorRecord):
        if low == "exception":
            return PSObj(obj.exception_type, {"Message": obj.message, "GetType": obj.exception_type})
        if low == "categoryinfo":
            return PSObj("CategoryInfo", {"Category": obj.category})
        if low == "fullyqualifiederrorid":
            return obj.error_id
        if low == "targetobject":
            return obj.target
    if isinstance(obj, PSDate):
        clock = obj.clock()
        attrs = {
            "year": clock.year,
            "month": clock.month,
            "day": clock.day,
            "hour": clock.hour,
            "minute": clock.minute,
            "second": clock.second,
            "ticks": obj.to_file_time() + 504911232000000000,
        }
        if low in attrs:
            return attrs[low]
    if isinstance(obj, v.PSTimeSpan):
        attrs2 = {
            "totalhours": obj.total_hours,
            "totalseconds": obj.delta.total_seconds(),
            "totalminutes": obj.delta.total_seconds() / 60,
            "totaldays": obj.delta.total_seconds() / 86400,
            "days": obj.delta.days,
        }
        if low in attrs2:
            return attrs2[low]
    if isinstance(obj, v.PSVersion):
        names = ["major", "minor", "build", "revision"]
        if low in names:
            i = names.index(low)
            return obj.parts[i] if i < len(obj.parts) else -1
    if isinstance(obj, PSEnum) and low == "value__":
        return obj.value
    if isinstance(obj, v.DotNetObject) and low in {k.lower() for k in obj.data}:
        return next(x for k, x in obj.data.items() if k.lower() == low)
    raise _no_member(ev, obj, name, node)


def set_member(ev: Evaluator, obj: Any, name: str, value: Any, node: Node) -> None:
    if isinstance(obj, v.DotNetObject):
        obj.data[name] = value
        return
    if obj is None:
        raise PSRuntimeError(
            ErrorRecord(
                f"The property '{name}' cannot be found on this object. "
                "Verify that the property exists and can be set."
            )
        )
    raise _no_member(ev, obj, name, node)


def call_method(ev: Evaluator, obj: Any, name: str, args: list[Any], node: Node) -> Any:
    low = name.lower()
    if type(obj) is str:  # the common case, first
        return _string_method(ev, obj, low, args, node)
    if isinstance(obj, AnsibleModule):
        return obj.call(ev, name, args, node)
    if isinstance(obj, v.DotNetObject) and low in obj.methods:
        return obj.methods[low](args)
    if isinstance(obj, v.DotNetObject) and obj.type_name == "System.Guid" and low == "tostring":
        fmt = v.to_string(args[0]) if args else "D"
        text = str(obj.data["value"])
        return text.replace("-", "") if fmt.upper() == "N" else text
    if obj is None:
        raise PSRuntimeError(
            ErrorRecord(
                "You cannot call a method on a null-valued expression.",
                category="InvalidOperation",
                error_id="InvokeMethodOnNull",
            )
        )
    if isinstance(obj, str):
        return _string_method(ev, obj, low, args, node)
    if isinstance(obj, Hashtable):
        if low == "contains" and obj.case_sensitive:
            # Dictionary<string, object> has Contains only as an explicit IDictionary member.
            raise _no_member(ev, obj, name + "()", node)
        if low in ("containskey", "contains") and len(args) == 1:
            return args[0] in obj
        if low == "add" and len(args) == 2:
            obj.add(args[0], args[1])
            return None
        if low == "remove" and len(args) == 1:
            obj.remove(args[0])
            return None
        if low == "clone" and not args:
            return obj.copy()
    if isinstance(obj, list):
        if low == "add" and len(args) == 1 and isinstance(obj, GenericList):
            obj.append(args[0])
            return None
        if low == "add" and not isinstance(obj, GenericList):
            raise PSRuntimeError(
                ErrorRecord(
                    'Exception calling "Add" with "1" argument(s): "Collection was of a fixed size."',
                    "System.Management.Automation.MethodInvocationException",
                )
            )
        if low == "contains" and len(args) == 1:
            return any(v.equals(x, args[0], True) for x in obj)
        if low == "toarray" and isinstance(obj, GenericList):
            return list(obj)
        if low == "remove" and isinstance(obj, GenericList) and len(args) == 1:
            for i, x in enumerate(obj):
                if v.equals(x, args[0], True):
                    del obj[i]
                    return True
            return False
    if isinstance(obj, ScriptBlock) and low in ("invoke", "invokereturnasis"):
        return ev.invoke_block_value(obj, args)
    if isinstance(obj, PSDate):
        if low == "tostring":
            return date_format(obj, v.to_string(args[0])) if args else v.to_string(obj)
        if low == "touniversaltime" and not args:
            return obj.to_universal()
        if low == "tofiletime" or low == "tofiletimeutc":
            return obj.to_file_time()
        adds = {"adddays": "days", "addhours": "hours", "addminutes": "minutes", "addseconds": "seconds"}
        if low in adds and len(args) == 1:
            return obj.shifted(dt.timedelta(**{adds[low]: float(v.to_number(args[0]))}))
    if low == "tostring" and not args:
        return v.to_string(obj)
    if low == "gettype" and not args:
        return TypeRef(type_label(obj).strip("[]"))
    if low == "equals" and len(args) == 1:
        return v.equals(obj, args[0], True)
    raise _no_member(ev, obj, name + "()", node)


_STRING_COMPARISONS = {
    "currentculture",
    "currentcultureignorecase",
    "invariantculture",
    "invariantcultureignorecase",
    "ordinal",
    "ordinalignorecase",
}


def _string_method(ev: Evaluator, s: str, low: str, args: list[Any], node: Node) -> Any:
    a: list[str] = [v.to_string(x) for x in args]
    n = len(args)
    if low in ("tolower", "tolowerinvariant") and n == 0:
        return s.lower()
    if low in ("toupper", "toupperinvariant") and n == 0:
        return s.upper()
    if low in ("trim", "trimend", "trimstart"):
        chars = (
            "".join(
                "".join(v.to_string(c) for c in x) if isinstance(x, list) else v.to_string(x) for x in args
            )
            or None
        )
        return {"trim": s.strip, "trimend": s.rstrip, "trimstart": s.lstrip}[low](chars)
    if low == "replace" and n == 2:
        return s.replace(a[0], a[1])  # String.Replace is case-sensitive
    if low == "split" and n >= 1:
        seps = (
            [v.to_string(c) for c in args[0]] if isinstance(args[0], list) else list(a[0])
        )  # [char[]] separators
        parts = re.split("|".join(re.escape(x) for x in seps), s) if seps else [s]
        return parts
    if low in ("startswith", "endswith") and n == 2:
        # String.StartsWith/EndsWith(value, StringComparison): the *IgnoreCase members compare
        # case-insensitively (learn.microsoft.com/dotnet/api/system.stringcomparison).
        comparison = a[1].lower()
        if comparison not in _STRING_COMPARISONS:
            raise PSRuntimeError(
                ErrorRecord(
                    f'Cannot convert argument "comparisonType", with value: "{a[1]}", for "{low}" to type '
                    '"System.StringComparison".',
                    "System.Management.Automation.MethodException",
                )
            )
        text, part = (s.lower(), a[0].lower()) if comparison.endswith("ignorecase") else (s, a[0])
        return text.startswith(part) if low == "startswith" else text.endswith(part)
    if low == "startswith" and n == 1:
        return s.startswith(a[0])
    if low == "endswith" and n == 1:
        return s.endswith(a[0])
    if low == "contains" and n == 1:
        return a[0] in s
    if low == "indexof" and n == 1:
        return s.find(a[0])
    if low == "substring" and n in (1, 2):
        start = v.to_int(args[0])
        length = v.to_int(args[1]) if n == 2 else len(s) - start
        if start < 0 or start + length > len(s) or length < 0:
            raise PSRuntimeError(
                ErrorRecord(
                    f'Exception calling "Substring" with "{n}" argument(s): '
                    '"Index and length must refer to a location within the string.',
                    "System.Management.Automation.MethodInvocationException",
                )
            )
        return s[start : start + length]
    if low in ("padleft", "padright") and n in (1, 2):
        width = v.to_int(args[0])
        fill = a[1] if n == 2 else " "
        return s.rjust(width, fill) if low == "padleft" else s.ljust(width, fill)
    if low == "tostring" and n == 0:
        return s
    if low == "equals" and n == 1:
        return s == a[0]
    raise _no_member(ev, s, low + "()", node)


def index(ev: Evaluator, obj: Any, idx: Any, node: Node) -> Any:
    if obj is None:
        raise PSRuntimeError(
            ErrorRecord("Cannot index into a null array.", category="InvalidOperation", error_id="NullArray")
        )
    if isinstance(obj, Hashtable):
        if isinstance(idx, list):
            return [obj.get(k) for k in idx]
        return obj.get(idx)
    if isinstance(obj, list | str):
        if isinstance(idx, list):
            return [index(ev, obj, i, node) for i in idx]
        i = v.to_int(idx)
        if -len(obj) <= i < len(obj):
            return obj[i]
        return None
    if isinstance(obj, PSObj):
        found, value = obj.get(v.to_string(idx))
        if found:
            return value
    raise _no_member(ev, obj, "[]", node)


def static_member(
    ev: Evaluator, tref: TypeRef, member: str, args: list[Any] | None, node: Node
) -> tuple[bool, Any]:
    """Static members every PowerShell session has; the host adds the rest."""
    n, m = tref.name.lower(), member.lower()
    if n == "system.guid" and m == "newguid" and args == []:
        return True, v.DotNetObject("System.Guid", {"value": str(uuid.uuid4())})
    if n == "system.string" and m == "isnullorempty" and args is not None and len(args) == 1:
        return True, args[0] is None or v.to_string(args[0]) == ""
    if n == "system.string" and m == "join" and args is not None and len(args) == 2:
        return True, v.to_string(args[0]).join(v.to_string(x) for x in v.as_list(args[1]))
    if n == "system.string" and m == "format" and args:
        return True, format_string(v.to_string(args[0]), args[1:])
    if n == "system.string" and m == "empty" and args is None:
        return True, ""
    if n == "system.math" and m in ("max", "min", "round", "floor", "ceiling", "abs") and args:
        nums = [v.to_number(a) for a in args]
        import math

        fns: dict[str, Any] = {
            "max": max,
            "min": min,
            "round": lambda x, *d: round(x, *[int(y) for y in d]),
            "floor": math.floor,
            "ceiling": math.ceil,
            "abs": abs,
        }
        return True, fns[m](*nums)
    if n == "system.datetime" and m == "now" and args is None:
        return True, local_now(ev)
    if n == "system.datetime" and m == "utcnow" and args is None:
        return True, PSDate(dt.datetime.now(dt.UTC))
    if n == "system.environment" and m == "newline" and args is None:
        return True, "\r\n"
    if n == "system.int32" and m == "maxvalue" and args is None:
        return True, 2**31 - 1
    if n == "system.uri" and m == "escapedatastring" and args is not None and len(args) == 1:
        import urllib.parse

        return True, urllib.parse.quote(v.to_string(args[0]), safe="-_.~")
    if n == "system.net.securityprotocoltype" and args is None and m in _TLS:
        return True, PSEnum(_TLS[m][0], _TLS[m][1], "System.Net.SecurityProtocolType")
    return False, None


# System.Net.SecurityProtocolType (learn.microsoft.com/dotnet/api/system.net.securityprotocoltype)
_TLS = {
    "systemdefault": ("SystemDefault", 0),
    "ssl3": ("Ssl3", 48),
    "tls": ("Tls", 192),
    "tls11": ("Tls11", 768),
    "tls12": ("Tls12", 3072),
    "tls13": ("Tls13", 12288),
}


# --- engine cmdlets ----------------------------------------------------------------------------


def _sig(name: str, *params: Param, should_process: bool = False, default_set: str = "") -> Signature:
    return Signature(name, params, should_process=should_process, default_set=default_set)


def _write_output(c: Call) -> list[Any]:
    return (
        [x for a in [c.bound.get("InputObject")] for x in v.as_list(a)]
        if "InputObject" in c.bound
        else list(c.input)
    )


def _write_error(c: Call) -> list[Any]:
    msg = c.bound.get("Message")
    if isinstance(msg, ErrorRecord):
        c.ev.non_terminating(msg, c.bound.get("ErrorAction"))
        return []
    c.ev.non_terminating(
        ErrorRecord(
            v.to_string(msg),
            "Microsoft.PowerShell.Commands.WriteErrorException",
            command="",  # PowerShell names the calling script or function, not Write-Error
            category=v.to_string(c.bound.get("Category") or "NotSpecified"),
        ),
        c.bound.get("ErrorAction"),
    )
    return []


def _write_warning(c: Call) -> list[Any]:
    c.ev.warnings.append(v.to_string(c.bound.get("Message")))
    return []


def _write_quiet(c: Call) -> list[Any]:
    return []


def _write_host(c: Call) -> list[Any]:
    c.ev.host_lines.append(" ".join(v.to_string(x) for x in v.as_list(c.bound.get("Object"))))
    return []


def _out_null(c: Call) -> list[Any]:
    return []


def _with_item(c: Call, sb: ScriptBlock, item: Any) -> list[Any]:
    return c.ev.invoke_block(sb, dollar_under=item, new_scope=True)


def _member_of(c: Call, item: Any, name: str) -> Any:
    """ForEach-Object -MemberName: "the member property to get or the member method to call"."""
    assert c.node is not None
    try:
        return get_member(c.ev, item, name, c.node)
    except NotSimulated:
        return call_method(c.ev, item, name, [], c.node)


def _foreach_object(c: Call) -> list[Any]:
    """ForEach-Object: -Process runs once per input object with $_ set; -MemberName gets a member."""
    out: list[Any] = []
    process = c.bound.get("Process")
    begin, end = c.bound.get("Begin"), c.bound.get("End")
    member = c.bound.get("MemberName")
    if isinstance(process, str) and begin is None and end is None:
        # `ForEach-Object ToString`: a string cannot become a script block, so the binder takes the
        # PropertyAndMethodSet, where -MemberName is at position 0.
        member = process
    if member is not None:
        for item in c.input:
            out.extend(v.as_list(_member_of(c, item, v.to_string(member))))
        return out
    if isinstance(begin, ScriptBlock):
        out.extend(c.ev.invoke_block(begin))
    blocks = [b for b in v.as_list(process)]
    for b in blocks:
        if not isinstance(b, ScriptBlock):
            raise c.not_simulated("ForEach-Object -Process with something other than script blocks")
    for item in c.input:
        for b in blocks:
            out.extend(_with_item(c, b, item))
    if isinstance(end, ScriptBlock):
        out.extend(c.ev.invoke_block(end))
    return out


def _where_object(c: Call) -> list[Any]:
    """Where-Object: -FilterScript, or the comparison form `Where-Object Prop -eq value`."""
    script = c.bound.get("FilterScript")
    if isinstance(script, ScriptBlock):
        return [item for item in c.input if v.truthy(c.ev.invoke_block_value(script, dollar_under=item))]
    prop = v.to_string(c.bound.get("Property"))
    ops = [
        o
        for o in ("EQ", "NE", "Like", "NotLike", "Match", "GT", "LT", "GE", "LE", "Contains", "In", "NotIn")
        if o in c.bound
    ]
    if not prop:
        raise c.fail("Cannot bind argument to parameter 'FilterScript' because it is null.")
    out = []
    for item in c.input:
        value = get_member(c.ev, item, prop, c.node) if item is not None else None  # type: ignore[arg-type]
        if not ops:
            keep = v.truthy(value)
        else:
            op = ops[0]
            keep = bool(binary(c.ev, "-" + op.lower(), value, c.bound.get("Value"), c.node))  # type: ignore[arg-type]
        if keep:
            out.append(item)
    return out


def _property_value(c: Call, item: Any, prop: Any) -> Any:
    if isinstance(prop, ScriptBlock):
        return c.ev.invoke_block_value(prop, dollar_under=item)
    if isinstance(prop, Hashtable):
        expr = prop.get("Expression") if "Expression" in prop else prop.get("e")
        return _property_value(c, item, expr)
    return get_member(c.ev, item, v.to_string(prop), c.node)  # type: ignore[arg-type]


def _prop_names(c: Call, item: Any, props: list[Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for p in props:
        if isinstance(p, Hashtable):
            label = p.get("Name") if "Name" in p else (p.get("Label") if "Label" in p else p.get("n"))
            out.append((v.to_string(label), p))
            continue
        name = v.to_string(p)
        if v.has_wildcard(name):
            keys = (
                list(item.props)
                if isinstance(item, PSObj)
                else [str(k) for k in item.keys()]  # noqa: SIM118 - Hashtable.keys(), not a dict
                if isinstance(item, Hashtable)
                else []
            )
            out.extend((k, k) for k in keys if v.like(k, name))
        else:
            out.append((name, name))
    return out


def _select_object(c: Call) -> list[Any]:
    """Select-Object: -Property makes objects, -ExpandProperty emits the value; -First/-Last/-Skip/-Unique."""
    items = list(c.input)
    if "Skip" in c.bound:
        items = items[v.to_int(c.bound.get("Skip")) :]
    if "First" in c.bound:
        items = items[: v.to_int(c.bound.get("First"))]
    if "Last" in c.bound:
        n = v.to_int(c.bound.get("Last"))
        items = items[-n:] if n else []
    if "Unique" in c.bound:
        uniq: list[Any] = []
        for x in items:
            if not any(v.equals(x, y, True) for y in uniq):
                uniq.append(x)
        items = uniq
    out: list[Any] = []
    if "ExpandProperty" in c.bound:
        name = v.to_string(c.bound.get("ExpandProperty"))
        for item in items:
            if (isinstance(item, PSObj) and not item.get(name)[0]) or (
                isinstance(item, Hashtable) and name not in item
            ):
                c.write_error(
                    f'Property "{name}" cannot be found.',
                    "System.ArgumentException",
                    category="InvalidArgument",
                    error_id="ExpandPropertyNotFound",
                )
                continue
            out.extend(v.as_list(get_member(c.ev, item, name, c.node)))  # type: ignore[arg-type]
        return out
    if "Property" in c.bound:
        props = v.as_list(c.bound.get("Property"))
        for item in items:
            obj = PSObj("Selected." + (item.type_name if isinstance(item, PSObj) else "System.Object"))
            for label, p in _prop_names(c, item, props):
                if isinstance(item, Hashtable) and not isinstance(p, ScriptBlock | Hashtable):
                    obj.props[label] = item.get(label)  # a missing key is $null, as PowerShell adds it
                else:
                    # A property the lab's object lacks may exist on Windows: fail loudly, never $null.
                    obj.props[label] = _property_value(c, item, p)
            out.append(obj)
        return out
    return items


def _sort_key(c: Call, props: list[Any]) -> Any:
    def cmp(a: Any, b: Any) -> int:
        for p in props or [None]:
            x = a if p is None else _property_value(c, a, p)
            y = b if p is None else _property_value(c, b, p)
            try:
                r = v.compare(x, y, "CaseSensitive" in c.bound)
            except PSRuntimeError:
                r = v.compare(v.to_string(x), v.to_string(y))
            if r:
                return r
        return 0

    return functools.cmp_to_key(cmp)


def _sort_object(c: Call) -> list[Any]:
    props = v.as_list(c.bound.get("Property"))
    items = sorted(c.input, key=_sort_key(c, props), reverse=v.truthy(c.bound.get("Descending")))
    if "Unique" in c.bound:
        uniq: list[Any] = []
        for x in items:
            if not any(v.equals(x, y) for y in uniq):
                uniq.append(x)
        items = uniq
    return items


def _group_object(c: Call) -> list[Any]:
    props = v.as_list(c.bound.get("Property"))
    groups: list[tuple[Any, list[Any]]] = []
    for item in c.input:
        key = [_property_value(c, item, p) for p in props] if props else [item]
        for g in groups:
            if all(v.equals(a, b) for a, b in zip(g[0], key, strict=True)):
                g[1].append(item)
                break
        else:
            groups.append((key, [item]))
    out = []
    for key, members in groups:
        props_out: dict[str, Any] = {"Count": len(members), "Name": ", ".join(v.to_string(k) for k in key)}
        if not v.truthy(c.bound.get("NoElement")):
            props_out["Group"] = members
        props_out["Values"] = key
        out.append(PSObj("Microsoft.PowerShell.Commands.GroupInfo", props_out))
    return out


def _measure_object(c: Call) -> list[Any]:
    prop = c.bound.get("Property")
    values = [(_property_value(c, x, prop) if prop is not None else x) for x in c.input]
    result: dict[str, Any] = {
        "Count": len(values),
        "Average": None,
        "Sum": None,
        "Maximum": None,
        "Minimum": None,
        "Property": v.to_string(prop) if prop is not None else None,
    }
    nums = [float(v.to_number(x)) for x in values if x is not None]
    if v.truthy(c.bound.get("Sum")):
        result["Sum"] = sum(nums)
    if v.truthy(c.bound.get("Average")):
        result["Average"] = sum(nums) / len(nums) if nums else None
    if v.truthy(c.bound.get("Maximum")):
        result["Maximum"] = max(nums) if nums else None
    if v.truthy(c.bound.get("Minimum")):
        result["Minimum"] = min(nums) if nums else None
    return [PSObj("Microsoft.PowerShell.Commands.GenericMeasureInfo", result)]


def _join_path(c: Call) -> list[Any]:
    out = []
    for parent in v.as_list(c.bound.get("Path")):
        p = v.to_string(parent).rstrip("\\/")
        child = v.to_string(c.bound.get("ChildPath")).lstrip("\\/")
        out.append(f"{p}\\{child}" if child else p)
    return out


def _split_path(c: Call) -> list[Any]:
    out = []
    for raw in v.as_list(c.bound.get("Path")):
        p = v.to_string(raw).rstrip("\\")
        cut = max(p.rfind("\\"), p.rfind("/"))
        if v.truthy(c.bound.get("Leaf")):
            out.append(p[cut + 1 :])
        else:
            parent = p[:cut] if cut > 0 else ""
            if re.fullmatch(r"[A-Za-z]:", parent):
                parent += "\\"
            out.append(parent)
    return out


def _set_strict_mode(c: Call) -> list[Any]:
    version = c.bound.get("Version")
    if v.truthy(c.bound.get("Off")):
        c.ev.strict = 0
    else:
        text = v.to_string(version).lower()
        c.ev.strict = 3 if text == "latest" else int(float(text or "1"))
    return []


def local_now(ev: Evaluator) -> PSDate:
    """DateTime.Now: a Local date, the clock of the machine's time zone."""
    return PSDate(dt.datetime.now(dt.UTC), "Local", ev.host.time_zone())


def _get_date(c: Call) -> list[Any]:
    d = v.parse_datetime(c.bound.get("Date")) if "Date" in c.bound else local_now(c.ev)
    if "Format" in c.bound:
        return [date_format(d, v.to_string(c.bound.get("Format")))]
    return [d]


def _new_object(c: Call) -> list[Any]:
    tname = v.to_string(c.bound.get("TypeName"))
    args = v.as_list(c.bound.get("ArgumentList"))
    tref = resolve_type(c.ev, tname, c.node)  # type: ignore[arg-type]
    if tref.name == "System.Collections.Generic.List":
        return [GenericList(tref.args[0] if tref.args else "System.Object")]
    if tref.name in ("System.Management.Automation.PSObject", "System.Object") and not args:
        props = c.bound.get("Property")
        return [
            PSObj(
                "System.Management.Automation.PSCustomObject",
                {str(k): x for k, x in props.items()} if isinstance(props, Hashtable) else {},
            )
        ]
    if tref.name == "System.Collections.Hashtable":
        return [Hashtable()]
    host_new = getattr(c.ev.host, "new_object", None)
    if host_new is not None:
        made = host_new(c, tref, args)
        if made is not None:
            return [made]
    raise c.not_simulated(f"New-Object -TypeName {tname}")


def _convert_to_json(c: Call) -> list[Any]:
    items = list(c.input) if c.has_input else v.as_list(c.bound.get("InputObject"))
    if c.has_input and not items:
        return []  # no object came down the pipeline: ConvertTo-Json writes nothing
    depth = v.to_int(c.bound.get("Depth")) if "Depth" in c.bound else 2
    return [convert_to_json([_plain(x) for x in items], v.truthy(c.bound.get("Compress")), depth)]


def _plain(x: Any) -> Any:
    if isinstance(x, Hashtable):
        return {str(k): _plain(y) for k, y in x.items()}
    if isinstance(x, list):
        return [_plain(y) for y in x]
    return x


def _lookup_var(ev: Evaluator, name: str) -> tuple[bool, Any]:
    """A variable as Get-Variable finds it: in the current scope or a parent one."""
    scope: Scope | None = ev.scope
    while scope is not None:
        if name.lower() in scope.vars:
            return True, scope.vars[name.lower()]
        scope = scope.parent
    return False, None


def _get_variable(c: Call) -> list[Any]:
    """Get-Variable [-Name] <names> [-ValueOnly]: a missing variable is a non-terminating
    ItemNotFoundException "Cannot find a variable with the name 'X'." (VariableNotFound)."""
    if "Scope" in c.bound:
        raise c.not_simulated("Get-Variable -Scope")
    names = [v.to_string(x) for x in v.as_list(c.bound.get("Name"))]
    if not names or any(ch in n for n in names for ch in "*?["):
        raise c.not_simulated("Get-Variable listing variables by wildcard")
    out: list[Any] = []
    for name in names:
        found, value = _lookup_var(c.ev, name)
        if not found:
            c.write_error(
                f"Cannot find a variable with the name '{name}'.",
                "System.Management.Automation.ItemNotFoundException",
                "ObjectNotFound",
                "VariableNotFound",
                name,
            )
            continue
        if v.truthy(c.bound.get("ValueOnly")):
            out.append(value)
        else:
            out.append(PSObj("System.Management.Automation.PSVariable", {"Name": name, "Value": value}, name))
    return out


def _set_variable(c: Call) -> list[Any]:
    """Set-Variable [-Name] <name> [[-Value] <v>]: in the caller's scope; pipeline input is the value
    (several objects become an array)."""
    if "Scope" in c.bound or "Option" in c.bound:
        raise c.not_simulated("Set-Variable -Scope/-Option")
    value = (c.input[0] if len(c.input) == 1 else list(c.input)) if c.has_input else c.bound.get("Value")
    for name in v.as_list(c.bound.get("Name")):
        c.ev.set_var(v.to_string(name), value, c.node)
    return []


def _engine() -> dict[str, Cmdlet]:
    obj = Param("InputObject", pipeline=True)
    table: list[tuple[Signature, Any, str]] = [
        (
            _sig(
                "Write-Output",
                Param("InputObject", position=0, pipeline=True),
                Param("NoEnumerate", switch=True),
            ),
            _write_output,
            "microsoft.powershell.utility/write-output",
        ),
        (
            _sig(
                "Write-Error",
                Param("Message", ("Msg",), position=0),
                Param("Category"),
                Param("ErrorId"),
                Param("TargetObject"),
                Param("Exception"),
                Param("ErrorRecord"),
            ),
            _write_error,
            "microsoft.powershell.utility/write-error",
        ),
        (
            _sig("Write-Warning", Param("Message", ("Msg",), position=0, mandatory=True)),
            _write_warning,
            "microsoft.powershell.utility/write-warning",
        ),
        (
            _sig("Write-Verbose", Param("Message", ("Msg",), position=0, mandatory=True)),
            _write_quiet,
            "microsoft.powershell.utility/write-verbose",
        ),
        (
            _sig("Write-Debug", Param("Message", ("Msg",), position=0, mandatory=True)),
            _write_quiet,
            "microsoft.powershell.utility/write-debug",
        ),
        (
            _sig(
                "Write-Host",
                Param("Object", ("Msg", "Message"), position=0),
                Param("NoNewline", switch=True),
                Param("ForegroundColor"),
                Param("BackgroundColor"),
                Param("Separator"),
            ),
            _write_host,
            "microsoft.powershell.utility/write-host",
        ),
        (_sig("Out-Null", obj), _out_null, "microsoft.powershell.core/out-null"),
        (
            _sig(
                "ForEach-Object",
                obj,
                Param("Process", position=0, sets=("ScriptBlockSet",)),
                Param("Begin", sets=("ScriptBlockSet",)),
                Param("End", sets=("ScriptBlockSet",)),
                Param("MemberName", sets=("PropertyAndMethodSet",)),
                default_set="ScriptBlockSet",
            ),
            _foreach_object,
            "microsoft.powershell.core/foreach-object",
        ),
        (
            _sig(
                "Where-Object",
                obj,
                Param("FilterScript", position=0, sets=("ScriptBlockSet",)),
                Param(
                    "Property",
                    position=0,
                    sets=(
                        "EqualSet",
                        "NotEqualSet",
                        "LikeSet",
                        "NotLikeSet",
                        "MatchSet",
                        "GreaterThanSet",
                        "LessThanSet",
                        "GreaterOrEqualSet",
                        "LessOrEqualSet",
                        "ContainsSet",
                        "InSet",
                        "NotInSet",
                    ),
                ),
                Param("Value", position=1),
                Param("EQ", ("IEQ",), switch=True, sets=("EqualSet",)),
                Param("NE", switch=True, sets=("NotEqualSet",)),
                Param("Like", switch=True, sets=("LikeSet",)),
                Param("NotLike", switch=True, sets=("NotLikeSet",)),
                Param("Match", switch=True, sets=("MatchSet",)),
                Param("GT", switch=True, sets=("GreaterThanSet",)),
                Param("LT", switch=True, sets=("LessThanSet",)),
                Param("GE", switch=True, sets=("GreaterOrEqualSet",)),
                Param("LE", switch=True, sets=("LessOrEqualSet",)),
                Param("Contains", switch=True, sets=("ContainsSet",)),
                Param("In", switch=True, sets=("InSet",)),
                Param("NotIn", switch=True, sets=("NotInSet",)),
            ),
            _where_object,
            "microsoft.powershell.core/where-object",
        ),
        (
            _sig(
                "Select-Object",
                obj,
                Param("Property", position=0),
                Param("ExpandProperty"),
                Param("First"),
                Param("Last"),
                Param("Skip"),
                Param("Unique", switch=True),
                Param("ExcludeProperty"),
            ),
            _select_object,
            "microsoft.powershell.utility/select-object",
        ),
        (
            _sig(
                "Sort-Object",
                obj,
                Param("Property", position=0),
                Param("Descending", switch=True),
                Param("Unique", switch=True),
                Param("CaseSensitive", switch=True),
            ),
            _sort_object,
            "microsoft.powershell.utility/sort-object",
        ),
        (
            _sig(
                "Group-Object",
                obj,
                Param("Property", position=0),
                Param("NoElement", switch=True),
                Param("AsHashTable", switch=True),
            ),
            _group_object,
            "microsoft.powershell.utility/group-object",
        ),
        (
            _sig(
                "Measure-Object",
                obj,
                Param("Property", position=0),
                Param("Sum", switch=True),
                Param("Average", switch=True),
                Param("Maximum", switch=True),
                Param("Minimum", switch=True),
            ),
            _measure_object,
            "microsoft.powershell.utility/measure-object",
        ),
        (
            _sig(
                "Join-Path",
                Param("Path", ("PSPath",), position=0, mandatory=True),
                Param("ChildPath", position=1, mandatory=True),
                Param("Resolve", switch=True),
            ),
            _join_path,
            "microsoft.powershell.management/join-path",
        ),
        (
            _sig(
                "Split-Path",
                Param("Path", ("PSPath",), position=0, mandatory=True),
                Param("Parent", switch=True, sets=("ParentSet",)),
                Param("Leaf", switch=True, sets=("LeafSet",)),
                Param("Qualifier", switch=True, sets=("QualifierSet",)),
            ),
            _split_path,
            "microsoft.powershell.management/split-path",
        ),
        (
            Signature(
                "Set-StrictMode",
                (Param("Version", ("v",), sets=("Version",)), Param("Off", switch=True, sets=("Off",))),
            ),
            _set_strict_mode,
            "microsoft.powershell.core/set-strictmode",
        ),
        (
            _sig(
                "Get-Variable",
                Param("Name", position=0),
                Param("ValueOnly", switch=True),
                Param("Scope"),
            ),
            _get_variable,
            "microsoft.powershell.utility/get-variable",
        ),
        (
            _sig(
                "Set-Variable",
                Param("Name", position=0, mandatory=True),
                Param("Value", position=1, pipeline=True),
                Param("Scope"),
                Param("Option"),
            ),
            _set_variable,
            "microsoft.powershell.utility/set-variable",
        ),
        (
            _sig("Get-Date", Param("Date", position=0), Param("Format"), Param("UFormat")),
            _get_date,
            "microsoft.powershell.utility/get-date",
        ),
        (
            _sig(
                "New-Object",
                Param("TypeName", position=0, mandatory=True),
                Param("ArgumentList", ("Args",), position=1),
                Param("Property"),
            ),
            _new_object,
            "microsoft.powershell.utility/new-object",
        ),
        (
            _sig(
                "ConvertTo-Json",
                Param("InputObject", position=0, pipeline=True),
                Param("Depth"),
                Param("Compress", switch=True),
            ),
            _convert_to_json,
            "microsoft.powershell.utility/convertto-json",
        ),
    ]
    return {sig.name.lower(): Cmdlet(sig, fn, LEARN + doc) for sig, fn, doc in table}


_ENGINE: dict[str, Cmdlet] = {}


def engine_cmdlet(name: str) -> Cmdlet | None:
    if not _ENGINE:
        _ENGINE.update(_engine())
    return _ENGINE.get(name.lower())


def engine_cmdlets() -> dict[str, Cmdlet]:
    engine_cmdlet("")
    return dict(_ENGINE)
