"""ansible.windows.win_file and win_stat on the twin's files map (text content, directories marked)."""

from __future__ import annotations

import hashlib
import ntpath
from typing import Any

from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.exec.winenv import DIRECTORY, find_path, is_dir, is_file, norm_path
from rebuild.lab.state import TwinState


@module_twin("ansible.windows.win_file")
def win_file(ctx: ModuleContext) -> dict[str, Any]:
    path = str(ctx.params["path"])
    state = ctx.state()
    wanted = ctx.params.get("state")
    exists_dir, exists_file = is_dir(state, path), is_file(state, path)
    if wanted is None:
        if exists_dir or exists_file:
            return {"changed": False}
        raise ModuleFailed(f"path {path} will not be created")
    if wanted == "absent":
        if not (exists_dir or exists_file):
            return {"changed": False}
        key = norm_path(path)
        victims = [p for p in state.files if norm_path(p) == key or norm_path(p).startswith(key + "\\")]
        if not ctx.check_mode:

            def remove(s: TwinState) -> None:
                for p in victims:
                    s.files.pop(p, None)

            ctx.update(remove)
            ctx.record("file_removed", path=path)
        return {"changed": True}
    if wanted == "file":
        if exists_dir:
            raise ModuleFailed(f"path {path} is not a file")
        if not exists_file:
            raise ModuleFailed(f"path {path} will not be created")
        return {"changed": False}
    if wanted == "touch":
        if exists_dir:
            raise ModuleFailed(f"path {path} is a directory")
        if not is_dir(state, ntpath.dirname(path)):
            raise ModuleFailed(f"Could not find a part of the path '{path}'.")
        if not ctx.check_mode:

            def touch(s: TwinState) -> None:
                s.files.setdefault(find_path(s.files, path) or path, "")

            ctx.update(touch)
        return {"changed": True}
    # directory
    if exists_file:
        raise ModuleFailed(f"path {path} is not a directory")
    if exists_dir:
        return {"changed": False}
    if not ctx.check_mode:

        def mkdir(s: TwinState) -> None:
            s.files[path] = DIRECTORY

        ctx.update(mkdir)
    return {"changed": True}


@module_twin("ansible.windows.win_stat")
def win_stat(ctx: ModuleContext) -> dict[str, Any]:
    path = str(ctx.params["path"])
    state = ctx.state()
    if not (is_dir(state, path) or is_file(state, path)):
        return {"changed": False, "stat": {"exists": False}}
    stored = find_path(state.files, path) or path
    name = ntpath.basename(stored.rstrip("\\"))
    stat: dict[str, Any] = {
        "exists": True,
        "path": stored,
        "filename": name,
        "isdir": is_dir(state, path),
        "isreg": is_file(state, path),
        "islnk": False,
        "isshared": False,
        "isjunction": False,
        "ishidden": False,
        "isarchive": is_file(state, path),
        "isreadonly": False,
        "owner": "BUILTIN\\Administrators",
        "attributes": "Directory" if is_dir(state, path) else "Archive",
    }
    if stat["isreg"]:
        data = state.files[stored].encode("utf-8")
        stat["extension"] = ntpath.splitext(name)[1]
        if ctx.params.get("get_size", True):
            stat["size"] = len(data)
        if ctx.params.get("get_checksum", True):
            stat["checksum"] = hashlib.new(
                str(ctx.params.get("checksum_algorithm") or "sha1"), data
            ).hexdigest()
    return {"changed": False, "stat": stat}
