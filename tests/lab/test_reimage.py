"""The lab's reimage paths over their real protocols: WoL (UDP), the boot server (HTTP),
the hypervisor API (REST) and the imaging a network boot starts.

Redfish via sushy-emulator is in test_reimage_redfish.py; the real iPXE firmware in
test_ipxe_qemu.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from reimage_helpers import (
    OLD_PASSWORD,
    catalogue,
    events,
    magic_packet,
    make_lab,
    render_entry,
    running_services,
    send_wol,
    wait_for,
)

from rebuild.lab import reimage
from rebuild.lab.bootserver import mac_hexhyp, mac_hexraw
from rebuild.lab.context import Lab
from rebuild.lab.images import MALICIOUS_SERVICE, MALICIOUS_TASK, RANSOM_NOTE, STAMP_KEY, UNKNOWN_ADMIN
from rebuild.lab.state import Phase

NEW_PASSWORD = "N3w-Per-Host-Secret!<&>"  # XML-special characters: the answer file escapes them


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Lab, reimage.ReimageServices]]:
    with running_services(tmp_path) as pair:  # Redfish has its own test module
        yield pair


def phase(lab: Lab, name: str) -> str:
    return lab.state(name).phase


def test_wol_with_install_entry_reimages_into_clean_image(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    render_entry(lab, name, svc.boot.url, NEW_PASSWORD)
    send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))

    wait_for(lambda: phase(lab, name) == Phase.IMAGING, 5, "imaging to start")
    state = wait_for(lambda: (s := lab.state(name)).phase == Phase.CLEAN and s, 10, "clean state")

    image = catalogue(lab)["windows-11-23h2"]
    stamp = state.registry[STAMP_KEY]  # written by the answer file's own first-logon PowerShell
    assert (stamp["ImageId"], stamp["ImageSha256"]) == (image["image_id"], image["sha256"])
    assert stamp["StampedAt"].startswith("20")  # Get-Date -Format o
    assert (state.image_id, state.image_sha256) == (image["image_id"], image["sha256"])
    assert state.os_caption == "Microsoft Windows 11 Enterprise" and state.os_build == "22631"
    assert state.hostname == "ARL-PC-0001"
    assert state.users["rb-admin"].password == NEW_PASSWORD  # the answer file's, not the old one
    assert "Administrators" in state.users["rb-admin"].groups
    assert state.time_zone == "Romance Standard Time" and state.locale == "fr-BE"
    # Everything the attackers left is gone with the wiped disk.
    assert RANSOM_NOTE not in state.files
    assert MALICIOUS_SERVICE not in state.services and MALICIOUS_TASK not in state.tasks
    assert UNKNOWN_ADMIN not in state.users
    assert state.defender["RealTimeProtectionEnabled"] is True
    assert state.features["SMB1Protocol"] is False  # Windows 11 default
    # WinRM HTTPS was configured by the first logon commands.
    assert state.services["WinRM"].state == "Running"
    assert any("Listener" in key and key.endswith("*+HTTPS") for key in state.registry)

    kinds = [(e["event"], e.get("status") or e.get("source") or e.get("kind")) for e in state.history]
    assert ("packet", "wol") in kinds and ("boot", "network") in kinds
    assert ("reimage", "started") in kinds and ("reimage", "done") in kinds
    # iPXE's chain: the per-MAC script was fetched with the MAC in the query, then the answer file.
    hexmac = mac_hexraw(lab.twins[name].mac)
    fetched = svc.boot.requests_for(f"/mac-{hexmac}.ipxe")
    assert (
        fetched
        and fetched[0]["query"] == {"mac": mac_hexhyp(lab.twins[name].mac)}
        and fetched[0]["status"] == 200
    )
    assert svc.boot.requests_for(f"/unattend/{hexmac}.xml")[0]["status"] == 200
    assert svc.boot.requests_for("/winpe/wimboot")[0]["status"] == 200
    # No secret in the boot server log or the twin's history.
    log = (lab.config.lab_dir / "logs" / "bootserver.log").read_text()
    assert NEW_PASSWORD not in log and NEW_PASSWORD not in json.dumps(state.history)


def test_wol_without_install_entry_boots_the_compromised_disk(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    name = "ARL-PC-0002"
    send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
    wait_for(lambda: events(lab, name, "boot"), 5, "a boot")
    wait_for(lambda: any(e.get("source") == "disk" for e in events(lab, name, "boot")), 5, "disk boot")
    state = lab.state(name)
    assert state.phase == Phase.COMPROMISED
    assert RANSOM_NOTE in state.files and state.users["rb-admin"].password == OLD_PASSWORD
    assert state.image_id == "" and STAMP_KEY not in state.registry
    assert not events(lab, name, "reimage")
    assert svc.boot.requests_for(f"/mac-{mac_hexraw(lab.twins[name].mac)}.ipxe")[0]["status"] == 404


def test_wol_ignores_what_is_not_a_magic_packet_for_a_known_nic(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    mac = lab.twins["ARL-PC-0001"].mac
    render_entry(lab, "ARL-PC-0001", svc.boot.url, NEW_PASSWORD)
    send_wol(lab.config.wol_port, b"\xff" * 6 + bytes.fromhex(mac_hexraw(mac)) * 15)  # one repetition short
    send_wol(lab.config.wol_port, magic_packet("02:00:0a:99:99:99"))  # no such NIC
    send_wol(lab.config.wol_port, magic_packet(lab.twins["ARL-VM-0001"].mac))  # a VM's NIC does not wake
    wait_for(lambda: events(lab, "ARL-VM-0001", "packet"), 5, "the VM's packet to be seen")
    log = (lab.config.lab_dir / "logs" / "wol.log").read_text()
    assert "not a magic packet" in log and "no machine with this MAC" in log
    assert [e["via"] for e in events(lab, "ARL-PC-0001")] == ["containment"]  # only its power-off at start
    assert not events(lab, "ARL-VM-0001", "boot") and phase(lab, "ARL-PC-0001") == Phase.OFF


def test_magic_packet_inside_a_larger_frame_with_secureon_wakes(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, _ = running
    mac = lab.twins["ARL-PC-0002"].mac
    send_wol(lab.config.wol_port, b"\x00" * 8 + magic_packet(mac) + b"\x01\x02\x03\x04")
    wait_for(lambda: events(lab, "ARL-PC-0002", "boot"), 5, "a boot")


def test_never_wakes_fault_records_the_packet_but_no_boot_request(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    lab.faults[name] = {"never_wakes": {}}
    render_entry(lab, name, svc.boot.url, NEW_PASSWORD)
    send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
    wait_for(lambda: events(lab, name, "power_off"), 5, "the twin to stay dark")
    assert phase(lab, name) == Phase.OFF
    assert not svc.boot.requests_for(f"/mac-{mac_hexraw(lab.twins[name].mac)}.ipxe")
    assert not events(lab, name, "reimage")


def test_reimage_fails_fault_leaves_the_twin_failed(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    lab.faults[name] = {"reimage_fails": {"reason": "disk 0 has errors"}}
    render_entry(lab, name, svc.boot.url, NEW_PASSWORD)
    send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
    wait_for(lambda: phase(lab, name) == Phase.FAILED, 10, "failed imaging")
    reasons = [e["reason"] for e in events(lab, name, "reimage") if e["status"] == "failed"]
    assert reasons == ["disk 0 has errors (injected fault reimage_fails)"]
    assert lab.state(name).image_id == ""


def test_slow_host_takes_longer_to_image(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, imaging_seconds=0.2, physical_servers=False)
    svc = reimage.start(lab)
    try:
        name = "ARL-PC-0001"
        lab.faults[name] = {"slow_host": {"delay": 1.5}}
        render_entry(lab, name, svc.boot.url, NEW_PASSWORD)
        send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
        wait_for(lambda: phase(lab, name) == Phase.IMAGING, 5, "imaging")
        started = next(e for e in events(lab, name, "reimage") if e["status"] == "started")
        assert started["seconds"] == pytest.approx(1.7)
        done = wait_for(
            lambda: [e for e in events(lab, name, "reimage") if e["status"] == "done"], 10, "done"
        )
        assert done[0]["at"] - started["at"] >= 1.6
    finally:
        svc.stop()
        lab.store.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("<WillWipeDisk>true</WillWipeDisk>", "<WillWipeDisk>false</WillWipeDisk>"), "WillWipeDisk"),
        (("<TimeZone>Romance Standard Time</TimeZone>", "<TimeZone>Brussels</TimeZone>"), "TimeZone"),
        (("<AcceptEula>true</AcceptEula>", ""), "AcceptEula"),
        (("</unattend>", ""), "not well-formed XML"),
    ],
)
def test_bad_answer_file_fails_imaging_like_setup(
    running: tuple[Lab, reimage.ReimageServices], change: tuple[str, str], message: str
) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    _, answer = render_entry(lab, name, svc.boot.url, NEW_PASSWORD)
    text = answer.read_text()
    assert change[0] in text
    answer.write_text(text.replace(change[0], change[1]))
    send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
    wait_for(lambda: phase(lab, name) == Phase.FAILED, 5, "failed imaging")
    failure = next(e for e in events(lab, name, "reimage") if e["status"] == "failed")
    assert message in failure["reason"] and "Windows Setup would stop" in failure["reason"]
    assert lab.state(name).image_id == ""


def test_answer_file_naming_a_missing_image_fails(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    _, answer = render_entry(lab, name, svc.boot.url, NEW_PASSWORD)
    answer.write_text(answer.read_text().replace("w11-23h2-ent-2026.11.wim", "w11-missing.wim"))
    send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
    wait_for(lambda: phase(lab, name) == Phase.FAILED, 5, "failed imaging")
    assert "not found on the image share" in events(lab, name, "reimage")[-1]["reason"]


def test_tampered_image_shows_in_the_stamp(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    image = catalogue(lab)["windows-11-23h2"]
    path = lab.config.lab_dir / image["file"]
    path.write_bytes(path.read_bytes() + b"implant")
    render_entry(lab, name, svc.boot.url, NEW_PASSWORD)
    send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
    state = wait_for(lambda: (s := lab.state(name)).phase == Phase.CLEAN and s, 10, "clean state")
    assert state.registry[STAMP_KEY]["ImageId"] == image["image_id"]
    assert state.registry[STAMP_KEY]["ImageSha256"] != image["sha256"]  # the product's check catches it


def test_missing_winpe_file_fails_the_boot(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    render_entry(lab, name, svc.boot.url, NEW_PASSWORD)
    (lab.config.lab_dir / "boot" / "winpe" / "sources" / "boot.wim").unlink()
    send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
    wait_for(lambda: phase(lab, name) == Phase.FAILED, 5, "failed boot")
    assert "could not download /winpe/sources/boot.wim" in events(lab, name, "reimage")[-1]["reason"]


def test_removed_entry_means_the_next_boot_is_the_clean_disk(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    script, answer = render_entry(lab, name, svc.boot.url, NEW_PASSWORD)
    send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
    wait_for(lambda: phase(lab, name) == Phase.CLEAN, 10, "clean")
    script.unlink()
    answer.unlink()  # the role removes both once the host is back
    svc.imager.power_off(name, via="test")
    send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
    wait_for(lambda: phase(lab, name) == Phase.CLEAN, 5, "booted the clean disk")
    assert len([e for e in events(lab, name, "reimage") if e["status"] == "started"]) == 1


# --- hypervisor API ------------------------------------------------------------------


def test_hypervisor_api_requires_its_token(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    url = svc.hypervisor.url
    assert requests.get(f"{url}/vms", timeout=5).status_code == 401
    bad = requests.get(f"{url}/vms", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"].startswith("Bearer")
    post = requests.post(
        f"{url}/vms/vm-arl-0001/power", json={"action": "reset", "boot": "network"}, timeout=5
    )
    assert post.status_code == 401
    assert not events(lab, "ARL-VM-0001")
    assert svc.site_secrets() == {
        "site-arlon": {
            "hypervisor_token": svc.hypervisor.token,
            "image_share_user": svc.share_user,
            "image_share_password": svc.share_password,
        }
    }


def test_hypervisor_api_lists_and_network_boots_a_vm(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    url, auth = svc.hypervisor.url, {"Authorization": f"Bearer {svc.hypervisor.token}"}
    vms = requests.get(f"{url}/vms", headers=auth, timeout=5).json()["vms"]
    assert [(v["ref"], v["name"], v["power_state"]) for v in vms] == [("vm-arl-0001", "ARL-VM-0001", "on")]
    assert requests.get(f"{url}/vms/nope", headers=auth, timeout=5).status_code == 404
    bad = requests.post(f"{url}/vms/vm-arl-0001/power", json={"action": "reboot"}, headers=auth, timeout=5)
    assert bad.status_code == 400 and "action must be one of" in bad.json()["error"]["message"]
    on = requests.post(f"{url}/vms/vm-arl-0001/power", json={"action": "on"}, headers=auth, timeout=5)
    assert on.status_code == 409  # already on: reset is the way

    render_entry(lab, "ARL-VM-0001", svc.boot.url, NEW_PASSWORD)
    resp = requests.post(
        f"{url}/vms/vm-arl-0001/power", json={"action": "reset", "boot": "network"}, headers=auth, timeout=5
    )
    assert resp.status_code == 202 and resp.json()["action"] == "reset"
    state = wait_for(lambda: (s := lab.state("ARL-VM-0001")).phase == Phase.CLEAN and s, 10, "clean VM")
    image = catalogue(lab)["windows-server-2016"]
    assert state.registry[STAMP_KEY]["ImageSha256"] == image["sha256"]
    assert state.features["SMB1Protocol"] is True  # Server 2016 installs SMB1 by default; harden removes it
    assert [e["event"] for e in state.history][:2] == ["reset", "boot"]


def test_hypervisor_reset_to_disk_does_not_reimage(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    url, auth = svc.hypervisor.url, {"Authorization": f"Bearer {svc.hypervisor.token}"}
    render_entry(lab, "ARL-VM-0001", svc.boot.url, NEW_PASSWORD)
    resp = requests.post(
        f"{url}/vms/vm-arl-0001/power", json={"action": "reset", "boot": "disk"}, headers=auth, timeout=5
    )
    assert resp.status_code == 202
    assert phase(lab, "ARL-VM-0001") == Phase.COMPROMISED and not events(lab, "ARL-VM-0001", "reimage")
    off = requests.post(f"{url}/vms/vm-arl-0001/power", json={"action": "off"}, headers=auth, timeout=5)
    assert off.status_code == 202 and phase(lab, "ARL-VM-0001") == Phase.OFF
    vm = requests.get(f"{url}/vms/vm-arl-0001", headers=auth, timeout=5).json()
    assert vm["power_state"] == "off"
    on = requests.post(
        f"{url}/vms/vm-arl-0001/power", json={"action": "on", "boot": "disk"}, headers=auth, timeout=5
    )
    assert on.status_code == 202 and phase(lab, "ARL-VM-0001") == Phase.COMPROMISED


def test_boot_server_serves_only_its_root(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    (lab.config.lab_dir / "secret.txt").write_text("outside")
    assert requests.get(f"{svc.boot.url}/../secret.txt", timeout=5).status_code == 404
    assert requests.get(f"{svc.boot.url}/%2e%2e/secret.txt", timeout=5).status_code == 404
    assert requests.get(f"{svc.boot.url}/unattend/", timeout=5).status_code == 404  # no listing
    assert requests.put(f"{svc.boot.url}/x.ipxe", data=b"#!ipxe", timeout=5).status_code == 405
    assert requests.get(f"{svc.boot.url}/boot.ipxe", timeout=5).text.startswith("#!ipxe")


def test_repeated_magic_packets_do_not_restart_the_install(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    render_entry(lab, name, svc.boot.url, NEW_PASSWORD)
    send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
    wait_for(lambda: phase(lab, name) == Phase.IMAGING, 5, "imaging")
    for _ in range(2):  # senders repeat the packet; the NIC of a running machine ignores it
        send_wol(lab.config.wol_port, magic_packet(lab.twins[name].mac))
    wait_for(lambda: len(events(lab, name, "packet")) == 3, 5, "three packets seen")
    wait_for(lambda: phase(lab, name) == Phase.CLEAN, 10, "clean")
    outcomes = [e["outcome"] for e in events(lab, name, "packet")]
    assert outcomes == ["wake", "ignored: machine is on (installing)", "ignored: machine is on (installing)"]
    assert [e["status"] for e in events(lab, name, "reimage")] == ["started", "done"]


def test_setup_stopping_before_the_wipe_leaves_the_old_disk(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    name, other = "ARL-PC-0001", "ARL-PC-0002"
    _, answer = render_entry(lab, name, svc.boot.url, NEW_PASSWORD)
    answer.write_text(answer.read_text().replace("<AcceptEula>true</AcceptEula>", ""))
    lab.faults[other] = {"reimage_fails": {}}
    render_entry(lab, other, svc.boot.url, NEW_PASSWORD)
    for host in (name, other):
        send_wol(lab.config.wol_port, magic_packet(lab.twins[host].mac))
    wait_for(
        lambda: phase(lab, name) == Phase.FAILED and phase(lab, other) == Phase.FAILED, 10, "both failed"
    )
    # Without their entries, the next boot is from disk: intact (compromised) vs wiped mid-install.
    for host in (name, other):
        for path in (lab.config.lab_dir / "boot").glob(f"**/*{mac_hexraw(lab.twins[host].mac)}*"):
            path.unlink()
        svc.imager.power_off(host, via="test")
        send_wol(lab.config.wol_port, magic_packet(lab.twins[host].mac))
    wait_for(
        lambda: len(events(lab, other, "packet")) == 2 and len(events(lab, name, "packet")) == 2, 5, "packets"
    )
    wait_for(lambda: phase(lab, name) == Phase.COMPROMISED, 5, "the old disk boots")
    wait_for(lambda: phase(lab, other) == Phase.FAILED, 5, "nothing bootable")
    assert RANSOM_NOTE in lab.state(name).files
