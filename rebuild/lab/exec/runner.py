"""Run a decoded Ansible module call against a twin, producing what the module would print.

Mirrors the module-side pipeline on Windows: exec wrapper -> (become wrapper) -> module wrapper
-> the module's argument parser (Ansible.Basic or Legacy) -> the module. Output is the JSON
result on stdout and the exit code the real wrapper gives (0 success, 1 failure).
"""

from __future__ import annotations

import json
from typing import Any

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.exec import argspec
from rebuild.lab.exec.ansible_payload import ModuleCall, script_supports_check_mode
from rebuild.lab.exec.modules import ModuleContext, ModuleCrashed, ModuleFailed, load_all
from rebuild.lab.exec.winenv import environment

Output = tuple[int, bytes, bytes]


def _out(result: dict[str, Any], rc: int) -> Output:
    return rc, (json.dumps(result, separators=(",", ":")) + "\r\n").encode("utf-8"), b""


def not_simulated(what: str) -> str:
    return f"the rebuild lab (a simulation) does not simulate {what}"


def run_module(lab: Lab, twin: TwinRecord, call: ModuleCall) -> Output:
    registry = load_all()
    for extra in call.extra_actions:
        # async and coverage wrappers would change how the result comes back; refuse rather than pretend.
        return _out(
            {"failed": True, "changed": False, "msg": not_simulated(f"the exec wrapper action {extra}")}, 1
        )

    twin_impl = registry.get(call.fqcn)
    if twin_impl is None:
        return _out(
            {
                "failed": True,
                "changed": False,
                "msg": not_simulated(f"module {call.fqcn}") + " (no module twin is registered for it)",
            },
            1,
        )

    args = call.args
    module_name = str(args.get("_ansible_module_name") or "undefined win module")
    basic = "Ansible.Basic" in call.script
    check_mode = argspec.parse_bool(args.get("_ansible_check_mode", False))
    diff_mode = argspec.parse_bool(args.get("_ansible_diff", False))
    state = lab.state(twin.name)
    env = environment(state, twin)

    secrets: set[str] = set()
    try:
        spec = argspec.load_spec(call.fqcn)
        if basic:
            params, secrets = argspec.validate_basic(spec, args, module_name, env)
        else:
            params = argspec.validate_legacy(spec, args, env)
    except argspec.ArgumentFailure as exc:
        result: dict[str, Any] = {"changed": False, "failed": True, "msg": exc.msg}
        if basic:
            result["invocation"] = {
                "module_args": argspec.mask(
                    {k: v for k, v in args.items() if not k.startswith("_ansible_")}, secrets
                )
            }
        return _out(result, 1)

    if check_mode and not script_supports_check_mode(call.script):
        msg = (
            f"remote module ({module_name}) does not support check mode"
            if basic
            else "remote module does not support check mode"
        )
        result = {"changed": False, "skipped": True, "msg": msg}
        if basic:
            result["invocation"] = {"module_args": argspec.mask(params, secrets)}
        return _out(result, 0)

    ctx = ModuleContext(
        lab=lab,
        twin=twin,
        module_name=module_name,
        params=params,
        raw_args=args,
        check_mode=check_mode,
        diff_mode=diff_mode,
        script=call.script,
    )
    try:
        result = {"changed": False, **twin_impl.handler(ctx)}
        rc = 0
    except ModuleFailed as exc:
        result = {"changed": False, **exc.result, "failed": True, "msg": exc.msg}
        rc = 1
    except ModuleCrashed as exc:
        return _out({"failed": True, "msg": f"Unhandled exception while executing module: {exc}"}, 1)
    if ctx.warnings:
        result["warnings"] = ctx.warnings
    if basic and "invocation" not in result:
        result["invocation"] = {"module_args": argspec.mask(params, secrets)}
    result = argspec.mask(result, secrets)
    # Only changes go into the twin's history (reads such as win_ping would grow it without bound),
    # and never the arguments: they may carry secrets.
    if result.get("changed") and not check_mode:
        lab.record(twin.name, "module", module=call.fqcn, failed=bool(result.get("failed")))
    return _out(result, rc)
