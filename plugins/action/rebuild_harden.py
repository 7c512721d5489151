"""Action plugin rebuild_harden: compile the baseline for this host on the controller, then
apply (or, in check mode, audit) it with ONE call of win_rebuild_baseline.

Options and result: plugins/modules/rebuild_harden.py (`ansible-doc -t module rebuild_harden`).
Returns the module's per-control `controls`, `report` (rebuild.harden.report.HostReport as a
dict, the journal's `harden` blob), `summary` (compact, for the phase's done marker) and
`pending_reboot`. Fails the host, in apply mode, when any control failed; an audit (check
mode) fails only when the module itself could not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean

from rebuild.ansible_action import RebuildAction
from rebuild.errors import RebuildError
from rebuild.harden.baseline import load_baseline
from rebuild.harden.compile import HostFacts, compile_host
from rebuild.harden.exceptions import load_exceptions
from rebuild.harden.report import build_report

MODULE = "win_rebuild_baseline"


class ActionModule(RebuildAction):
    NAME = "rebuild_harden"

    @classmethod
    def preload(cls) -> None:
        load_exceptions(None, known_controls=load_baseline().ids)

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        host = task_vars.get("inventory_hostname", "")
        check_mode = bool(self._task.check_mode or self._play_context.check_mode)
        try:
            baseline = load_baseline(Path(args["baseline"]) if args.get("baseline") else None)
            exceptions = load_exceptions(
                Path(args["exceptions"]) if args.get("exceptions") else None, known_controls=baseline.ids
            )
            hostvars = {
                k: self._templar.template(task_vars.get(k))
                for k in ("rebuild_os", "rebuild_kind", "rebuild_site", "rebuild_service")
            }
            hostvars["group_names"] = task_vars.get("group_names", [])
            facts = HostFacts.from_hostvars(host, hostvars)
            protected = [to_text(a) for a in (args.get("protected_accounts") or []) if a]
            if self._play_context.remote_user:
                protected.append(to_text(self._play_context.remote_user))
            compiled = compile_host(baseline, facts, exceptions, protected_accounts=protected)
        except RebuildError as exc:
            raise AnsibleActionFail(str(exc)) from None

        # One module invocation for the whole compiled list: one WinRM round trip.
        module_result = self._execute_module(
            module_name=MODULE, module_args=compiled.module_args(), task_vars=task_vars
        )
        if module_result.get("failed") and "controls" not in module_result:
            result.update(module_result)
            return result

        report = build_report(host, module_result, compiled.excepted, check_mode=check_mode)
        result.update(
            changed=bool(module_result.get("changed")),
            controls=module_result.get("controls", []),
            pending_reboot=bool(module_result.get("pending_reboot")),
            report=report.to_dict(),
            summary=report.summary(),
            not_applicable=compiled.not_applicable,
        )
        failed = report.failed
        if not boolean(args.get("fail_on_manual", True), strict=False):
            manual = {c["id"] for c in compiled.controls if c.get("remediation") == "manual"}
            failed = [r for r in failed if r.id not in manual]
        counts = report.counts()
        if failed and not check_mode:
            result["failed"] = True
            result["msg"] = "hardening failed for " + "; ".join(f"{r.id}: {r.reason}" for r in failed)
        else:
            done = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
            result["msg"] = (
                f"{'audit' if check_mode else 'hardening'} of {len(report.controls)} controls: {done}"
            )
        return result
