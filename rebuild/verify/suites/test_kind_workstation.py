"""Workstations: a client image, and no server roles' software."""

# mypy: disable-error-code="no-untyped-def"
# (pytest test functions: fixtures are typed by name in rebuild/verify/plugin.py)

from __future__ import annotations


def test_workstation_os(win, expect):
    caption = str(win.operating_system().get("Caption", ""))
    assert caption.startswith("Microsoft Windows 1") and "Server" not in caption, (
        f"a PC runs {caption!r}, not a Windows client image"
    )


def test_no_server_software_on_workstation(win, expect):
    servers = {"Omnipro Server", "Lumen PACS Server", "Biolis LIS Server"}
    found = [a["DisplayName"] for a in win.installed_applications() if a["DisplayName"] in servers]
    assert not found, f"server software on a PC: {', '.join(found)}"
