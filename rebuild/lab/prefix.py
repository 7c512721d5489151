"""Claim a 127.N address prefix no other lab on this machine uses (labs run side by side)."""

from __future__ import annotations

import fcntl
import random
import socket
from typing import IO

DEFAULT_PREFIX_OCTET = 20  # `rebuild lab up`'s own 127.20: never handed out here


def claim_prefix() -> tuple[str, IO[str]]:
    """A free 127.N and the lock file holding it; keep the file open for the lab's life, then close it."""
    candidates = [n for n in range(30, 251) if n != DEFAULT_PREFIX_OCTET]
    random.shuffle(candidates)
    for n in candidates:
        lock = open(f"/tmp/rebuild-lab-prefix-{n}.lock", "w")  # noqa: SIM115 - held for the lab's life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        probe = socket.socket()  # a lab that does not use these lock files may hold the address
        try:
            probe.bind((f"127.{n}.0.2", 5986))
        except OSError:
            lock.close()
            continue
        finally:
            probe.close()
        return f"127.{n}", lock
    raise RuntimeError("no free 127.N prefix for a lab on this machine")
