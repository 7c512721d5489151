"""The environment a twin's processes see: variables, expansion, path normalisation.

Windows paths are case-insensitive; the twin's `files` map is keyed by the path as written,
so lookups go through `find_path` / `norm_path`.
"""

from __future__ import annotations

import ntpath
import re
from typing import Any

from rebuild.lab.context import TwinRecord
from rebuild.lab.state import TwinState


def environment(state: TwinState, twin: TwinRecord, user: str = "Administrator") -> dict[str, str]:
    """Environment variables of a WinRM logon (names compared case-insensitively by callers)."""
    profile = f"C:\\Users\\{user}"
    return {
        "COMPUTERNAME": state.hostname.upper()[:15],
        "USERNAME": user,
        "USERDOMAIN": state.hostname.upper()[:15],
        "USERPROFILE": profile,
        "HOMEDRIVE": "C:",
        "HOMEPATH": f"\\Users\\{user}",
        "APPDATA": f"{profile}\\AppData\\Roaming",
        "LOCALAPPDATA": f"{profile}\\AppData\\Local",
        "TEMP": f"{profile}\\AppData\\Local\\Temp",
        "TMP": f"{profile}\\AppData\\Local\\Temp",
        "SystemRoot": "C:\\Windows",
        "windir": "C:\\Windows",
        "SystemDrive": "C:",
        "ProgramFiles": "C:\\Program Files",
        "ProgramFiles(x86)": "C:\\Program Files (x86)",
        "ProgramData": "C:\\ProgramData",
        "PUBLIC": "C:\\Users\\Public",
        "PROCESSOR_ARCHITECTURE": "AMD64",
        "NUMBER_OF_PROCESSORS": "2",
        "OS": "Windows_NT",
        "PATHEXT": ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC",
        "ComSpec": "C:\\Windows\\system32\\cmd.exe",
    }


def lookup(env: dict[str, str], name: str) -> str | None:
    lowered = {k.lower(): v for k, v in env.items()}
    return lowered.get(name.lower())


def expand(text: str, env: dict[str, str]) -> str:
    """%VAR% expansion as Environment.ExpandEnvironmentVariables does (unknown names stay)."""

    def repl(m: re.Match[str]) -> str:
        value = lookup(env, m.group(1))
        return value if value is not None else m.group(0)

    return re.sub(r"%([^%]+)%", repl, text)


def norm_path(path: str) -> str:
    """Canonical comparison key of a Windows path: backslashes, no trailing slash, case-folded."""
    p = path.replace("/", "\\")
    p = ntpath.normpath(p) if p else p
    if len(p) > 3 and p.endswith("\\"):
        p = p.rstrip("\\")
    return p.lower()


DIRECTORY = "\0<dir>"  # files-map content marking a directory (a real file cannot hold NUL text here)


def find_path(files: dict[str, Any], path: str) -> str | None:
    """The key under which `path` is stored in the files map, or None."""
    key = norm_path(path)
    for stored in files:
        if norm_path(stored) == key:
            return stored
    return None


def is_dir(state: TwinState, path: str) -> bool:
    """A directory exists when stored as one, or implicitly as the parent of a stored path."""
    key = norm_path(path)
    if re.fullmatch(r"[a-z]:\\?", key):
        return key[0] == "c"
    stored = find_path(state.files, path)
    if stored is not None:
        return state.files[stored] == DIRECTORY
    prefix = key + "\\"
    return any(norm_path(p).startswith(prefix) for p in state.files)


def is_file(state: TwinState, path: str) -> bool:
    stored = find_path(state.files, path)
    return stored is not None and state.files[stored] != DIRECTORY


def children(state: TwinState, path: str) -> list[tuple[str, bool]]:
    """Immediate children (display name, is_directory) of a directory, sorted as Windows lists them."""
    prefix = norm_path(path).rstrip("\\") + "\\"
    seen: dict[str, tuple[str, bool]] = {}
    for stored, content in state.files.items():
        canon = stored.replace("/", "\\")
        if not norm_path(canon).startswith(prefix):
            continue
        rest = canon[len(prefix) :]
        head, _, tail = rest.partition("\\")
        if not head:
            continue
        is_directory = bool(tail) or content == DIRECTORY
        prior = seen.get(head.lower())
        seen[head.lower()] = (head, is_directory or (prior[1] if prior else False))
    return sorted(seen.values(), key=lambda item: item[0].lower())
