"""Tier-0 gates (rebuild/orchestrator/tier0_gates.py): the data, the checks, the overrides, the CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from rebuild.cli import main
from rebuild.errors import ConfigError, OptionError
from rebuild.journal import Journal
from rebuild.lab import directory as lab_directory
from rebuild.orchestrator import tier0_gates as g
from rebuild.register import SMALL_REGISTER

INCIDENT = g.Incident(dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC), krbtgt_kvno=5)
H = dt.timedelta(hours=1)


def _ft(t: dt.datetime) -> int:
    return lab_directory.filetime(t.timestamp())


def _reading(
    kvno: int, last: dt.datetime, rotated: dt.datetime, server: str = "ARL-DC01"
) -> g.DirectoryReading:
    return g.DirectoryReading(
        server,
        {
            "krbtgt": {"msDS-KeyVersionNumber": kvno, "pwdLastSet": _ft(last)},
            "Administrator": {"pwdLastSet": _ft(rotated)},
            "svc-backup-admin": {"pwdLastSet": _ft(rotated)},
        },
    )


def _outcomes(
    readings: list[g.DirectoryReading], seen: dict[str, str] | None = None, incident: g.Incident = INCIDENT
) -> dict[str, g.GateOutcome]:
    return {o.gate.name: o for o in g.evaluate(g.load_gates(), incident, readings, seen or {})}


def test_the_bundled_gates_load() -> None:
    config = g.load_gates()
    assert config.names() == ["krbtgt-reset-twice", "admin-accounts-rotated"]
    krbtgt = config.gates[0]
    assert (krbtgt.min_resets, krbtgt.min_interval_hours) == (2, 10)
    assert "learn.microsoft.com" in krbtgt.source


def test_krbtgt_reset_once_does_not_hold_and_says_what_is_needed() -> None:
    first = INCIDENT.declared_at + 20 * H
    out = _outcomes([_reading(6, first, INCIDENT.declared_at + 2 * H)])
    gate = out["krbtgt-reset-twice"]
    assert not gate.holds
    assert "key version 6 (incident record: 5, 1 reset(s) since)" in gate.found
    assert "key version >= 7" in gate.needed and "2026-11-29T09:00:00Z" in gate.needed  # first + 10 h
    assert out["admin-accounts-rotated"].holds


def test_krbtgt_reset_twice_holds_with_the_first_reset_read_earlier() -> None:
    first, second = INCIDENT.declared_at + 20 * H, INCIDENT.declared_at + 31 * H
    seen = {"ARL-DC01": first.strftime("%Y-%m-%dT%H:%M:%SZ")}
    gate = _outcomes([_reading(7, second, second)], seen)["krbtgt-reset-twice"]
    assert gate.holds, gate.explain()
    assert "11.0 h apart" in gate.found


def test_second_reset_too_soon_does_not_hold() -> None:
    first, second = INCIDENT.declared_at + 20 * H, INCIDENT.declared_at + 24 * H
    seen = {"ARL-DC01": first.strftime("%Y-%m-%dT%H:%M:%SZ")}
    gate = _outcomes([_reading(7, second, second)], seen)["krbtgt-reset-twice"]
    assert not gate.holds and "4.0 h apart" in gate.found and "10 h apart" in gate.needed


def test_unknown_first_reset_does_not_hold_unless_the_incident_record_gives_it() -> None:
    second = INCIDENT.declared_at + 31 * H
    gate = _outcomes([_reading(7, second, second)])["krbtgt-reset-twice"]
    assert not gate.holds and "first reset's time is unknown" in gate.found
    recorded = g.Incident(INCIDENT.declared_at, 5, INCIDENT.declared_at + 5 * H)
    assert _outcomes([_reading(7, second, second)], incident=recorded)["krbtgt-reset-twice"].holds


def test_every_directory_server_must_agree() -> None:
    first, second = INCIDENT.declared_at + 5 * H, INCIDENT.declared_at + 31 * H
    recorded = g.Incident(INCIDENT.declared_at, 5, first)
    readings = [_reading(7, second, second), _reading(6, first, second, server="ARL-DC02")]
    gate = _outcomes(readings, incident=recorded)["krbtgt-reset-twice"]
    assert not gate.holds and "ARL-DC02" in gate.found and "ARL-DC01" not in gate.found


def test_accounts_not_rotated_or_missing_do_not_hold() -> None:
    second = INCIDENT.declared_at + 31 * H
    reading = _reading(7, second, INCIDENT.declared_at - 100 * H)
    del reading.accounts["svc-backup-admin"]
    gate = _outcomes([reading])["admin-accounts-rotated"]
    assert not gate.holds
    assert (
        "Administrator set 2026-11-23T23:00:00Z" in gate.found and "svc-backup-admin not found" in gate.found
    )


def test_no_rebuilt_directory_server_or_unreadable_does_not_hold() -> None:
    assert not any(o.holds for o in _outcomes([]).values())
    broken = g.DirectoryReading("ARL-DC01", error="unreachable")
    assert "could not read the directory (unreachable)" in _outcomes([broken])["krbtgt-reset-twice"].found


def test_bad_gate_data_names_the_file_and_gate(tmp_path: Path) -> None:
    path = tmp_path / "gates.yml"
    path.write_text("gates:\n  - {name: x, check: passwords_rotated}\n")
    with pytest.raises(ConfigError, match=r"gates.yml: gate 1 \(x\): lists no `accounts`"):
        g.load_gates(path)
    path.write_text("gates:\n  - {name: x, check: nonsense}\n")
    with pytest.raises(ConfigError, match="gate 1: needs a `name` and a `check`"):
        g.load_gates(path)


def test_incident_record_is_checked() -> None:
    with pytest.raises(ConfigError, match="rebuild_incident is not set"):
        g.parse_incident(None, "inventory x")
    with pytest.raises(ConfigError, match="no time zone"):
        g.parse_incident({"declared_at": "2026-11-28T03:00:00", "krbtgt_kvno": 5}, "inventory x")
    got = g.parse_incident({"declared_at": "2026-11-28T03:00:00Z", "krbtgt_kvno": "5"}, "x")
    assert got == INCIDENT


def test_overrides_need_a_known_gate_and_a_reason() -> None:
    with pytest.raises(OptionError, match="no such gate"):
        g.check_overrides({"krbtgt": "the AD team reset it twice on 2026-11-29"})
    with pytest.raises(OptionError, match="--reason must say why"):
        g.check_overrides({"krbtgt-reset-twice": " ok "})
    g.check_overrides({"krbtgt-reset-twice": "the AD team reset it twice on 2026-11-29"})


def _check(tmp_path: Path, journal: Journal, overrides: dict[str, str]) -> g.GateCheck:
    inventory = tmp_path / "inv.yml"
    incident = {"declared_at": "2026-11-28T03:00:00Z", "krbtgt_kvno": 5}
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "site_arlon": {
                            "hosts": {"ARL-URG-0001": {"ansible_host": "10.11.16.10"}},
                            "vars": {"rebuild_incident": incident},
                        }
                    }
                }
            }
        )
    )
    return g.GateCheck(
        site="arlon", domain="ghal.lan", journal=journal, inventory=inventory, state_dir=tmp_path,
        run_dir=tmp_path / "run", run_id="r1", operator="alice", available=("reimage",),
        key_file=None, overrides=overrides,
    )  # fmt: skip


def test_a_closed_gate_stops_before_the_first_rejoining_wave_and_an_override_is_journaled(
    tmp_path: Path,
) -> None:
    journal = Journal.in_state_dir(tmp_path)
    journal.start_run("r1", "arlon", "alice")
    said: list[str] = []
    # tier 0, or a tier-1 wave whose hosts do not rejoin the domain: not checked
    assert g.check_before_wave(_check(tmp_path, journal, {}), 0, ["ARL-DC01"], said.append) is None
    assert g.check_before_wave(_check(tmp_path, journal, {}), 1, [], said.append) is None
    # no directory server rebuilt in the journal: both gates closed, the run stops (exit 6)
    closed = g.check_before_wave(_check(tmp_path, journal, {}), 1, ["ARL-URG-0001"], said.append)
    assert closed is not None and closed[0] == g.GATE_STATUS
    assert "krbtgt-reset-twice" in closed[1] and "admin-accounts-rotated" in closed[1]
    assert "--yes does not override" in closed[1]
    assert journal.confirmations("r1") == []
    reason = "directory restored and checked by the AD team, ticket 4711"
    check = _check(tmp_path, journal, {n: reason for n in g.load_gates().names()})
    assert g.check_before_wave(check, 1, ["ARL-URG-0001"], said.append) is None
    rows = journal.confirmations("r1")
    assert [(r["operator"], r["how"]) for r in rows] == [
        ("alice", "override gate krbtgt-reset-twice"),
        ("alice", "override gate admin-accounts-rotated"),
    ]
    assert all(r["scope"].startswith(reason) and "no rebuilt directory server" in r["scope"] for r in rows)
    # checked once per run
    assert g.check_before_wave(check, 2, ["ARL-OK-0001"], said.append) is None
    assert len(journal.confirmations("r1")) == 2


def test_site_cli_refuses_an_override_without_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["site", "arlon", "--override-gate", "krbtgt-reset-twice", "--yes"]) == 3
    assert "needs --reason" in capsys.readouterr().err
    assert main(["site", "arlon", "--reason", "because it is late", "--yes"]) == 3
    assert "without --override-gate" in capsys.readouterr().err


def test_plan_shows_the_gates_and_when(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "site", "arlon", "--register", str(SMALL_REGISTER)]) == 0
    out = capsys.readouterr().out
    assert "Tier-0 gates" in out and "krbtgt-reset-twice" in out and "admin-accounts-rotated" in out
    assert "Checked before wave 2 (tier 1)." in out
    assert main(["plan", "site", "arlon", "--register", str(SMALL_REGISTER), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gates"]["checked_before_wave"] == 2
    assert [x["name"] for x in data["gates"]["gates"]] == ["krbtgt-reset-twice", "admin-accounts-rotated"]


def test_preflight_refuses_a_run_that_will_reach_a_gate_without_an_incident_record(tmp_path: Path) -> None:
    journal = Journal.in_state_dir(tmp_path)
    check = _check(tmp_path, journal, {})
    bare = tmp_path / "bare.yml"
    bare.write_text(json.dumps({"all": {"hosts": {"ARL-URG-0001": {"ansible_host": "10.11.16.10"}}}}))
    check.inventory = bare
    with pytest.raises(ConfigError, match=r"bare.yml: rebuild_incident is not set"):
        g.preflight(check, [(0, ["ARL-DC01"]), (1, ["ARL-URG-0001"])])
    g.preflight(check, [(0, ["ARL-DC01"]), (1, [])])  # nothing rejoins the domain past tier 0: no gate
    check.inventory = tmp_path / "inv.yml"
    g.preflight(check, [(1, ["ARL-URG-0001"])])  # the record is there


@pytest.mark.parametrize("reset_once", [False, True], ids=["lab-default", "krbtgt_reset_once"])
def test_the_lab_directory_passes_the_gates_by_default_and_fails_with_the_fault(
    tmp_path: Path, reset_once: bool
) -> None:
    incident = g.parse_incident(lab_directory.seed(tmp_path), "lab overlay")
    state = lab_directory.load(tmp_path)
    config = g.load_gates()
    names = ["krbtgt", *(a for gate in config.gates for a in gate.accounts)]
    found = {n: lab_directory.account(state, n, reset_once=reset_once) for n in names}
    reading = g.DirectoryReading("ARL-DC01", {n: a for n, a in found.items() if a is not None})
    out = {o.gate.name: o for o in g.evaluate(config, incident, [reading], {})}
    assert out["admin-accounts-rotated"].holds, out["admin-accounts-rotated"].explain()
    assert out["krbtgt-reset-twice"].holds is not reset_once, out["krbtgt-reset-twice"].explain()


def test_the_incident_record_comes_from_the_inventory_the_run_read_at_its_start(tmp_path: Path) -> None:
    """The run gives the check its inventory as read at its start (its batches' inventories come
    from it too): the incident record is taken from it, the inventory file is not read again."""
    from rebuild.inventory import read_ansible_inventory

    journal = Journal.in_state_dir(tmp_path)
    journal.start_run("r1", "arlon", "alice")
    check = _check(tmp_path, journal, {})
    check.read_inventory = read_ansible_inventory(check.inventory)
    check.inventory.write_text(json.dumps({"all": {"hosts": {"ARL-URG-0001": {}}}}))  # no record now
    g.preflight(check, [(1, ["ARL-URG-0001"])])  # the record read at the start is there
    closed = g.check_before_wave(check, 1, ["ARL-URG-0001"], [].append)
    assert closed is not None and closed[0] == g.GATE_STATUS  # checked against that record
    check.read_inventory = None  # without it, the file as it is now: no record
    with pytest.raises(ConfigError, match=r"rebuild_incident is not set"):
        g.preflight(check, [(1, ["ARL-URG-0001"])])
