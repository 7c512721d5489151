"""Application catalogue and IOC list: the shipped data is valid, and bad data is refused clearly."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from rebuild.applications import load_catalogue, parse_catalogue
from rebuild.datadir import default_data_dir
from rebuild.errors import ConfigError
from rebuild.iocs import load_indicators, parse_indicators

CLINICAL = [
    "emergency",
    "operating-rooms",
    "intensive-care",
    "maternity",
    "laboratories",
    "radiology",
    "wards",
]


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((default_data_dir() / "applications.yml").read_text(encoding="utf-8"))


def ids(deployment) -> list[str]:
    return [a.id for a in deployment.applications]


def test_shipped_catalogue_loads_and_pins_every_version():
    cat = load_catalogue()
    for app in cat.applications.values():
        assert app.version and len(app.sha256) == 64


@pytest.mark.parametrize("service", CLINICAL)
def test_every_clinical_pc_gets_omnipro_and_edr(service):
    d = load_catalogue().for_host(hostname="PC1", kind="workstation", service=service)
    assert "omnipro-client" in ids(d) and "edr-agent" in ids(d)
    assert {c.id for c in d.certificates} == {"ghal-root-ca", "ghal-issuing-ca"}


@pytest.mark.parametrize(
    ("service", "app"),
    [
        ("radiology", "pacs-viewer"),
        ("laboratories", "lis-client"),
        ("operating-rooms", "anaesthesia-workstation"),
    ],
)
def test_service_specific_clinical_software(service, app):
    cat = load_catalogue()
    assert app in ids(cat.for_host(hostname="PC1", kind="workstation", service=service))
    # and not elsewhere
    assert app not in ids(cat.for_host(hostname="PC2", kind="workstation", service="kitchen"))


def test_servers_by_role_and_no_clinical_client_on_servers():
    cat = load_catalogue()
    pr = ids(cat.for_host(hostname="SRV1", kind="server", service="patient-record"))
    assert pr == ["edr-agent", "backup-agent", "omnipro-server"]
    assert "omnipro-client" not in ids(cat.for_host(hostname="SRV2", kind="server", service="radiology"))
    assert "directory-audit-agent" in ids(cat.for_host(hostname="DC1", kind="server", service="directory"))


def test_non_clinical_pc_gets_only_baseline():
    d = load_catalogue().for_host(hostname="PC9", kind="workstation", service="kitchen")
    assert ids(d) == ["edr-agent"]


def test_printers_per_room_by_location_prefix():
    cat = load_catalogue()
    d = cat.for_host(
        hostname="PC1", kind="workstation", service="emergency", site="arlon", location="urgences box 4"
    )
    assert [p.name for p in d.printers] == ["ARL-URG-PRT01"]
    other_site = cat.for_host(
        hostname="PC1", kind="workstation", service="emergency", site="marche", location="Urgences"
    )
    assert [p.name for p in other_site.printers] == ["MAR-URG-PRT01"]
    assert cat.for_host(hostname="PC1", kind="workstation", service="emergency", site="arlon").printers == ()


def test_register_named_application_by_id_or_display_name():
    cat = load_catalogue()
    d = cat.for_host(
        hostname="PC1", kind="workstation", service="kitchen", extra=["Lumen PACS Viewer", "lis-client"]
    )
    assert ids(d) == ["edr-agent", "pacs-viewer", "lis-client"]


def test_unknown_register_application_names_host_and_app():
    with pytest.raises(ConfigError, match=r"host PC7: application 'Solitaire'"):
        load_catalogue().for_host(hostname="PC7", kind="workstation", service="kitchen", extra=["Solitaire"])


def test_module_args_carry_hash_for_every_installer():
    cat = load_catalogue()
    args = cat.for_host(hostname="PC1", kind="workstation", service="radiology").module_args(cat.repository)
    assert args["repository"].startswith("https://")
    assert all(len(a["sha256"]) == 64 for a in args["applications"])
    assert all(len(c["thumbprint"]) == 40 for c in args["certificates"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: r["applications"]["edr-agent"].update(sha256="abc"),
            r"applications.edr-agent: sha256 'abc'",
        ),
        (
            lambda r: r["applications"]["edr-agent"].pop("version"),
            r"applications.edr-agent: missing 'version'",
        ),
        (lambda r: r["applications"]["edr-agent"].update(type="zip"), r"applications.edr-agent: type 'zip'"),
        (lambda r: r["applications"]["edr-agent"].update(installer="../x.msi"), r"must be relative"),
        (lambda r: r["rules"][0]["applications"].append("nope"), r"rule 'EDR agent.*application 'nope'"),
        (
            lambda r: r["rules"][2]["services"].append("cardiology"),
            r"service 'cardiology' is not a service key",
        ),
        (lambda r: r.update(repository="C:/apps"), r"'repository' must be an https:// URL"),
        (lambda r: r.update(repository="\\\\deploy\\apps"), r"UNC share: the WinRM session \(NTLM\)"),
        (
            lambda r: r["certificates"]["ghal-root-ca"].update(thumbprint="12"),
            r"certificates.ghal-root-ca: thumbprint",
        ),
    ],
)
def test_bad_catalogue_is_refused_naming_entry(raw, mutate, message):
    broken = copy.deepcopy(raw)
    mutate(broken)
    services = [
        "emergency",
        "operating-rooms",
        "intensive-care",
        "maternity",
        "laboratories",
        "radiology",
        "wards",
        "pharmacy",
        "directory",
        "dns-dhcp",
        "pki",
        "updates",
        "imaging",
        "patient-record",
    ]
    with pytest.raises(ConfigError, match=message):
        parse_catalogue(broken, source="applications.yml", known_services=services)


def test_missing_catalogue_file_names_path(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"applications\.yml: application catalogue not found"):
        load_catalogue(data_dir=tmp_path)


def test_indicators_match_like_windows():
    ioc = load_indicators()
    assert ioc.is_note("restore-my-files.TXT")
    assert ioc.is_note("HLJkNskOq.README.txt")
    assert not ioc.is_note("README.md")
    assert ioc.bad_task("\\Microsoft\\Windows\\LockBit")
    assert not ioc.bad_task("\\Microsoft\\Windows\\Defrag\\ScheduledDefrag")
    assert ioc.bad_service("psexesvc")
    assert ioc.is_encrypted("scan.pdf.lockbit")


def test_bad_indicators_refused():
    with pytest.raises(ConfigError, match=r"sha256\[1\]"):
        parse_indicators({"ransom_notes": {"names": ["a"], "folders": ["C:\\"]}, "sha256": ["xyz"]})
    with pytest.raises(ConfigError, match=r"extension 'lockbit' must start"):
        parse_indicators(
            {"ransom_notes": {"names": ["a"], "folders": ["C:\\"]}, "file_extensions": ["lockbit"]}
        )
