"""The twins' state store keeps decoded states in memory (issue 15, the lab's own CPU): a read
must still give exactly what the database holds, a copy the caller owns, and see a write made by
another connection. The PowerShell parser's cache must never serve an old tree for a changed script.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from rebuild.lab.images import compromised_state
from rebuild.lab.ps import parser
from rebuild.lab.ps.errors import PSParseError
from rebuild.lab.state import StateStore, TwinState
from tests.lab.twins import PC

HOST = PC.name


@pytest.fixture()
def store(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "twins.sqlite")
    store.put(HOST, compromised_state(PC, "pre-incident-Pw1"))
    return store


def _row(path: Path) -> str:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return str(db.execute("SELECT state FROM twin WHERE name = ?", (HOST,)).fetchone()[0])
    finally:
        db.close()


def test_state_json_is_the_dataclass_as_a_dict(store: StateStore) -> None:
    state = store.get(HOST)
    assert state is not None and state.services and state.users and state.tasks
    assert state.to_json() == json.dumps(asdict(state), sort_keys=True)


def test_every_read_is_a_copy_the_caller_owns(store: StateStore) -> None:
    first = store.get(HOST)
    assert first is not None
    first.phase = "off"
    first.users["rb-admin"].password = "changed-but-not-saved"
    first.history.append({"event": "not saved"})
    again = store.get(HOST)
    assert again is not None and again is not first
    assert again.phase == "compromised"
    assert again.users["rb-admin"].password == "pre-incident-Pw1"
    assert again.history == []


def test_a_read_after_a_write_is_what_the_database_holds(store: StateStore, tmp_path: Path) -> None:
    state = store.get(HOST)
    assert state is not None
    state.phase = "clean"
    state.registry["HKLM:\\SOFTWARE\\Lab"] = {"pair": (1, 2)}  # a tuple: JSON keeps it as a list
    store.put(HOST, state)
    read = store.get(HOST)
    assert read is not None and read.phase == "clean"
    assert read.registry["HKLM:\\SOFTWARE\\Lab"]["pair"] == [1, 2]
    assert read.to_json() == _row(tmp_path / "twins.sqlite")
    assert read == TwinState.from_json(_row(tmp_path / "twins.sqlite"))


def test_a_write_by_another_connection_is_seen(store: StateStore, tmp_path: Path) -> None:
    assert store.get(HOST) is not None  # now kept in memory
    other = StateStore(tmp_path / "twins.sqlite")  # e.g. a test editing a twin of a running lab
    try:
        state = other.get(HOST)
        assert state is not None
        state.users["rb-admin"].password = "set-from-outside"
        other.put(HOST, state)
    finally:
        other.close()
    seen = store.get(HOST)
    assert seen is not None and seen.users["rb-admin"].password == "set-from-outside"


def test_peek_shares_one_state_until_the_twin_is_written(store: StateStore, tmp_path: Path) -> None:
    shared = store.peek(HOST)
    assert shared is not None and store.peek(HOST) is shared
    assert store.get(HOST) is not shared  # get never hands out the shared object
    state = store.get(HOST)
    assert state is not None
    state.phase = "off"
    store.put(HOST, state)
    after = store.peek(HOST)
    assert after is not None and after is not shared and after.phase == "off"
    other = StateStore(tmp_path / "twins.sqlite")
    try:
        outside = other.get(HOST)
        assert outside is not None
        outside.phase = "clean"
        other.put(HOST, outside)
    finally:
        other.close()
    seen = store.peek(HOST)
    assert seen is not None and seen.phase == "clean"
    assert store.peek("NO-SUCH-TWIN") is None


def test_a_changed_script_is_parsed_again() -> None:
    first = parser.parse("$a = 1\n$a", "cached.ps1")
    assert parser.parse("$a = 1\n$a", "cached.ps1") is first  # same name and content: the same tree
    changed = parser.parse("$a = 2\n$a", "cached.ps1")
    assert changed is not first and changed.source == b"$a = 2\n$a"
    with pytest.raises(PSParseError, match="PowerShell 7"):
        parser.parse("$a = $null ?? 2", "cached.ps1")  # a 5.1 parse error is never hidden by the cache
