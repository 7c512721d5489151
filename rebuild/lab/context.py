"""The running lab as every lab subsystem sees it: twins, their state, faults, settings.

One `Lab` object lives in the lab daemon. The WinRM listeners, the boot server, the
Wake-on-LAN listener, the Redfish watcher and the hypervisor API all read and change
twins only through it, so state is persisted and every event is recorded in one place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild.lab.state import RESTART_EVENTS, StateStore, TwinState


@dataclass(frozen=True)
class TwinRecord:
    """Who a twin is, from the inventory it was made from. Fixed for the lab's life."""

    name: str  # inventory hostname
    address: str  # its own loopback address, 127.x.y.z
    mac: str  # aa:bb:cc:dd:ee:ff
    kind: str  # server | workstation
    platform: str  # physical | virtual
    site: str
    os: str  # image catalogue key
    service: str
    vm_ref: str = ""
    redfish_system_id: str = ""  # the sushy-emulator system that stands for its BMC


@dataclass
class LabConfig:
    """Settings of one lab. Ports 0 mean: pick a free one at start (tests run labs in parallel)."""

    lab_dir: Path
    address_prefix: str = "127.20"  # twins get <prefix>.<hi>.<lo>
    winrm_http_port: int = 5985
    winrm_https_port: int = 5986
    control_port: int = 0
    boot_http_port: int = 0
    wol_port: int = 0
    hypervisor_port: int = 0
    redfish_port: int = 0
    imaging_seconds: float = 5.0  # how long a reimage takes before WinRM answers again
    # How long after the request a physical server's BMC lands a power change (Redfish reset,
    # power on/off). None: sushy-tools' fake driver's own random delay, up to 11 s per change (the default);
    # a whole number of seconds (0 or more) instead: rebuild/lab/sushy_fixed_delay.py.
    bmc_power_seconds: int | None = None
    # How long a restarting twin's WinRM listeners refuse connections: after `shutdown /r`'s notice,
    # after a boot from disk (power on, reset). 0: back at once (in-process test labs); `lab up` and
    # `lab rehearse` set their own defaults (docs/lab.md, "Simulated durations").
    restart_seconds: float = 0.0
    shell_quota: int = 5  # WinRS MaxShellsPerUser, as on Windows' default-ish low setting
    # The simulated domain controller's account allowed to join computers (microsoft.ad.membership twin);
    # set at `lab up` and seeded into the product's secret store as each site's domain_join_* secrets.
    domain_admin_user: str = ""
    domain_admin_password: str = field(default="", repr=False)
    # The image share's read-only account (guest access is refused); generated when the reimage
    # services start, seeded into the product's secret store as each site's image_share_* secrets.
    image_share_user: str = "rebuild-image-reader"
    image_share_password: str = field(default="", repr=False)

    def simulated_durations(self) -> dict[str, str]:
        """What this lab's simulated hardware takes, said plainly (a rehearsal's output and the
        bench name the ones a run set: docs/lab.md, "Simulated durations")."""
        return {
            "imaging": f"{self.imaging_seconds:g} s",
            "bmc_power": (
                "sushy-tools fake driver: up to 11 s, random per change"
                if self.bmc_power_seconds is None
                else f"{self.bmc_power_seconds} s"
            ),
            "restart": (
                "the shutdown /t notice, then back at once"
                if self.restart_seconds == 0
                else f"WinRM refused for {self.restart_seconds:g} s after the shutdown /t notice "
                "and after a boot from disk"
            ),
            "wake_on_lan, hypervisor power": "at once",
        }


@dataclass
class Lab:
    config: LabConfig
    store: StateStore
    twins: dict[str, TwinRecord]
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> {fault name: params}
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _listeners: list[Callable[[str, dict[str, Any]], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_address = {t.address: t for t in self.twins.values()}
        self.by_mac = {t.mac: t for t in self.twins.values()}

    def state(self, name: str) -> TwinState:
        found = self.store.get(name)
        if found is None:
            raise KeyError(f"no twin named {name!r} in this lab")
        return found

    def peek(self, name: str) -> TwinState:
        """The twin's state, shared and READ ONLY (StateStore.peek): never change what it returns."""
        found = self.store.peek(name)
        if found is None:
            raise KeyError(f"no twin named {name!r} in this lab")
        return found

    def save(self, name: str, state: TwinState) -> None:
        with self._lock:
            self.store.put(name, state)

    def update(self, name: str, change: Callable[[TwinState], None]) -> TwinState:
        """Read-modify-write one twin atomically with respect to other lab threads."""
        with self._lock:
            state = self.state(name)
            change(state)
            self.store.put(name, state)
            return state

    def record(self, name: str, event: str, **details: Any) -> None:
        """Keep a lab event (boot, reset, packet, reimage...) in the twin's history."""
        entry = {"at": time.time(), "event": event, **details}

        def add(state: TwinState) -> None:
            state.history.append(entry)
            if event in RESTART_EVENTS:
                state.forget_volatile_keys()

        self.update(name, add)
        for listener in list(self._listeners):
            listener(name, entry)

    def fault(self, name: str, fault: str) -> dict[str, Any] | None:
        """The parameters of an injected fault on this twin, or None when not injected."""
        return self.faults.get(name, {}).get(fault)
