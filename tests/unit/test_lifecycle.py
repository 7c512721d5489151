"""The journal's state machine as a table of named transitions (rebuild/lifecycle.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rebuild import contract, journal, lifecycle
from rebuild.lifecycle import Event, Phase

# The state machine as docs/contracts.md states it, written out: the table must allow exactly this.
_P = Phase
_EXPECTED: dict[Phase, set[Phase]] = {
    _P.PENDING: {_P.REIMAGING, _P.FAILED},
    _P.REIMAGING: {_P.REIMAGING, _P.REIMAGED, _P.FAILED},
    _P.REIMAGED: {_P.HARDENING, _P.FAILED},
    _P.HARDENING: {_P.HARDENING, _P.HARDENED, _P.FAILED},
    _P.HARDENED: {_P.REDEPLOYING, _P.FAILED},
    _P.REDEPLOYING: {_P.REDEPLOYING, _P.REDEPLOYED, _P.FAILED},
    _P.REDEPLOYED: {_P.VERIFYING, _P.FAILED},
    _P.VERIFYING: {_P.VERIFYING, _P.VERIFIED, _P.FAILED, _P.QUARANTINED},
    _P.VERIFIED: set(),
    _P.FAILED: {_P.REIMAGING, _P.HARDENING, _P.REDEPLOYING, _P.VERIFYING},
    _P.QUARANTINED: {_P.REIMAGING, _P.VERIFYING},
}


def test_the_journal_uses_the_table() -> None:
    assert journal.Phase is lifecycle.Phase and journal.ALLOWED is lifecycle.ALLOWED
    assert tuple(lifecycle.WORK_PHASES) == contract.PHASES


@pytest.mark.parametrize("force", [False, True])
def test_the_table_allows_exactly_the_documented_moves(force: bool) -> None:
    for source in Phase:
        for target in Phase:
            # --force-host may take any host but one already reimaging back to reimaging.
            legal = target in _EXPECTED[source] or (
                force and target is Phase.REIMAGING and source is not Phase.REIMAGING
            )
            assert (lifecycle.find(source, target, force=force) is not None) == legal, (source, target, force)


def test_the_journal_refuses_a_move_the_table_does_not_name(tmp_path: Path) -> None:
    from tests.hosts import register_host

    j = journal.Journal.in_state_dir(tmp_path)
    j.start_run("r1", "arlon", "op")
    host = register_host("PC1", asset_tag="A", service_label="Urgences")
    j.ensure_hosts([host])
    with pytest.raises(journal.IllegalTransition, match="pending -> hardening"):
        j.transition("PC1", Phase.HARDENING, run_id="r1")
    assert j.host("PC1").phase is Phase.PENDING  # nothing changed
    j.transition("PC1", Phase.REIMAGING, run_id="r1")


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
