"""Retiring the rebuild's own per-host secret (issue 14 item 2): the store's delete, the
controller's retirement after promotion and what the journal records, and a later --force-host
rebuild of a retired host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rebuild.errors import ConfigError
from rebuild.journal import Journal
from rebuild.model import Host
from rebuild.orchestrator.credentials import rotate_before_wipe
from rebuild.promote import PromotionConfig, promote_verified
from rebuild.secret_retirement import REBUILD_SECRETS, retire_rebuild_secrets
from rebuild.secrets import SecretStore
from tests.hosts import register_host

STEPS = ["reimaging", "reimaged", "hardening", "hardened", "redeploying", "redeployed", "verifying"]
DC_REASON = "Windows LAPS does not manage this host: domain controllers: LAPS manages only the DSRM password"


def _host(name: str, service: str = "emergency") -> Host:
    return register_host(name, service=service)


@pytest.fixture()
def store(tmp_path: Path) -> SecretStore:
    key = tmp_path / "vault.key"
    key.write_text("k3y-for-tests")
    key.chmod(0o600)
    return SecretStore(tmp_path / "state", key_file=key)


def _secrets_of(store: SecretStore, host: str) -> None:
    for name in (*REBUILD_SECRETS, "local_admin_previous"):
        store.put(host, f"{name}-Value-1!", name)


# -- the store's delete ------------------------------------------------------------------------


def test_delete_removes_one_hosts_secret_and_nothing_else(store: SecretStore) -> None:
    store.put("ARL-URG-0001", "One-Secret-1!")
    store.put("ARL-URG-0002", "Two-Secret-2!")
    assert store.delete("ARL-URG-0001") is True
    assert store.get("ARL-URG-0001") is None
    assert store.get("ARL-URG-0002") == "Two-Secret-2!"
    assert store.delete("ARL-URG-0001") is False  # already gone: nothing to do
    assert sorted(p.name for p in store.directory.iterdir()) == ["ARL-URG-0002.local_admin.vault"]


def test_delete_syncs_the_directory_so_the_removal_survives_a_power_cut(
    store: SecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("ARL-URG-0001", "One-Secret-1!")
    synced: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.path.samefile(f"/proc/self/fd/{fd}", store.directory))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store.delete("ARL-URG-0001")
    assert synced == [True]


def test_delete_never_decrypts_so_it_needs_no_key(
    store: SecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("ARL-URG-0001", "One-Secret-1!")
    monkeypatch.delenv("REBUILD_VAULT_PASSWORD_FILE", raising=False)
    keyless = SecretStore(store.state_dir)
    assert keyless.delete("ARL-URG-0001") is True and not any(store.directory.iterdir())


def test_delete_refuses_a_host_name_that_leaves_the_store(store: SecretStore) -> None:
    with pytest.raises(ConfigError, match="invalid host name"):
        store.delete("../vault")


# -- the controller's retirement after promotion -------------------------------------------------


@pytest.fixture()
def journal(tmp_path: Path, store: SecretStore):
    j = Journal.in_state_dir(tmp_path)
    j.start_run("r1", "arlon", "alice")
    j.ensure_hosts([_host("PC"), _host("DC", "directory"), _host("HELD"), _host("WORKING"), _host("OLD")])
    for name in ("PC", "DC", "HELD", "OLD"):
        for step in STEPS:
            j.transition(name, step, run_id="r1")
    j.transition("WORKING", "reimaging", run_id="r1")
    for name in ("PC", "OLD"):
        j.transition(name, "verified", run_id="r1")
    j.transition("DC", "verified", run_id="r1")
    j.transition("HELD", "quarantined", run_id="r1", reason="held back by laps")
    j.set_result("PC", "verify", {"rebuild_secret": {"disabled": True, "reason": "rb-admin disabled"}})
    j.set_result("DC", "verify", {"rebuild_secret": {"disabled": False, "reason": DC_REASON}})
    # a host whose done marker claims a disable it cannot have had: never retired (not verified)
    j.set_result("HELD", "verify", {"rebuild_secret": {"disabled": True, "reason": "?"}})
    for name in ("PC", "DC", "HELD", "WORKING", "OLD"):
        _secrets_of(store, name)
    yield j
    j.close()


def test_nothing_is_retired_before_promotion(journal: Journal, store: SecretStore) -> None:
    summary = retire_rebuild_secrets(journal, "arlon", store, run_id="r1")
    assert summary.retired == [] and summary.kept == {}
    assert store.get("PC") is not None and "rebuild_secret" not in journal.host("PC").results


def test_a_promoted_laps_managed_host_loses_its_rebuild_secrets_and_the_journal_says_so(
    journal: Journal, store: SecretStore
) -> None:
    promote_verified(journal, "arlon", run_id="r1", operator="alice", config=PromotionConfig())
    summary = retire_rebuild_secrets(journal, "arlon", store, run_id="r1")
    assert summary.retired == ["PC"]
    record = journal.host("PC").results["rebuild_secret"]
    assert record["status"] == "retired" and record["reason"].startswith("rebuild secret retired")
    assert record["deleted"] == list(REBUILD_SECRETS) and record["run_id"] == "r1"
    assert all(store.get("PC", name) is None for name in REBUILD_SECRETS)
    assert store.get("PC", "local_admin_previous") == "local_admin_previous-Value-1!"  # evidence kept
    # a held-back host and one still being rebuilt keep everything, and nothing is recorded
    for name in ("HELD", "WORKING"):
        assert store.get(name) == "local_admin-Value-1!"
        assert "rebuild_secret" not in journal.host(name).results


def test_a_domain_controller_keeps_its_secret_and_the_journal_says_why(
    journal: Journal, store: SecretStore
) -> None:
    promote_verified(journal, "arlon", run_id="r1", operator="alice", config=PromotionConfig())
    summary = retire_rebuild_secrets(journal, "arlon", store, run_id="r1")
    assert summary.kept == {"DC": DC_REASON}
    record = journal.host("DC").results["rebuild_secret"]
    assert (record["status"], record["reason"], record["deleted"]) == ("kept", DC_REASON, [])
    assert store.get("DC") == "local_admin-Value-1!"


def test_a_host_verified_before_retirement_existed_is_left_alone(
    journal: Journal, store: SecretStore
) -> None:
    promote_verified(journal, "arlon", run_id="r1", operator="alice", config=PromotionConfig())
    retire_rebuild_secrets(journal, "arlon", store, run_id="r1")
    assert store.get("OLD") == "local_admin-Value-1!" and "rebuild_secret" not in journal.host("OLD").results


def test_retirement_is_recorded_once(journal: Journal, store: SecretStore) -> None:
    promote_verified(journal, "arlon", run_id="r1", operator="alice", config=PromotionConfig())
    retire_rebuild_secrets(journal, "arlon", store, run_id="r1")
    first = journal.host("PC").results["rebuild_secret"]
    again = retire_rebuild_secrets(journal, "arlon", store, run_id="r2")
    assert again.retired == ["PC"] and journal.host("PC").results["rebuild_secret"] == first


# -- a later --force-host rebuild of a retired host ------------------------------------------------


def test_force_host_on_a_retired_host_rotates_fresh_secrets_and_keeps_the_pre_incident_one(
    journal: Journal, store: SecretStore
) -> None:
    promote_verified(journal, "arlon", run_id="r1", operator="alice", config=PromotionConfig())
    retire_rebuild_secrets(journal, "arlon", store, run_id="r1")
    assert store.get("PC") is None
    rotate_before_wipe(store, "PC")  # what the batch does before the wipe (rebuild/orchestrator/batches.py)
    fresh = store.get("PC")
    assert fresh is not None and len(fresh) == 24
    assert (
        store.get("PC", "local_admin_bootstrap") is not None and store.get("PC", "builtin_admin") is not None
    )
    assert store.get("PC", "local_admin_previous") == "local_admin_previous-Value-1!"
    # once that rebuild verifies and is promoted again, the new secrets are retired in turn
    journal.transition("PC", "reimaging", run_id="r2", force=True)
    for step in STEPS:
        if step != "reimaging":
            journal.transition("PC", step, run_id="r2")
    journal.transition("PC", "verified", run_id="r2")
    journal.set_result("PC", "verify", {"rebuild_secret": {"disabled": True, "reason": "rb-admin disabled"}})
    retire_rebuild_secrets(journal, "arlon", store, run_id="r2")
    assert store.get("PC") is None and journal.host("PC").results["rebuild_secret"]["run_id"] == "r2"


# -- hardening leaves a retired host's disabled rb-admin alone -------------------------------------


def test_the_baseline_asserts_nothing_about_rb_admins_enabled_state() -> None:
    from rebuild.harden.baseline import load_baseline
    from rebuild.harden.compile import ADMINISTRATORS_SID, HostFacts, compile_host

    pc = HostFacts("ARL-URG-0001", "windows-11-23h2", "workstation", "arlon", ("site_arlon",), "emergency")
    compiled = compile_host(load_baseline(), pc, protected_accounts=["rb-admin"])
    settings = [s for control in compiled.controls for s in control["settings"]]
    # account state is set only for the built-in RIDs 500 and 501, never for rb-admin (RID >= 1000)
    assert {s["rid"] for s in settings if s["type"] == "local_user"} == {500, 501}
    assert not any(s.get("name") == "rb-admin" for s in settings if s["type"] == "local_user")
    # a disabled rb-admin still in Administrators is allowed there, so never flagged nor removed
    admins = [s for s in settings if s["type"] == "group_members" and s["group_sid"] == ADMINISTRATORS_SID]
    assert admins and all("rb-admin" in s["allowed"] for s in admins)


def test_harden_audit_does_not_log_on_to_a_retired_host_and_says_why(
    journal: Journal, store: SecretStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rebuild.harden import audit

    promote_verified(journal, "arlon", run_id="r1", operator="alice", config=PromotionConfig())
    retire_rebuild_secrets(journal, "arlon", store, run_id="r1")
    inventory = tmp_path / "arlon.yml"
    inventory.write_text("all: {}\n")
    limits: list[str] = []

    def run_playbook(playbook: audit.Playbook) -> None:
        limits.append(playbook.limit)
        playbook.artifact_dir.mkdir(parents=True)  # as ansible-runner makes the run's folders
        assert playbook.event_handler is not None
        playbook.event_handler({"event": "runner_on_unreachable", "event_data": {"host": "DC", "res": {}}})

    monkeypatch.setattr(audit, "run_playbook", run_playbook)
    monkeypatch.setattr(SecretStore, "check_opens", lambda self: None)
    result = audit.audit_site("arlon", inventory, store.state_dir.parent, run_id="a1")
    assert limits == ["site_arlon:!PC"]
    assert list(result.retired) == ["PC"] and "rebuild secret retired" in result.retired["PC"]
    assert result.text_path is not None and "PC: rebuild secret retired" in result.text_path.read_text()
    assert result.exit_code == 1 and list(result.unreachable) == ["DC"]  # only the real problem counts
