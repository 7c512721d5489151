"""Physical servers' reimage path: Redfish served by sushy-tools' `sushy-emulator --fake`.

The emulator applies power changes after a random 1-11 s, so these tests wait up to ~15 s
per power change; both servers are reset together to keep the module short.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from reimage_helpers import catalogue, events, make_lab, render_entry, wait_for

from rebuild.lab import reimage
from rebuild.lab.context import Lab
from rebuild.lab.images import RANSOM_NOTE, STAMP_KEY
from rebuild.lab.state import Phase

pytestmark = pytest.mark.slow

SRV, OTHER = "ARL-SRV-0001", "ARL-SRV-0002"
ONCE = {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Lab, reimage.ReimageServices]]:
    if (
        shutil.which("sushy-emulator") is None
        and not (Path(sys.executable).parent / "sushy-emulator").exists()
    ):
        pytest.fail("sushy-emulator is not installed (pip install 'rebuild[lab]')")
    lab = make_lab(tmp_path)
    services = reimage.start(lab)
    try:
        yield lab, services
    finally:
        services.stop()
        lab.store.close()


def auth(svc: reimage.ReimageServices) -> tuple[str, str]:
    return (svc.redfish.username, svc.redfish.password)


def system_url(svc: reimage.ReimageServices, lab: Lab, name: str) -> str:
    return f"{svc.redfish.url}/redfish/v1/Systems/{lab.twins[name].redfish_system_id}"


def reset(svc: reimage.ReimageServices, lab: Lab, name: str, kind: str = "ForceRestart") -> None:
    r = requests.post(
        f"{system_url(svc, lab, name)}/Actions/ComputerSystem.Reset",
        json={"ResetType": kind},
        timeout=10,
        auth=auth(svc),
    )
    assert r.status_code == 204, r.text


def test_pxe_once_and_reset_reimages_and_reset_alone_does_not(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    members = requests.get(f"{svc.redfish.url}/redfish/v1/Systems", timeout=10, auth=auth(svc)).json()[
        "Members"
    ]
    ids = sorted(m["@odata.id"].rsplit("/", 1)[1] for m in members)
    assert ids == sorted(lab.twins[n].redfish_system_id for n in (SRV, OTHER))
    before = requests.get(system_url(svc, lab, SRV), timeout=10, auth=auth(svc)).json()
    assert before["PowerState"] == "On" and before["Boot"]["BootSourceOverrideEnabled"] == "Disabled"

    # Both have an install entry on the boot server; only SRV gets the one-time PXE override.
    render_entry(lab, SRV, svc.boot.url, "Srv-New-Secret-1")
    render_entry(lab, OTHER, svc.boot.url, "Srv-New-Secret-2")
    patch = requests.patch(
        system_url(svc, lab, SRV),
        timeout=10,
        auth=auth(svc),
        json={"Boot": {**ONCE, "BootSourceOverrideMode": "UEFI"}},
    )
    assert patch.status_code == 204
    armed = requests.get(system_url(svc, lab, SRV), timeout=10, auth=auth(svc)).json()["Boot"]
    assert (armed["BootSourceOverrideTarget"], armed["BootSourceOverrideEnabled"]) == ("Pxe", "Once")
    assert armed["BootSourceOverrideMode"] == "UEFI"
    reset(svc, lab, SRV)
    reset(svc, lab, OTHER)

    state = wait_for(lambda: (s := lab.state(SRV)).phase == Phase.CLEAN and s, 25, "SRV reimaged")
    image = catalogue(lab)["windows-server-2022"]
    stamp = state.registry[STAMP_KEY]  # written by the answer file's own first-logon PowerShell
    assert (stamp["ImageId"], stamp["ImageSha256"]) == (image["image_id"], image["sha256"])
    assert state.users["rb-admin"].password == "Srv-New-Secret-1"
    kinds = [e["event"] for e in state.history]
    assert kinds.index("boot_override") < kinds.index("reset") < kinds.index("boot")

    wait_for(
        lambda: any(e.get("source") == "disk" for e in events(lab, OTHER, "boot")), 20, "OTHER boots its disk"
    )
    other = lab.state(OTHER)
    assert other.phase == Phase.COMPROMISED and RANSOM_NOTE in other.files
    assert not events(lab, OTHER, "reimage")

    # Once is consumed: the BMC shows no override, and the next reset boots the new disk.
    after = requests.get(system_url(svc, lab, SRV), timeout=10, auth=auth(svc)).json()["Boot"]
    assert after["BootSourceOverrideEnabled"] == "Disabled"
    boots = len(events(lab, SRV, "boot"))
    reset(svc, lab, SRV)
    wait_for(
        lambda: len(events(lab, SRV, "boot")) > boots and lab.state(SRV).phase == Phase.CLEAN, 20, "reboot"
    )
    assert [e["status"] for e in events(lab, SRV, "reimage")] == ["started", "done"]


def test_bmc_unreachable_answers_nothing(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    lab.faults[SRV] = {"bmc_unreachable": {}}
    with pytest.raises(requests.ConnectionError):
        requests.patch(
            system_url(svc, lab, SRV),
            timeout=10,
            auth=auth(svc),
            json={"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}},
        )
    with pytest.raises(requests.ConnectionError):
        reset(svc, lab, SRV)
    assert not events(lab, SRV)
    # The other BMC still answers.
    assert requests.get(system_url(svc, lab, OTHER), timeout=10, auth=auth(svc)).status_code == 200


def test_override_without_enabled_keeps_the_disabled_mode(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    r = requests.patch(
        system_url(svc, lab, SRV),
        json={"Boot": {"BootSourceOverrideTarget": "Pxe"}},
        timeout=10,
        auth=auth(svc),
    )
    assert r.status_code == 204
    boot = requests.get(system_url(svc, lab, SRV), timeout=10, auth=auth(svc)).json()["Boot"]
    assert boot["BootSourceOverrideEnabled"] == "Disabled"  # PATCH changes only what it names


def test_bmc_requires_its_credential(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    assert (
        requests.get(f"{svc.redfish.url}/redfish/v1", timeout=10).status_code == 200
    )  # service root is open
    assert requests.get(system_url(svc, lab, SRV), timeout=10).status_code == 401
    wrong = requests.post(
        f"{system_url(svc, lab, SRV)}/Actions/ComputerSystem.Reset",
        json={"ResetType": "ForceRestart"},
        timeout=10,
        auth=(svc.redfish.username, "guess"),
    )
    assert wrong.status_code == 401
    assert not events(lab, SRV)
    entries = svc.site_secrets()["site-arlon"]
    assert (entries["bmc_user"], entries["bmc_password"]) == auth(svc)


def test_pxe_override_without_uefi_mode_boots_the_disk_and_bad_values_are_refused(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    for name in (SRV, OTHER):
        render_entry(lab, name, svc.boot.url, "Srv-Mode-Secret-1")
    # DMTF schema: BootSourceOverrideMode is Legacy or UEFI; anything else is refused.
    bad = requests.patch(
        system_url(svc, lab, SRV),
        timeout=10,
        auth=auth(svc),
        json={"Boot": {**ONCE, "BootSourceOverrideMode": "Bios"}},
    )
    assert bad.status_code == 400 and "BootSourceOverrideMode" in bad.text
    # The old PATCH: no mode, the BMC keeps Legacy; the UEFI-only server cannot PXE-boot so.
    old = requests.patch(system_url(svc, lab, SRV), timeout=10, auth=auth(svc), json={"Boot": ONCE})
    new = requests.patch(
        system_url(svc, lab, OTHER),
        timeout=10,
        auth=auth(svc),
        json={"Boot": {**ONCE, "BootSourceOverrideMode": "UEFI"}},
    )
    assert old.status_code == new.status_code == 204
    view = requests.get(system_url(svc, lab, SRV), timeout=10, auth=auth(svc)).json()["Boot"]
    assert (
        view["BootSourceOverrideMode"] == "Legacy"
        and "UEFI" in view["BootSourceOverrideMode@Redfish.AllowableValues"]
    )
    reset(svc, lab, SRV)
    reset(svc, lab, OTHER)
    wait_for(lambda: lab.state(OTHER).phase == Phase.CLEAN, 25, "OTHER reimaged (UEFI PXE)")
    wait_for(
        lambda: any(e.get("source") == "disk" for e in events(lab, SRV, "boot")), 20, "SRV boots its disk"
    )
    assert any("Legacy-mode" in str(e.get("reason")) for e in events(lab, SRV, "boot_override"))
    assert lab.state(SRV).phase == Phase.COMPROMISED and not events(lab, SRV, "reimage")


def test_bmc_power_seconds_sets_when_every_power_change_lands(tmp_path: Path) -> None:
    """Issue 15: the emulator's random power delay (up to 11 s) is lab timing configuration a
    rehearsal may set; with `bmc_power_seconds` both servers' resets land that long after the
    request (the fake driver counts whole seconds: between N-1 and N s, plus the watcher's read)."""
    lab = make_lab(tmp_path)
    lab.config.bmc_power_seconds = 2
    assert lab.config.simulated_durations()["bmc_power"] == "2 s"
    svc = reimage.start(lab)
    try:
        for name in (SRV, OTHER):
            reset(svc, lab, name)
        for name in (SRV, OTHER):
            boot = wait_for(lambda name=name: events(lab, name, "boot"), 20, f"{name} boots")[-1]
            requested = events(lab, name, "reset")[-1]
            assert 1.0 <= boot["at"] - requested["at"] <= 2.8, (name, boot["at"] - requested["at"])
            assert boot["source"] == "disk"  # nothing else changed: no override, its own disk
    finally:
        svc.stop()
        lab.store.close()
