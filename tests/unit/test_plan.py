"""Plan: one wave per tier in order, servers before PCs, batches within imaging capacity."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from rebuild.errors import ConfigError
from rebuild.model import Host, Kind, Platform
from rebuild.plan import plan_site
from rebuild.register import EXAMPLE_REGISTER, load_register
from rebuild.sites import get_site, load_sites


@pytest.fixture(scope="module")
def fleet() -> list[Host]:
    result = load_register(EXAMPLE_REGISTER)
    assert result.ok
    return result.hosts


@pytest.mark.parametrize("site_name", ["arlon", "marche", "libramont", "bastogne"])
def test_waves_batches_and_order(fleet: list[Host], site_name: str) -> None:
    site = get_site(site_name)
    plan = plan_site(fleet, site)
    tiers = [w.tier.id for w in plan.waves]
    assert tiers == sorted(tiers) and len(set(tiers)) == len(tiers)
    own = [h for h in fleet if h.site == site_name]
    assert sorted(h.hostname for h in plan.hosts) == sorted(h.hostname for h in own)  # each host once
    for wave in plan.waves:
        assert all(h.tier == wave.tier.id for h in wave.hosts)
        for batch in wave.batches:
            assert 1 <= len(batch) <= site.imaging_capacity
            assert len({h.kind for h in batch}) == 1  # never servers and PCs in one batch
        kinds = [h.kind for h in wave.hosts]
        assert kinds == sorted(kinds, key=lambda k: k is Kind.WORKSTATION)  # servers first
        assert sum(c.total for c in wave.counts) == len(wave.hosts)
        assert wave.servers == sum(1 for h in wave.hosts if h.is_server)


def test_arlon_is_the_largest_and_services_in_tier_order(fleet: list[Host]) -> None:
    sizes = {s.name: len(plan_site(fleet, s).hosts) for s in load_sites()}
    assert max(sizes, key=lambda name: sizes[name]) == "arlon"
    wave0 = plan_site(fleet, get_site("arlon")).waves[0]
    assert wave0.tier.id == 0
    order = [c.service for c in wave0.counts]
    assert order.index("directory") < order.index("dns-dhcp") < order.index("patient-record")
    assert wave0.hosts[0].service == "directory"


def test_capacity_splits_batches(fleet: list[Host]) -> None:
    small = replace(get_site("arlon"), imaging_capacity=3)
    plan = plan_site(fleet, small)
    assert max(len(b) for w in plan.waves for b in w.batches) == 3
    emergency = plan.waves[1]
    servers, pcs = emergency.servers, emergency.workstations
    assert len(emergency.batches) == -(-servers // 3) + -(-pcs // 3)


def test_hosts_of_other_sites_are_ignored_and_empty_site_fails(fleet: list[Host]) -> None:
    arlon_only = [h for h in fleet if h.site == "arlon"]
    with pytest.raises(ConfigError, match="no host of site 'bastogne'"):
        plan_site(arlon_only, get_site("bastogne"))


def test_json_is_complete_and_machine_readable(fleet: list[Host]) -> None:
    plan = plan_site(fleet, get_site("bastogne"))
    data = json.loads(plan.to_json())
    assert data["site"] == "bastogne" and data["hosts"] == len(plan.hosts)
    assert [w["tier"] for w in data["waves"]] == [w.tier.id for w in plan.waves]
    wave = data["waves"][1]
    assert sum(len(b) for b in wave["batches"]) == wave["servers"] + wave["workstations"]
    assert wave["services"]["emergency"]["workstations"] > 0


def test_text_names_waves_tiers_batches_and_counts() -> None:
    def host(name: str, kind: Kind, service: str, tier: int) -> Host:
        return Host(
            name, name, kind, Platform.PHYSICAL, "windows-11-23h2", "bastogne", service, service, tier
        )

    hosts = [host("BAS-URG-0001", Kind.WORKSTATION, "emergency", 1), host("BAS-URG01", Kind.SERVER, "emergency", 1),  # noqa: E501
             host("BAS-DC01", Kind.SERVER, "directory", 0)]  # fmt: skip
    text = plan_site(hosts, get_site("bastogne")).to_text()
    assert "3 machines (2 servers, 1 PC)" in text
    assert text.index("Wave 1 - tier 0 Shared infrastructure") < text.index("Wave 2 - tier 1 Emergencies")
    assert text.index("BAS-URG01") < text.index("BAS-URG-0001")  # server batch before the PC batch
    assert "batch   1 (  1 server): BAS-URG01" in text
    assert "\x1b[" not in text  # plain text, readable when piped


def test_shared_infrastructure_comes_back_one_service_at_a_time(fleet: list[Host]) -> None:
    plan = plan_site(fleet, get_site("arlon"))
    wave0 = plan.waves[0]
    assert wave0.tier.one_service_per_batch
    services = [{h.service for h in batch} for batch in wave0.batches]
    assert all(len(s) == 1 for s in services)
    order = [next(iter(s)) for s in services]
    assert order == [key for key in wave0.tier.services if key in order]  # tiers.yml order
    # other tiers may mix services in a batch (no dependency between their services)
    assert not plan.waves[-1].tier.one_service_per_batch
    assert any(len({h.service for h in b}) > 1 for b in plan.waves[-1].batches)


def test_stages_keep_dependencies_apart(fleet: list[Host]) -> None:
    """Batches of one stage may overlap; a stage never mixes servers and PCs, nor (tier 0) a
    service with one it needs (tiers.yml `needs`): those are in an earlier stage."""
    plan = plan_site(fleet, get_site("arlon"))
    for wave in plan.waves:
        stages = wave.stages()
        assert [b for stage in stages for b in stage] == wave.batches  # every batch, in plan order
        for stage in stages:
            kinds = {h.kind for batch in stage for h in batch}
            assert len(kinds) == 1
        kinds_in_order = [stage[0][0].kind for stage in stages]
        assert kinds_in_order == sorted(kinds_in_order, key=lambda k: k is not Kind.SERVER)  # servers first
    wave0 = plan.waves[0]
    assert wave0.tier.one_service_per_batch and wave0.tier.needs
    stage_of = {
        h.service: n for n, stage in enumerate(wave0.stages()) for b in stage for h in b if h.is_server
    }
    for service, needed in wave0.tier.needs.items():
        for other in needed:
            if service in stage_of and other in stage_of:
                assert stage_of[other] < stage_of[service], (service, other)
    # Tier 0 of Arlon: the directory, then DNS/DHCP, then PKI, updates, imaging and the patient
    # record together (they need DNS, not each other); its PCs after its servers.
    server_stages = [
        sorted({h.service for b in stage for h in b}) for stage in wave0.stages() if stage[0][0].is_server
    ]
    assert server_stages[:2] == [["directory"], ["dns-dhcp"]]
    assert set(server_stages[2]) == {h.service for h in wave0.hosts if h.is_server} - {
        "directory",
        "dns-dhcp",
    }
    assert len(server_stages) == 3
    last = plan.waves[-1].stages()
    assert len(last) == 2 and len(last[1]) > 1  # PCs' batches can be pipelined
    # The plan says which batches form each stage (text and JSON), numbered as it shows batches.
    numbers = plan.waves[-1].stage_numbers()
    assert [len(n) for n in numbers] == [len(stage) for stage in last]
    assert [b for n in numbers for b in n] == list(range(1, len(plan.waves[-1].batches) + 1))
    assert plan.to_dict()["waves"][-1]["stages"] == numbers
    last_wave_text = plan.to_text().split("\nWave ")[-1]
    assert f" | batches {numbers[1][0]}-{numbers[1][-1]} (each reimages and hardens" in last_wave_text
