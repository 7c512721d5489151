"""The lab domain's directory (SIMULATION): krbtgt key version and resets, admin accounts' pwdLastSet.

One directory per lab (`<lab_dir>/directory.json`), answered by the twins of the directory
service (tier 0 domain controllers) through the `microsoft.ad.object_info` module twin. The lab
does not simulate DC promotion, AD restore or replication: a rebuilt DC twin answers for the
lab's directory at once. Written when the inventory overlay is (`seed`), with the incident
record the overlay gives the product (`rebuild_incident`):

* the incident was declared 3 days before `lab up`, krbtgt then at key version 5;
* krbtgt was reset twice since (40 h and 26 h before `lab up`: 14 h apart, more than the 10 h
  maximum ticket lifetime of Microsoft's AD forest recovery guide), so its key version is 7;
* the administrator accounts' passwords were set after the incident.

Fault `krbtgt_reset_once` on a DC twin: that DC answers as if only the first reset had been
done (key version 6, pwdLastSet the first reset). Clearing the fault is the second reset.
Every krbtgt password set increments msDS-KeyVersionNumber by one (MS-ADTS 3.1.1.8.9
"msDS-KeyVersionNumber"; the forest recovery guide: the krbtgt password history is 2).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DIRECTORY_FILE = "directory.json"
HOUR = 3600.0
FILETIME_EPOCH_OFFSET_S = 11644473600  # seconds from 1601-01-01 to 1970-01-01 (UTC)


def filetime(epoch_seconds: float) -> int:
    """A Unix time as AD stores pwdLastSet: 100 ns intervals since 1601-01-01 UTC."""
    return int((epoch_seconds + FILETIME_EPOCH_OFFSET_S) * 10_000_000)


def iso(epoch_seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def default_state(now: float) -> dict[str, Any]:
    incident = now - 72 * HOUR
    resets = [now - 40 * HOUR, now - 26 * HOUR]
    return {
        "incident": {"declared_at": incident, "krbtgt_kvno": 5},
        "krbtgt": {"resets": resets},
        "accounts": {
            "Administrator": {"pwdLastSet": now - 30 * HOUR},
            "svc-backup-admin": {"pwdLastSet": now - 29 * HOUR},
            "svc-rebuild-join": {"pwdLastSet": now - 28 * HOUR},
        },
    }


def path_in(lab_dir: Path) -> Path:
    return Path(lab_dir) / DIRECTORY_FILE


def load(lab_dir: Path) -> dict[str, Any]:
    path = path_in(lab_dir)
    if not path.is_file():
        raise FileNotFoundError(f"the rebuild lab (a simulation) has no directory state at {path}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def seed(lab_dir: Path, now: float | None = None) -> dict[str, Any]:
    """The directory state (created once per lab) and the incident record an operator would
    have written down: the value for the overlay's `rebuild_incident`."""
    path = path_in(lab_dir)
    if path.is_file():
        state = load(lab_dir)
    else:
        state = default_state(time.time() if now is None else now)
        path.write_text(json.dumps(state, indent=1), encoding="utf-8")
    incident = state["incident"]
    return {
        "declared_at": iso(incident["declared_at"]),
        "krbtgt_kvno": incident["krbtgt_kvno"],
        # written down by whoever did the first reset (the gate cannot read it back later)
        "krbtgt_first_reset_at": iso(state["krbtgt"]["resets"][0]),
    }


def account(state: dict[str, Any], name: str, *, reset_once: bool) -> dict[str, Any] | None:
    """The attributes object_info returns for sAMAccountName `name` (None: no such object)."""
    if name.lower() == "krbtgt":
        resets: list[float] = list(state["krbtgt"]["resets"])
        if reset_once:
            resets = resets[:1]
        kvno = int(state["incident"]["krbtgt_kvno"]) + len(resets)
        last = resets[-1] if resets else state["incident"]["declared_at"] - 400 * 24 * HOUR
        return {"sAMAccountName": "krbtgt", "msDS-KeyVersionNumber": kvno, "pwdLastSet": filetime(last)}
    for known, attrs in state["accounts"].items():
        if known.lower() == name.lower():
            return {"sAMAccountName": known, "pwdLastSet": filetime(float(attrs["pwdLastSet"]))}
    return None


# --- BitLocker recovery passwords (msFVE-RecoveryInformation objects under the computer object) ---

_ESCROW_LOCK = threading.Lock()


def _update(lab_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Twins write to the directory concurrently: one writer at a time and an atomic replace."""
    path = path_in(lab_dir)
    with _ESCROW_LOCK:
        state = load(lab_dir) if path.is_file() else default_state(time.time())
        change(state)
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(scratch, path)


def escrow_recovery_password(lab_dir: Path, computer: str, protector_id: str, password: str) -> None:
    """Backup-BitLockerKeyProtector: the directory keeps the recovery password under the computer
    object, one entry per key protector id (Microsoft Learn, "BitLocker and AD DS FAQ": what is
    stored)."""

    def escrow(state: dict[str, Any]) -> None:
        state.setdefault("bitlocker_recovery", {}).setdefault(computer.upper(), {})[protector_id] = password

    _update(lab_dir, escrow)


def record_laps_password(lab_dir: Path, computer: str, expiration_filetime: int) -> None:
    """A Windows LAPS rotation backed up to AD: the computer object's msLAPS-PasswordExpirationTime
    (Microsoft Learn, "Windows LAPS schema extensions"). The password itself is not kept: nothing
    in the lab reads it back."""

    def record(state: dict[str, Any]) -> None:
        state.setdefault("laps", {})[computer.upper()] = {
            "msLAPS-PasswordExpirationTime": expiration_filetime
        }

    _update(lab_dir, record)


def laps_expiration(state: dict[str, Any], computer: str) -> int | None:
    """msLAPS-PasswordExpirationTime of a computer (None: LAPS never backed a password up for it)."""
    found = state.get("laps", {}).get(computer.upper())
    return None if found is None else int(found["msLAPS-PasswordExpirationTime"])


def escrowed_protector_ids(state: dict[str, Any], computer: str) -> list[str]:
    """The recovery password protector ids the directory holds for a computer."""
    return sorted(state.get("bitlocker_recovery", {}).get(computer.upper(), {}))
