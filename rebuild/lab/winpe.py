"""What a SIMULATED WinPE does between wimboot and Windows Setup.

wimboot injects the iPXE entry's initrd files into X:\\Windows\\System32 (ipxe.org/wimboot:
"Patch the WIM image to include additional files", the files appear in \\Windows\\System32).
Then (Microsoft Learn, "WinPE: Create Apps"): Winpeshl.exe looks for Winpeshl.ini there; without
it WinPE runs cmd.exe + startnet.cmd and nothing starts Setup on its own; with it, it runs its
[LaunchApps] instead, so Wpeinit (PnP, network: "Wpeinit and Startnet.cmd") must be launched
first or nothing on the network (boot server, image share) is reachable.

Setup finds an answer file only where it looks (Microsoft Learn, "Windows Setup Automation
Overview", implicit answer file search order) or where `setup.exe /unattend:<file>` says;
X:\\Windows\\System32 is not one of those places, so an answer file injected there is used only
when the launched app names it.

The lab runs no PowerShell: an app that runs a script is simulated only when the script is
rebuild's own WinPE script (first line `# rebuild-winpe-setup: v1`), by its documented contract
(roles/reimage/files/winpe/rebuild-setup.ps1): pick the one disk matching rebuild-disk.json,
write its number into the answer file's DiskID elements, start Setup with rebuild-unattend.xml.
Any other script fails loudly (the lab does not simulate it).
"""

from __future__ import annotations

import json
import re
from pathlib import PureWindowsPath
from typing import Any

from rebuild.errors import RebuildError

REBUILD_WINPE_SCRIPT = "# rebuild-winpe-setup: v1"


class WinPeStop(RebuildError):
    """WinPE never started Setup with a usable answer file (nothing was wiped)."""


def launch_apps(text: str) -> list[tuple[str, str]]:
    """[LaunchApps] of a Winpeshl.ini: (program, arguments) in order (`program, arguments`)."""
    apps: list[tuple[str, str]] = []
    in_section = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            in_section = line.lower() == "[launchapps]"
            continue
        if in_section:
            program, _, arguments = line.partition(",")
            apps.append((_expand(program.strip()), _expand(arguments.strip())))
    return apps


def _expand(value: str) -> str:
    """WinPE's environment: X: is the RAM disk, %SYSTEMROOT% / %WINDIR% are X:\\Windows."""
    for var in ("%SYSTEMROOT%", "%WINDIR%"):
        value = re.sub(re.escape(var), "X:\\\\Windows", value, flags=re.IGNORECASE)
    return re.sub("%SYSTEMDRIVE%", "X:", value, flags=re.IGNORECASE)


def _program(path: str) -> str:
    return PureWindowsPath(path.strip('"')).name.lower()


def _system32_file(path: str, injected: dict[str, bytes]) -> bytes | None:
    """A file the app names, if it is one wimboot injected (X:\\Windows\\System32\\<name>)."""
    win = PureWindowsPath(path.strip('"'))
    if str(win.parent).lower() != "x:\\windows\\system32":
        return None
    return injected.get(win.name.lower())


def select_system_disk(criteria_text: bytes, disks: list[dict[str, Any]]) -> int:
    """rebuild-setup.ps1's choice: the one disk not on an excluded bus, big enough, serial matching."""
    try:
        criteria = json.loads(criteria_text)
        excluded = {str(b) for b in criteria["excluded_buses"]}
        min_gb = int(criteria["min_size_gb"])
        serial = str(criteria.get("serial") or "").strip()
    except (ValueError, KeyError, TypeError) as exc:
        raise WinPeStop(
            f"rebuild-setup.ps1 refused: rebuild-disk.json is not usable ({exc}); Setup not started"
        ) from None
    candidates = [
        d
        for d in disks
        if str(d["bus"]) not in excluded
        and int(d["size_gb"]) >= min_gb
        and (not serial or str(d.get("serial", "")).strip() == serial)
    ]
    if len(candidates) != 1:
        seen = "; ".join(
            f"disk {d['number']}: {d['bus']} {d['size_gb']} GB serial {d.get('serial', '')!r}" for d in disks
        )
        raise WinPeStop(
            f"rebuild-setup.ps1 refused: {len(candidates)} disks match the system disk criteria "
            f"(serial {serial!r}); disks: {seen}; Setup not started, nothing wiped"
        )
    return int(candidates[0]["number"])


def run_winpe(injected: dict[str, bytes], disks: list[dict[str, Any]]) -> tuple[bytes, str]:
    """The answer file Setup is started with (bytes, its System32 name), or WinPeStop."""
    ini = injected.get("winpeshl.ini")
    if ini is None:
        raise WinPeStop("WinPE has no winpeshl.ini: it opened a command prompt and nothing started Setup")
    apps = launch_apps(ini.decode("utf-8", "replace"))
    if not apps or _program(apps[0][0]) not in ("wpeinit.exe", "wpeinit"):
        raise WinPeStop(
            "winpeshl.ini does not run wpeinit first: WinPE has no network, the boot server and the "
            "image share are unreachable"
        )
    for program, arguments in apps[1:]:
        name = _program(program)
        if name == "setup.exe":
            found = re.search(r"/unattend:(\"[^\"]+\"|\S+)", arguments, flags=re.IGNORECASE)
            answer = _system32_file(found.group(1), injected) if found else None
            if found is None or answer is None:
                raise WinPeStop(
                    "Setup started without an answer file it can find (X:\\Windows\\System32 is not "
                    "where Setup looks; it needs /unattend:<file>): Setup waits for input"
                )
            return answer, PureWindowsPath(found.group(1).strip('"')).name
        if name == "powershell.exe":
            found = re.search(r"-File\s+(\"[^\"]+\"|\S+)", arguments, flags=re.IGNORECASE)
            script = _system32_file(found.group(1), injected) if found else None
            if script is None or not script.decode("utf-8", "replace").startswith(REBUILD_WINPE_SCRIPT):
                raise WinPeStop(
                    f"the rebuild lab (a simulation) does not simulate the WinPE app {program} {arguments}"
                )
            answer = injected.get("rebuild-unattend.xml")
            criteria = injected.get("rebuild-disk.json")
            if answer is None or criteria is None:
                raise WinPeStop(
                    "rebuild-setup.ps1 refused: rebuild-unattend.xml or rebuild-disk.json was not injected"
                )
            number = select_system_disk(criteria, disks)
            text = re.sub(rb"<DiskID>[^<]*</DiskID>", f"<DiskID>{number}</DiskID>".encode(), answer)
            return text, "rebuild-unattend.xml"
        raise WinPeStop(f"the rebuild lab (a simulation) does not simulate the WinPE app {program}")
    raise WinPeStop("winpeshl.ini runs wpeinit and nothing else: Setup never starts")
