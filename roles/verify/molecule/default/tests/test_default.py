"""Check what the verify role left behind on the controller, and that the host still answers.

The role's own suites already read the host over WinRM; here testinfra checks their outputs:
the JUnit XML per host (every check passed, the pre-incident password check really ran, no
secret in it) and, through Ansible's WinRM connection, that the image stamp it verified is there.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]
).get_hosts("all")

STATE = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "lab" / "state"


def junit(host) -> Path:
    name = host.ansible.get_variables()["inventory_hostname"]
    return STATE / "runs" / "molecule" / "junit" / f"{name}.xml"


def test_junit_all_checks_passed(host):
    root = ET.parse(junit(host)).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert int(suite.get("tests")) >= 40
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    names = [c.get("name") for c in root.iter("testcase")]
    for check in (
        "test_image_id_is_the_catalogue_clean_image",
        "test_defender_realtime_protection_on",
        "test_domain_joined",
        "test_pre_incident_admin_password_refused",
    ):
        assert check in names
    ran = [c for c in root.iter("testcase") if c.get("name") == "test_pre_incident_admin_password_refused"]
    assert ran and ran[0].find("skipped") is None


def test_no_secret_in_junit(host):
    from rebuild.secrets import SecretStore

    name = host.ansible.get_variables()["inventory_hostname"]
    store = SecretStore(STATE, key_file=STATE / "vault-password")
    text = junit(host).read_text()
    for secret_name in ("local_admin", "local_admin_previous"):
        secret = store.get(name, secret_name)
        assert secret and str(secret) not in text


def test_image_stamp_present(host):
    stamp = host.ansible(
        "ansible.windows.win_reg_stat", r"path=HKLM:\SOFTWARE\GHAL\Rebuild name=ImageId", check=False
    )
    assert stamp["exists"] and stamp["value"].startswith("ghal-w11-")
