"""How a SIMULATED twin boots and reinstalls: the `Imager` every reimage path drives.

A network boot does what iPXE + WinPE + Setup do on a real machine:
1. fetch `mac-<hexraw>.ipxe?mac=<aa-bb-..>` from the boot server (the chain in `boot.ipxe`);
   none, or not an iPXE script, or one that does not load wimboot: boot the local disk;
2. download every file the script names (one missing: the boot fails); wimboot injects the
   initrds into X:\\Windows\\System32 and WinPE runs its winpeshl.ini (`rebuild.lab.winpe`):
   wpeinit first, then Setup with an answer file it can find (rebuild's WinPE script picks the
   system disk and writes its DiskID); parse that answer file as Setup does;
3. apply the image `InstallFrom/Path` names, from the lab's image share (`<lab_dir>`), in a UI
   language the image has; Setup wipes DiskID: a data disk wiped fails the twin;
4. the twin is `imaging` (WinRM silent) for `imaging_seconds` (+ `slow_host` delay); a PXE-first
   PC asks the boot server again at Setup's restart (an install entry again: reinstall loop);
   then OOBE (a Server needs AdministratorPassword); then `clean` in the state
   `images.clean_state` gives, or `failed` with the reason.
Everything is recorded in the twin's history with `lab.record`: boot, reset, packet,
power_off, boot_override, reimage (started/done/failed).

The services that trigger it (boot server, Wake-on-LAN, hypervisor API, Redfish BMCs) are
started by `rebuild.lab.reimage`; they import this module, it imports none of them.
"""

from __future__ import annotations

import heapq
import http.client
import re
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from rebuild.lab.answerfile import AnswerFile, AnswerFileError, parse_answer_file
from rebuild.lab.bootserver import mac_hexhyp, mac_hexraw
from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.first_logon import run_first_logon
from rebuild.lab.images import (
    AppliedImage,
    ImageError,
    clean_state,
    os_profile,
    read_image,
)
from rebuild.lab.state import Phase, TwinState
from rebuild.lab.winpe import WinPeStop, run_winpe


class Stoppable(Protocol):
    def stop(self) -> None: ...


@dataclass(frozen=True)
class BootEntry:
    """What a per-MAC iPXE script asks for."""

    install: bool
    answer_url: str = ""  # absolute URL of the answer file (install entries)
    reason: str = ""  # why it is not an install entry
    files: tuple[str, ...] = ()  # absolute URLs iPXE downloads before booting (kernel, initrds)
    # initrds wimboot injects into X:\Windows\System32: (file name there, lower case; URL)
    injected: tuple[tuple[str, str], ...] = ()


_VAR = re.compile(r"\$\{([^}]+)\}")


def read_ipxe_script(text: str, script_url: str, mac: str) -> BootEntry:
    """Interpret the subset of iPXE a per-MAC install entry uses (kernel/chain wimboot, initrd)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#!ipxe"):
        return BootEntry(False, reason="not an iPXE script (no #!ipxe line): Exec format error")
    variables = {
        "mac": mac,
        "net0/mac": mac,
        "mac:hexraw": mac_hexraw(mac),
        "net0/mac:hexraw": mac_hexraw(mac),
    }

    def expand(word: str) -> str:
        return _VAR.sub(lambda m: variables.get(m.group(1), ""), word)  # unknown: empty, as iPXE

    loads_wimboot = False
    answer = ""
    files: list[str] = []
    injected: list[tuple[str, str]] = []
    for raw in lines[1:]:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith(":"):
            continue
        try:
            words = [expand(w) for w in shlex.split(line, posix=True)]
        except ValueError:
            return BootEntry(False, reason=f"script line not understood: {line!r}")
        cmd, args = words[0], [w for w in words[1:] if not w.startswith("--")]
        if cmd == "set" and len(args) >= 2:
            variables[args[0]] = " ".join(args[1:])
        elif cmd in ("exit", "sanboot") and not loads_wimboot:
            return BootEntry(False, reason=f"script boots the local disk ({cmd})")
        elif cmd in ("kernel", "chain", "imgexec", "initrd", "imgfetch", "module") and args:
            url = urljoin(script_url, args[0])
            files.append(url)
            if cmd in ("kernel", "chain", "imgexec") and PurePosixPath(urlsplit(url).path).name == "wimboot":
                loads_wimboot = True
                continue
            if urlsplit(url).path.lower().endswith(".xml"):
                answer = url
            target = args[1] if len(args) > 1 else PurePosixPath(urlsplit(url).path).name
            if not target.lower().endswith((".wim", ".sdi")) and target.lower() != "bcd":
                injected.append((target.lower(), url))
    if not loads_wimboot:
        return BootEntry(False, reason="script does not load wimboot (no install)")
    if not answer:
        return BootEntry(
            True, reason="no answer file in the script", files=tuple(files), injected=tuple(injected)
        )
    return BootEntry(True, answer_url=answer, files=tuple(files), injected=tuple(injected))


def language_stop(answer: AnswerFile, image: AppliedImage) -> str:
    """Why Setup stops at its language page, or "" when the answer file's languages exist.

    Microsoft Learn, "UILanguage (microsoft-windows-international-core-winpe-setupuilanguage-
    uilanguage)" and "Microsoft-Windows-International-Core-WinPE": the UI language is one of the
    available language packs (not case-sensitive). fr-BE is a locale with no language pack: a
    UILanguage the image does not have leaves Setup waiting at the language page.
    """
    installed = {lang.lower() for lang in image.ui_languages}
    for setting, value in (
        ("SetupUILanguage/UILanguage", answer.setup_ui_language),
        ("UILanguage", answer.ui_language),
    ):
        if value.lower() not in installed:
            return (
                f"Windows Setup stopped at the language page: {setting} {value} is not a UI language "
                f"of image {image.image_id} (installed: {', '.join(image.ui_languages) or 'none'})"
            )
    return ""


# A PC reimaged by Wake-on-LAN boots the network first (that is how it reaches iPXE without a
# BMC): at every restart Setup makes (after applying the image), it asks the boot server again.
REINSTALL_LOOP = (
    "PXE-first PC fetched its install entry again at Setup's restart and started reinstalling: "
    "the boot server still served the entry after the first fetch (reinstall loop)"
)


def pxe_first(record: TwinRecord) -> bool:
    """Physical PCs boot the network first; BMC (Redfish Once) servers and VMs boot it once."""
    return record.kind == "workstation" and record.platform == "physical"


def oobe_stop(answer: AnswerFile, image: AppliedImage) -> str:
    """Why OOBE stops on the first boot of the applied image (after the wipe), or "".

    Microsoft Learn, "AdministratorPassword (microsoft-windows-shell-setup-useraccounts-
    administratorpassword)": the built-in Administrator's password. Windows Server's OOBE asks
    for it when the answer file does not set it, so the machine waits at that page: no logon,
    no FirstLogonCommands, no WinRM.
    """
    if os_profile(image.os, f"image {image.path}").server and answer.administrator_password is None:
        return (
            f"Windows Setup stopped at OOBE: {image.caption} asks for the built-in Administrator's "
            "password (the answer file has no UserAccounts/AdministratorPassword); WinRM never answers"
        )
    return ""


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class Scheduler:
    """One thread running delayed actions (imaging completions, BMC power changes)."""

    def __init__(self) -> None:
        self._jobs: list[_Job] = []
        self._cond = threading.Condition()
        self._seq = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="lab-scheduler", daemon=True)
        self._thread.start()

    def at(self, due: float, action: Callable[[], None]) -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._jobs, _Job(due, self._seq, action))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._jobs or self._jobs[0].due > time.time()):
                    timeout = None if not self._jobs else max(0.0, self._jobs[0].due - time.time())
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                job = heapq.heappop(self._jobs)
            try:
                job.action()
            except Exception:  # a failing job must not stop the lab's clock
                import traceback

                traceback.print_exc()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=5)


class Imager:
    """Power and boot twins; run the SIMULATED install of a network boot."""

    def __init__(
        self, lab: Lab, boot_url: str, scheduler: Scheduler, share_account: tuple[str, str] = ("", "")
    ) -> None:
        self.lab = lab
        self.share_account = share_account  # (user, password) of the image share; guest refused
        self.boot_url = boot_url.rstrip("/") + "/"
        self.scheduler = scheduler
        self._generation: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- power --------------------------------------------------------------------

    def _next_generation(self, name: str) -> int:
        with self._lock:
            gen = self._generation.get(name, 0) + 1
            self._generation[name] = gen
            return gen

    def _current(self, name: str, gen: int) -> bool:
        with self._lock:
            return self._generation.get(name) == gen

    def _disk_phase(self, name: str, state: TwinState) -> str:
        """What the local disk holds now: compromised, clean or failed (nothing bootable)."""
        if state.phase == Phase.IMAGING:
            return Phase.FAILED  # power lost mid-install: a half-written disk
        if state.phase in (Phase.OFF, Phase.FAILED):
            # What the disk held when it went off / the boot failed is kept in that event.
            for entry in reversed(state.history):
                if entry.get("event") in ("power_off", "reimage") and "disk" in entry:
                    return str(entry["disk"])
            return Phase.COMPROMISED if state.phase == Phase.OFF else Phase.FAILED
        return state.phase

    def power_off(self, name: str, via: str) -> None:
        self._next_generation(name)
        disk = self._disk_phase(name, self.lab.state(name))
        self.lab.record(name, "power_off", via=via, disk=disk)

        def off(state: TwinState) -> None:
            state.phase = Phase.OFF

        self.lab.update(name, off)

    def is_on(self, name: str) -> bool:
        return self.lab.state(name).phase != Phase.OFF

    def boot(self, name: str, network: bool, via: str) -> str:
        """Power the twin up (or restart it) and boot; returns what it booted."""
        gen = self._next_generation(name)
        if self.lab.fault(name, "never_wakes") is not None:
            # The machine stays dark: no boot, no request on the network.
            self.lab.record(name, "boot", via=via, source="none", outcome="never woke (injected fault)")
            self.power_off(name, via="fault never_wakes")
            return "none"
        if network:
            self.lab.record(name, "boot", via=via, source="network")
            entry = self._fetch_entry(name)
            if entry is not None and entry.install:
                self._install(name, gen, entry, via)
                return "install"
            reason = entry.reason if entry else "no per-MAC entry on the boot server"
            return self._boot_disk(name, via, reason)
        return self._boot_disk(name, via, "")

    def _boot_disk(self, name: str, via: str, reason: str) -> str:
        disk = self._disk_phase(name, self.lab.state(name))

        def on(state: TwinState) -> None:
            state.phase = disk

        self.lab.update(name, on)
        # Journaled once the twin is up, so whoever sees this boot also sees the machine on.
        if reason:
            self.lab.record(name, "boot", via=via, source="disk", reason=reason, disk=disk)
        else:
            self.lab.record(name, "boot", via=via, source="disk")
        return "disk"

    # -- network boot -------------------------------------------------------------

    def _get(self, name: str, url: str) -> bytes | None:
        """GET from the lab's boot server only (a URL's path is looked up there), from the twin's address."""
        parts = urlsplit(url)
        base = urlsplit(self.boot_url)
        path = urljoin(base.path, parts.path.lstrip("/")) + (f"?{parts.query}" if parts.query else "")
        source = (self.lab.twins[name].address, 0)
        conn = http.client.HTTPConnection(
            base.hostname or "127.0.0.1", base.port, timeout=10, source_address=source
        )
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            return bytes(body) if resp.status == 200 else None
        except OSError:
            return None
        finally:
            conn.close()

    def _fetch_entry(self, name: str) -> BootEntry | None:
        mac = self.lab.twins[name].mac
        script_url = f"{self.boot_url}mac-{mac_hexraw(mac)}.ipxe"
        data = self._get(name, f"{script_url}?mac={mac_hexhyp(mac)}")  # as boot.ipxe chains it
        if data is None:
            return None
        return read_ipxe_script(data.decode("utf-8", "replace"), script_url, mac)

    def _fail(self, name: str, reason: str, wiped: bool = False) -> None:
        """The install stopped: stuck in iPXE/WinPE. Before the wipe, the old disk is intact."""
        disk = Phase.FAILED if wiped else self._disk_phase(name, self.lab.state(name))
        self.lab.record(name, "reimage", status="failed", reason=reason, disk=disk)

        def failed(state: TwinState) -> None:
            state.phase = Phase.FAILED

        self.lab.update(name, failed)

    def _open_share(self, answer: AnswerFile) -> None:
        """The image share refuses guest access, as Windows clients do (AllowInsecureGuestAuth).

        Microsoft Learn, "Guest access in SMB2 and SMB3 disabled by default in Windows": Windows 10/11
        Enterprise and Education, Windows Server 2019 and later refuse insecure guest logons;
        Setup opens InstallFrom/Path with InstallFrom/Credentials, or as guest without them.
        """
        creds = answer.install_credentials
        if creds is None or not creds[1]:
            raise ImageError(
                f"image share {answer.install_from}: access denied: InstallFrom has no Credentials and "
                "guest access to SMB shares is refused (Windows Setup cannot read the image)"
            )
        domain, user, password = creds
        account = f"{domain}\\{user}" if domain else user
        if (account, password) != self.share_account:
            raise ImageError(
                f"image share {answer.install_from}: access denied for {account} (logon failure)"
            )

    def _resolve_image(self, install_from: str) -> Path:
        """Find InstallFrom/Path on the lab's image share (<lab_dir>): UNC, URL or drive path."""
        if "://" in install_from:
            parts = [p for p in PurePosixPath(urlsplit(install_from).path).parts if p != "/"]
        else:
            win = PureWindowsPath(install_from.replace("/", "\\"))
            parts = list(win.parts[1:] if win.anchor else win.parts)
        if any(p == ".." for p in parts):
            raise ImageError(f"image path {install_from!r} climbs out of the share")
        share = self.lab.config.lab_dir.resolve()
        # The share root on a real network is server\share; try the path's tails under the lab's share.
        for i in range(len(parts)):
            candidate = share.joinpath(*parts[i:])
            if candidate.is_file() and candidate.resolve().is_relative_to(share):
                return candidate
        raise ImageError(f"image {install_from!r} not found on the image share")

    def _install(self, name: str, gen: int, entry: BootEntry, via: str) -> None:
        fetched: dict[str, bytes] = {}
        for url in entry.files:
            data = self._get(name, url)
            if data is None:
                # iPXE cannot fetch what the entry needs: the boot fails (no WinPE, no install).
                self._fail(name, f"iPXE could not download {urlsplit(url).path}: boot failed")
                return
            fetched[url] = data
        injected = {target: fetched[url] for target, url in entry.injected}
        disks = self.lab.state(name).disks
        try:
            text, answer_name = run_winpe(injected, disks)
            answer = parse_answer_file(text, answer_name)
            wiped = next((d for d in disks if d["number"] == answer.disk_id), None)
            if wiped is None:
                raise AnswerFileError(f"answer file {answer_name}: DiskID {answer.disk_id}: no such disk")
            self._open_share(answer)
            image = read_image(self._resolve_image(answer.install_from))
            if answer_name == "rebuild-unattend.xml":
                # rebuild-setup.ps1 read the WIM's id and SHA-256 into the stamp command (its contract).
                text = text.replace(b"REBUILD-IMAGE-ID", image.image_id.encode()).replace(
                    b"REBUILD-IMAGE-SHA256", image.sha256.encode()
                )
                answer = parse_answer_file(text, answer_name)
            if answer.image_index not in (None, 1):
                raise ImageError(f"image {image.path.name} has no index {answer.image_index}")
            if answer.image_name not in (None, image.caption, image.image_id):
                raise ImageError(f"image {image.path.name} has no image named {answer.image_name!r}")
            stop = language_stop(answer, image)
            if stop:
                raise ImageError(stop)
        except (WinPeStop, AnswerFileError, ImageError) as exc:
            self._fail(name, str(exc))
            return
        # Setup's windowsPE pass wipes DiskID (WillWipeDisk) before it applies the image.
        number = answer.disk_id

        def wipe(state: TwinState) -> None:
            state.wiped_disk = number

        self.lab.update(name, wipe)
        if wiped.get("holds") != "system":
            self._fail(
                name,
                f"Windows Setup wiped disk {number} ({wiped['bus']} {wiped['size_gb']} GB, serial "
                f"{wiped.get('serial', '')!r}), a DATA disk, not the system disk: its data is destroyed",
                wiped=True,
            )
            return
        delay = self.lab.config.imaging_seconds
        slow = self.lab.fault(name, "slow_host")
        if slow is not None:
            delay += float(slow["delay"])
        self.lab.record(name, "reimage", status="started", via=via, image=image.path.name, seconds=delay)

        def imaging(state: TwinState) -> None:
            state.phase = Phase.IMAGING

        self.lab.update(name, imaging)
        self.scheduler.at(time.time() + delay, lambda: self._complete(name, gen, answer, image))

    def _complete(self, name: str, gen: int, answer: AnswerFile, image: AppliedImage) -> None:
        if not self._current(name, gen):
            return  # reset or powered off mid-install; that boot decided what happened
        fails = self.lab.fault(name, "reimage_fails")
        if fails is not None:
            why = fails.get("reason") or "Windows Setup failed applying the image"
            self._fail(name, f"{why} (injected fault reimage_fails)", wiped=True)
            return
        if pxe_first(self.lab.twins[name]):
            again = self._fetch_entry(name)
            if again is not None and again.install:
                self._fail(name, REINSTALL_LOOP, wiped=True)
                return
        oobe = oobe_stop(answer, image)
        if oobe:
            self._fail(name, oobe, wiped=True)
            return
        new = clean_state(self.lab.twins[name], answer, image)

        def replace(state: TwinState) -> None:
            history, disks, wiped, firmware = state.history, state.disks, state.wiped_disk, state.firmware
            state.__dict__.update(new.__dict__)
            state.history, state.disks, state.wiped_disk, state.firmware = history, disks, wiped, firmware

        # The host is up only once AutoLogon's first logon has run its commands.
        up, new.phase = new.phase, Phase.IMAGING
        self.lab.update(name, replace)
        run_first_logon(self.lab, name, answer)
        self.lab.update(name, lambda state: setattr(state, "phase", up))
        self.lab.record(name, "reimage", status="done", image_id=image.image_id, image_sha256=image.sha256)
