"""The site run's verification server (rebuild.verify.server): started once for a run that
verifies hosts on this controller, stopped at its end, whatever the end (completed, breaker,
Ctrl-C, an error). Its socket reaches rebuild_verify through the batches' environment; a batch
without it (no server, or a batch on an execution node) verifies each host in a new Python."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from rebuild.errors import RebuildError
from rebuild.orchestrator.batches import BatchStarter
from rebuild.verify.server import running_server


@contextlib.contextmanager
def verification_server(
    run_dir: Path, batches: BatchStarter, *, wanted: bool, say: Callable[[str], None]
) -> Iterator[None]:
    if not wanted:
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            batches.verify_socket = stack.enter_context(running_server(run_dir))
        except (RebuildError, OSError) as exc:  # verification still runs, with a Python per host
            say(f"{exc}; each host is verified by a new Python process")
        try:
            yield
        finally:
            batches.verify_socket = None
