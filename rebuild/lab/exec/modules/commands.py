"""ansible.windows.win_shell and win_command, run on the twin.

A PowerShell command runs through the lab's PowerShell evaluator, as a WinRS command does
(rebuild.lab.exec.powershell_exe); a cmd command through commandline. If the lab does not
simulate it, the task fails saying so: a rehearsal must never report success for work that
was not simulated.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.exec.winenv import is_dir, is_file

_MARK = b"does not simulate"


def _run(ctx: ModuleContext, kind: str, command: str, stdin: str | None) -> dict[str, Any]:
    from rebuild.lab.exec import commandline, powershell_exe

    start = dt.datetime.now()
    if stdin:
        raise ModuleFailed("the rebuild lab (a simulation) does not simulate stdin for commands")
    if kind == "powershell":
        rc, out, err = powershell_exe.run_script(ctx.lab, ctx.twin, command)
    else:
        rc, out, err = commandline.run_command_line(ctx.lab, ctx.twin, command, b"")
    end = dt.datetime.now()
    if _MARK in err:
        raise ModuleFailed(err.decode("utf-8", "replace").strip(), cmd=command, rc=rc)
    result = {
        "changed": True,
        "cmd": command,
        "rc": rc,
        "stdout": out.decode("utf-8", "replace"),
        "stderr": err.decode("utf-8", "replace"),
        "start": start.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "end": end.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "delta": str(end - start),
    }
    if rc != 0:
        raise ModuleFailed(
            "non-zero return code", **{k: v for k, v in result.items() if k != "changed"}, changed=True
        )
    return result


def _guards(ctx: ModuleContext, command: str) -> dict[str, Any] | None:
    state = ctx.state()
    creates, removes = ctx.params.get("creates"), ctx.params.get("removes")
    if creates and (is_file(state, creates) or is_dir(state, creates)):
        return {
            "changed": False,
            "skipped": True,
            "msg": f"skipped, since {creates} exists",
            "cmd": command,
            "rc": 0,
        }
    if removes and not (is_file(state, removes) or is_dir(state, removes)):
        return {
            "changed": False,
            "skipped": True,
            "msg": f"skipped, since {removes} does not exist",
            "cmd": command,
            "rc": 0,
        }
    if ctx.params.get("chdir"):
        raise ModuleFailed("the rebuild lab (a simulation) does not simulate chdir for commands")
    return None


@module_twin("ansible.windows.win_shell")
def win_shell(ctx: ModuleContext) -> dict[str, Any]:
    command = str(ctx.raw_args.get("_raw_params", ""))
    if skipped := _guards(ctx, command):
        return skipped
    exe = str(ctx.params.get("executable") or "powershell").lower().rsplit("\\", 1)[-1].removesuffix(".exe")
    if exe not in ("powershell", "cmd"):
        raise ModuleFailed(
            f"the rebuild lab (a simulation) does not simulate the shell {ctx.params.get('executable')}"
        )
    return _run(ctx, exe, command, ctx.params.get("stdin"))


@module_twin("ansible.windows.win_command")
def win_command(ctx: ModuleContext) -> dict[str, Any]:
    p = ctx.params
    given = [x for x in ("_raw_params", "cmd", "argv") if p.get(x)]
    if len(given) != 1:
        raise ModuleFailed(
            "only one of _raw_params, cmd, or argv can be set"
            if given
            else "one of the following is required: _raw_params, argv, cmd"
        )
    if p.get("argv"):
        from rebuild.lab.exec.commandline import quote_argv

        command = quote_argv([str(a) for a in p["argv"]])
    else:
        command = str(p.get("_raw_params") or p.get("cmd"))
    if skipped := _guards(ctx, command):
        return skipped
    return _run(ctx, "program", command, p.get("stdin"))
