"""Load and validate the hardening baseline (inventories/data/baseline.yml).

Every problem is reported at once, naming the file, the control and the setting, so a
broken baseline is fixed in one go and never half-applied: nothing is compiled from a
baseline that did not validate completely.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rebuild.datadir import data_file
from rebuild.errors import ConfigError
from rebuild.yamlfile import load_shared_yaml

BASELINE_FILE = "baseline.yml"  # in the data directory (rebuild.datadir)

KINDS = ("server", "workstation")
CAPABILITIES = ("virtualization_based_security",)
REMEDIATIONS = ("auto", "manual")
ID_RE = re.compile(r"^GHAL-[A-Z]+-\d{3}$")
REGISTRY_HIVES = ("HKLM:\\", "HKDU:\\")
VALUE_TYPES = ("dword", "qword", "string", "expand_string", "multi_string")
AUDIT_VALUES = ("Success", "Failure", "Success and Failure", "No Auditing")
GUID_RE = re.compile(r"^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$")
SID_MEMBER_RE = re.compile(r"^\*S-1-[0-9-]+$")


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a non-empty string"


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "must be an integer >= 0"


def _one_of(*allowed: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in allowed else f"must be one of {', '.join(allowed)} (got {v!r})"

    return check


def _registry_path(v: Any) -> str | None:
    if not isinstance(v, str) or not v.startswith(REGISTRY_HIVES):
        return f"must start with one of {', '.join(REGISTRY_HIVES)} (got {v!r})"
    if v.endswith("\\") or "\\\\" in v:
        return f"has an empty key segment: {v!r}"
    return None


def _guid(v: Any) -> str | None:
    return None if isinstance(v, str) and GUID_RE.match(v) else f"must be a {{GUID}} (got {v!r})"


def _sid_list(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(m, str) and SID_MEMBER_RE.match(m) for m in v):
        return "must be a list of SIDs written *S-1-..."
    return None


def _scalar(v: Any) -> str | None:
    return None if isinstance(v, (str, int)) and not isinstance(v, bool) else "must be a string or integer"


def _allowed(v: Any) -> str | None:
    if isinstance(v, str) and v.startswith("@"):
        return None  # resolved against `allowlists` below
    if isinstance(v, list) and v and all(isinstance(x, str) and x for x in v):
        return None
    return "must be a non-empty list of names/patterns or @<allowlist name>"


Check = Callable[[Any], str | None]
# Per setting type: required fields, optional fields, each with its check.
SETTING_TYPES: dict[str, tuple[dict[str, Check], dict[str, Check]]] = {
    "registry": (
        {"path": _registry_path, "name": _str, "value_type": _one_of(*VALUE_TYPES), "data": lambda v: None},
        {},
    ),
    "service": (
        {"name": _str, "start_mode": _one_of("automatic", "manual", "disabled")},
        {"state": _one_of("running", "stopped")},
    ),
    "feature": ({"name": _str, "enabled": _bool}, {}),
    "firewall_profile": (
        {"profile": _one_of("Domain", "Private", "Public"), "enabled": _bool},
        {
            "default_inbound_action": _one_of("Block", "Allow"),
            "default_outbound_action": _one_of("Block", "Allow"),
            "log_allowed": _bool,
            "log_blocked": _bool,
            "log_max_size_kb": _int,
        },
    ),
    "firewall_rule": (
        {
            "name": _str,
            "direction": _one_of("in", "out"),
            "protocol": _one_of("tcp", "udp"),
            "local_port": _int,
            "action": _one_of("allow", "block"),
            "enabled": _bool,
        },
        {},
    ),
    "audit_policy": ({"subcategory": _str, "guid": _guid, "value": _one_of(*AUDIT_VALUES)}, {}),
    "user_right": ({"name": _str, "members": _sid_list}, {}),
    "security_policy": ({"section": _str, "key": _str, "value": _scalar}, {}),
    "defender_status": ({"property": _str, "expected": lambda v: None}, {}),
    # A Device Guard security service in effect (Win32_DeviceGuard.SecurityServicesRunning:
    # 1 Credential Guard, 2 HVCI); written by the control's registry settings plus a restart.
    "device_guard_running": ({"service": _one_of(1, 2)}, {}),  # type: ignore[arg-type]
    "local_user": ({"rid": _one_of(500, 501)}, {"name": _str, "enabled": _bool}),  # type: ignore[arg-type]
    "group_members": ({"group_sid": _str, "allowed": _allowed}, {}),
    "service_allowlist": ({"allowed": _allowed}, {}),
    "task_allowlist": ({"allowed": _allowed}, {"allowed_commands": _allowed}),
}


def setting_key(setting: Mapping[str, Any]) -> str:
    """A stable, readable key for one setting; unique within a control (before/after use it)."""
    t = setting["type"]
    match t:
        case "registry":
            return f"registry:{setting['path']}\\{setting['name']}"
        case "service" | "feature" | "firewall_rule" | "user_right" | "defender_status":
            return f"{t}:{setting.get('name', setting.get('property'))}"
        case "firewall_profile":
            return f"firewall_profile:{setting['profile']}"
        case "audit_policy":
            return f"audit_policy:{setting['subcategory']}"
        case "security_policy":
            return f"security_policy:{setting['section']}/{setting['key']}"
        case "local_user":
            return f"local_user:{setting['rid']}"
        case "device_guard_running":
            return f"device_guard_running:{setting['service']}"
        case "group_members":
            return f"group_members:{setting['group_sid']}"
        case _:
            return str(t)


@dataclass(frozen=True)
class Control:
    """One control of the baseline, as validated data."""

    id: str
    title: str
    rationale: str
    settings: tuple[dict[str, Any], ...]
    os: tuple[str, ...] = ("*",)
    kinds: tuple[str, ...] = KINDS
    exclude_services: tuple[str, ...] = ()
    refs: dict[str, Any] = field(default_factory=dict)
    cuts_remote_management: bool = False
    reboot_required: bool = False
    requires: str | None = None
    remediation: str = "auto"


@dataclass(frozen=True)
class Baseline:
    version: int
    controls: tuple[Control, ...]
    allowlists: dict[str, tuple[str, ...]]
    source: str = ""

    def control(self, control_id: str) -> Control:
        for c in self.controls:
            if c.id == control_id:
                return c
        raise KeyError(control_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.controls)


def load_baseline(path: Path | None = None) -> Baseline:
    """Read and validate a baseline file; ConfigError lists every problem found."""
    path = path or data_file(BASELINE_FILE)
    try:
        raw = load_shared_yaml(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: baseline file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_baseline(raw, str(path))


def parse_baseline(raw: Any, source: str = "baseline") -> Baseline:
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping with `version`, `allowlists` and `controls`")
    version = raw.get("version")
    if version != 1:
        problems.append(f"{source}: `version` must be 1 (got {version!r})")
    allowlists = _allowlists(raw.get("allowlists", {}), source, problems)
    controls_raw = raw.get("controls")
    if not isinstance(controls_raw, list) or not controls_raw:
        problems.append(f"{source}: `controls` must be a non-empty list")
        controls_raw = []
    controls: list[Control] = []
    seen: set[str] = set()
    for index, item in enumerate(controls_raw, start=1):
        control = _control(item, index, source, allowlists, problems)
        if control is None:
            continue
        if control.id in seen:
            problems.append(f"{source}: control {control.id}: duplicate id")
        seen.add(control.id)
        controls.append(control)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in the baseline:\n" + "\n".join(problems))
    return Baseline(version=1, controls=tuple(controls), allowlists=allowlists, source=source)


def _allowlists(raw: Any, source: str, problems: list[str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        problems.append(f"{source}: `allowlists` must be a mapping of name -> list")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for name, items in raw.items():
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            problems.append(f"{source}: allowlist {name!r} must be a list of non-empty strings")
            continue
        out[str(name)] = tuple(items)
    return out


def _control(
    item: Any, index: int, source: str, allowlists: Mapping[str, tuple[str, ...]], problems: list[str]
) -> Control | None:
    if not isinstance(item, dict):
        problems.append(f"{source}: control #{index}: must be a mapping")
        return None
    cid = item.get("id")
    where = f"{source}: control {cid if isinstance(cid, str) else '#' + str(index)}"
    if not isinstance(cid, str) or not ID_RE.match(cid):
        problems.append(f"{where}: `id` must look like GHAL-<AREA>-<NNN> (got {cid!r})")
        return None
    known = {
        "id", "title", "refs", "rationale", "applies_to", "cuts_remote_management",
        "reboot_required", "requires", "remediation", "settings",
    }  # fmt: skip
    for extra in sorted(set(item) - known):
        problems.append(f"{where}: unknown field {extra!r}")
    for name in ("title", "rationale"):
        if _str(item.get(name)):
            problems.append(f"{where}: `{name}` must be a non-empty string")
    refs = item.get("refs", {})
    if not isinstance(refs, dict):
        problems.append(f'{where}: `refs` must be a mapping (e.g. cis_ws2022: "18.4.3")')
        refs = {}
    applies = item.get("applies_to")
    os_patterns: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    if not isinstance(applies, dict):
        problems.append(f"{where}: `applies_to` must be a mapping with `os` and `kinds`")
    else:
        os_raw, kinds_raw = applies.get("os"), applies.get("kinds")
        if not isinstance(os_raw, list) or not os_raw or not all(isinstance(o, str) and o for o in os_raw):
            problems.append(f"{where}: applies_to.os must be a non-empty list of OS key patterns")
        else:
            os_patterns = tuple(os_raw)
        if not isinstance(kinds_raw, list) or not kinds_raw or any(k not in KINDS for k in kinds_raw):
            problems.append(f"{where}: applies_to.kinds must be a non-empty list of {' / '.join(KINDS)}")
        else:
            kinds = tuple(kinds_raw)
        exclude_raw = applies.get("exclude_services", [])
        if not isinstance(exclude_raw, list):
            problems.append(f"{where}: applies_to.exclude_services must be a list of service keys")
        else:
            exclude = tuple(str(s) for s in exclude_raw)
        for extra in sorted(set(applies) - {"os", "kinds", "exclude_services"}):
            problems.append(f"{where}: applies_to: unknown field {extra!r}")
    flags = {}
    for flag in ("cuts_remote_management", "reboot_required"):
        value = item.get(flag, False)
        if not isinstance(value, bool):
            problems.append(f"{where}: `{flag}` must be true or false")
            value = False
        flags[flag] = value
    requires = item.get("requires")
    if requires is not None and requires not in CAPABILITIES:
        problems.append(f"{where}: `requires` must be one of {', '.join(CAPABILITIES)} (got {requires!r})")
    remediation = item.get("remediation", "auto")
    if remediation not in REMEDIATIONS:
        problems.append(f"{where}: `remediation` must be auto or manual (got {remediation!r})")
    settings_raw = item.get("settings")
    settings: list[dict[str, Any]] = []
    if not isinstance(settings_raw, list) or not settings_raw:
        problems.append(f"{where}: `settings` must be a non-empty list")
        settings_raw = []
    keys: set[str] = set()
    for sindex, setting in enumerate(settings_raw, start=1):
        checked = _setting(setting, f"{where} setting {sindex}", allowlists, problems)
        if checked is None:
            continue
        key = setting_key(checked)
        if key in keys:
            problems.append(f"{where} setting {sindex}: duplicate of an earlier setting ({key})")
        keys.add(key)
        settings.append(checked)
    return Control(
        id=cid,
        title=str(item.get("title", "")),
        rationale=str(item.get("rationale", "")),
        settings=tuple(settings),
        os=os_patterns,
        kinds=kinds,
        exclude_services=exclude,
        refs=dict(refs),
        cuts_remote_management=flags["cuts_remote_management"],
        reboot_required=flags["reboot_required"],
        requires=requires if isinstance(requires, str) else None,
        remediation=str(remediation),
    )


def _setting(
    setting: Any, where: str, allowlists: Mapping[str, tuple[str, ...]], problems: list[str]
) -> dict[str, Any] | None:
    if not isinstance(setting, dict):
        problems.append(f"{where}: must be a mapping with a `type`")
        return None
    stype = setting.get("type")
    if stype not in SETTING_TYPES:
        problems.append(f"{where}: unknown type {stype!r} (known: {', '.join(SETTING_TYPES)})")
        return None
    where = f"{where} ({stype})"
    required, optional = SETTING_TYPES[stype]
    ok = True
    for name, check in required.items():
        if name not in setting:
            problems.append(f"{where}: missing `{name}`")
            ok = False
            continue
        error = check(setting[name])
        if error:
            problems.append(f"{where}: `{name}` {error}")
            ok = False
    for name, check in optional.items():
        if name in setting and (error := check(setting[name])):
            problems.append(f"{where}: `{name}` {error}")
            ok = False
    for extra in sorted(set(setting) - set(required) - set(optional) - {"type"}):
        problems.append(f"{where}: unknown field {extra!r}")
        ok = False
    if not ok:
        return None
    out = dict(setting)
    if stype == "registry":
        error = _registry_data(out["value_type"], out["data"])
        if error:
            problems.append(f"{where}: `data` {error}")
            return None
    for field_name in ("allowed", "allowed_commands"):
        allowed = out.get(field_name)
        if isinstance(allowed, str):
            name = allowed[1:]
            if name not in allowlists:
                problems.append(
                    f"{where}: `{field_name}` names allowlist {name!r}, which `allowlists` does not define"
                )
                return None
            out[field_name] = list(allowlists[name])
    return out


def _registry_data(value_type: str, data: Any) -> str | None:
    if value_type in ("dword", "qword"):
        limit = 2**32 if value_type == "dword" else 2**64
        if not isinstance(data, int) or isinstance(data, bool) or not 0 <= data < limit:
            return f"must be an integer 0..{limit - 1} for a {value_type} (got {data!r})"
    elif value_type == "multi_string":
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            return f"must be a list of strings for a multi_string (got {data!r})"
    elif not isinstance(data, str):
        return f"must be a string for a {value_type} (got {data!r}); quote numbers"
    return None
