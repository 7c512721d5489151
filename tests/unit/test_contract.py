"""playbooks/site.yml and the roles keep the contract the orchestrator reads (rebuild/contract.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rebuild import contract
from rebuild.journal import WORK_PHASES
from rebuild.orchestrator.batch_inventory import work_groups
from rebuild.orchestrator.resume import playbook_gated, playbook_phases
from rebuild.yamlfile import load_yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "playbooks" / "site.yml"


def _plays() -> list[dict[str, Any]]:
    plays = load_yaml(SITE)
    assert isinstance(plays, list)
    return [p for p in plays if isinstance(p, dict)]


def _tasks(play: dict[str, Any], key: str = "tasks") -> list[dict[str, Any]]:
    return [t for t in play.get(key) or [] if isinstance(t, dict)]


def test_the_journal_knows_the_contract_s_phases_in_its_order() -> None:
    assert tuple(WORK_PHASES) == contract.PHASES
    assert contract.PHASES[0] == contract.WIPING_PHASE


def test_site_yml_has_one_play_per_group_in_the_contract_s_order() -> None:
    hosts = [p.get("hosts") for p in _plays()]
    assert hosts[0] == "all"  # the batch gate comes first
    assert hosts[1:] == list(contract.all_groups())
    for play in _plays():
        if play["hosts"] in (contract.phase_group(p) for p in contract.PHASES):
            phase = play["hosts"].removeprefix(contract.PHASE_GROUP_PREFIX)
            assert play.get("roles") == [phase], f"play {play['name']!r} must run role {phase} only"
    assert playbook_phases(SITE) == contract.PHASES
    assert playbook_gated(SITE)


def test_site_yml_waits_at_the_gate_and_slot_files_the_orchestrator_opens() -> None:
    gate_play = _plays()[0]
    (gate,) = _tasks(gate_play)
    assert gate[contract.GATE_ACTION]["path"] == f"{{{{ {contract.GATE_FILE_VAR} }}}}"
    reimage = next(p for p in _plays() if p["hosts"] == contract.phase_group(contract.WIPING_PHASE))
    (slot,) = _tasks(reimage, "pre_tasks")
    slots, host = Path("SLOTS"), "PC1"
    expected = str(contract.slot_file(slots, host))
    rendered = slot[contract.GATE_ACTION]["path"].replace(f"{{{{ {contract.SLOT_DIR_VAR} }}}}", str(slots))
    assert rendered.replace("{{ inventory_hostname }}", host) == expected


@pytest.mark.parametrize("phase", contract.PHASES)
def test_each_role_ends_with_the_phase_done_signal(phase: str) -> None:
    tasks = load_yaml(ROOT / "roles" / phase / "tasks" / "main.yml")
    assert isinstance(tasks, list) and tasks
    last = tasks[-1]
    assert set(last) >= {contract.PHASE_DONE_ACTION}, f"roles/{phase}: last task is not the end signal"
    assert last[contract.PHASE_DONE_ACTION]["phase"] == phase
    assert "when" not in last  # the end of a phase is never skipped
    others = [t for t in tasks[:-1] if contract.PHASE_DONE_ACTION in t]
    assert not others


def test_the_batch_inventory_writes_every_group_of_the_contract() -> None:
    groups = work_groups({"PC1": ["reimage", "harden"], "PC2": ["verify"]}, ["PC1"], dry_run=False)
    assert set(groups) == set(contract.all_groups())
    assert groups[contract.phase_group("reimage")] == ["PC1"]
    assert groups[contract.RECHECK_GROUP] == ["PC1"]
    assert work_groups({"PC1": ["reimage"]}, [], dry_run=True)[contract.RENDER_GROUP] == ["PC1"]


def test_phase_done_reads_only_the_structured_signal() -> None:
    assert contract.phase_done({"rebuild_phase": "harden", "facts": {"a": 1}}) == ("harden", {"a": 1})
    assert contract.phase_done({"rebuild_phase": "verify"}) == ("verify", {})
    assert contract.phase_done({"msg": {"image_id": "x"}}) is None
    assert contract.phase_done({"rebuild_phase": ""}) is None


def test_gate_and_cancel_files() -> None:
    gates = Path("/run/gates")
    assert contract.gate_file(gates, "t1-b001") == gates / "t1-b001"
    slots = contract.slot_dir(gates, "t1-b001")
    assert contract.cancel_file(contract.slot_file(slots, "PC1")) == slots / "PC1.cancel"
    with pytest.raises(ValueError, match="unknown phase"):
        contract.phase_group("backup")


def test_the_end_signal_documents_the_contract_s_phases() -> None:
    import ast

    import yaml

    tree = ast.parse((ROOT / "plugins" / "modules" / f"{contract.PHASE_DONE_ACTION}.py").read_text())
    (doc,) = [
        n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign)
        and isinstance(n.targets[0], ast.Name)
        and n.targets[0].id == "DOCUMENTATION"
        and isinstance(n.value, ast.Constant)
    ]
    assert tuple(yaml.safe_load(doc)["options"]["phase"]["choices"]) == contract.PHASES


def test_the_reimage_molecule_scenario_runs_site_yml_not_a_copy() -> None:
    converge = ROOT / "roles" / "reimage" / "molecule" / "default" / "converge.yml"
    plays = load_yaml(converge)
    imports = [p["ansible.builtin.import_playbook"] for p in plays if "ansible.builtin.import_playbook" in p]
    assert [(converge.parent / i).resolve() for i in imports] == [SITE]
    own_hosts = {p.get("hosts") for p in plays if "hosts" in p}
    assert own_hosts == {"localhost"}  # only the orchestrator's bookkeeping is its own
