"""PowerShell values the read subset produces, and how PowerShell 5.1 prints and serialises them.

`ConvertTo-Json` here follows Windows PowerShell 5.1: one object -> a JSON object, several ->
an array; enums as their integer value (e.g. a service's Status 4 = Running); `-Compress`
gives no whitespace, otherwise 4-space indentation with `":  "` (two spaces) after keys;
`'`, `<`, `>`, `&` escaped as \\u0027 etc.; DateTime as "\\/Date(ms)\\/"; nesting beyond
`-Depth` (default 2) becomes the value's string form. Plain output prints scalars one per
line (booleans True/False, enums by name).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class PSEnum:
    name: str
    value: int
    type_name: str = ""

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class PSDate:
    """A .NET DateTime: the instant (`when`, UTC) and its Kind. A Local date (Get-Date,
    [DateTime]::Now) shows the clock of the machine's time zone `zone` (an IANA key); a Utc date
    shows UTC. Arithmetic and comparisons use the instant; what a script reads or prints of a date
    (Hour, ToString, -Format) uses its clock (learn.microsoft.com/dotnet/api/system.datetime.kind)."""

    when: dt.datetime  # UTC
    kind: str = "Utc"  # DateTimeKind: Utc or Local
    zone: str = "UTC"  # a Local date's time zone

    def clock(self) -> dt.datetime:
        """The date and time as the DateTime holds them (aware: its offset is the Kind's)."""
        if self.kind != "Local":
            return self.when
        return self.when.astimezone(local_zone(self.zone))

    def shifted(self, delta: dt.timedelta) -> PSDate:
        """This date plus a TimeSpan, of the same Kind (DateTime.Add adds to the clock)."""
        if self.kind != "Local":
            return replace(self, when=self.when + delta)
        clock = self.clock().replace(tzinfo=None) + delta
        return replace(self, when=clock.replace(tzinfo=local_zone(self.zone)).astimezone(dt.UTC))

    def to_universal(self) -> PSDate:
        return PSDate(self.when)

    def __str__(self) -> str:
        w = self.clock()
        hour = w.hour % 12 or 12
        clock = f"{hour}:{w.minute:02d}:{w.second:02d} {'AM' if w.hour < 12 else 'PM'}"
        return f"{w.strftime('%A')}, {w.strftime('%B')} {w.day}, {w.year} {clock}"

    def to_file_time(self) -> int:
        epoch = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)
        return int((self.when - epoch).total_seconds() * 10_000_000)


def local_zone(key: str) -> dt.tzinfo:
    """The time zone an IANA key names (the host checked it exists: TwinHost.time_zone)."""
    return dt.UTC if key == "UTC" else ZoneInfo(key)


@dataclass
class PSObj:
    type_name: str
    props: dict[str, Any] = field(default_factory=dict)
    to_string: str = ""  # what PowerShell prints for the object itself

    def get(self, name: str) -> tuple[bool, Any]:
        for k, v in self.props.items():
            if k.lower() == name.lower():
                return True, v
        return False, None

    def __str__(self) -> str:
        return self.to_string or self.type_name


def scalar_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_default(values: list[Any]) -> str:
    """Host output of a pipeline: scalars one per line; objects in list form (Format-List style)."""
    lines: list[str] = []
    for v in values:
        if isinstance(v, PSObj):
            lines.append("")
            width = max((len(k) for k in v.props), default=0)
            for k, pv in v.props.items():
                text = ", ".join(scalar_text(x) for x in pv) if isinstance(pv, list) else scalar_text(pv)
                lines.append(f"{k.ljust(width)} : {text}")
            lines.append("")
        elif isinstance(v, list):
            lines.extend(scalar_text(x) for x in v)
        else:
            lines.append(scalar_text(v))
    return "".join(line + "\r\n" for line in lines)


def _plain(value: Any, depth: int, max_depth: int) -> Any:
    if isinstance(value, PSEnum):
        return value.value
    if isinstance(value, PSDate):
        ms = int(value.when.timestamp() * 1000)
        return _Raw(f'"\\/Date({ms})\\/"')
    if isinstance(value, PSObj):
        if depth > max_depth:
            return str(value)
        return {k: _plain(v, depth + 1, max_depth) for k, v in value.props.items()}
    if isinstance(value, dict):
        if depth > max_depth:
            return "System.Collections.Hashtable"
        return {k: _plain(v, depth + 1, max_depth) for k, v in value.items()}
    if isinstance(value, list):
        if depth > max_depth:
            return " ".join(scalar_text(x) for x in value)
        return [_plain(v, depth + 1, max_depth) for v in value]
    return value


@dataclass(frozen=True)
class _Raw:
    text: str


def _escape(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    return out.replace("'", "\\u0027").replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _dump(value: Any, compress: bool, indent: int) -> str:
    pad = "    " * (indent + 1)
    end = "    " * indent
    if isinstance(value, _Raw):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, dict):
        if compress:
            return "{" + ",".join(f"{_escape(k)}:{_dump(v, True, 0)}" for k, v in value.items()) + "}"
        if not value:
            return "{\r\n\r\n" + end + "}"
        body = ",\r\n".join(f"{pad}{_escape(k)}:  {_dump(v, False, indent + 1)}" for k, v in value.items())
        return "{\r\n" + body + "\r\n" + end + "}"
    if isinstance(value, list):
        if compress:
            return "[" + ",".join(_dump(v, True, 0) for v in value) + "]"
        if not value:
            return "[\r\n\r\n" + end + "]"
        body = ",\r\n".join(pad + _dump(v, False, indent + 1) for v in value)
        return "[\r\n" + body + "\r\n" + end + "]"
    return _escape(str(value))


def convert_to_json(values: list[Any], compress: bool = False, depth: int = 2) -> str:
    """ConvertTo-Json of pipeline input (PowerShell 5.1 shapes)."""
    if not values:
        return ""
    subject: Any = values[0] if len(values) == 1 else values
    return _dump(_plain(subject, 0, depth), compress, 0)
