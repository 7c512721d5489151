"""microsoft.ad.membership: join the lab's (simulated) domain, or leave to a workgroup.

The lab has one domain: the project's (`inventories/data/sites.yml` `domain`). Joining needs
`domain_admin_user` / `domain_admin_password` matching the lab's simulated domain controller
credential: `lab.config.domain_admin_user` / `domain_admin_password` when the lab config has them,
else `<lab_dir>/domain-controller.json` (`{"domain_admin_user": ..., "domain_admin_password": ...}`,
written by whoever sets the lab up, e.g. `lab up`). With no credential configured the join
fails; it never succeeds by default. `domain_ou_path` / `domain_server` are accepted and recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from rebuild.lab.auth import GP_STATE_KEY
from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.state import TwinState

SITES = Path(__file__).resolve().parents[4] / "inventories" / "data" / "sites.yml"


def computer_dn(hostname: str, domain: str, ou: str) -> str:
    container = ou or "CN=Computers," + ",".join(f"DC={part}" for part in domain.split("."))
    return f"CN={hostname.split('.')[0].upper()},{container}"


def lab_domain() -> str:
    data = yaml.safe_load(SITES.read_text(encoding="utf-8")) or {}
    return str(data.get("domain", ""))


def _dc_credential(ctx: ModuleContext) -> tuple[str | None, str | None]:
    user = getattr(ctx.lab.config, "domain_admin_user", None)
    password = getattr(ctx.lab.config, "domain_admin_password", None)
    if user and password:
        return str(user), str(password)
    path = Path(ctx.lab.config.lab_dir) / "domain-controller.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        return data.get("domain_admin_user"), data.get("domain_admin_password")
    return None, None


@module_twin("microsoft.ad.membership")
def membership(ctx: ModuleContext) -> dict[str, Any]:
    p = ctx.params
    state = ctx.state()
    if p.get("offline_join_blob"):
        raise ModuleFailed("the rebuild lab (a simulation) does not simulate offline domain join")
    result: dict[str, Any] = {"changed": False, "reboot_required": False}
    new_name = p.get("hostname")
    if new_name and str(new_name).lower() != state.hostname.lower():
        result["changed"] = True
    if p["state"] == "domain":
        want = str(p.get("dns_domain_name") or "")
        if not want:
            raise ModuleFailed("state is domain but all of the following are missing: dns_domain_name")
        if state.domain_joined and state.domain.lower() == want.lower() and not result["changed"]:
            return result
        domain = lab_domain()
        if want.lower() != domain.lower():
            raise ModuleFailed(
                f"Failed to join the domain {want}: The specified domain either does not exist or could not "
                "be contacted."
            )
        user, password = p.get("domain_admin_user"), p.get("domain_admin_password")
        if not user or not password:
            raise ModuleFailed(
                "state is domain but all of the following are missing: "
                "domain_admin_user, domain_admin_password"
            )
        lab_user, lab_password = _dc_credential(ctx)
        if not lab_user or not lab_password:
            raise ModuleFailed(
                "the rebuild lab (a simulation) has no domain controller credential configured "
                "(LabConfig.domain_admin_user/domain_admin_password or <lab_dir>/domain-controller.json), "
                "so no join can succeed"
            )
        short = str(user).split("\\")[-1].split("@")[0]
        if short.lower() != str(lab_user).split("\\")[-1].lower() or password != lab_password:
            raise ModuleFailed(f"Failed to join the domain {want}: The user name or password is incorrect.")
        result.update(changed=True, reboot_required=True)
        ou = str(p.get("domain_ou_path") or "")
        if not ctx.check_mode:

            def join(s: TwinState) -> None:
                s.domain, s.domain_joined = domain, True
                if new_name:
                    s.hostname = str(new_name)
                # Where Group Policy finds the computer (rebuild.lab.auth reads it): the OU asked
                # for, else the domain's default Computers container.
                s.registry[GP_STATE_KEY] = {"Distinguished-Name": computer_dn(s.hostname, domain, ou)}

            ctx.update(join)
            ctx.record("domain_joined", domain=domain, ou=p.get("domain_ou_path") or "")
        return result
    workgroup = str(p.get("workgroup_name") or "")
    if not workgroup:
        raise ModuleFailed("state is workgroup but all of the following are missing: workgroup_name")
    if not state.domain_joined and state.domain.lower() == workgroup.lower() and not result["changed"]:
        return result
    result.update(changed=True, reboot_required=True)
    if not ctx.check_mode:

        def leave(s: TwinState) -> None:
            s.domain, s.domain_joined = workgroup, False
            if new_name:
                s.hostname = str(new_name)

        ctx.update(leave)
        ctx.record("domain_left", workgroup=workgroup)
    return result
