"""What a simulated Windows host is: the state every lab protocol reads and changes.

A twin's state is plain JSON-able data so it can be persisted per twin and inspected.
The lab never invents state a real host would not have, and phases change only what
they set: a reimage replaces the whole state with the image's clean state; hardening
and redeploy change single keys.
"""

from __future__ import annotations

import copy
import json
import pickle
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, is_dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from rebuild.lab.firmware import default_firmware


class Phase(StrEnum):
    """Lifecycle of a twin as the lab sees it (not the journal's phases)."""

    COMPROMISED = "compromised"  # the old, encrypted disk: what every twin starts as
    OFF = "off"  # powered off (before WoL / reset)
    IMAGING = "imaging"  # network-booted into an install entry, applying the image
    CLEAN = "clean"  # booted the freshly applied image
    FAILED = "failed"  # imaging failed (injected fault); boots nothing useful


RANSOM_NOTE = r"C:\Users\Public\Desktop\Restore-My-Files.txt"

# Lab events after which the machine's memory is gone: a restart, a power cycle, a reimage.
RESTART_EVENTS = frozenset({"boot", "reboot", "reset", "power_off", "reimage"})


@dataclass
class Service:
    name: str
    display_name: str
    start_mode: str = "Automatic"  # Automatic | Manual | Disabled
    state: str = "Running"  # Running | Stopped
    path: str = ""


@dataclass
class LocalUser:
    name: str
    enabled: bool = True
    groups: list[str] = field(default_factory=list)
    password: str = ""  # simulation only: lets NTLM/basic auth be checked for real
    description: str = ""
    sid_suffix: int = 1000  # RID; 500 = built-in Administrator, 501 = Guest


@dataclass
class ScheduledTask:
    name: str  # full path, e.g. "\\Microsoft\\Windows\\UpdateOrchestrator\\Schedule Scan"
    command: str
    enabled: bool = True
    author: str = ""


@dataclass
class TwinState:
    """The full simulated state of one Windows host."""

    hostname: str  # the register's name; after reimage, the answer file's
    kind: str  # "server" | "workstation"
    os_caption: str  # e.g. "Microsoft Windows Server 2022 Standard"
    os_build: str  # e.g. "20348"
    image_id: str  # "" for the compromised disk (no rebuild stamp)
    image_sha256: str
    phase: str = Phase.COMPROMISED
    domain: str = "WORKGROUP"
    domain_joined: bool = False
    registry: dict[str, dict[str, Any]] = field(default_factory=dict)  # key path -> {value name: data}
    services: dict[str, Service] = field(default_factory=dict)
    features: dict[str, bool] = field(default_factory=dict)  # optional feature name -> enabled
    firewall: dict[str, dict[str, Any]] = field(default_factory=dict)  # Domain/Private/Public -> settings
    users: dict[str, LocalUser] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # local group -> member names
    applications: dict[str, str] = field(default_factory=dict)  # display name -> version
    files: dict[str, str] = field(default_factory=dict)  # absolute Windows path -> content
    tasks: dict[str, ScheduledTask] = field(default_factory=dict)
    defender: dict[str, Any] = field(default_factory=dict)
    audit_policy: dict[str, str] = field(default_factory=dict)  # subcategory -> "Success and Failure" ...
    user_rights: dict[str, list[str]] = field(default_factory=dict)  # SeRemoteInteractiveLogonRight -> [...]
    security_policy: dict[str, Any] = field(default_factory=dict)  # secedit [System Access] etc.
    time_zone: str = "Romance Standard Time"
    locale: str = "fr-BE"
    # The machine's disks, as WinPE numbers them (hardware: kept across reimages):
    # {number, bus (MSFT_Disk BusType), size_gb, serial, holds: system|data}.
    disks: list[dict[str, Any]] = field(default_factory=list)
    # UEFI or legacy BIOS, Secure Boot, the db's certificates (hardware: kept across reimages);
    # read by the SecureBoot cmdlets (rebuild/lab/exec/twin_firmware.py).
    firmware: dict[str, Any] = field(default_factory=default_firmware)
    wiped_disk: int = -1  # the DiskID Windows Setup last wiped (-1: never)
    console_session: str = ""  # who is logged on, unlocked, at the console ("" = nobody)
    # Registry keys created volatile (REG_OPTION_VOLATILE): kept in memory only, gone at restart.
    volatile_keys: list[str] = field(default_factory=list)
    # BitLocker on the OS volume C: (rebuild/lab/exec/twin_bitlocker.py): {} = never enabled
    # (FullyDecrypted, protection off, no protectors); else encryption_method, used_space_only,
    # protectors [{id, type: Tpm|RecoveryPassword, password}]. Lives on the disk: a reimage clears it.
    # The TPM is hardware and present and ready unless the fault `no_tpm` says otherwise.
    bitlocker: dict[str, Any] = field(default_factory=dict)
    # Windows LAPS (rebuild/lab/exec/twin_laps.py): {} = never rotated; events [{id, time, message}]
    # of the Microsoft-Windows-LAPS/Operational log, managed_account, rotated_at. On the disk: a
    # reimage clears it.
    laps: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # lab events: boots, resets, packets

    def volatile_key_holding(self, key: str) -> str | None:
        """The volatile key that is `key` or one of its parents, or None (all of a volatile key's
        subkeys are volatile: RegCreateKeyEx, ERROR_CHILD_MUST_BE_VOLATILE)."""
        low = key.rstrip("\\").lower()
        return next(
            (k for k in self.volatile_keys if low == k.lower() or low.startswith(k.lower() + "\\")), None
        )

    def forget_volatile_keys(self) -> None:
        """A restart: Windows discards volatile keys (and their subkeys) when HKLM is unloaded at a
        full shutdown (Microsoft Learn, RegCreateKeyEx REG_OPTION_VOLATILE)."""
        if not self.volatile_keys:
            return
        gone = [k for k in self.registry if self.volatile_key_holding(k)]
        for k in gone:
            del self.registry[k]
        self.volatile_keys = []

    def to_json(self) -> str:
        # The same text as json.dumps(dataclasses.asdict(self)), without asdict's deep copy
        # (13x faster: the lab writes a twin's state on every change it records).
        return json.dumps(self.__dict__, sort_keys=True, default=_fields_of)

    @classmethod
    def from_json(cls, text: str) -> TwinState:
        raw = json.loads(text)
        raw["services"] = {k: Service(**v) for k, v in raw["services"].items()}
        raw["users"] = {k: LocalUser(**v) for k, v in raw["users"].items()}
        raw["tasks"] = {k: ScheduledTask(**v) for k, v in raw["tasks"].items()}
        return cls(**raw)

    def copy(self) -> TwinState:
        return copy.deepcopy(self)


def _fields_of(obj: object) -> dict[str, Any]:
    if is_dataclass(obj) and not isinstance(obj, type):
        return dict(obj.__dict__)
    raise TypeError(f"a twin's state holds a {type(obj).__name__}, which is not JSON")


class StateStore:
    """Per-twin state persisted in SQLite (WAL), so `lab status` and restarts see it.

    Reads are served from memory: a twin's row, once read, is kept decoded (pickled, so every `get`
    returns a fresh copy the caller may change, exactly what decoding the row would give) until
    the next write of that twin. A write by another connection (a test editing a twin in a running
    lab) empties the memory: SQLite's `PRAGMA data_version` changes when another connection commits
    (sqlite.org/pragma.html#pragma_data_version). The lab reads a twin several times per WinRM
    request; decoding its JSON each time was a tenth of the lab's CPU."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS twin (name TEXT PRIMARY KEY, state TEXT NOT NULL)")
        # name -> (TwinState.from_json(its row), the same pickled): what peek shares and get copies
        self._decoded: dict[str, tuple[TwinState, bytes]] = {}
        self._data_version = self._db_version()

    def _db_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _drop_if_changed_elsewhere(self) -> None:
        version = self._db_version()
        if version != self._data_version:
            self._decoded.clear()
            self._data_version = version

    def put(self, name: str, state: TwinState) -> None:
        text = state.to_json()
        with self._lock:
            self._drop_if_changed_elsewhere()
            self._db.execute(
                "INSERT INTO twin(name, state) VALUES(?, ?) "
                "ON CONFLICT(name) DO UPDATE SET state = excluded.state",
                (name, text),
            )
            self._decoded.pop(name, None)  # decoded again on the next read, as the row now holds it

    def put_many(self, states: dict[str, TwinState]) -> None:
        rows = [(n, s.to_json()) for n, s in states.items()]
        with self._lock:
            self._drop_if_changed_elsewhere()
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO twin(name, state) VALUES(?, ?) "
                "ON CONFLICT(name) DO UPDATE SET state = excluded.state",
                rows,
            )
            self._db.execute("COMMIT")
            for name, _text in rows:
                self._decoded.pop(name, None)

    def get(self, name: str) -> TwinState | None:
        with self._lock:
            kept = self._kept(name)
        if kept is None:
            return None
        state: TwinState = pickle.loads(kept[1])
        return state

    def peek(self, name: str) -> TwinState | None:
        """The twin's state as the database holds it, shared with every other `peek`: READ ONLY,
        never change it (for the WinRM transport's checks on every request; `get` for anything else)."""
        with self._lock:
            kept = self._kept(name)
        return kept[0] if kept is not None else None

    def _kept(self, name: str) -> tuple[TwinState, bytes] | None:
        self._drop_if_changed_elsewhere()
        kept = self._decoded.get(name)
        if kept is None:
            row = self._db.execute("SELECT state FROM twin WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            decoded = TwinState.from_json(row[0])
            kept = self._decoded[name] = (decoded, pickle.dumps(decoded, protocol=pickle.HIGHEST_PROTOCOL))
        return kept

    def items(self) -> Iterator[tuple[str, TwinState]]:
        with self._lock:
            rows = self._db.execute("SELECT name, state FROM twin ORDER BY name").fetchall()
        for name, text in rows:
            yield name, TwinState.from_json(text)

    def close(self) -> None:
        self._db.close()
