"""Action plugin: write (or remove) one host's PXE boot entry and answer file on the boot server.

Options and result: plugins/modules/rebuild_boot_entry.py (`ansible-doc -t module rebuild_boot_entry`).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.template import trust_as_template

from rebuild import atomicfile
from rebuild.ansible_action import RebuildAction

_MAC_KEY = re.compile(r"^[0-9a-f]{12}$")


def _write_atomic(path: str, data: str, mode: int) -> bool:
    """Write only when different; atomic replace so the boot server never serves half a file."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == data:
                os.chmod(path, mode)
                return False
    except FileNotFoundError:
        pass
    atomicfile.write_text(Path(path), data, mode=mode)
    return True


class ActionModule(RebuildAction):
    NAME = "rebuild_boot_entry"
    TRANSFERS_FILES = True
    # What WinPE runs (the iPXE entry injects them): same for every host, from the role's files/.
    WINPE_FILES = ("winpeshl.ini", "rebuild-setup.ps1")

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        root = str(args.get("pxe_root") or "")
        mac = str(args.get("mac_key") or "")
        state = args.get("state", "present")
        if not root or not _MAC_KEY.match(mac):
            raise AnsibleActionFail(
                f"rebuild_boot_entry needs pxe_root and a 12-hex-digit mac_key, got {mac!r}"
            )
        if state not in ("present", "absent"):
            raise AnsibleActionFail(f"state must be present or absent, got {state!r}")
        ipxe = os.path.join(root, f"mac-{mac}.ipxe")
        answer = os.path.join(root, "unattend", f"{mac}.xml")
        disk = os.path.join(root, "unattend", f"{mac}.disk.json")
        local = getattr(self._connection, "transport", "") in ("local", "ansible.builtin.local")
        result["files"] = [ipxe, answer, disk]
        if state == "absent":
            result["changed"] = self._remove(local, [ipxe, answer, disk], task_vars)
            return result
        # The entry last: the boot server serves a host's files only while its entry exists.
        rendered = {
            answer: self._render(args.get("answer_template", "unattend.xml.j2"), task_vars),
            disk: self._render(args.get("disk_template", "system-disk.json.j2"), task_vars),
        }
        winpe = {
            os.path.join(root, "winpe", "rebuild", name): self._static(f"winpe/{name}")
            for name in self.WINPE_FILES
        }
        rendered.update(winpe)
        rendered[ipxe] = self._render(args.get("ipxe_template", "ipxe.j2"), task_vars)
        modes = {path: ("0644" if path in winpe or path == ipxe else "0600") for path in rendered}
        # A new entry is a new one-shot: the boot server serves an entry file once, so one left by
        # an interrupted run (same content) must not be kept as it is, already served.
        self._remove(local, [ipxe], task_vars)
        if local:
            os.makedirs(os.path.dirname(answer), mode=0o700, exist_ok=True)
            os.makedirs(os.path.join(root, "winpe", "rebuild"), mode=0o755, exist_ok=True)
            changed = False
            for path, text in rendered.items():
                changed = _write_atomic(path, text, int(modes[path], 8)) or changed
        else:
            changed = self._remote_write(rendered, modes, task_vars)
        result["changed"] = changed
        return result

    def _render(self, name: str, task_vars: dict) -> str:  # type: ignore[type-arg]
        try:
            source = self._find_needle("templates", name)
        except Exception as exc:
            raise AnsibleActionFail(f"template {name}: {exc}") from None
        data = trust_as_template(self._loader.get_text_file_contents(source))
        searchpath = [os.path.dirname(source), *task_vars.get("ansible_search_path", [])]
        templar = self._templar.copy_with_new_env(searchpath=searchpath, available_variables=task_vars)
        text = templar.template(data, escape_backslashes=False)
        return "" if text is None else str(text)

    def _static(self, name: str) -> str:
        try:
            source = self._find_needle("files", name)
        except Exception as exc:
            raise AnsibleActionFail(f"file {name}: {exc}") from None
        return str(self._loader.get_text_file_contents(source))

    def _remove(self, local: bool, paths: list[str], task_vars: dict) -> bool:  # type: ignore[type-arg]
        changed = False
        for path in paths:
            if local:
                try:
                    os.unlink(path)
                    changed = True
                except FileNotFoundError:
                    pass
            else:
                res = self._execute_module(
                    module_name="ansible.builtin.file",
                    module_args={"path": path, "state": "absent"},
                    task_vars=task_vars,
                )
                if res.get("failed"):
                    raise AnsibleActionFail(f"cannot remove {path} from the boot server: {res.get('msg')}")
                changed = changed or bool(res.get("changed"))
        return changed

    def _remote_write(self, rendered: dict[str, str], modes: dict[str, str], task_vars: dict) -> bool:  # type: ignore[type-arg]
        # unattend/ holds secrets (0700); winpe/rebuild/ the same files for every host (0755).
        directories = {
            os.path.dirname(p): ("0700" if modes[p] == "0600" else "0755")
            for p in rendered
            if os.path.basename(os.path.dirname(p)) in ("unattend", "rebuild")
        }
        for directory, mode in directories.items():
            res = self._execute_module(
                module_name="ansible.builtin.file",
                module_args={"path": directory, "state": "directory", "mode": mode},
                task_vars=task_vars,
            )
            if res.get("failed"):
                raise AnsibleActionFail(f"cannot create {directory} on the boot server: {res.get('msg')}")
        changed = False
        for path, text in rendered.items():
            fd, local_tmp = tempfile.mkstemp(prefix=".rebuild-render-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                res = self.run_action(
                    "ansible.builtin.copy", {"src": local_tmp, "dest": path, "mode": modes[path]}, task_vars
                )
            finally:
                os.unlink(local_tmp)
            if res.get("failed"):
                raise AnsibleActionFail(f"cannot write {path} on the boot server: {res.get('msg')}")
            changed = changed or bool(res.get("changed"))
        return changed
