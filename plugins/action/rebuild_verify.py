"""Action plugin rebuild_verify: run the testinfra verification suites against this host.

Runs on the controller (nothing is sent to the host but the suites' WinRM reads): in a fork of
the site run's verification server when REBUILD_VERIFY_SOCKET names one, else in a new Python
(ad-hoc runs, molecule, a batch on an execution node) - the same result either way. Connection
details and the local admin secret are taken from the host's WinRM connection options - what
Ansible itself connects with - so no secret is ever a task argument or part of the result;
the task needs no no_log and its failure details (the failing checks) reach the journal.

Options and result: plugins/modules/rebuild_verify.py (`ansible-doc -t module rebuild_verify`).
Result: `rebuild_verify` (the journal's `verify` blob: passed, counts, failed_checks, junit)
and, when a check fails, `failed: true` and `rebuild_quarantine: true` (docs/contracts.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail

from rebuild.ansible_action import RebuildAction
from rebuild.applications import load_catalogue
from rebuild.errors import RebuildError
from rebuild.harden.baseline import load_baseline
from rebuild.harden.exceptions import load_exceptions
from rebuild.iocs import load_indicators
from rebuild.patch import load_patch_catalogue
from rebuild.secrets import SecretStore
from rebuild.verify import VerifyTarget, build_expectations, run_verification
from rebuild.verify.client import SOCKET_ENV
from rebuild.verify.expect import HOSTVARS


class ActionModule(RebuildAction):
    NAME = "rebuild_verify"

    @classmethod
    def preload(cls) -> None:
        load_exceptions(None, known_controls=load_baseline().ids)
        load_catalogue()
        load_indicators()
        load_patch_catalogue()

    def _conn(self, name: str, default: Any = None) -> Any:
        try:
            value = self._connection.get_option(name)
        except KeyError:
            return default
        return default if value is None else value

    def _target(self, host: str, task_vars: dict[str, Any]) -> tuple[VerifyTarget, str]:
        if self._connection.transport not in ("winrm", "ansible.builtin.winrm"):
            raise AnsibleActionFail(
                f"rebuild_verify: host {host} is not reached over winrm "
                f"(connection {self._connection.transport})"
            )
        extras = self._conn("_extras", {}) or {}

        def extra(name: str, default: str = "") -> str:
            value = extras.get(f"ansible_winrm_{name}", task_vars.get(f"ansible_winrm_{name}", default))
            return str(self._templar.template(value)) if value not in (None, "") else default

        port = int(self._conn("port", 5986))
        scheme = self._conn("scheme") or ("http" if port == 5985 else "https")
        password = self._conn("remote_password")
        if not password:
            raise AnsibleActionFail(f"rebuild_verify: no password to connect to {host} (ansible_password)")
        return VerifyTarget(
            host=host,
            address=str(self._conn("remote_addr", host)),
            port=port,
            scheme=str(scheme),
            user=str(self._conn("remote_user", "rb-admin")),
            ca_trust_path=extra("ca_trust_path"),
            cert_validation=extra("server_cert_validation", "validate"),
        ), str(password)

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        host = str(task_vars.get("inventory_hostname", ""))
        if self._task.check_mode:
            result.update(skipped=True, msg="verification reads the host; nothing to do in check mode")
            return result
        hostvars = {k: self._templar.template(task_vars[k]) for k in HOSTVARS if k in task_vars}
        run_dir = Path(str(args.get("run_dir") or os.environ.get("REBUILD_RUN_DIR") or "state/runs/adhoc"))
        try:
            target, password = self._target(host, task_vars)
            expectations = build_expectations(
                hostvars,
                defender_max_signature_age_hours=float(args.get("defender_max_signature_age_hours", 48)),
            )
            state_dir = Path(os.environ.get("REBUILD_STATE_DIR", "state"))
            previous = SecretStore(state_dir).get(
                host, str(args.get("previous_secret_name") or "local_admin_previous")
            )
            server = os.environ.get(SOCKET_ENV)  # set by a site run (rebuild.verify.server)
            notices: list[str] = []
            outcome = run_verification(
                target,
                expectations,
                password=password,
                previous_password=str(previous or ""),
                run_dir=run_dir,
                timeout_s=float(args.get("timeout", 900)),
                server=Path(server) if server else None,
                notices=notices,
            )
            if notices:  # the server was gone: the host was verified all the same, by a new Python
                result["warnings"] = notices
        except RebuildError as exc:
            raise AnsibleActionFail(f"rebuild_verify: {exc}") from None
        blob = outcome.to_dict()
        result["rebuild_verify"] = blob
        result["changed"] = False
        if outcome.passed:
            result["msg"] = outcome.summary()
            return result
        result.update(
            failed=True,
            rebuild_quarantine=True,
            # Named conditions first (e.g. "held back by patch_level"): the journal's reason says it.
            msg=(
                (f"held back by {', '.join(outcome.conditions)}; " if outcome.conditions else "")
                + "; ".join(f"{c['check']}: {c['message']}" for c in outcome.failed_checks)
            )[:2000]
            or "verification failed",
        )
        return result
