"""PowerShell 5.1 values and the operator rules of about_Comparison_Operators / about_Operators.

Representation: `$null` is None; [bool], [int]/[long], [double], [string] are Python's;
arrays (`object[]`) are Python lists; `[System.Collections.Generic.List[T]]` is `GenericList`;
hashtables are `Hashtable` (keys case-insensitive, as PowerShell's default hashtable is;
`[ordered]` keeps insertion order, and so do we for plain hashtables - PowerShell's order is
unspecified there, so nothing may rely on it). Objects from cmdlets are `PSObj` (exec/psobjects).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from rebuild.lab.exec.psobjects import PSDate, PSEnum
from rebuild.lab.ps.errors import ErrorRecord, PSRuntimeError


class Hashtable:
    """`@{}` (and `[ordered]@{}`): keys compare case-insensitively when they are strings."""

    def __init__(self, ordered: bool = False, case_sensitive: bool = False) -> None:
        self.ordered = ordered
        # A .NET Dictionary<string, object> (what Ansible.Basic makes of a dict option) compares
        # keys ordinally: `$d.Name` is not `$d.name` there.
        self.case_sensitive = case_sensitive
        self._items: dict[Any, tuple[Any, Any]] = {}

    def _k(self, key: Any) -> Any:
        return key.lower() if isinstance(key, str) and not self.case_sensitive else key

    def __contains__(self, key: Any) -> bool:
        return self._k(key) in self._items

    def get(self, key: Any) -> Any:
        item = self._items.get(self._k(key))
        return None if item is None else item[1]

    def set(self, key: Any, value: Any) -> None:
        k = self._k(key)
        original = self._items[k][0] if k in self._items else key
        self._items[k] = (original, value)

    def add(self, key: Any, value: Any) -> None:
        if key in self:
            raise PSRuntimeError(
                ErrorRecord(
                    f"Item has already been added. Key in dictionary: '{key}'  Key being added: '{key}'",
                    "System.ArgumentException",
                )
            )
        self.set(key, value)

    def remove(self, key: Any) -> None:
        self._items.pop(self._k(key), None)

    def keys(self) -> list[Any]:
        return [k for k, _ in self._items.values()]

    def values(self) -> list[Any]:
        return [v for _, v in self._items.values()]

    def items(self) -> list[tuple[Any, Any]]:
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Hashtable:
        h = Hashtable(self.ordered, self.case_sensitive)
        h._items = dict(self._items)
        return h


class GenericList(list[Any]):
    """`[System.Collections.Generic.List[T]]`: a list that is not unrolled by `,`/`+` like arrays are."""

    def __init__(self, element_type: str = "Object", items: Any = ()) -> None:
        super().__init__(items)
        self.element_type = element_type


@dataclass
class ScriptBlock:
    """`{ ... }`: the body node, the script it came from, and the parameters it declares."""

    node: Any
    script: Any  # evaluator.Script (untyped to avoid an import cycle)
    text: str = ""

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class TypeRef:
    """A type literal such as `[string]` or `[System.Collections.Generic.List[Object]]`."""

    name: str  # canonical, e.g. "System.String"
    args: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name


@dataclass
class SwitchParameter:
    """`[switch]`: prints as True/False, is truthy when present."""

    present: bool = False

    def __bool__(self) -> bool:
        return self.present

    def __str__(self) -> str:
        return "True" if self.present else "False"


@dataclass
class PSVersion:
    parts: tuple[int, ...]

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts)


@dataclass
class PSTimeSpan:
    delta: dt.timedelta

    @property
    def total_hours(self) -> float:
        return self.delta.total_seconds() / 3600


@dataclass
class DotNetObject:
    """A .NET object the lab models by hand (its members are dispatched in builtins)."""

    type_name: str
    data: dict[str, Any] = field(default_factory=dict)
    methods: dict[str, Any] = field(default_factory=dict)  # lower-case name -> fn(args) -> value


def is_collection(value: Any) -> bool:
    """What PowerShell enumerates in a pipeline and in comparison operators (not strings, not hashtables)."""
    return isinstance(value, list)


def as_list(value: Any) -> list[Any]:
    """A value as the items the pipeline would enumerate: $null -> nothing, scalar -> one item."""
    if value is None:
        return []
    if isinstance(value, list):
        return list(value)
    return [value]


def collapse(out: list[Any]) -> Any:
    """Pipeline output used as a value: nothing -> $null, one object -> it, more -> an array."""
    if not out:
        return None
    return out[0] if len(out) == 1 else out


def truthy(value: Any) -> bool:
    """about_Booleans: $null, 0, '', empty arrays are false; a one-element array is its element."""
    if value is None:
        return False
    if isinstance(value, bool | SwitchParameter):
        return bool(value)
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value != ""
    if isinstance(value, list):
        if len(value) == 0:
            return False
        if len(value) == 1:
            return truthy(value[0])
        return True
    return True


def to_string(value: Any, ofs: str = " ") -> str:
    """How PowerShell turns a value into a string (casts, string expansion, -join)."""
    if type(value) is str:  # the common case, first
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        # .NET Framework's Double.ToString() is "G": 15 significant digits (0.1 + 0.2 -> 0.3).
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g").replace("e+", "E+").replace("e-", "E-")
    if isinstance(value, list):
        return ofs.join(to_string(v, ofs) for v in value)
    if isinstance(value, Hashtable):
        return (
            "System.Collections.Specialized.OrderedDictionary"
            if value.ordered
            else "System.Collections.Hashtable"
        )
    if isinstance(value, PSDate):
        w = value.clock()
        clock = f"{w.hour % 12 or 12}:{w.minute:02d}:{w.second:02d} {'AM' if w.hour < 12 else 'PM'}"
        return f"{w.month}/{w.day}/{w.year} {clock}"
    if isinstance(value, TypeRef):
        return value.name
    if isinstance(value, ErrorRecord):
        return value.message
    return str(value)


_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_HEX_RE = re.compile(r"^\s*0x[0-9a-f]+\s*$", re.I)
_FLOAT_RE = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$", re.I)


def invalid_cast(value: Any, target: str) -> PSRuntimeError:
    return PSRuntimeError(
        ErrorRecord(
            f'Cannot convert value "{to_string(value)}" to type "{target}". '
            'Error: "Input string was not in a correct format."',
            "System.Management.Automation.PSInvalidCastException",
            category="InvalidArgument",
            error_id="InvalidCastFromStringToInteger",
        )
    )


def to_number(value: Any, target: str = "System.Int32") -> int | float:
    """Conversion to a number as casts and arithmetic do it (strings parse, '' and $null are 0)."""
    if value is None:
        return 0
    if isinstance(value, bool | SwitchParameter):
        return 1 if value else 0
    if isinstance(value, int | float):
        return value
    if isinstance(value, PSEnum):
        return value.value
    if isinstance(value, str):
        if value.strip() == "":
            return 0
        if _INT_RE.match(value):
            return int(value)
        if _HEX_RE.match(value):
            return int(value.strip(), 16)
        if _FLOAT_RE.match(value):
            return float(value)
    if isinstance(value, list) and len(value) == 1:
        return to_number(value[0], target)
    raise invalid_cast(value, target)


def to_int(value: Any) -> int:
    n = to_number(value)
    if isinstance(n, float):
        # [int] rounds half to even, as .NET's Convert.ToInt32 does.
        return round(n)
    return n


def parse_version(value: Any) -> PSVersion:
    text = to_string(value).strip()
    if not re.fullmatch(r"\d+(\.\d+){1,3}", text):
        raise PSRuntimeError(
            ErrorRecord(
                f'Cannot convert value "{text}" to type "System.Version". '
                'Error: "Version string portion was too short or too long."',
                "System.Management.Automation.PSInvalidCastException",
            )
        )
    return PSVersion(tuple(int(p) for p in text.split(".")))


def parse_datetime(value: Any) -> PSDate:
    if isinstance(value, PSDate):
        return value
    text = to_string(value).strip()
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PSRuntimeError(
            ErrorRecord(
                f'Cannot convert value "{text}" to type "System.DateTime". '
                'Error: "String was not recognized as a valid DateTime."',
                "System.Management.Automation.PSInvalidCastException",
            )
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return PSDate(when.astimezone(dt.UTC))


# --- comparison ------------------------------------------------------------------------------


def _coerce_to(left: Any, right: Any) -> Any:
    """The right operand converted to the left's type, as -eq/-lt do; raises ValueError if it cannot."""
    if isinstance(left, bool):
        return truthy(right)
    if isinstance(left, int | float) and not isinstance(left, bool):
        if isinstance(right, int | float) and not isinstance(right, bool):
            return right
        try:
            return to_number(right)
        except PSRuntimeError:
            raise ValueError from None
    if isinstance(left, str):
        return to_string(right)
    if isinstance(left, PSEnum):
        if isinstance(right, str):
            return right
        return to_number(right)
    if isinstance(left, PSVersion):
        return parse_version(right)
    if isinstance(left, PSDate):
        return parse_datetime(right)
    return right


def equals(left: Any, right: Any, case: bool = False) -> bool:
    """Scalar `-eq`: right converted to left's type; strings compare case-insensitively unless -ceq."""
    if left is None or right is None:
        return left is None and right is None
    try:
        r = _coerce_to(left, right)
    except (ValueError, PSRuntimeError):
        return False
    if isinstance(left, str):
        return left == r if case else left.lower() == str(r).lower()
    if isinstance(left, PSEnum):
        return left.name.lower() == r.lower() if isinstance(r, str) else left.value == r
    if isinstance(left, PSDate):
        return bool(left.when == r.when)  # the same instant, whatever the Kind
    if isinstance(left, PSVersion):
        return bool(left == r)
    if isinstance(left, SwitchParameter):
        return left.present == truthy(r)
    return bool(left == r)


def compare(left: Any, right: Any, case: bool = False) -> int:
    """Ordering for -lt/-gt/Sort-Object: -1, 0, 1 (raises PSRuntimeError if not comparable)."""
    if left is None:
        return 0 if right is None else -1
    if right is None:
        return 1
    try:
        r = _coerce_to(left, right)
    except ValueError:
        raise PSRuntimeError(
            ErrorRecord(
                f'Could not compare "{to_string(left)}" to "{to_string(right)}".',
                "System.Management.Automation.RuntimeException",
            )
        ) from None
    a: Any = left
    if isinstance(left, str):
        a, r = (left, str(r)) if case else (left.lower(), str(r).lower())
    elif isinstance(left, PSVersion):
        a, r = left.parts, r.parts
    elif isinstance(left, PSDate):
        a, r = left.when, r.when
    elif isinstance(left, PSEnum):
        a, r = left.value, (r if isinstance(r, int) else 0)
    try:
        return int((a > r) - (a < r))
    except TypeError:
        raise PSRuntimeError(
            ErrorRecord(f'Could not compare "{to_string(left)}" to "{to_string(right)}".')
        ) from None


@functools.lru_cache(maxsize=4096)
def wildcard(pattern: str, case: bool = False) -> re.Pattern[str]:
    """about_Wildcards: * ? [a-z]; backtick escapes."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "`" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i)
            if end == -1:
                out.append(re.escape(c))
            else:
                out.append("[" + pattern[i + 1 : end] + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.S if case else re.S | re.I)


def like(value: Any, pattern: Any, case: bool = False) -> bool:
    return wildcard(to_string(pattern), case).match(to_string(value)) is not None


def has_wildcard(text: str) -> bool:
    """about_Wildcards: *, ? and [ ] make a pattern."""
    return any(c in text for c in "*?[")
