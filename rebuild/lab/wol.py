"""The lab's Wake-on-LAN receiver: UDP on 127.0.0.1:<port>, standing in for the NICs.

A magic packet is 6 x 0xFF followed by 16 repetitions of the target MAC; a NIC finds it
anywhere in the frame (a 4- or 6-byte SecureOn password may follow). The lab accepts
exactly that and nothing looser: a packet for a known physical twin powers it on and it
network-boots (PCs boot network first; the boot server's per-MAC entry decides whether it
installs or falls back to its disk). Virtual machines' NICs do not wake on LAN.
Every packet for a known twin is recorded in that twin's history; others go to the log.

As with a real NIC, only a powered-off twin wakes: one that is running (its compromised
disk, a clean install, or an install in progress) ignores the packet, and the packet is
recorded as ignored. PC twins start powered off (containment shut them down, see fleet.py).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rebuild.lab.context import Lab

SYNC = b"\xff" * 6


def find_magic_mac(payload: bytes) -> str | None:
    """The MAC a magic packet wakes (aa:bb:cc:dd:ee:ff), or None if the payload holds none."""
    start = payload.find(SYNC)
    while start != -1:
        body = payload[start + 6 : start + 6 + 96]
        if len(body) == 96:
            mac = body[:6]
            if mac != SYNC and body == mac * 16:
                return ":".join(f"{b:02x}" for b in mac)
        start = payload.find(SYNC, start + 1)
    return None


class WolListener:
    """Receive magic packets and hand the woken twin's name to `wake`."""

    def __init__(
        self,
        lab: Lab,
        wake: Callable[[str], None],
        log_path: Path,
        port: int = 0,
        ignores: Callable[[str], str] = lambda name: "",
    ) -> None:
        self._lab = lab
        self._wake = wake
        self._ignores = ignores  # why a twin's NIC would not wake now ("" = it wakes)
        self._log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", port))
        self._sock.settimeout(0.5)  # lets stop() be noticed without busy looping
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lab-wol", daemon=True)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def start(self) -> WolListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _log(self, **entry: object) -> None:
        with self._log_path.open("a") as fh:
            fh.write(json.dumps({"at": time.time(), **entry}) + "\n")

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                payload, sender = self._sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self.handle(payload, sender[0])
            except Exception as exc:  # one bad packet must not stop the listener
                self._log(event="error", sender=sender[0], error=repr(exc))

    def handle(self, payload: bytes, sender: str) -> None:
        mac = find_magic_mac(payload)
        if mac is None:
            self._log(event="packet", sender=sender, size=len(payload), outcome="not a magic packet")
            return
        twin = self._lab.by_mac.get(mac)
        if twin is None:
            self._log(event="packet", sender=sender, mac=mac, outcome="no machine with this MAC")
            return
        if twin.platform != "physical":
            self._lab.record(twin.name, "packet", kind="wol", sender=sender, outcome="ignored: virtual NIC")
            return
        ignored = self._ignores(twin.name)
        outcome = f"ignored: {ignored}" if ignored else "wake"
        self._lab.record(twin.name, "packet", kind="wol", sender=sender, outcome=outcome)
        self._log(event="packet", sender=sender, mac=mac, twin=twin.name, outcome=outcome)
        if not ignored:
            self._wake(twin.name)
