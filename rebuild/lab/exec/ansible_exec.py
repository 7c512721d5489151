"""Run what Ansible's exec wrapper would run: a module, or one of ansible-core's executor scripts.

Executor scripts the shell and connection plugins send (ansible-core 2.19,
plugins/shell/powershell.py and plugins/connection/winrm.py):
`powershell_mkdtemp.ps1` (non-pipelined remote temp dir), `powershell_expand_user.ps1` (`~`),
`winrm_put_file.ps1` (file upload: base64 lines after the manifest) and
`winrm_fetch_file.ps1` (download). Become via `become_wrapper.ps1` runs the module as asked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import ntpath

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.exec.ansible_payload import ExecRequest, PayloadError, module_call, parse_bootstrap_input
from rebuild.lab.exec.runner import run_module
from rebuild.lab.exec.winenv import DIRECTORY, environment, expand, find_path, is_dir, is_file
from rebuild.lab.state import TwinState

Output = tuple[int, bytes, bytes]


def _err(msg: str, rc: int = 1) -> Output:
    return rc, b"", (msg.rstrip("\r\n") + "\r\n").encode()


def run_bootstrap(lab: Lab, twin: TwinRecord, stdin: bytes) -> Output:
    try:
        request = parse_bootstrap_input(stdin)
        call = module_call(request)
    except PayloadError as exc:
        # The real exec wrapper dies on malformed input with a PowerShell error on stderr.
        return _err(f"exec_wrapper: {exc}")
    if call is not None:
        return run_module(lab, twin, call)
    return _run_executor_script(lab, twin, request)


def _run_executor_script(lab: Lab, twin: TwinRecord, request: ExecRequest) -> Output:
    action = request.actions[-1]
    state = lab.state(twin.name)
    env = environment(state, twin)
    if action.name == "powershell_mkdtemp.ps1":
        base = expand(str(action.params.get("Directory", "")), env)
        path = ntpath.join(base, str(action.params.get("Name", "")))
        if find_path(state.files, path) is not None:
            return _err(f"New-Item : An item with the specified name {path} already exists.")

        def mkdir(s: TwinState) -> None:
            s.files[path] = DIRECTORY

        lab.update(twin.name, mkdir)
        return 0, (path + "\r\n").encode(), b""
    if action.name == "powershell_expand_user.ps1":
        raw = str(action.params.get("Path", ""))
        profile = env["USERPROFILE"]
        if raw == "~":
            out = profile
        elif raw.startswith("~\\"):
            out = ntpath.join(profile, raw[2:])
        else:
            out = raw
        return 0, (out + "\r\n").encode(), b""
    if action.name == "winrm_put_file.ps1":
        path = str(action.params.get("Path", ""))
        try:
            data = b"".join(
                base64.b64decode(line) for line in request.extra_input.split(b"\r\n") if line.strip()
            )
        except binascii.Error as exc:
            return _err(f"winrm_put_file: input is not base64: {exc}")
        parent = ntpath.dirname(path)
        if not is_dir(state, parent):
            return _err(
                'Exception calling "Create" with "1" argument(s): '
                f"\"Could not find a part of the path '{path}'.\""
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return _err(
                "the rebuild lab (a simulation) does not simulate binary file content "
                "(files are kept as text)"
            )

        def put(s: TwinState) -> None:
            s.files[find_path(s.files, path) or path] = text

        lab.update(twin.name, put)
        return 0, (json.dumps({"sha1": hashlib.sha1(data).hexdigest()}) + "\r\n").encode(), b""
    if action.name == "winrm_fetch_file.ps1":
        path = str(action.params.get("Path", ""))
        if is_dir(state, path):
            return 0, b"[DIR]\r\n", b""
        if not is_file(state, path):
            return _err(f"{path} does not exist")
        data = state.files[find_path(state.files, path) or path].encode("utf-8")
        offset = int(action.params.get("Offset", 0))
        chunk = data[offset : offset + int(action.params.get("BufferSize", len(data) or 1))]
        return 0, (base64.b64encode(chunk) + b"\r\n") if chunk else b"", b""
    return _err(f"the rebuild lab (a simulation) does not simulate the exec wrapper script {action.name}")
