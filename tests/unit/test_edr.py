"""The EDR catalogue (inventories/data/edr.yml): validation and which hosts it applies to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rebuild.applications import load_catalogue
from rebuild.edr import load_edr_catalogue, parse_edr_catalogue
from rebuild.errors import ConfigError
from rebuild.verify.conditions import conditions_of
from rebuild.verify.expect import build_expectations

SOURCE = Path("edr.yml")
MDE = {
    "service": "Sense",
    "registry": {
        "key": "HKLM:\\SOFTWARE\\Microsoft\\Windows Advanced Threat Protection\\Status",
        "value": "OnboardingState",
        "onboarded": 1,
    },
}


def _with(**registry: Any) -> dict[str, Any]:
    return {"products": {"mde": {**MDE, "registry": {**MDE["registry"], **registry}}}}


def test_every_bundled_host_expects_the_edr_agent_onboarded():
    hostvars = {
        "inventory_hostname": "ARL-URG-0001",
        "rebuild_kind": "workstation",
        "rebuild_service": "emergency",
        "rebuild_os": "windows-11-23h2",
        "rebuild_site": "arlon",
    }
    expect = build_expectations(hostvars, with_hardening=False)
    assert [(e["application"], e["service"], e["onboarded"]) for e in expect.edr] == [
        ("edr-agent", "HarfangSensor", 1)
    ]


def test_products_are_keyed_by_application_catalogue_ids():
    catalogue = load_edr_catalogue()
    assert "edr-agent" in load_catalogue().applications
    assert [p.application for p in catalogue.for_applications(["backup-agent", "edr-agent"])] == ["edr-agent"]
    assert catalogue.for_applications(["backup-agent"]) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"products": [], "extra": 1}, "edr.yml: expected a mapping with only 'products'"),
        ({"products": ["mde"]}, "edr.yml: 'products' must map"),
        ({"products": {"mde": {**MDE, "service": "Sense svc"}}}, "products mde: service 'Sense svc'"),
        ({"products": {"mde": {**MDE, "color": 1}}}, "products mde: unknown key(s) color"),
        (_with(key="SOFTWARE\\X"), "products mde: registry key 'SOFTWARE\\\\X' must be an HKLM:\\ path"),
        (_with(value=""), "products mde: registry value (the onboarding value's name) is missing"),
        (_with(onboarded=True), "products mde: registry onboarded must be the value's data"),
        ({"products": {"mde": {"service": "Sense"}}}, "products mde: registry must be a mapping"),
    ],
)
def test_bad_catalogue_names_file_product_and_key(raw: Any, message: str):
    with pytest.raises(ConfigError) as err:
        parse_edr_catalogue(raw, SOURCE)
    assert message in str(err.value)


def test_a_missing_catalogue_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"EDR catalogue .*edr\.yml not found"):
        load_edr_catalogue(tmp_path / "edr.yml")


def test_the_edr_check_holds_a_host_back_as_edr_onboarded():
    assert conditions_of([{"check": "test_edr_onboarded"}]) == ["edr_onboarded"]
