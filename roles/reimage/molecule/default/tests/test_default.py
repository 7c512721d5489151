"""Verify the reimage role on the lab twins (testinfra, through Ansible's WinRM connection).

Each instance must answer over WinRM/HTTPS (NTLM, lab CA) as rb-admin with the secret the
converge generated before the wipe, report the catalogue's clean image in its stamp, carry its
own hostname and no ransom note; the boot server must hold neither its per-MAC iPXE entry nor
its answer file. Host facts (OS key, MAC, boot root, catalogue) are read from the lab's
inventory overlay, the source converge used.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import testinfra.utils.ansible_runner
import yaml

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]
).get_hosts("lab_twins")

LAB = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "lab"
STATE = LAB / "state"
STAMP = r"HKLM:\SOFTWARE\GHAL\Rebuild"
RANSOM_NOTES = (
    r"C:\Users\Public\Desktop\Restore-My-Files.txt",
    r"C:\Restore-My-Files.txt",
    r"C:\Users\Public\Documents\Restore-My-Files.txt",
)


@cache
def overlay_hosts() -> dict[str, dict[str, Any]]:
    overlay = yaml.safe_load((LAB / "inventory" / "arlon.yml").read_text(encoding="utf-8"))
    hosts: dict[str, dict[str, Any]] = {}
    for group in (overlay["all"].get("children") or {}).values():
        for name, hostvars in ((group or {}).get("hosts") or {}).items():
            if hostvars:
                hosts.setdefault(name, {}).update(hostvars)
    return hosts


def name_of(host) -> str:
    return host.ansible.get_variables()["inventory_hostname"]


def facts(host) -> dict[str, Any]:
    return overlay_hosts()[name_of(host)]


def store():
    from rebuild.secrets import SecretStore

    return SecretStore(STATE, key_file=STATE / "vault-password")


def test_stamp_is_the_catalogue_clean_image(host):
    hv = facts(host)
    catalogue = yaml.safe_load(Path(hv["rebuild_image_catalogue"]).read_text(encoding="utf-8"))
    image = catalogue["images"][hv["rebuild_os"]]
    image_id = host.ansible("ansible.windows.win_reg_stat", f"path={STAMP} name=ImageId", check=False)
    sha = host.ansible("ansible.windows.win_reg_stat", f"path={STAMP} name=ImageSha256", check=False)
    assert image_id["exists"] and image_id["value"] == image["image_id"]
    assert sha["exists"] and str(sha["value"]).lower() == str(image["sha256"]).lower()


def test_hostname_is_the_inventory_name(host):
    result = host.ansible("ansible.windows.setup", "gather_subset=platform", check=False)
    assert result["ansible_facts"]["ansible_hostname"] == name_of(host).upper()[:15]


def test_rb_admin_answers_with_the_new_secret(host):
    # This very connection authenticates as rb-admin with the store's current secret.
    user = host.ansible("ansible.windows.win_user", "name=rb-admin state=query", check=False)
    assert user["state"] == "present" and not user["account_disabled"]
    assert any(g["name"] == "Administrators" for g in user["groups"])
    # ...and that secret is the one generated before the wipe, not the pre-incident one.
    name = name_of(host)
    new, previous = store().get(name), store().get(name, "local_admin_previous")
    assert new and previous and str(new) != str(previous)


@pytest.mark.parametrize("which", ["local_admin_previous", "local_admin_bootstrap"])
def test_pre_incident_and_answer_file_secrets_are_refused(host, which):
    # The pre-incident secret, and the answer file's one-time secret (replaced at first contact).
    winrm = pytest.importorskip("winrm")
    from winrm.exceptions import InvalidCredentialsError

    name = name_of(host)
    previous = store().get(name, which)
    assert previous
    address, port = facts(host)["ansible_host"], facts(host).get("ansible_port", 5986)
    session = winrm.Session(
        f"https://{address}:{port}/wsman",
        auth=("rb-admin", str(previous)),
        transport="ntlm",
        server_cert_validation="validate",
        ca_trust_path=str(LAB / "ca" / "ca.pem"),
    )
    with pytest.raises(InvalidCredentialsError):
        session.run_cmd("hostname")


def test_ransom_note_is_gone(host):
    for note in RANSOM_NOTES:
        stat = host.ansible("ansible.windows.win_stat", f"path={note}", check=False)
        assert not stat["stat"]["exists"], note


def test_boot_server_holds_no_entry_or_answer_file(host):
    hv = facts(host)
    # In the lab the boot server is the controller (rebuild_boot_server: localhost).
    assert hv["rebuild_boot_server"] == "localhost"
    key = "".join(c for c in hv["rebuild_mac"].lower() if c in "0123456789abcdef")
    root = Path(hv["rebuild_pxe_root"])
    assert not (root / f"mac-{key}.ipxe").exists()
    assert not (root / "unattend" / f"{key}.xml").exists()
    assert not (root / "unattend" / f"{key}.disk.json").exists()
    assert (root / "boot.ipxe").exists()  # the generic entry stays: the right directory was checked


def test_wiped_once_not_again_by_the_idempotence_run(host):
    from rebuild.lab.daemon import LabClient

    history = LabClient(LAB).twin(name_of(host))["history"]
    done = [e for e in history if e.get("event") == "reimage" and e.get("status") == "done"]
    assert len(done) == 1
