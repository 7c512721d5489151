"""Build the exact bytes Ansible would send for a module, with ansible-core's own builder.

For tests and tools (never used when serving a real controller, which builds its own):
`module_command(fqcn, args, check_mode=...)` returns (command, arguments, stdin) as the
winrm connection plugin would pass them to WinRS for a pipelined module run.
"""

from __future__ import annotations

import functools
from typing import Any


# The internal options ansible-core's action plugin adds to every module call (2.19).
def internal_args(
    module_name: str, check_mode: bool = False, no_log: bool = False, diff: bool = False
) -> dict[str, Any]:
    return {
        "_ansible_check_mode": check_mode,
        "_ansible_no_log": no_log,
        "_ansible_debug": False,
        "_ansible_diff": diff,
        "_ansible_verbosity": 0,
        "_ansible_version": "2.19.0",
        "_ansible_module_name": module_name,
        "_ansible_syslog_facility": "LOG_USER",
        "_ansible_selinux_special_fs": ["fuse", "nfs", "vboxsf", "ramfs", "9p", "vfat"],
        "_ansible_socket": None,
        "_ansible_shell_executable": "/bin/sh",
        "_ansible_keep_remote_files": False,
        "_ansible_tmpdir": None,
        "_ansible_remote_tmp": "%TEMP%",
        "_ansible_ignore_unknown_opts": False,
        "_ansible_target_log_info": None,
        "_ansible_tracebacks_for": [],
    }


@functools.lru_cache(maxsize=1)
def _loader() -> Any:
    from ansible.plugins.loader import init_plugin_loader, module_loader

    from rebuild.lab.exec.argspec import _init_loader

    _init_loader(init_plugin_loader)
    return module_loader


def module_stdin(
    fqcn: str,
    args: dict[str, Any],
    *,
    check_mode: bool = False,
    no_log: bool = False,
    diff: bool = False,
    module_name: str | None = None,
) -> bytes:
    """The exec wrapper payload (bootstrap manifest + exec manifest) for one module call."""
    from ansible.executor.module_common import modify_module
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    ctx = _loader().find_plugin_with_context(fqcn, ".ps1")
    if not ctx.resolved:
        raise LookupError(f"module {fqcn} not found by ansible's module loader")
    full_args = {**args, **internal_args(module_name or fqcn, check_mode, no_log, diff)}
    built = modify_module(
        module_name=fqcn,
        module_path=ctx.plugin_resolved_path,
        module_args=full_args,
        templar=Templar(loader=DataLoader()),
        task_vars={},
        environment={},
    )
    data: bytes = built.b_module_data
    return data


def module_command(fqcn: str, args: dict[str, Any], **kw: Any) -> tuple[str, list[str], bytes]:
    """(command, arguments, stdin) of a pipelined module run over WinRM."""
    from ansible.plugins.shell.powershell import ShellModule

    stdin = module_stdin(fqcn, args, **kw)
    parts = ShellModule().build_module_command("", "#!powershell", "").split(" ")
    return parts[0], parts[1:], stdin


def encoded_command(script: str) -> tuple[str, list[str]]:
    """A raw PowerShell command as ansible-core's shell plugin encodes it (`_encode_script`)."""
    from ansible.plugins.shell.powershell import ShellModule

    parts = ShellModule()._encode_script(script, as_list=True, strict_mode=True, preserve_rc=True)
    return parts[0], parts[1:]
