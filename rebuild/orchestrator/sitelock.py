"""One `rebuild site` run per state directory at a time: a second operator must not race the first."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from rebuild.errors import SafetyError


@contextlib.contextmanager
def site_lock(state_dir: Path, site: str) -> Iterator[None]:
    """One run per state directory at a time (a second operator must not race the first)."""
    path = state_dir / "runs" / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise SafetyError(
                f"another `rebuild site` run is active on {state_dir} ({handle.read().strip()}); "
                "nothing was touched"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} site {site}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
