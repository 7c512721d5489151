"""Action plugin rebuild_apps: what this host's service needs, from the catalogue, in ONE call.

Computes on the controller the host's applications, certificates and printers from
inventories/data/applications.yml (rebuild.applications: rules per kind/service, printers
per room, register-named applications) and runs win_rebuild_apps once with that list: one
WinRM round trip, every installer hash-checked on the host before anything runs.

Options (all optional):
  catalogue                   path of the catalogue (default: the project's applications.yml)
  repository                  override the catalogue's repository root (an https:// URL, e.g. a
                              site-local package server; a UNC share is refused: double hop)
  update_defender_signatures  also update Defender security intelligence (default true)
  defender_signature_source   UNC share of definition updates (default: host's configured source)
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

try:
    from rebuild.applications import load_catalogue, repository_problem
    from rebuild.errors import RebuildError
except ImportError as exc:  # the controller must have rebuild installed (pip install -e .)
    _IMPORT_ERROR: Exception | None = exc
else:
    _IMPORT_ERROR = None
    # Parsed now, in ansible-playbook's own process: Ansible imports action plugins there before it
    # forks a worker per host and task, so every worker inherits the data already parsed.
    with contextlib.suppress(RebuildError, OSError, ValueError):
        load_catalogue()

MODULE = "win_rebuild_apps"
_ARGS = frozenset(("catalogue", "repository", "update_defender_signatures", "defender_signature_source"))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = _ARGS

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        if _IMPORT_ERROR is not None:
            raise AnsibleActionFail(
                f"rebuild_apps needs the rebuild package on the controller: {_IMPORT_ERROR}"
            )
        args = self._task.args
        unknown = set(args) - _ARGS
        if unknown:
            raise AnsibleActionFail(f"rebuild_apps: unknown option(s) {', '.join(sorted(unknown))}")
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
        result.update(module_result)
        # The done marker keeps this short summary in the journal.
        result["summary"] = {
            "applications": {a["id"]: a.get("status") for a in module_result.get("applications", [])},
            "certificates": {c["id"]: c.get("status") for c in module_result.get("certificates", [])},
            "printers": {p["name"]: p.get("status") for p in module_result.get("printers", [])},
        }
        return result
