"""Helpers for the lab reimage tests: a real `Lab` object and the reimage role's own templates.

The lab is built directly (StateStore on a tmp dir + TwinRecords + compromised states), which
is the same object the daemon builds; boot entries are rendered from roles/reimage/templates
so the lab is tested against what the product really writes.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2
import yaml

from rebuild.lab.answerfile import parse_answer_file
from rebuild.lab.bootserver import mac_hexraw
from rebuild.lab.context import Lab, LabConfig, TwinRecord
from rebuild.lab.first_logon import run_first_logon
from rebuild.lab.images import AppliedImage, clean_state, initial_state
from rebuild.lab.state import StateStore, TwinState

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "roles" / "reimage" / "templates"
OLD_PASSWORD = "Old-Pre-Incident-Pass-1"


def twins(prefix: str) -> dict[str, TwinRecord]:
    records = [
        TwinRecord(
            "ARL-PC-0001",
            f"{prefix}.0.2",
            "02:00:0a:00:00:01",
            "workstation",
            "physical",
            "arlon",
            "windows-11-23h2",
            "emergency",
        ),
        TwinRecord(
            "ARL-PC-0002",
            f"{prefix}.0.3",
            "02:00:0a:00:00:02",
            "workstation",
            "physical",
            "arlon",
            "windows-10-22h2",
            "admin",
        ),
        TwinRecord(
            "ARL-SRV-0001",
            f"{prefix}.0.4",
            "02:00:0a:00:01:01",
            "server",
            "physical",
            "arlon",
            "windows-server-2022",
            "patient-records",
            redfish_system_id="8d3b1f0e-1111-4c2a-9d3e-000000000001",
        ),
        TwinRecord(
            "ARL-SRV-0002",
            f"{prefix}.0.5",
            "02:00:0a:00:01:02",
            "server",
            "physical",
            "arlon",
            "windows-server-2019",
            "directory",
            redfish_system_id="8d3b1f0e-1111-4c2a-9d3e-000000000002",
        ),
        TwinRecord(
            "ARL-VM-0001",
            f"{prefix}.0.6",
            "02:00:0a:00:02:01",
            "server",
            "virtual",
            "arlon",
            "windows-server-2016",
            "lis",
            vm_ref="vm-arl-0001",
        ),
    ]
    return {r.name: r for r in records}


def make_lab(tmp_path: Path, imaging_seconds: float = 0.5, physical_servers: bool = True) -> Lab:
    """A lab of five twins; without physical servers no sushy-emulator is started (faster)."""
    prefix = f"127.{random.randint(100, 250)}"
    config = LabConfig(lab_dir=tmp_path / "lab", address_prefix=prefix, imaging_seconds=imaging_seconds)
    config.lab_dir.mkdir(parents=True)
    store = StateStore(config.lab_dir / "twins.sqlite")
    records = {n: r for n, r in twins(prefix).items() if physical_servers or not r.redfish_system_id}
    store.put_many({n: initial_state(r, OLD_PASSWORD) for n, r in records.items()})
    return Lab(config, store, records)


@contextmanager
def running_services(tmp_path: Path, physical_servers: bool = False) -> Iterator[tuple[Lab, Any]]:
    """A lab with its reimage services running (Redfish only with physical servers); stopped after."""
    from rebuild.lab import reimage

    lab = make_lab(tmp_path, physical_servers=physical_servers)
    services = reimage.start(lab)
    try:
        yield lab, services
    finally:
        services.stop()
        lab.store.close()


def catalogue(lab: Lab) -> dict[str, Any]:
    return dict(yaml.safe_load((lab.config.lab_dir / "images.yml").read_text())["images"])


def render_entry(
    lab: Lab,
    name: str,
    boot_url: str,
    password: str,
    image_share: str = "\\\\rebuild-lab\\share",
    os_key: str | None = None,
    **options: str,
) -> tuple[Path, Path]:
    """Write the reimage role's per-MAC iPXE entry and answer file for a twin, as the role does."""
    twin = lab.twins[name]
    return render_files(
        lab.config.lab_dir / "boot",
        name,
        twin.mac,
        twin.site,
        os_key or twin.os,
        catalogue(lab)[os_key or twin.os],
        boot_url,
        password,
        image_share,
        **{
            "boot_client": twin.address,
            "image_share_user": lab.config.image_share_user,
            "image_share_password": lab.config.image_share_password,
            **options,
        },
    )


def render_files(
    boot_root: Path,
    name: str,
    mac: str,
    site: str,
    os_key: str,
    image: dict[str, Any],
    boot_url: str,
    password: str,
    image_share: str = "\\\\rebuild-lab\\share",
    ui_language: str = "fr-FR",
    builtin_admin_password: str = "Builtin-Admin-Pass-1",
    boot_client: str = "",
    system_disk_serial: str = "",
    image_share_user: str = "rebuild-image-reader",
    image_share_password: str = "",
    enroll_url: str = "",
) -> tuple[Path, Path]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["to_json"] = json.dumps  # Ansible's filter, as the role renders it
    variables = {
        "inventory_hostname": name,
        "rebuild_mac": mac,
        "rebuild_site": site,
        "rebuild_os": os_key,
        "rebuild_domain": "ghal.lan",
        "reimage__image": image,
        "reimage__boot_url": boot_url,
        "reimage__mac_key": mac_hexraw(mac),
        "reimage__image_share": image_share,
        "reimage__stamp_key": "HKLM:\\SOFTWARE\\GHAL\\Rebuild",
        "reimage__locale": "fr-BE",
        "reimage__ui_language": ui_language,
        "reimage__builtin_admin_password": builtin_admin_password,
        "reimage__boot_client": boot_client,
        "reimage__system_disk_serial": system_disk_serial,
        "reimage__system_disk_excluded_buses": [
            "iSCSI",
            "Fibre Channel",
            "USB",
            "SD",
            "MMC",
            "File Backed Virtual",
            "Virtual",
        ],
        "reimage__system_disk_min_size_gb": 32,
        "reimage__image_share_user": image_share_user,
        "reimage__image_share_password": image_share_password,
        "reimage__input_locale": "080c:0000080c",
        "reimage__time_zone": "Romance Standard Time",
        "reimage__admin_name": "rb-admin",
        "reimage__admin_password": password,
        "reimage__bootstrap_password": password,  # what the answer file gives (the role rotates it)
        "reimage__winrm_cert_enroll_url": enroll_url,
        "reimage__winrm_cert_enroll_user": "PKI\\rebuild-enrol" if enroll_url else "",
        "reimage__winrm_cert_enroll_password": "Enrol-Pass-1" if enroll_url else "",
        "reimage__winrm_cert_template": "RebuildWinRM",
    }
    (boot_root / "unattend").mkdir(parents=True, exist_ok=True)
    answer = boot_root / "unattend" / f"{mac_hexraw(mac)}.xml"
    answer.write_text(env.get_template("unattend.xml.j2").render(**variables))
    winpe = boot_root / "winpe" / "rebuild"
    winpe.mkdir(parents=True, exist_ok=True)
    for static in (ROOT / "roles" / "reimage" / "files" / "winpe").iterdir():
        (winpe / static.name).write_bytes(static.read_bytes())
    disk = boot_root / "unattend" / f"{mac_hexraw(mac)}.disk.json"
    disk.write_text(env.get_template("system-disk.json.j2").render(**variables))
    script = boot_root / f"mac-{mac_hexraw(mac)}.ipxe"
    script.write_text(env.get_template("ipxe.j2").render(**variables))
    return script, answer


def magic_packet(mac: str) -> bytes:
    return b"\xff" * 6 + bytes.fromhex(mac_hexraw(mac)) * 16


def send_wol(port: int, payload: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(payload, ("127.0.0.1", port))


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def events(lab: Lab, name: str, event: str | None = None) -> list[dict[str, Any]]:
    return [e for e in lab.state(name).history if event is None or e["event"] == event]


def install_and_log_on(lab: Lab, name: str, answer_text: str, image: AppliedImage) -> TwinState:
    """What Setup leaves on twin `name` from this answer file, then its first logon's commands run."""
    answer = parse_answer_file(answer_text)
    new = clean_state(lab.twins[name], answer, image)
    lab.update(name, lambda state: state.__dict__.update(new.__dict__))
    run_first_logon(lab, name, answer)
    return lab.state(name)
