"""What rebuild_verify would pass to run_verification for one lab twin, built without Ansible's
task machinery: the host's variables through Ansible's own inventory and variable manager, the
password the twin's rb-admin has now (the lab's state), the previous one from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible.vars.manager import VariableManager

from rebuild.lab.state import StateStore
from rebuild.verify import Expectations, VerifyTarget, build_expectations
from rebuild.verify.expect import HOSTVARS


def keep_admin(lab: Any, *hosts: str) -> None:
    """The site run keeps these hosts' rb-admin after verification (LAPS would disable it), so
    they can be verified again afterwards."""
    host_vars = Path(lab.inventory("arlon")).parent / "host_vars"
    host_vars.mkdir(exist_ok=True)
    for host in hosts:
        (host_vars / f"{host}.yml").write_text("rebuild_retire_rebuild_secret: false\n")


def verify_request(lab: Any, site: str, host: str) -> tuple[VerifyTarget, Expectations, str, str]:
    """(target, expectations, password, previous password) of `host` in `lab` (a RunningLab)."""
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(lab.inventory(site))])
    manager = VariableManager(loader=loader, inventory=inventory)
    variables = manager.get_vars(host=inventory.get_host(host))
    templar = Templar(loader=loader, variables=variables)
    hostvars = {k: templar.template(variables[k]) for k in HOSTVARS if k in variables}
    twins = StateStore(Path(lab.lab_dir) / "twins.sqlite")
    try:
        state = twins.get(host)  # this twin only (items() would decode every twin of the lab)
        assert state is not None, f"no twin {host} in the lab"
        password = str(state.users["rb-admin"].password)
    finally:
        twins.close()
    previous = lab.store().get(host, "local_admin_previous") or ""
    target = VerifyTarget(
        host=host, address=lab.address(host), port=5986, scheme="https", ca_trust_path=str(lab.ca_bundle)
    )
    return target, build_expectations(hostvars), password, str(previous)
