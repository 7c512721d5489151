"""The journal's state machine as a table of named transitions (rebuild/lifecycle.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from rebuild import contract, journal, lifecycle
from rebuild.lifecycle import Event, Phase


def test_the_states_are_the_journal_s() -> None:
    assert [p.value for p in lifecycle.Phase] == [p.value for p in journal.Phase]
    assert tuple(lifecycle.WORK_PHASES) == contract.PHASES


@pytest.mark.parametrize("force", [False, True])
def test_the_table_allows_exactly_what_the_journal_allows(force: bool) -> None:
    for source in Phase:
        for target in Phase:
            legal = target in journal.ALLOWED[journal.Phase(source)] or (
                force and target is Phase.REIMAGING and source is not Phase.REIMAGING
            )
            assert (lifecycle.find(source, target, force=force) is not None) == legal, (source, target, force)


def test_each_move_has_one_name() -> None:
    seen = Counter((t.source, t.target, t.forced) for t in lifecycle.TRANSITIONS)
    assert max(seen.values()) == 1


@pytest.mark.parametrize(
    ("source", "target", "force", "event"),
    [
        (Phase.PENDING, Phase.REIMAGING, False, Event.DEPLOY),
        (Phase.REIMAGING, Phase.REIMAGING, False, Event.RECHECK),
        (Phase.HARDENING, Phase.HARDENED, False, Event.DONE),
        (Phase.REIMAGED, Phase.HARDENING, False, Event.CONTINUE),
        (Phase.REDEPLOYING, Phase.FAILED, False, Event.FAIL),
        (Phase.FAILED, Phase.HARDENING, False, Event.RETRY),
        (Phase.VERIFYING, Phase.QUARANTINED, False, Event.QUARANTINE),
        (Phase.QUARANTINED, Phase.VERIFYING, False, Event.REVERIFY),
        (Phase.QUARANTINED, Phase.REIMAGING, True, Event.REBUILD),  # unforced name wins
        (Phase.VERIFIED, Phase.REIMAGING, True, Event.FORCE_REBUILD),
    ],
)
def test_moves_are_named(source: Phase, target: Phase, force: bool, event: Event) -> None:
    found = lifecycle.find(source, target, force=force)
    assert found is not None and found.event is event


def test_a_verified_host_is_never_rebuilt_without_force() -> None:
    assert lifecycle.find(Phase.VERIFIED, Phase.REIMAGING) is None
    assert lifecycle.find(Phase.VERIFIED, Phase.FAILED, force=True) is None
    assert lifecycle.find(Phase.REIMAGING, Phase.REIMAGING, force=True) is not None  # a re-check
