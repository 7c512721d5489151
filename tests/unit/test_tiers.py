"""Service labels as real registers write them map to the right tier, in four languages."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.errors import ConfigError
from rebuild.tiers import UnknownServiceError, fold, load_tiers, match_service, tier_table


def test_tiers_in_priority_order() -> None:
    tiers = load_tiers()
    assert [t.id for t in tiers] == sorted(t.id for t in tiers)
    assert tiers[0].name == "shared-infrastructure"
    assert [t.name for t in tiers[1:7]] == [
        "emergency",
        "operating-rooms",
        "intensive-care",
        "maternity",
        "laboratories",
        "radiology",
    ]
    assert {"directory", "dns-dhcp", "pki", "updates", "imaging", "patient-record"} <= set(tiers[0].services)
    assert {"administration", "pharmacy", "kitchen"} <= set(tiers[-1].services)


# (label as written, expected service key, tier id): French, Dutch, German, English,
# with case, accent and punctuation variants.
CASES = [
    ("Urgences", "emergency", 1),
    ("URGENCES", "emergency", 1),
    ("Spoedgevallen", "emergency", 1),
    ("spoedgevallen", "emergency", 1),
    ("Notaufnahme", "emergency", 1),
    ("NOTAUFNAHME", "emergency", 1),
    ("Emergency", "emergency", 1),
    ("emergency department", "emergency", 1),
    ("Bloc opératoire", "operating-rooms", 2),
    ("Bloc operatoire", "operating-rooms", 2),
    ("BLOC OPÉRATOIRE", "operating-rooms", 2),
    ("Quartier opératoire", "operating-rooms", 2),
    ("OK", "operating-rooms", 2),
    ("Operatiekwartier", "operating-rooms", 2),
    ("OP-Saal", "operating-rooms", 2),
    ("op saal", "operating-rooms", 2),
    ("Operating room", "operating-rooms", 2),
    ("Soins intensifs", "intensive-care", 3),
    ("soins-intensifs", "intensive-care", 3),
    ("USI", "intensive-care", 3),
    ("Intensieve zorg", "intensive-care", 3),
    ("Intensivstation", "intensive-care", 3),
    ("ICU", "intensive-care", 3),
    ("Maternité", "maternity", 4),
    ("MATERNITE", "maternity", 4),
    ("Kraamafdeling", "maternity", 4),
    ("Kreißsaal", "maternity", 4),
    ("Kreissaal", "maternity", 4),
    ("Maternity", "maternity", 4),
    ("Laboratoire", "laboratories", 5),
    ("labo", "laboratories", 5),
    ("Laboratorium", "laboratories", 5),
    ("Labor", "laboratories", 5),
    ("Laboratory", "laboratories", 5),
    ("Radiologie", "radiology", 6),
    ("Imagerie médicale", "radiology", 6),
    ("imagerie medicale", "radiology", 6),
    ("Medische beeldvorming", "radiology", 6),
    ("Röntgen", "radiology", 6),
    ("Rontgen", "radiology", 6),
    ("Radiology", "radiology", 6),
    ("Active Directory", "directory", 0),
    ("Contrôleur de domaine", "directory", 0),
    ("Omnipro", "patient-record", 0),
    ("Dossier patient informatisé", "patient-record", 0),
    ("Elektronisch patiëntendossier", "patient-record", 0),
    ("Patientenakte", "patient-record", 0),
    ("DNS/DHCP", "dns-dhcp", 0),
    ("Pharmacie", "pharmacy", 7),
    ("Apotheke", "pharmacy", 7),
    ("Küche", "kitchen", 7),
    ("Kuche", "kitchen", 7),
    ("Keuken", "kitchen", 7),
    ("Administration", "administration", 7),
    ("  Verwaltung  ", "administration", 7),
]


@pytest.mark.parametrize(("label", "key", "tier"), CASES)
def test_label_maps_to_service_and_tier(label: str, key: str, tier: int) -> None:
    found_key, found_tier = match_service(label)
    assert (found_key, found_tier.id) == (key, tier)


def test_canonical_key_is_accepted() -> None:
    assert match_service("intensive-care")[0] == "intensive-care"


def test_unknown_service_suggests_closest_names() -> None:
    with pytest.raises(UnknownServiceError) as err:
        match_service("Urgense")
    assert "Urgense" in str(err.value)
    assert "Urgences" in err.value.suggestions
    assert isinstance(err.value, ConfigError)


def test_unknown_service_without_close_names_still_fails() -> None:
    with pytest.raises(UnknownServiceError) as err:
        match_service("Zzzzz qqq")
    assert err.value.suggestions == []


def test_fold_ignores_case_accents_punctuation() -> None:
    assert fold("Bloc  Opératoire") == fold("bloc-operatoire") == "bloc operatoire"


def _tiers_file(tmp_path: Path, needs: str) -> Path:
    (tmp_path / "tiers.yml").write_text(
        "tiers:\n  - id: 0\n    name: infra\n    label: Infra\n    one_service_per_batch: true\n"
        "    services: {directory: [AD], dns: [DNS], pki: [PKI], wsus: [WSUS]}\n" + needs,
        encoding="utf-8",
    )
    return tmp_path


def test_needs_let_services_that_do_not_need_each_other_come_back_together(tmp_path: Path) -> None:
    tier = tier_table(
        _tiers_file(tmp_path, "    needs: {dns: [directory], pki: [directory], wsus: [dns]}\n")
    ).tiers[0]
    assert [tier.level(k) for k in ("directory", "dns", "pki", "wsus")] == [0, 1, 1, 2]


def test_without_needs_each_service_waits_for_those_listed_before_it(tmp_path: Path) -> None:
    tier = tier_table(_tiers_file(tmp_path, "")).tiers[0]
    assert tier.needs is None
    assert [tier.level(k) for k in ("directory", "dns", "pki", "wsus")] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("needs", "named"),
    [
        ("    needs: {dns: [pki]}\n", "'dns' needs 'pki', which is not a service listed before it"),
        ("    needs: {dns: [dns]}\n", "'dns' needs 'dns', which is not a service listed before it"),
        ("    needs: {dns: [ldap]}\n", "'dns' needs 'ldap'"),
        ("    needs: {ldap: [dns]}\n", "'needs' names 'ldap', not a service of this tier"),
        ("    needs: {dns: directory}\n", "'needs' of 'dns' must be a list"),
        ("    needs: [dns]\n", "'needs' must map a service key"),
    ],
)
def test_bad_needs_are_refused_naming_file_tier_and_service(tmp_path: Path, needs: str, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        tier_table(_tiers_file(tmp_path, needs))
    assert str(tmp_path / "tiers.yml") in str(err.value) and "tier infra" in str(err.value)
    assert named in str(err.value)
