"""Action plugin rebuild_apps: what this host's service needs, from the catalogue, in ONE call.

Computes on the controller the host's applications, certificates and printers from
inventories/data/applications.yml (rebuild.applications: rules per kind/service, printers
per room, register-named applications) and runs win_rebuild_apps once with that list: one
WinRM round trip, every installer hash-checked on the host before anything runs.

Options and result: plugins/modules/rebuild_apps.py (`ansible-doc -t module rebuild_apps`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean

from rebuild.ansible_action import RebuildAction
from rebuild.applications import load_catalogue, repository_problem
from rebuild.errors import RebuildError

MODULE = "win_rebuild_apps"


class ActionModule(RebuildAction):
    NAME = "rebuild_apps"

    @classmethod
    def preload(cls) -> None:
        load_catalogue()

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        host = str(task_vars.get("inventory_hostname", ""))
        v = {
            k: self._templar.template(task_vars.get(k))
            for k in (
                "rebuild_kind",
                "rebuild_service",
                "rebuild_site",
                "rebuild_location",
                "rebuild_applications",
            )
        }
        try:
            catalogue = load_catalogue(Path(args["catalogue"]) if args.get("catalogue") else None)
            deployment = catalogue.for_host(
                hostname=host,
                kind=str(v["rebuild_kind"] or ""),
                service=str(v["rebuild_service"] or ""),
                site=str(v["rebuild_site"] or ""),
                location=str(v["rebuild_location"] or ""),
                extra=[str(a) for a in (v["rebuild_applications"] or [])],
            )
        except RebuildError as exc:
            raise AnsibleActionFail(str(exc)) from None
        repository = str(args.get("repository") or catalogue.repository)
        problem = repository_problem(repository)
        if problem:
            raise AnsibleActionFail(f"rebuild_apps: option 'repository' {problem}")
        module_args = deployment.module_args(repository)
        module_args["update_defender_signatures"] = boolean(
            args.get("update_defender_signatures", True), strict=False
        )
        if args.get("defender_signature_source"):
            module_args["defender_signature_source"] = str(args["defender_signature_source"])
        module_result = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
        # The phase's end (rebuild_phase_done) keeps this short summary in the journal.
        summary = {
            "applications": {a["id"]: a.get("status") for a in module_result.get("applications", [])},
            "certificates": {c["id"]: c.get("status") for c in module_result.get("certificates", [])},
            "printers": {p["name"]: p.get("status") for p in module_result.get("printers", [])},
        }
        return {**module_result, "summary": summary}
