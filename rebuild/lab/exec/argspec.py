"""Check module arguments the way the module would on Windows, from the module's documentation.

Two argument parsers exist on Windows and the lab mirrors whichever the module uses:

* `Ansible.Basic` (`#AnsibleRequires -CSharpUtil Ansible.Basic`): unknown options fail with
  "Unsupported parameters for (<module>) module: ...", missing required ones with
  "missing required arguments: ...", choices and types are enforced, defaults applied, and
  the result carries `invocation.module_args` with no_log values masked.
* the old `Ansible.ModuleUtils.Legacy` (`Parse-Args` / `Get-AnsibleParam`): unknown options are
  ignored (as on Windows), a missing required option fails with
  "Get-AnsibleParam: Missing required argument: <name>", choices with
  "Get-AnsibleParam: Argument <name> needs to be one of ...".

The spec is read from the module's DOCUMENTATION: the installed collection's `.py`/`.yml`
for ansible.windows / microsoft.ad, and `plugins/modules/<name>.py` for the project's own
modules (loaded by Ansible as `ansible.legacy.<name>`). Documentation does not carry the
PowerShell-only constraints (mutually_exclusive, required_if...), so those are not checked
here; a module twin that needs one checks it itself.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild.lab.exec.winenv import expand

PROJECT_ROOT = Path(__file__).resolve().parents[3]
NO_LOG_MASK = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"

_BOOL_TRUE = ("y", "yes", "on", "1", "true", "t", "1.0")
_BOOL_FALSE = ("n", "no", "off", "0", "false", "f", "0.0")

# Internal options every Windows module accepts (Ansible.Basic's passVars).
PASS_VARS = (
    "check_mode",
    "debug",
    "diff",
    "keep_remote_files",
    "ignore_unknown_opts",
    "module_name",
    "no_log",
    "remote_tmp",
    "selinux_special_fs",
    "shell_executable",
    "socket",
    "syslog_facility",
    "target_log_info",
    "tracebacks_for",
    "tmpdir",
    "verbosity",
    "version",
)


class ArgumentFailure(Exception):
    """The module would fail before doing anything; `msg` is what it would say."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


@dataclass
class Option:
    name: str
    type: str = "str"
    required: bool = False
    default: Any = None
    choices: list[Any] | None = None
    aliases: list[str] = field(default_factory=list)
    elements: str | None = None
    no_log: bool = False
    suboptions: dict[str, Option] | None = None


@dataclass
class Spec:
    module: str
    options: dict[str, Option]


def _options(raw: dict[str, Any] | None) -> dict[str, Option]:
    out: dict[str, Option] = {}
    for name, o in (raw or {}).items():
        out[name] = Option(
            name=name,
            type=o.get("type", "str"),
            required=bool(o.get("required", False)),
            default=o.get("default"),
            choices=list(o["choices"])
            if isinstance(o.get("choices"), list)
            else (list(o["choices"].keys()) if isinstance(o.get("choices"), dict) else None),
            aliases=list(o.get("aliases") or []),
            elements=o.get("elements"),
            # DOCUMENTATION rarely says no_log; the modules' own specs mark every password option no_log.
            no_log=bool(o.get("no_log", False)) or "password" in name or name in ("offline_join_blob",),
            suboptions=_options(o.get("suboptions") or o.get("options"))
            if (o.get("suboptions") or o.get("options"))
            else None,
        )
    return out


def doc_file(fqcn: str) -> Path:
    """Where the DOCUMENTATION of a module lives."""
    parts = fqcn.split(".")
    if len(parts) == 1:
        return PROJECT_ROOT / "plugins" / "modules" / f"{parts[0]}.py"
    if len(parts) != 3:
        raise ArgumentFailure(f"the lab cannot locate documentation for module {fqcn!r}")
    spec = importlib.util.find_spec(f"ansible_collections.{parts[0]}.{parts[1]}")
    if spec is None or not spec.submodule_search_locations:
        raise ArgumentFailure(f"collection {parts[0]}.{parts[1]} is not installed on the lab's controller")
    base = Path(next(iter(spec.submodule_search_locations))) / "plugins" / "modules"
    for ext in (".py", ".yml", ".yaml"):
        if (base / f"{parts[2]}{ext}").is_file():
            return base / f"{parts[2]}{ext}"
    raise ArgumentFailure(f"no documentation for module {fqcn} in {base}")


@functools.lru_cache(maxsize=1)
def _init_loader(init: Any) -> None:
    """ansible's plugin loader may be set up once per process (the payload builder shares it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init()


_SPEC_LOCK = threading.Lock()


def load_spec(fqcn: str) -> Spec:
    """The module's options (thread-safe: twins run modules concurrently, and ansible's plugin
    loader is not safe to use from several threads at once)."""
    with _SPEC_LOCK:
        return _load_spec(fqcn)


@functools.lru_cache(maxsize=256)
def _load_spec(fqcn: str) -> Spec:
    """The module's options, with doc fragments resolved by ansible's own doc reader."""
    from ansible.plugins.loader import fragment_loader, init_plugin_loader
    from ansible.utils.plugin_docs import get_docstring

    path = doc_file(fqcn)
    if not path.is_file():
        raise ArgumentFailure(f"no documentation for module {fqcn}: {path} does not exist")
    _init_loader(init_plugin_loader)
    collection = ".".join(fqcn.split(".")[:2]) if "." in fqcn else None
    doc = get_docstring(os.fspath(path), fragment_loader, collection_name=collection)[0]
    if not doc:
        raise ArgumentFailure(f"module {fqcn} has no DOCUMENTATION in {path}")
    return Spec(module=fqcn, options=_options(doc.get("options")))


_DOTNET = {
    str: "System.String",
    bool: "System.Boolean",
    int: "System.Int32",
    float: "System.Double",
    list: "System.Object[]",
    dict: "System.Collections.Hashtable",
}


def _dotnet(value: Any) -> str:
    return _DOTNET.get(type(value), "System.Object")


def _ps_str(value: Any) -> str:
    """value.ToString() as .NET renders JSON-decoded values."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return "System.Object[]"
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    return str(value)


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _ps_str(value).lower().strip()
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    raise ValueError(
        f"The value '{text}' is not a valid boolean. Valid booleans include: "
        + ", ".join(_BOOL_TRUE + _BOOL_FALSE)
    )


def _convert(kind: str, value: Any, env: dict[str, str]) -> Any:
    if kind in ("str",):
        return _ps_str(value)
    if kind == "path":
        text = _ps_str(value)
        return text if text.startswith("\\\\?\\") else expand(text, env)
    if kind == "bool":
        return parse_bool(value)
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = _ps_str(value).strip()
        if not text.lstrip("+-").isdigit():
            raise ValueError("Input string was not in a correct format.")
        return int(text)
    if kind == "float":
        return float(_ps_str(value))
    if kind == "list":
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [s.strip() for s in value.split(",")]
        if isinstance(value, int):
            return [value]
        raise ValueError(f"Cannot convert {_dotnet(value)} to a list")
    if kind == "dict":
        if isinstance(value, dict):
            return value
        raise ValueError(f"Cannot convert {_dotnet(value)} to a dict")
    return value  # raw, json, sid and unknown: passed through as the module receives them


def validate_basic(
    spec: Spec, args: dict[str, Any], module_name: str, env: dict[str, str], context: list[str] | None = None
) -> tuple[dict[str, Any], set[str]]:
    """Ansible.Basic's checks. Returns (params with defaults, no_log values); raises ArgumentFailure."""
    ctx = context or []
    where = f" found in {' -> '.join(ctx)}" if ctx else ""
    params = {k: v for k, v in args.items() if not k.startswith("_ansible_")} if not ctx else dict(args)
    legal: list[str] = []
    if not ctx:
        legal += [f"_ansible_{v}" for v in PASS_VARS]
    legal += list(spec.options)
    alias_to: dict[str, str] = {}
    for o in spec.options.values():
        for a in o.aliases:
            alias_to[a] = o.name
            legal.append(a)
    # Ansible.Basic.cs CheckUnsupportedArguments: `legalInputs.Contains(key)`, ordinal (case-sensitive).
    unknown = [k for k in (args if not ctx else params) if k not in legal]
    if unknown and not parse_bool(args.get("_ansible_ignore_unknown_opts", False)):
        supported = sorted({x for x in legal if not x.startswith("_ansible_")}, key=str.lower)
        raise ArgumentFailure(
            f"Unsupported parameters for ({module_name}) module: {', '.join(unknown)}{where}. "
            f"Supported parameters include: {', '.join(supported)}"
        )
    for k in unknown:
        params.pop(k, None)
    for alias, target in alias_to.items():
        if alias in params:
            params.setdefault(target, params[alias])
    no_log_values: set[str] = set()
    missing = []
    for name, o in spec.options.items():
        if name not in params and o.default is not None:
            params[name] = o.default
        if o.required and name not in params:
            missing.append(name)
    if missing:
        raise ArgumentFailure(f"missing required arguments: {', '.join(missing)}{where}")
    for name, o in spec.options.items():
        value = params.get(name)
        if value is None:
            continue
        try:
            value = _convert(o.type, value, env)
            if o.type == "list" and o.elements and o.elements not in ("raw", "dict"):
                value = [_convert(o.elements, v, env) for v in value]
        except ValueError as exc:
            raise ArgumentFailure(
                f"argument for {name} is of type {_dotnet(params[name])} and we were unable "
                f"to convert to {o.type}: {exc}{where}"
            ) from None
        if o.choices:
            values = value if o.type == "list" else [value]
            allowed = [_ps_str(c) for c in o.choices]
            # Ansible.Basic.cs: `choices.Contains(value)` / `Except(choices)`, ordinal (case-sensitive).
            bad = [_ps_str(v) for v in values if _ps_str(v) not in allowed]
            if bad and o.type == "list":
                raise ArgumentFailure(
                    f"value of {name} must be one or more of: {', '.join(allowed)}. "
                    f"Got no match for: {', '.join(bad)}{where}"
                )
            if bad:
                raise ArgumentFailure(
                    f"value of {name} must be one of: {', '.join(allowed)}, got: {bad[0]}{where}"
                )
        if o.no_log:
            no_log_values.add(_ps_str(value))
        if o.suboptions and o.type in ("dict", "list"):
            items = value if o.type == "list" else [value]
            checked = []
            for item in items:
                sub, sub_nolog = validate_basic(
                    Spec(spec.module, o.suboptions),
                    item if isinstance(item, dict) else {},
                    module_name,
                    env,
                    [*ctx, name],
                )
                checked.append(sub)
                no_log_values |= sub_nolog
            value = checked if o.type == "list" else checked[0]
        params[name] = value
    for name in spec.options:
        params.setdefault(name, None)
    for alias in alias_to:
        params.pop(alias, None)
    return params, no_log_values


def validate_legacy(spec: Spec, args: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Get-AnsibleParam's checks: required and choices only; unknown options pass, as on Windows."""
    params: dict[str, Any] = {}
    for name, o in spec.options.items():
        keys = (
            ["_raw_params"] if name == "free_form" else [name, *o.aliases]
        )  # docs name the free-form text free_form
        found = next((a for a in keys if a in args), None)
        if found is None:
            if o.required:
                raise ArgumentFailure(f"Get-AnsibleParam: Missing required argument: {keys[0]}")
            params[name] = o.default
            continue
        value = args[found]
        if o.choices and _ps_str(value).lower() not in {_ps_str(c).lower() for c in o.choices}:
            raise ArgumentFailure(
                f"Get-AnsibleParam: Argument {found} needs to be one of "
                f"{','.join(_ps_str(c) for c in o.choices)} but was {_ps_str(value)}."
            )
        if value is not None:
            if o.type == "bool":
                value = _ps_str(value).lower() in ("yes", "on", "1", "true")
            elif o.type in ("str", "path", "int", "float", "list"):
                try:
                    value = _convert(o.type, value, env)
                except ValueError:
                    value = None if o.type in ("int", "float") else value
        params[name] = value
    return params


def mask(value: Any, secrets: set[str]) -> Any:
    """Replace no_log values wherever they occur, as Ansible.Basic's RemoveNoLogValues does."""
    if isinstance(value, dict):
        return {k: mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, secrets) for v in value]
    if isinstance(value, str) and value and value in secrets:
        return NO_LOG_MASK
    if isinstance(value, str):
        for s in secrets:
            if s and s in value:
                value = value.replace(s, "********")
    return value
