"""Issue 14 item 6 against the SIMULATED lab: the tier-0 gates stop a site run before its first
tier-1+ wave while krbtgt was reset only once, a rerun resumes once the second reset is done, and
an operator override with a reason lets the run go on, journaled. `--yes` never overrides.

Each run is small: the directory server ARL-DC01 (tier 0) and one emergency PC (tier 1), all four
phases (the gate guards the domain join of the redeploy phase).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from rebuild.journal import Journal, Phase
from rebuild.lab.state import StateStore
from rebuild.orchestrator import SiteRunOptions, run_site
from rebuild.orchestrator.options import DEFAULT_PLAYBOOK
from rebuild.orchestrator.tier0_gates import RESULT_KEY

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]

DC, PC = "ARL-DC01", "ARL-URG-0001"
TRIGGER_EVENTS = {"boot", "reset", "packet", "reimage", "power"}


@pytest.fixture
def gate_lab(lab: Any) -> Iterator[Any]:
    token = (lab.lab_dir / "hypervisor.token").read_text().strip()
    saved = dict(os.environ)
    os.environ.update({**lab.env, "REBUILD_HYPERVISOR_TOKEN": token})
    try:
        lab.client.set_fault(DC, "krbtgt_reset_once")
        yield lab
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _options(lab: Any, **kw: Any) -> SiteRunOptions:
    said: list[str] = []
    base: dict[str, Any] = {
        "site": "arlon",
        "inventory": lab.inventory("arlon"),
        "state_dir": lab.state_dir,
        "operator": "test-operator",
        "yes": True,
        "json": True,
        "playbook": DEFAULT_PLAYBOOK,
        "rehearsal": True,
        "new_journal": True,
        "limit": (DC, PC),
        "say": said.append,
    }
    base.update(kw)
    return SiteRunOptions(**base)


def _trigger_events(lab: Any, host: str) -> list[dict[str, Any]]:
    store = StateStore(lab.lab_dir / "twins.sqlite")
    try:
        state = store.get(host)
    finally:
        store.close()
    assert state is not None
    return [e for e in state.history if e["event"] in TRIGGER_EVENTS]


def test_krbtgt_reset_once_stops_before_the_pc_wave_and_the_rerun_resumes_after_the_second_reset(
    gate_lab: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = gate_lab
    result = run_site(_options(lab))  # --yes: confirms the wipe, never a gate
    assert result.status == "gated" and result.exit_code == 6, (result.status, result.reason)
    assert "krbtgt-reset-twice" in result.reason and "DOES NOT HOLD" in result.reason
    assert "key version 6 (incident record: 5, 1 reset(s) since)" in result.reason
    assert "key version >= 7" in result.reason and "stopped before tier 1" in result.reason
    assert "admin-accounts-rotated" not in result.reason  # that gate holds
    journal = Journal.in_state_dir(lab.state_dir)
    assert journal.host(DC).phase is Phase.VERIFIED, journal.host(DC).reason
    assert journal.host(PC).phase is Phase.PENDING  # where the journal had it
    assert _trigger_events(lab, PC) == []  # the PC was never touched
    run = journal.run(result.run_id)
    assert run.status == "gated" and "krbtgt-reset-twice" in run.reason
    assert [c["how"] for c in journal.confirmations(result.run_id)] == ["--yes"]  # no override

    # The second reset done only 4 h after the first (the lab records reset times in the past):
    # shorter than the maximum ticket lifetime, the gate still does not hold.
    directory = lab.lab_dir / "directory.json"
    state = json.loads(directory.read_text())
    first = state["krbtgt"]["resets"][0]
    state["krbtgt"]["resets"][1] = first + 4 * 3600
    directory.write_text(json.dumps(state))
    lab.client.clear_fault(DC, "krbtgt_reset_once")
    too_soon = run_site(_options(lab, new_journal=False))
    assert too_soon.status == "gated" and too_soon.exit_code == 6, (too_soon.status, too_soon.reason)
    assert "key version 7" in too_soon.reason and "4.0 h apart" in too_soon.reason
    assert "at least 10 h apart" in too_soon.reason
    assert journal.host(PC).phase is Phase.PENDING and _trigger_events(lab, PC) == []

    state["krbtgt"]["resets"][1] = first + 14 * 3600  # the second reset, 14 h after the first
    directory.write_text(json.dumps(state))
    again = run_site(_options(lab, new_journal=False))
    assert again.status == "completed", (again.status, again.reason, again.failed)
    assert journal.host(PC).phase is Phase.VERIFIED, journal.host(PC).reason
    # The first reset's time came from the reading of the first run, kept in the journal.
    said = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    gate_lines = [e["text"] for e in said if e["event"] == "tier0_gate"]
    assert any("krbtgt-reset-twice: holds" in t and "14.0 h apart" in t for t in gate_lines), gate_lines
    seen = journal.host(DC).results[RESULT_KEY]
    assert set(seen) == {"krbtgt_kvno_6", "krbtgt_kvno_7"}
    assert [c["how"] for c in journal.confirmations(again.run_id)] == ["--yes"]


def test_an_override_with_a_reason_goes_on_and_is_journaled(gate_lab: Any) -> None:
    lab = gate_lab
    reason = "second krbtgt reset done by the AD team on the PDC, not yet replicated to DC01 - ticket 4711"
    result = run_site(_options(lab, override_gates={"krbtgt-reset-twice": reason}))
    assert result.status == "completed", (result.status, result.reason, result.failed)
    journal = Journal.in_state_dir(lab.state_dir)
    assert journal.host(PC).phase is Phase.VERIFIED, journal.host(PC).reason
    rows = journal.confirmations(result.run_id)
    assert [(c["operator"], c["how"]) for c in rows] == [
        ("test-operator", "--yes"),
        ("test-operator", "override gate krbtgt-reset-twice"),
    ]
    assert rows[1]["scope"].startswith(reason) and "key version 6" in rows[1]["scope"]
    assert rows[1]["at"] >= rows[0]["at"]
    # The gate read the directory as the join account: its password is in no artifact of the run.
    password = lab.store().get("site-arlon", "domain_join_password")
    assert password
    for path in (result.run_dir / "artifacts" / "tier0-gates").rglob("*"):
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path
