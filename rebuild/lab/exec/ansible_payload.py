"""Decode what Ansible's PowerShell plumbing sends to a Windows host (ansible-core 2.19).

Ansible never sends a module as a file. Over WinRM it runs
`PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand <b64>`
where the encoded script is `bootstrap_wrapper.ps1`, and writes to the command's stdin:

    <bootstrap manifest JSON: name=exec_wrapper, script, params>\\n\\0\\0\\0\\0\\n<exec manifest JSON>
    [\\n\\0\\0\\0\\0\\n<further input, e.g. base64 lines of a file being copied>]

The exec manifest carries `scripts` (base64), `actions` (what exec_wrapper runs, in order) and,
for a module, the `module_wrapper.ps1` action whose params name the module script and hold
`complex_args` (module options plus `_ansible_*` internals such as `_ansible_check_mode`).
This module only decodes; it runs nothing. A payload that does not have this shape is refused
with a `PayloadError` saying what is wrong, as a real exec wrapper would fail on it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

SEPARATOR = b"\n\0\0\0\0\n"

# Lines of bootstrap_wrapper.ps1 that identify it whatever ansible-core patch level sent it.
_BOOTSTRAP_MARKERS = ("$codeJson = foreach ($in in $input)", '[string]::Equals($in, "`0`0`0`0")')


class PayloadError(ValueError):
    """The input is not a well-formed Ansible exec wrapper payload."""


@dataclass(frozen=True)
class Action:
    name: str  # e.g. module_wrapper.ps1, become_wrapper.ps1, powershell_mkdtemp.ps1
    params: dict[str, Any]
    secure_params: dict[str, Any]


@dataclass(frozen=True)
class ExecRequest:
    """One decoded exec wrapper invocation."""

    bootstrap_name: str
    bootstrap_params: dict[str, Any]
    actions: list[Action]
    scripts: dict[str, str]  # script name -> decoded text
    extra_input: bytes = b""  # what follows a second separator (put_file data)

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)


@dataclass(frozen=True)
class ModuleCall:
    """A module invocation taken from the module_wrapper action."""

    fqcn: str  # ansible.windows.win_ping; a project (library/) module is just its name
    script_name: (
        str  # as in the manifest, e.g. ansible_collections.ansible.windows.plugins.modules.win_ping.ps1
    )
    script: str  # the module's PowerShell source as sent
    args: dict[str, Any]  # complex_args as sent, internals included
    become_user: str | None = None
    extra_actions: list[str] = field(default_factory=list)  # wrappers around the module (async, coverage)


def decode_encoded_command(b64: str) -> str:
    """Decode a `-EncodedCommand` argument (base64 of UTF-16-LE), as powershell.exe does."""
    try:
        raw = base64.b64decode(b64.strip(), validate=True)
        return raw.decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"-EncodedCommand is not base64 of UTF-16-LE text: {exc}") from exc


def is_bootstrap_wrapper(script: str) -> bool:
    """True when an encoded script is Ansible's bootstrap_wrapper.ps1."""
    return all(marker in script for marker in _BOOTSTRAP_MARKERS)


def parse_bootstrap_input(stdin: bytes) -> ExecRequest:
    """Split and decode the stdin the bootstrap wrapper reads."""
    head, sep, rest = stdin.partition(SEPARATOR)
    if not sep:
        raise PayloadError("bootstrap input has no \\n\\0\\0\\0\\0\\n separator after the bootstrap manifest")
    try:
        boot = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"bootstrap manifest is not JSON: {exc}") from exc
    if not isinstance(boot, dict) or not {"name", "script", "params"} <= boot.keys():
        raise PayloadError("bootstrap manifest lacks name/script/params")
    if boot["name"] != "exec_wrapper":
        raise PayloadError(f"bootstrap manifest names {boot['name']!r}, expected 'exec_wrapper'")

    manifest_bytes, sep2, extra = rest.partition(SEPARATOR)
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"exec manifest is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or "actions" not in manifest or "scripts" not in manifest:
        raise PayloadError("exec manifest lacks scripts/actions")

    scripts: dict[str, str] = {}
    for name, info in manifest["scripts"].items():
        try:
            scripts[name] = base64.b64decode(info["script"]).decode("utf-8-sig")
        except (KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise PayloadError(f"exec manifest script {name!r} is not base64 UTF-8: {exc}") from exc

    actions = []
    for raw in manifest["actions"]:
        if not isinstance(raw, dict) or "name" not in raw:
            raise PayloadError("exec manifest action without a name")
        if raw["name"] not in scripts:
            raise PayloadError(f"exec manifest action {raw['name']!r} has no script in the manifest")
        actions.append(
            Action(raw["name"], dict(raw.get("params") or {}), dict(raw.get("secure_params") or {}))
        )
    if not actions:
        raise PayloadError("exec manifest has no actions")
    return ExecRequest(boot["name"], dict(boot["params"] or {}), actions, scripts, extra if sep2 else b"")


_COLLECTION_SCRIPT = re.compile(r"^ansible_collections\.(\w+)\.(\w+)\.plugins\.modules\.(\w+)\.ps1$")
_LEGACY_SCRIPT = re.compile(r"^ansible\.legacy\.(\w+)\.ps1$")


def fqcn_from_script_name(script_name: str) -> str:
    """`ansible_collections.ns.coll.plugins.modules.x.ps1` -> `ns.coll.x`; `ansible.legacy.x.ps1` -> `x`."""
    if m := _COLLECTION_SCRIPT.match(script_name):
        return f"{m[1]}.{m[2]}.{m[3]}"
    if m := _LEGACY_SCRIPT.match(script_name):
        return m[1]
    raise PayloadError(f"cannot tell which module the script {script_name!r} is")


def module_call(request: ExecRequest) -> ModuleCall | None:
    """The module this request runs, or None when it runs an executor script (mkdtemp, put_file...)."""
    wrapper = request.action("module_wrapper.ps1")
    if wrapper is None:
        return None
    script_name = wrapper.params.get("Script")
    if not isinstance(script_name, str) or script_name not in request.scripts:
        raise PayloadError("module_wrapper action names no script carried in the manifest")
    args: dict[str, Any] = {}
    for var in wrapper.params.get("Variables") or []:
        if isinstance(var, dict) and var.get("Name") == "complex_args":
            value = var.get("Value")
            if not isinstance(value, dict):
                raise PayloadError("complex_args is not a JSON object")
            args = value
    become = request.action("become_wrapper.ps1")
    others = [a.name for a in request.actions if a.name not in ("module_wrapper.ps1", "become_wrapper.ps1")]
    return ModuleCall(
        fqcn=fqcn_from_script_name(script_name),
        script_name=script_name,
        script=request.scripts[script_name],
        args=args,
        become_user=str(become.params.get("BecomeUser")) if become else None,
        extra_actions=others,
    )


_CHECK_MODE = re.compile(r"supports_check_mode\s*=\s*\$true", re.IGNORECASE)


def script_supports_check_mode(script: str) -> bool:
    """Whether the module's own argument spec declares check mode support (as Ansible.Basic reads it)."""
    return bool(_CHECK_MODE.search(script))
