"""`[Ansible.Basic.AnsibleModule]::Create($args, $spec)` as ansible-core 2.19's C# util behaves.

Reference: ansible-core lib/ansible/module_utils/csharp/Ansible.Basic.cs (read, not copied).
The spec comes from the script's own `$spec` hashtable; arguments are validated by the lab's
Ansible.Basic checks in `rebuild.lab.exec.argspec` (unknown, missing, type, choices, elements,
suboptions, no_log) plus `mutually_exclusive`. `Result` starts as `@{changed = $false}` with
`invocation.module_args` (no_log values masked); `ExitJson()` / `FailJson(msg)` write the result
and end the script with rc 0 / 1; `Warn()` adds to `warnings`; `Diff` is returned as `diff`
only in diff mode and when not empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rebuild.lab.exec import argspec
from rebuild.lab.exec.psobjects import PSDate, PSEnum, PSObj
from rebuild.lab.ps import values as v
from rebuild.lab.ps.errors import NotSimulated
from rebuild.lab.ps.values import GenericList, Hashtable

if TYPE_CHECKING:
    from rebuild.lab.ps.evaluator import Evaluator
    from rebuild.lab.ps.parser import Node


def to_ps(value: Any, top: bool = True) -> Any:
    """Module arguments as the script sees them: `Params` is the `$complex_args` Hashtable
    (case-insensitive keys); a dict option inside it is a Dictionary<string, object> (Ansible.Basic.cs
    ParseDict), whose keys are case-sensitive; lists are List<object>."""
    if isinstance(value, dict):
        h = Hashtable(case_sensitive=not top)
        for k, x in value.items():
            h.set(k, to_ps(x, top=False))
        return h
    if isinstance(value, list):
        return GenericList("System.Object", [to_ps(x, top=False) for x in value])
    return value


def to_plain(value: Any) -> Any:
    """A PowerShell value as the JSON Ansible.Basic would serialise (JavaScriptSerializer)."""
    if isinstance(value, Hashtable):
        return {v.to_string(k): to_plain(x) for k, x in value.items()}
    if isinstance(value, list):
        return [to_plain(x) for x in value]
    if isinstance(value, PSObj):
        return {k: to_plain(x) for k, x in value.props.items()}
    if isinstance(value, v.SwitchParameter):
        return value.present
    if isinstance(value, PSEnum):
        return value.value
    if isinstance(value, PSDate):
        return f"/Date({int(value.when.timestamp() * 1000)})/"
    if isinstance(value, v.PSVersion):
        return {"Major": value.parts[0], "Minor": value.parts[1] if len(value.parts) > 1 else -1}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return v.to_string(value)


def _spec_options(raw: Any) -> dict[str, argspec.Option]:
    options: dict[str, argspec.Option] = {}
    if not isinstance(raw, Hashtable):
        return options
    for name, o in raw.items():
        if not isinstance(o, Hashtable):
            raise NotSimulated(f"the argument spec entry {name} that is not a hashtable")
        choices = o.get("choices")
        sub = o.get("options")
        options[str(name)] = argspec.Option(
            name=str(name),
            type=v.to_string(o.get("type") or "str"),
            required=v.truthy(o.get("required")),
            default=to_plain(o.get("default")),
            choices=[to_plain(c) for c in v.as_list(choices)] if choices is not None else None,
            aliases=[v.to_string(a) for a in v.as_list(o.get("aliases"))],
            elements=v.to_string(o.get("elements")) if o.get("elements") is not None else None,
            no_log=v.truthy(o.get("no_log")),
            suboptions=_spec_options(sub) if sub is not None else None,
        )
    return options


class ModuleExit(Exception):
    def __init__(self, result: dict[str, Any], rc: int) -> None:
        super().__init__(f"module exit {rc}")
        self.result = result
        self.rc = rc


@dataclass
class AnsibleModule:
    """The object `Create` returns; its members are what our scripts use."""

    params: Hashtable
    check_mode: bool
    diff_mode: bool
    secrets: set[str]
    result: Hashtable = field(default_factory=Hashtable)
    diff: Hashtable = field(default_factory=Hashtable)
    warnings: list[str] = field(default_factory=list)
    deprecations: list[dict[str, str]] = field(default_factory=list)

    def formatted(self) -> dict[str, Any]:
        out = to_plain(self.result)
        assert isinstance(out, dict)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.deprecations:
            out["deprecations"] = list(self.deprecations)
        if self.diff_mode and len(self.diff) > 0:
            out["diff"] = to_plain(self.diff)
        masked = argspec.mask(out, self.secrets)
        assert isinstance(masked, dict)
        return masked

    def member(self, ev: Evaluator, name: str, node: Node) -> Any:
        low = name.lower()
        table = {
            "params": self.params,
            "result": self.result,
            "checkmode": self.check_mode,
            "diffmode": self.diff_mode,
            "diff": self.diff,
        }
        if low in table:
            return table[low]
        raise NotSimulated(f"the Ansible.Basic member {name}", ev.where(node))

    def call(self, ev: Evaluator, name: str, args: list[Any], node: Node) -> Any:
        low = name.lower()
        if low == "exitjson" and not args:
            raise ModuleExit(self.formatted(), 0)
        if low == "failjson" and 1 <= len(args) <= 2:
            self.result.set("failed", True)
            self.result.set("msg", v.to_string(args[0]))
            raise ModuleExit(self.formatted(), 1)
        if low == "warn" and len(args) == 1:
            self.warnings.append(v.to_string(args[0]))
            return None
        if low == "deprecate" and len(args) == 2:
            self.deprecations.append({"msg": v.to_string(args[0]), "version": v.to_string(args[1])})
            return None
        raise NotSimulated(f"the Ansible.Basic method {name}() with {len(args)} argument(s)", ev.where(node))


def create(
    ev: Evaluator, complex_args: dict[str, Any], spec: Any, module_name: str, env: dict[str, str]
) -> AnsibleModule:
    """`AnsibleModule.Create`: validate arguments against the spec, or end the module with FailJson."""
    if not isinstance(spec, Hashtable):
        raise NotSimulated("AnsibleModule.Create with a spec that is not a hashtable")
    known = {
        "options",
        "supports_check_mode",
        "mutually_exclusive",
        "required_one_of",
        "required_together",
        "required_if",
        "no_log",
    }
    unknown = [str(k) for k in spec.keys() if str(k).lower() not in known]  # noqa: SIM118 - Hashtable
    if unknown:
        raise ModuleExit(
            {
                "failed": True,
                "msg": f"internal error: argument spec entry contains an invalid key "
                f"'{unknown[0]}', valid keys: {', '.join(sorted(known))}",
            },
            1,
        )
    options = _spec_options(spec.get("options"))
    check_mode = argspec.parse_bool(complex_args.get("_ansible_check_mode", False))
    diff_mode = argspec.parse_bool(complex_args.get("_ansible_diff", False))
    user_args = {k: x for k, x in complex_args.items() if not k.startswith("_ansible_")}
    try:
        params, secrets = argspec.validate_basic(
            argspec.Spec(module_name, options), complex_args, module_name, env
        )
        _mutually_exclusive(spec.get("mutually_exclusive"), user_args)
    except argspec.ArgumentFailure as exc:
        # FailJson from inside the constructor: Result holds only `changed` yet (no invocation).
        raise ModuleExit({"changed": False, "failed": True, "msg": exc.msg}, 1) from None
    if check_mode and not v.truthy(spec.get("supports_check_mode")):
        raise ModuleExit(
            {
                "changed": False,
                "skipped": True,
                "msg": f"remote module ({module_name}) does not support check mode",
            },
            0,
        )
    module = AnsibleModule(to_ps(params), check_mode, diff_mode, secrets)
    module.result.set("changed", False)
    module.result.set("invocation", to_ps({"module_args": argspec.mask(params, secrets)}))
    return module


def _mutually_exclusive(groups: Any, args: dict[str, Any]) -> None:
    for group in v.as_list(groups):
        names = [v.to_string(n) for n in v.as_list(group)]
        present = [n for n in names if args.get(n) is not None]
        if len(present) > 1:
            raise argspec.ArgumentFailure(f"parameters are mutually exclusive: {', '.join(names)}")


__all__ = ["AnsibleModule", "GenericList", "ModuleExit", "create", "to_plain", "to_ps"]
