"""Parameter binding as PowerShell does it (about_Parameters, about_CommonParameters).

A command's parameters are matched by full name, alias, or an unambiguous prefix of either
(case-insensitive); the rest bind by position in the order of `position`; a `[switch]` takes no
value unless written `-Switch:$value`. The common parameters (-ErrorAction/-ea, -WarningAction,
-ErrorVariable, -Verbose, -Debug, ...) exist on every cmdlet and advanced function; -WhatIf and
-Confirm only where the command supports ShouldProcess. Failures use PowerShell's own messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rebuild.lab.ps.errors import ErrorRecord, PSRuntimeError


@dataclass(frozen=True)
class Param:
    name: str
    aliases: tuple[str, ...] = ()
    switch: bool = False
    position: int | None = None
    mandatory: bool = False
    pipeline: bool = False  # ValueFromPipeline
    sets: tuple[str, ...] = ()  # parameter sets it belongs to; empty = all


@dataclass(frozen=True)
class Signature:
    name: str
    params: tuple[Param, ...] = ()
    should_process: bool = False
    common: bool = True  # cmdlets and advanced functions have the common parameters
    default_set: str = ""


COMMON = (
    Param("Verbose", ("vb",), switch=True),
    Param("Debug", ("db",), switch=True),
    Param("ErrorAction", ("ea",)),
    Param("WarningAction", ("wa",)),
    Param("InformationAction", ("infa",)),
    Param("ErrorVariable", ("ev",)),
    Param("WarningVariable", ("wv",)),
    Param("InformationVariable", ("iv",)),
    Param("OutVariable", ("ov",)),
    Param("OutBuffer", ("ob",)),
    Param("PipelineVariable", ("pv",)),
)
SHOULD_PROCESS = (Param("WhatIf", ("wi",), switch=True), Param("Confirm", ("cf",), switch=True))


@dataclass
class Argument:
    """One command argument: `-Name` (with an optional `:value`) or a value."""

    name: str | None = None
    value: Any = None
    has_value: bool = True  # `-Switch` alone has none
    text: str = ""  # how it was written, for error messages


@dataclass
class Bound:
    values: dict[str, Any] = field(default_factory=dict)  # canonical name -> value
    extra: list[Any] = field(default_factory=list)  # unbound positionals ($args of simple functions)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self.values


def binding_error(command: str, message: str, error_id: str) -> PSRuntimeError:
    return PSRuntimeError(
        ErrorRecord(
            message,
            "System.Management.Automation.ParameterBindingException",
            command=command,
            category="InvalidArgument",
            error_id=f"{error_id},{command}",
        )
    )


def all_params(sig: Signature) -> tuple[Param, ...]:
    extra: tuple[Param, ...] = ()
    if sig.common:
        extra = COMMON + (SHOULD_PROCESS if sig.should_process else ())
    return sig.params + extra


def resolve(sig: Signature, written: str) -> Param:
    """The parameter `-written` names: exact name/alias first, then a unique prefix."""
    params = all_params(sig)
    w = written.lower()
    for p in params:
        if p.name.lower() == w or w in (a.lower() for a in p.aliases):
            return p
    matches = [
        p for p in params if p.name.lower().startswith(w) or any(a.lower().startswith(w) for a in p.aliases)
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise binding_error(
            sig.name,
            f"A parameter cannot be found that matches parameter name '{written}'.",
            "NamedParameterNotFound",
        )
    names = " ".join("-" + p.name for p in matches)
    raise binding_error(
        sig.name,
        f"Parameter cannot be processed because the parameter name '{written}' is ambiguous. "
        f"Possible matches include: {names}.",
        "AmbiguousParameter",
    )


def bind(
    sig: Signature, args: list[Argument], *, collect_extra: bool = False, pipeline_input: bool = False
) -> Bound:
    """Bind `args` to `sig`; raises PowerShell's ParameterBindingException messages."""
    bound = Bound()
    positional: list[Argument] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.name is None:
            positional.append(a)
            i += 1
            continue
        p = resolve(sig, a.name)
        if p.name in bound.values:
            raise binding_error(
                sig.name,
                f"Cannot bind parameter because parameter '{p.name}' is specified more than once. To provide "
                "multiple values to parameters that can accept multiple values, use the array syntax. For "
                'example, "-parameter value1,value2,value3".',
                "ParameterAlreadyBound",
            )
        if p.switch:
            bound.values[p.name] = a.value if a.has_value else True
            i += 1
            continue
        if a.has_value:
            bound.values[p.name] = a.value
            i += 1
            continue
        if i + 1 >= len(args) or args[i + 1].name is not None:
            raise binding_error(
                sig.name,
                f"Missing an argument for parameter '{p.name}'. "
                "Specify a parameter of type 'System.Object' and try again.",
                "MissingArgument",
            )
        bound.values[p.name] = args[i + 1].value
        i += 2
    active = _named_sets(sig, bound)
    slots = sorted(
        (
            p
            for p in sig.params
            if p.position is not None
            and p.name not in bound.values
            and (not p.sets or active is None or set(p.sets) & active)
        ),
        key=lambda p: p.position or 0,
    )
    for a in positional:
        if slots:
            chosen = slots.pop(0)
            bound.values[chosen.name] = a.value
            # Parameters sharing its position belong to other parameter sets.
            slots = [p for p in slots if p.position != chosen.position]
        elif collect_extra:
            bound.extra.append(a.value)
        else:
            raise binding_error(
                sig.name,
                f"A positional parameter cannot be found that accepts argument '{a.text or a.value}'.",
                "PositionalParameterNotFound",
            )
    _check_sets(sig, bound)
    for p in sig.params:
        missing = p.mandatory and p.name not in bound.values and not (p.pipeline and pipeline_input)
        if missing and _in_active_set(sig, bound, p):
            raise binding_error(
                sig.name,
                f"Cannot process command because of one or more missing mandatory parameters: {p.name}.",
                "MissingMandatoryParameter",
            )
    return bound


def _check_sets(sig: Signature, bound: Bound) -> None:
    sets: set[str] | None = None
    for p in sig.params:
        if p.name in bound.values and p.sets:
            sets = set(p.sets) if sets is None else sets & set(p.sets)
    if sets is not None and not sets:
        raise binding_error(
            sig.name,
            "Parameter set cannot be resolved using the specified named parameters.",
            "AmbiguousParameterSet",
        )


def _in_active_set(sig: Signature, bound: Bound, p: Param) -> bool:
    if not p.sets:
        return True
    chosen: set[str] | None = None
    for q in sig.params:
        if q.name in bound.values and q.sets:
            chosen = set(q.sets) if chosen is None else chosen & set(q.sets)
    if chosen is None:
        return sig.default_set in p.sets if sig.default_set else False
    return bool(chosen & set(p.sets))


def _named_sets(sig: Signature, bound: Bound) -> set[str] | None:
    """The parameter sets the named arguments leave possible (None: no constraint yet)."""
    sets: set[str] | None = None
    for p in sig.params:
        if p.name in bound.values and p.sets:
            sets = set(p.sets) if sets is None else sets & set(p.sets)
    return sets
