"""The journal: the durable, single source of truth of what happened to every host.

SQLite in WAL mode with synchronous=FULL, one transaction per change, so a kill -9 or a
power loss never loses a recorded transition and a rerun knows exactly where each host
stood. Per host it keeps a phase state machine (the table of rebuild/lifecycle.py), attempts, timestamps,
the failure phase and reason, and a JSON blob of results later phases and reports read
(image_id, harden report, test results). Every transition is also appended to a history
table, so timings (tier order, capacity held) can be proven after the fact.

An illegal transition is a bug in the caller, never an operator error: it raises
`IllegalTransition` and changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuild.errors import ConfigError, StateError

# The states and the table of named moves live in rebuild/lifecycle.py (re-exported here).
from rebuild.lifecycle import ACTIVE as ACTIVE
from rebuild.lifecycle import ALLOWED as ALLOWED
from rebuild.lifecycle import DONE as DONE
from rebuild.lifecycle import WORK_PHASES as WORK_PHASES
from rebuild.lifecycle import Phase as Phase
from rebuild.lifecycle import find as find_transition
from rebuild.model import Host

JOURNAL_FILE = "journal.sqlite"
# How long a change waits for another process holding the journal before giving up (seconds).
BUSY_TIMEOUT_S = 30.0

_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_NO_ROOM = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_PERM")
_NOT_A_JOURNAL = ("SQLITE_NOTADB", "SQLITE_CORRUPT")


@contextmanager
def _state_errors(path: Path) -> Iterator[None]:
    """The journal's expected failures as messages: another process holds it, the disk is full or
    read-only, the file is not a journal. The failed change was rolled back: nothing half-written."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith(_BUSY):
            raise StateError(
                f"journal {path} is locked by another process (waited {BUSY_TIMEOUT_S:g} s): is another "
                "rebuild command using this state directory? Nothing was changed; try again when it ends"
            ) from None
        if name.startswith(_NO_ROOM):
            raise StateError(
                f"cannot write the journal {path}: {exc} ({name}). Free space or fix the state directory; "
                "the last change was not recorded, every earlier one is intact"
            ) from None
        raise
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "").startswith(_NOT_A_JOURNAL):
            raise ConfigError(f"{path}: not a rebuild journal (or damaged): {exc}") from None
        raise


def journal_holds_site(path: Path, site: str) -> bool:
    """True when the journal at `path` exists and knows hosts or runs of `site` (read only)."""
    if not path.is_file():
        return False
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            row = db.execute(
                "SELECT EXISTS(SELECT 1 FROM hosts WHERE site = ?) "
                "OR EXISTS(SELECT 1 FROM runs WHERE site = ?)",
                (site, site),
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return True  # there is a journal we cannot read: never assume it is empty
    return bool(row and row[0])


class IllegalTransition(RuntimeError):
    """A caller asked for a transition the state machine forbids (a bug, not bad input)."""


@dataclass(frozen=True)
class HostRecord:
    name: str
    site: str
    tier: int
    service: str
    kind: str
    phase: Phase
    failed_phase: str  # work phase name ("reimage"...) when failed, else ""
    reason: str  # why failed / quarantined, else ""
    attempts: int  # times the host entered reimaging
    updated_at: float
    run_id: str  # last run that changed it
    results: dict[str, Any]


@dataclass(frozen=True)
class TransitionRecord:
    id: int
    host: str
    run_id: str
    from_phase: Phase
    to_phase: Phase
    at: float
    detail: str


@dataclass(frozen=True)
class RunRecord:
    id: str
    site: str
    operator: str
    started_at: float
    ended_at: float | None
    status: str  # running | completed | stopped | gated (a tier-0 gate) | interrupted | refused
    dry_run: bool
    rehearsal: bool  # run against a simulated lab, as the operator declared it
    reason: str  # why it stopped (breaker, interrupt...)
    options: dict[str, Any]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, operator TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, status TEXT NOT NULL,
    dry_run INTEGER NOT NULL, rehearsal INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '', options TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS confirmations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id),
    site TEXT NOT NULL, operator TEXT NOT NULL, at REAL NOT NULL, how TEXT NOT NULL,
    scope TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hosts (
    name TEXT PRIMARY KEY, site TEXT NOT NULL, tier INTEGER NOT NULL, service TEXT NOT NULL,
    kind TEXT NOT NULL, phase TEXT NOT NULL, failed_phase TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL, run_id TEXT NOT NULL DEFAULT '', results TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS hosts_site ON hosts(site, tier);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL REFERENCES hosts(name),
    run_id TEXT NOT NULL, from_phase TEXT NOT NULL, to_phase TEXT NOT NULL,
    at REAL NOT NULL, detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS transitions_host ON transitions(host, id);
CREATE INDEX IF NOT EXISTS transitions_run ON transitions(run_id, id);
"""


class Journal:
    """Open (creating if needed) the journal at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory, not a journal")
        self._lock = threading.RLock()
        with _state_errors(path):
            self._db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
            )
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                # FULL: a committed transition survives power loss, not only a process kill.
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute("PRAGMA foreign_keys=ON")
                self._db.executescript(_SCHEMA)
            except BaseException:
                self._db.close()
                raise

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Journal:
        return cls(cls.path_in(state_dir))

    @staticmethod
    def path_in(state_dir: Path) -> Path:
        return state_dir / JOURNAL_FILE

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _state_errors(self.path):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # a failed COMMIT (disk full) may leave it open
                    self._db.execute("ROLLBACK")
                raise

    # -- runs ---------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        site: str,
        operator: str,
        *,
        dry_run: bool = False,
        rehearsal: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs(id, site, operator, started_at, status, dry_run, rehearsal, options) "
                "VALUES(?, ?, ?, ?, 'running', ?, ?, ?)",
                (
                    run_id,
                    site,
                    operator,
                    time.time(),
                    int(dry_run),
                    int(rehearsal),
                    json.dumps(dict(options or {}), sort_keys=True),
                ),
            )
        return self.run(run_id)

    def finish_run(self, run_id: str, status: str, reason: str = "") -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status = ?, reason = ?, ended_at = ? WHERE id = ?",
                (status, reason, time.time(), run_id),
            )

    def run(self, run_id: str) -> RunRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id!r} in the journal {self.path}")
        return _run(row)

    def runs(self, site: str | None = None) -> list[RunRecord]:
        sql, args = "SELECT * FROM runs", tuple[str, ...]()
        if site:
            sql, args = sql + " WHERE site = ?", (site,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY started_at, id", args).fetchall()
        return [_run(r) for r in rows]

    def record_confirmation(self, run_id: str, site: str, operator: str, how: str, scope: str) -> int:
        """Keep who allowed wiping which part of a site, and how (typed name / --yes / wave)."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO confirmations(run_id, site, operator, at, how, scope) VALUES(?, ?, ?, ?, ?, ?)",
                (run_id, site, operator, time.time(), how, scope),
            )
            return int(cur.lastrowid or 0)

    def confirmations(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, run_id, site, operator, at, how, scope FROM confirmations "
                "WHERE run_id = ? ORDER BY id",
                (run_id,),
            ).fetchall()
        keys = ("id", "run_id", "site", "operator", "at", "how", "scope")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # -- hosts --------------------------------------------------------------------------

    def ensure_hosts(self, hosts: Iterable[Host]) -> None:
        """Register hosts not yet known as pending; known hosts keep their state."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "INSERT INTO hosts(name, site, tier, service, kind, phase, updated_at) "
                "VALUES(?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT(name) DO UPDATE SET "
                "site = excluded.site, tier = excluded.tier, service = excluded.service, "
                "kind = excluded.kind",
                [(h.hostname, h.site, h.tier, h.service, str(h.kind), now) for h in hosts],
            )

    def host(self, name: str) -> HostRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM hosts WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise KeyError(f"host {name!r} is not in the journal {self.path}")
        return _host(row)

    def find_host(self, name: str) -> HostRecord | None:
        try:
            return self.host(name)
        except KeyError:
            return None

    def hosts(self, site: str | None = None, names: Sequence[str] | None = None) -> list[HostRecord]:
        sql, args = "SELECT * FROM hosts", []
        if site:
            sql += " WHERE site = ?"
            args.append(site)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY site, tier, name", args).fetchall()
        found = [_host(r) for r in rows]
        if names is not None:
            wanted = set(names)
            found = [h for h in found if h.name in wanted]
        return found

    def transition(
        self,
        name: str,
        to: Phase | str,
        *,
        run_id: str,
        reason: str = "",
        failed_phase: str = "",
        result: Mapping[str, Any] | None = None,
        result_key: str = "",
        force: bool = False,
    ) -> HostRecord:
        """Move a host to `to`, checking the state machine; optionally merge a result.

        `force` is needed to take a verified host back to reimaging (--force-host) — a
        verified host is never rebuilt by accident.
        """
        target = Phase(to)
        with self._tx() as db:
            row = db.execute("SELECT * FROM hosts WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise IllegalTransition(f"{name}: not in the journal, cannot move it to {target}")
            current = _host(row)
            if find_transition(current.phase, target, force=force) is None:
                raise IllegalTransition(f"{name}: {current.phase} -> {target} is not a legal transition")
            if target is Phase.FAILED and failed_phase not in WORK_PHASES:
                raise IllegalTransition(
                    f"{name}: failing needs the work phase it failed in, got {failed_phase!r}"
                )
            results = dict(current.results)
            if result is not None:
                key = result_key or ACTIVE.get(target) or DONE.get(target) or target.value
                results[key] = {**results.get(key, {}), **dict(result)}
            attempts = current.attempts + (1 if target is Phase.REIMAGING else 0)
            keep_reason = target in (Phase.FAILED, Phase.QUARANTINED)
            now = time.time()
            db.execute(
                "UPDATE hosts SET phase = ?, failed_phase = ?, reason = ?, attempts = ?, updated_at = ?, "
                "run_id = ?, results = ? WHERE name = ?",
                (
                    target.value,
                    failed_phase if target is Phase.FAILED else "",
                    reason if keep_reason else "",
                    attempts,
                    now,
                    run_id,
                    json.dumps(results, sort_keys=True, default=str),
                    name,
                ),
            )
            db.execute(
                "INSERT INTO transitions(host, run_id, from_phase, to_phase, at, detail) "
                "VALUES(?, ?, ?, ?, ?, ?)",
                (name, run_id, current.phase.value, target.value, now, reason),
            )
        return self.host(name)

    def set_result(self, name: str, key: str, value: Mapping[str, Any]) -> None:
        """Merge a result blob (e.g. a harden report) without changing the phase."""
        with self._tx() as db:
            row = db.execute("SELECT results FROM hosts WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise KeyError(f"host {name!r} is not in the journal {self.path}")
            results = json.loads(row[0])
            results[key] = {**results.get(key, {}), **dict(value)}
            db.execute(
                "UPDATE hosts SET results = ? WHERE name = ?",
                (json.dumps(results, sort_keys=True, default=str), name),
            )

    def transitions(self, host: str | None = None, run_id: str | None = None) -> list[TransitionRecord]:
        clauses, args = [], []
        if host:
            clauses.append("host = ?")
            args.append(host)
        if run_id:
            clauses.append("run_id = ?")
            args.append(run_id)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, host, run_id, from_phase, to_phase, at, detail FROM transitions"
                + where
                + " ORDER BY id",
                args,
            ).fetchall()
        return [TransitionRecord(r[0], r[1], r[2], Phase(r[3]), Phase(r[4]), r[5], r[6]) for r in rows]

    def counts(self, site: str | None = None) -> dict[str, int]:
        """Hosts per phase (every phase present, zero when none)."""
        counts = {p.value: 0 for p in Phase}
        for h in self.hosts(site):
            counts[h.phase.value] += 1
        return counts


def _host(row: tuple[Any, ...]) -> HostRecord:
    name, site, tier, service, kind, phase, failed_phase, reason, attempts, updated_at, run_id, results = row
    return HostRecord(
        name=name,
        site=site,
        tier=int(tier),
        service=service,
        kind=kind,
        phase=Phase(phase),
        failed_phase=failed_phase,
        reason=reason,
        attempts=int(attempts),
        updated_at=float(updated_at),
        run_id=run_id,
        results=json.loads(results),
    )


def _run(row: tuple[Any, ...]) -> RunRecord:
    rid, site, operator, started_at, ended_at, status, dry_run, rehearsal, reason, options = row
    return RunRecord(
        id=rid,
        site=site,
        operator=operator,
        started_at=started_at,
        ended_at=ended_at,
        status=status,
        dry_run=bool(dry_run),
        rehearsal=bool(rehearsal),
        reason=reason,
        options=json.loads(options),
    )
