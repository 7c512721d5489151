"""What the operator sees while a site runs, and what is kept per host.

Two views of the same calls: a rich live panel (per wave and phase, counts per state, ETA)
for a person, or quiet JSON lines for automation (`--json`). Per-host logs go to
`<run dir>/hosts/<HOST>.log` either way. Nothing here ever receives a secret: events carry
censored results for no_log tasks.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any, Protocol

from rebuild.hostnames import host_file
from rebuild.journal import WORK_PHASES, Phase
from rebuild.orchestrator.events import HostEvent


class Progress(Protocol):
    def seed(self, host_states: dict[str, str]) -> None: ...
    def suspend(self) -> None: ...  # before asking the operator something
    def resume(self) -> None: ...
    def emit(self, kind: str, **data: Any) -> None: ...
    def host_event(self, event: HostEvent) -> None: ...
    def close(self) -> None: ...


class HostLogs:
    """One plain-text log per host under the run directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, host: str, line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with open(host_file(self.directory, host, ".log"), "a", encoding="utf-8") as handle:
            handle.write(f"{stamp}Z {line}\n")

    def event(self, event: HostEvent) -> None:
        detail = f" - {event.message}" if event.message else ""
        self.write(event.host, f"[{event.phase or '-'}] {event.status:<11} {event.task}{detail}")


class _Tally:
    """Counts shared by both views: hosts per phase state and done/total for the ETA."""

    def __init__(self) -> None:
        self.states: Counter[str] = Counter()
        self.total = 0
        self.finished = 0
        self.started_at = time.monotonic()
        self.wave = ""
        self.batch = ""
        self.where: dict[str, str] = {}

    def update(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "run_started":
            self.total = int(data.get("hosts", 0))
        elif kind == "wave_started":
            self.wave = f"tier {data['tier']} {data.get('label', '')}".strip()
        elif kind == "batch_started":
            self.batch = f"batch {data['batch']}/{data['batches']} ({len(data['hosts'])} hosts)"
        elif kind == "batch_finished":
            self.finished += int(data.get("hosts", 0))

    def seed(self, host_states: dict[str, str]) -> None:
        self.where = dict(host_states)
        self.states = Counter(host_states.values())

    def host_event(self, event: HostEvent) -> None:
        previous = self.where.get(event.host)
        state: str | None = None
        if event.kind in ("start", "done") and event.phase in WORK_PHASES:
            active, done = WORK_PHASES[event.phase]
            state = (active if event.kind == "start" else done).value
        if event.kind in ("failed", "quarantined"):
            state = event.kind
        if state is None or state == previous:
            return
        if previous:
            self.states[previous] -= 1
        self.states[state] += 1
        self.where[event.host] = state

    def eta(self) -> str:
        if not self.finished or self.finished >= self.total:
            return "-"
        elapsed = time.monotonic() - self.started_at
        remaining = elapsed / self.finished * (self.total - self.finished)
        return time.strftime("%H:%M:%S", time.gmtime(remaining))


class JsonProgress:
    """Quiet JSON-lines mode: one object per line, for automation."""

    def __init__(self, logs: HostLogs, stream: IO[str] | None = None) -> None:
        self.logs, self.stream = logs, stream or sys.stdout
        self.tally = _Tally()

    def seed(self, host_states: dict[str, str]) -> None:
        self.tally.seed(host_states)

    def suspend(self) -> None:
        self.stream.flush()

    def resume(self) -> None:
        pass

    def emit(self, kind: str, **data: Any) -> None:
        self.tally.update(kind, data)
        self.stream.write(json.dumps({"at": time.time(), "event": kind, **data}, default=str) + "\n")
        self.stream.flush()

    def host_event(self, event: HostEvent) -> None:
        self.logs.event(event)
        self.tally.host_event(event)
        if event.kind != "task":
            self.emit("host", host=event.host, what=event.kind, phase=event.phase, message=event.message)

    def close(self) -> None:
        self.stream.flush()


_STATES = tuple(p.value for p in Phase)  # the journal's states, in its order


class RichProgress:
    """Live panel for a person at the console."""

    def __init__(self, logs: HostLogs, title: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self.logs, self.title = logs, title
        self.console = Console()
        self.tally = _Tally()
        self._live = Live(self._render(), console=self.console, refresh_per_second=2, transient=False)
        self._live.start()

    def _render(self) -> Any:
        from rich.table import Table

        # One row per state: stays readable in an 80-column terminal or a captured log.
        t = self.tally
        now = f"{t.wave} {t.batch}".strip() or "-"
        table = Table(
            title=self.title,
            caption=f"{now} | done {t.finished}/{t.total} | ETA {t.eta()}",
            show_header=True,
            expand=False,
        )
        table.add_column("state")
        table.add_column("hosts", justify="right")
        for state in _STATES:
            table.add_row(state, str(max(0, t.states.get(state, 0))))
        return table

    def seed(self, host_states: dict[str, str]) -> None:
        self.tally.seed(host_states)
        self._live.update(self._render())

    def suspend(self) -> None:
        self._live.stop()  # a prompt must not be redrawn over

    def resume(self) -> None:
        self._live.start()

    def emit(self, kind: str, **data: Any) -> None:
        self.tally.update(kind, data)
        text = data.get("text")
        if text:
            self.console.print(text, markup=False)  # plain text (a typed override reason may hold [ ])
        elif kind == "wave_started":
            self.console.print(
                f"[bold]Wave tier {data['tier']} {data.get('label', '')}[/]: "
                f"{data['hosts']} hosts in {data['batches']} batches"
            )
        self._live.update(self._render())

    def host_event(self, event: HostEvent) -> None:
        self.logs.event(event)
        self.tally.host_event(event)
        if event.kind in ("failed", "quarantined"):
            self.console.print(f"[red]{event.host} {event.kind}[/] in {event.phase}: {event.message}")
        self._live.update(self._render())

    def close(self) -> None:
        self._live.stop()


class Synchronized:
    """A Progress shared by the batches running side by side (pipelining): one call at a time."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner
        self._lock = threading.RLock()

    def seed(self, host_states: dict[str, str]) -> None:
        with self._lock:
            self.inner.seed(host_states)

    def suspend(self) -> None:
        with self._lock:
            self.inner.suspend()

    def resume(self) -> None:
        with self._lock:
            self.inner.resume()

    def emit(self, kind: str, **data: Any) -> None:
        with self._lock:
            self.inner.emit(kind, **data)

    def host_event(self, event: HostEvent) -> None:
        with self._lock:
            self.inner.host_event(event)

    def close(self) -> None:
        with self._lock:
            self.inner.close()
