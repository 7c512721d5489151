"""Servers: the server image, and no workstation-only software."""

# mypy: disable-error-code="no-untyped-def"
# (pytest test functions: fixtures are typed by name in rebuild/verify/plugin.py)

from __future__ import annotations


def test_server_os(win, expect):
    caption = str(win.operating_system().get("Caption", ""))
    assert "Server" in caption, f"a server runs {caption!r}, not a Windows Server image"


def test_no_clinical_workstation_client_on_server(win, expect):
    clients = {"Omnipro Client", "Lumen PACS Viewer", "Biolis LIS Client", "Narcosys Anaesthesia Workstation"}
    wanted = {a["name"] for a in expect.applications}
    found = [a["DisplayName"] for a in win.installed_applications() if a["DisplayName"] in clients - wanted]
    assert not found, f"workstation software on a server: {', '.join(found)}"
