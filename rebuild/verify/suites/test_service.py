"""Per service: the catalogue's applications at their pinned versions, certificates, printers."""

# mypy: disable-error-code="no-untyped-def"
# (pytest test functions: fixtures are typed by name in rebuild/verify/plugin.py)

from __future__ import annotations

from rebuild.verify.registry_keys import PRINTER_KEY
from rebuild.verify.windows import WindowsReads

CERT_KEY = "HKLM:\\SOFTWARE\\Microsoft\\SystemCertificates\\{store}\\Certificates\\{thumb}"


def test_application_at_catalogue_version(win: WindowsReads, application):
    versions = [
        str(a.get("DisplayVersion") or "")
        for a in win.installed_applications()
        if a["DisplayName"] == application["name"]
    ]
    assert versions, f"{application['name']} is not installed (catalogue: {application['version']})"
    assert application["version"] in versions, (
        f"{application['name']} is at {', '.join(versions)}, catalogue pins {application['version']}"
    )


def test_certificate_in_store(win: WindowsReads, certificate):
    key = CERT_KEY.format(store=certificate["store"].upper(), thumb=certificate["thumbprint"].upper())
    assert win.exists(key), (
        f"{certificate['name']} ({certificate['thumbprint']}) is not in LocalMachine\\{certificate['store']}"
    )


def test_printer_queue(win: WindowsReads, printer):
    values = win.registry_key(PRINTER_KEY.format(name=printer["name"]))
    assert values is not None, f"printer {printer['name']} is missing"
    assert values.get("Port") == f"IP_{printer['port']}", (
        f"printer {printer['name']} uses port {values.get('Port')}"
    )
