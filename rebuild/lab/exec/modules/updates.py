"""ansible.windows.win_get_url and win_hotfix on a twin: download an update package from the lab's
deployment share (SHA-256 checked) and apply it, raising the twin's UBR.

SIMULATED. A lab update package is a small text file (`simulated_msu`) naming its KB, the build it
applies to and the UBR it brings the host to; the lab keeps such files under
<lab_dir>/installers/ (the share the application catalogue's repository URL maps to, as for the
installers of win_rebuild_apps). The rules followed are the modules' own (ansible.windows
win_get_url.ps1 and win_hotfix.ps1, which call DISM's Add-WindowsPackage): the destination folder
must exist; a checksum that does not match fails and keeps nothing; a package for another build is
"not applicable"; a KB that differs from hotfix_kb fails; an installed package is left alone.
Fault `update_fails` (rebuild/lab/faults.py) makes Add-WindowsPackage throw.

Not simulated: the reboot completing the servicing operation. Windows reports the new UBR once
the restart that Add-WindowsPackage asks for (RestartNeeded) has happened; the twin raises it at
install and reports reboot_required, so the role's reboot is still exercised but not required.
"""

from __future__ import annotations

import hashlib
import ntpath
import urllib.parse
from typing import Any

from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.exec.winenv import find_path, is_dir, is_file
from rebuild.lab.installers import local_path
from rebuild.lab.state import TwinState

MSU_BANNER = "SIMULATED update package (MSU) - lab rehearsal only, not software"
CURRENT_VERSION = "HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"


def simulated_msu(kb: str, build: str, ubr: int) -> bytes:
    """The bytes of a lab update package (tests and rehearsals put them on the share)."""
    return f"{MSU_BANNER}\nkb={kb}\nbuild={build}\nubr={ubr}\n".encode()


def _share_file(ctx: ModuleContext, url: str) -> bytes | None:
    from rebuild.lab.installers import catalogue

    root = catalogue().repository.rstrip("/")
    if not url.lower().startswith(root.lower() + "/"):
        raise ModuleFailed(
            f"the rebuild lab (a simulation) does not simulate downloads from {url}: only the "
            f"deployment share {root}/ answers"
        )
    try:
        path = local_path(ctx.lab.config.lab_dir, urllib.parse.unquote(url[len(root) + 1 :]))
    except ValueError:
        return None
    return path.read_bytes() if path.is_file() else None


@module_twin("ansible.windows.win_get_url")
def win_get_url(ctx: ModuleContext) -> dict[str, Any]:
    url, dest = str(ctx.params["url"]), str(ctx.params["dest"])
    result: dict[str, Any] = {"url": url, "dest": dest, "elapsed": 0}
    algorithm = str(ctx.params.get("checksum_algorithm") or "sha1")
    if ctx.params.get("checksum_url"):
        raise ModuleFailed("the rebuild lab (a simulation) does not simulate win_get_url checksum_url")
    state = ctx.state()
    parent = ntpath.dirname(dest)
    if not is_dir(state, parent):
        raise ModuleFailed(
            f"The path '{parent}' does not exist for destination '{dest}', or is not visible to the current "
            "user. Ensure download destination folder exists (perhaps using win_file state=directory) "
            "before win_get_url runs.",
            **result,
        )
    data = _share_file(ctx, url)
    if data is None:
        raise ModuleFailed(
            f"Error downloading '{url}' to '{dest}': The remote server returned an error: (404) Not Found.",
            **result,
        )
    actual = hashlib.new(algorithm, data).hexdigest()
    wanted = str(ctx.params.get("checksum") or "")
    if wanted and wanted.lower() != actual:
        raise ModuleFailed(f"The checksum for {url} did not match '{wanted}', it was '{actual}'", **result)
    stored = find_path(state.files, dest) if is_file(state, dest) else None
    if stored is not None and state.files[stored].encode() == data and not ctx.params.get("force", True):
        return {**result, "changed": False, "checksum_dest": actual, "size": len(data)}
    if not ctx.check_mode:

        def write(s: TwinState) -> None:
            s.files[stored or dest] = data.decode("utf-8", "replace")

        ctx.update(write)
        ctx.record("download", url=url, dest=dest)
    return {**result, "changed": True, "checksum_dest": actual, "size": len(data), "status_code": 200}


def _package(text: str, source: str) -> dict[str, str]:
    lines = text.splitlines()
    if not lines or lines[0] != MSU_BANNER:
        # win_hotfix.ps1 Get-HotfixMetadataFromFile: no metadata xml in what expand.exe extracted.
        raise ModuleFailed(
            "failed to get metadata xml inside MSU file, cannot get hotfix metadata required for this task"
        )
    meta = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    if not {"kb", "build", "ubr"} <= set(meta) or not meta["ubr"].isdigit():
        raise ModuleFailed(f"failed to get DISM package metadata from path {source}: not a package")
    return meta


@module_twin("ansible.windows.win_hotfix")
def win_hotfix(ctx: ModuleContext) -> dict[str, Any]:
    result: dict[str, Any] = {"changed": False, "reboot_required": False}
    if ctx.params.get("state", "present") != "present":
        raise ModuleFailed("the rebuild lab (a simulation) does not simulate removing a hotfix", **result)
    source = ctx.params.get("source")
    if source is None:
        raise ModuleFailed("source must be set when state=present", **result)
    state = ctx.state()
    stored = find_path(state.files, str(source)) if is_file(state, str(source)) else None
    if stored is None:
        raise ModuleFailed(f"the path set for source {source} does not exist or is not a file", **result)
    meta = _package(state.files[stored], str(source))
    current = state.registry.get(CURRENT_VERSION, {})
    if meta["build"] != str(current.get("CurrentBuildNumber")):
        raise ModuleFailed("hotfix package is not applicable for this server", **result)
    kb = ctx.params.get("hotfix_kb")
    if kb is not None and str(kb) != meta["kb"]:
        raise ModuleFailed(
            f"the hotfix KB {kb} does not match with the source msu KB {meta['kb']}, "
            "please omit or specify the correct KB to continue",
            **result,
        )
    result.update(kb=meta["kb"], kbs=[meta["kb"]], identifier=f"Package_for_RollupFix~{meta['kb']}")
    ubr = int(meta["ubr"])
    if int(current.get("UBR") or 0) >= ubr:
        return result  # installed (a cumulative update at or below the current level)
    fault = ctx.lab.fault(ctx.twin.name, "update_fails")
    if fault is not None:
        reason = fault.get("reason") or "The referenced assembly could not be found. (0x80073701)"
        raise ModuleFailed(f"failed to add windows package from path {source}: {reason}", **result)
    if not ctx.check_mode:

        def apply(s: TwinState) -> None:
            s.registry[CURRENT_VERSION]["UBR"] = ubr

        ctx.update(apply)
        ctx.record("update_applied", kb=meta["kb"], ubr=ubr)
    return {**result, "changed": True, "reboot_required": True}
