"""SIGINT/SIGTERM during a site run: stop cleanly, never mid-write."""

from __future__ import annotations

import signal
import threading
from typing import Any


class Interrupt:
    """SIGINT/SIGTERM stop the current batch cleanly (ansible-runner's cancel callback)."""

    def __init__(self) -> None:
        self.requested = False
        self.in_batch = False  # during a batch, ansible-runner's cancel callback stops it cleanly
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if not self.in_batch:  # e.g. at a --confirm-each-wave prompt: stop now
            raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
