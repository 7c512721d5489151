"""One `rebuild site` run per state directory at a time: a second operator must not race the first."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from rebuild.errors import SafetyError, StateError


@contextlib.contextmanager
def site_lock(state_dir: Path, site: str) -> Iterator[None]:
    """One run per state directory at a time (a second operator must not race the first)."""
    path = state_dir / "runs" / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unbuffered: a full disk fails the write below, not the close after it.
    with open(path, "a+b", buffering=0) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().decode("utf-8", "replace").strip()
            raise SafetyError(
                f"another `rebuild site` run is active on {state_dir} ({holder}); nothing was touched"
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} site {site}\n".encode())
        except OSError as exc:  # a full disk shows here first
            fcntl.flock(handle, fcntl.LOCK_UN)
            raise StateError(
                f"cannot write the run lock {path}: {exc.strerror}; nothing was touched"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
