"""The reimage paths inside a running lab daemon, driven by the product's own trigger modules.

The lab fixture (tests/conftest.py) starts `rebuild lab up` for the small register; the
product's `rebuild_wake_on_lan` and `rebuild_hypervisor_boot` modules run through Ansible
with the lab's inventory overlay and secret store, as the reimage role runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from reimage_helpers import ROOT, render_files, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def hostvars(inventory: Path) -> dict[str, dict[str, Any]]:
    """Host vars of a static inventory file (all groups flattened)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(group: dict[str, Any]) -> None:
        for host, values in (group.get("hosts") or {}).items():
            found.setdefault(host, {}).update(values or {})
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(yaml.safe_load(inventory.read_text())["all"])
    return found


def ansible(lab: Any, host: str, module: str, args: str) -> dict[str, Any]:
    env = {
        **os.environ,
        **lab.env,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
    }
    proc = subprocess.run(
        ["ansible", "-i", str(lab.inventory("arlon")), host, "-m", module, "-a", args,
         "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}"],
        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][host]
    return dict(result)


def phases(lab: Any) -> dict[str, str]:
    return {t["name"]: t["phase"] for t in lab.client.status()["twins"]}


def test_product_modules_trigger_the_lab_reimage_paths(lab: Any) -> None:
    inventory = lab.inventory("arlon")
    text = inventory.read_text()
    hosts = hostvars(inventory)
    pc = next(
        h
        for h, v in hosts.items()
        if v["rebuild_kind"] == "workstation" and v["rebuild_platform"] == "physical"
    )
    vm = next(h for h, v in hosts.items() if v["rebuild_platform"] == "virtual")
    srv = next(
        h for h, v in hosts.items() if v["rebuild_kind"] == "server" and v["rebuild_platform"] == "physical"
    )
    pcv, vmv, srvv = hosts[pc], hosts[vm], hosts[srv]
    # The overlay points the product at the lab, and carries no secret.
    assert (
        pcv["rebuild_boot_url"].startswith("http://127.0.0.1:")
        and pcv["rebuild_wol_broadcast"] == "127.0.0.1"
    )
    assert Path(pcv["rebuild_pxe_root"]) == (lab.lab_dir / "boot").resolve()
    catalogue = yaml.safe_load(Path(pcv["rebuild_image_catalogue"]).read_text())["images"]
    assert "hypervisor_token" not in text and "token" not in json.dumps(vmv)

    # The image share's read-only account, as the role reads it: the site entry the lab seeded.
    from rebuild.lab.fleet import secrets_dir
    from rebuild.secrets import SecretStore

    state = secrets_dir(lab.lab_dir)
    store = SecretStore(state, key_file=state / "vault-password")
    share = {n: str(store.get("site-arlon", f"image_share_{n}")) for n in ("user", "password")}
    for host, values, secret in ((pc, pcv, "Pc-1"), (vm, vmv, "Vm-1"), (srv, srvv, "Srv-1")):
        render_files(
            Path(values["rebuild_pxe_root"]),
            host,
            values["rebuild_mac"],
            "arlon",
            values["rebuild_os"],
            catalogue[values["rebuild_os"]],
            values["rebuild_boot_url"],
            secret,
            boot_client=values["ansible_host"],
            image_share_user=share["user"],
            image_share_password=share["password"],
        )

    wol = ansible(
        lab,
        pc,
        "rebuild_wake_on_lan",
        "mac={{ rebuild_mac }} broadcast={{ rebuild_wol_broadcast }} port={{ rebuild_wol_port }}",
    )
    assert wol.get("changed") is True, wol
    # The hypervisor token comes from the secret store the lab seeded, as the role reads it.
    hv = ansible(
        lab,
        vm,
        "rebuild_hypervisor_boot",
        "url={{ rebuild_hypervisor_url }} vm_ref={{ rebuild_vm_ref }} "
        "token={{ lookup('rebuild_secret', 'site-arlon', name='hypervisor_token') }}",
    )
    assert hv.get("changed") is True and hv.get("power_state") == "on", hv

    bmc = ansible(
        lab,
        srv,
        "rebuild_redfish_boot",
        "bmc_address={{ rebuild_bmc_address }} system_id={{ rebuild_redfish_system_id }} "
        "username={{ lookup('rebuild_secret', 'site-arlon', name='bmc_user') }} "
        "password={{ lookup('rebuild_secret', 'site-arlon', name='bmc_password') }}",
    )
    assert bmc.get("changed") is True and bmc.get("power_state") == "On", bmc

    done = (pc, vm, srv)
    wait_for(lambda: all(phases(lab)[h] == "clean" for h in done), 40, "the three twins clean")
    untouched = [h for h, p in phases(lab).items() if h not in done and p not in ("compromised", "off")]
    assert untouched == []
