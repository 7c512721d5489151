"""Verify the redeploy role on the lab twins (testinfra, through Ansible's WinRM connection).

testinfra's ansible backend cannot run shell commands over WinRM, so checks go through Windows
modules (`host.ansible(...)`): the same one-call install in check mode must find nothing left
to do, and the registry shows what Windows would (Uninstall keys, certificate store, printers).
"""

from __future__ import annotations

import os

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]
).get_hosts("all")


def test_catalogue_software_present_nothing_left_to_install(host):
    result = host.ansible("rebuild_apps", "update_defender_signatures=false", check=True)
    assert result["changed"] is False
    assert result["applications"] and {a["status"] for a in result["applications"]} == {"present"}
    assert {c["status"] for c in result["certificates"]} == {"present"}


def test_service_specific_application(host):
    result = host.ansible("rebuild_apps", "update_defender_signatures=false", check=True)
    names = {a["name"] for a in result["applications"]}
    assert "Harfang EDR Agent" in names and "Omnipro Client" in names
    service = host.ansible.get_variables()["rebuild_service"]
    assert ("Lumen PACS Viewer" in names) is (service == "radiology")


def test_group_root_ca_in_machine_store(host):
    key = (
        r"HKLM:\SOFTWARE\Microsoft\SystemCertificates\ROOT\Certificates"
        r"\F3C807AEEB47CED4A328983ABC938868D360BB0A"
    )
    assert host.ansible("ansible.windows.win_reg_stat", f"path={key}", check=False)["exists"]


def test_room_printer_added(host):
    service = host.ansible.get_variables()["rebuild_service"]
    printer = {"emergency": "ARL-URG-PRT01", "radiology": "ARL-RX-PRT01"}[service]
    path = rf"HKLM:\SYSTEM\CurrentControlSet\Control\Print\Printers\{printer}"
    reg = host.ansible("ansible.windows.win_reg_stat", f"path={path} name=Port", check=False)
    assert reg["exists"] and reg["value"].startswith("IP_10.11.")


def test_domain_joined(host):
    join = host.ansible(
        "microsoft.ad.membership",
        "dns_domain_name=ghal.lan state=domain domain_admin_user=unused domain_admin_password=unused",
        check=True,
    )
    assert join["changed"] is False
