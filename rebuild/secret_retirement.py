"""Retire the rebuild's own per-host secret once Windows LAPS manages a verified, promoted host.

Until verification the rebuild secret (`rb-admin`'s password, rebuild/secrets.py) is rebuild's
only way into a host. Once the host passed verification (Windows LAPS policy in effect and a
rotation confirmed by the LAPS event log, check test_laps) and its computer object left the
staging OU, the verify role's last host task disables `rb-admin` and says so in the done marker's
`rebuild_secret: {disabled, reason}` (roles/verify/tasks/retire_rebuild_secret.yml). After
promotion, the controller then deletes the host's rebuild secrets from the store and the journal
records it under `rebuild_secret`. A host Windows LAPS does not manage (workgroup, domain
controller, OS without LAPS) keeps its secret, and the journal says why.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rebuild.journal import HostRecord, Journal, Phase

if TYPE_CHECKING:  # the report reads RESULT_KEY without loading the vault (ansible)
    from rebuild.secrets import SecretStore

RESULT_KEY = "rebuild_secret"  # in the journal's host results, and in the verify done marker's facts
RETIRED, KEPT = "retired", "kept"
# The store entries rebuild generated for the host: the rb-admin secret, the answer file's one-time
# bootstrap secret and the built-in Administrator's first password (Windows LAPS rotated it since).
# The pre-incident password (`local_admin_previous`) stays: verification of a later --force-host
# rebuild checks it no longer opens a session.
REBUILD_SECRETS = ("local_admin", "local_admin_bootstrap", "builtin_admin")


@dataclass
class RetirementSummary:
    retired: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # host -> why its secret stays


def _host_side(h: HostRecord) -> Mapping[str, Any] | None:
    """What the verify role did with rb-admin, or None when it said nothing (verified before)."""
    verify = h.results.get("verify") or {}
    side = verify.get(RESULT_KEY) if isinstance(verify, Mapping) else None
    return side if isinstance(side, Mapping) else None


def retire_rebuild_secrets(
    journal: Journal, site: str, store: SecretStore, *, run_id: str
) -> RetirementSummary:
    """For every verified and promoted host of `site`: delete its rebuild secrets when the host
    disabled rb-admin, else record why they are kept. Idempotent: a host already retired with
    nothing left in the store is not recorded again."""
    summary = RetirementSummary()
    for h in journal.hosts(site):
        if h.phase is not Phase.VERIFIED or (h.results.get("promote") or {}).get("status") != "promoted":
            continue  # never before verification, and only once it left the recovery network
        side = _host_side(h)
        if side is None:
            continue
        before = h.results.get(RESULT_KEY) or {}
        if side.get("disabled") is True:
            deleted = [name for name in REBUILD_SECRETS if store.delete(h.name, name)]
            if deleted or before.get("status") != RETIRED:
                journal.set_result(
                    h.name,
                    RESULT_KEY,
                    {
                        "status": RETIRED,
                        "reason": "rebuild secret retired: rb-admin disabled on the host, "
                        "Windows LAPS manages its local administrator",
                        "deleted": deleted,
                        "run_id": run_id,
                        "at": time.time(),
                    },
                )
            summary.retired.append(h.name)
            continue
        reason = str(side.get("reason") or "rb-admin was not disabled")
        if before.get("status") != KEPT or before.get("reason") != reason:
            journal.set_result(
                h.name,
                RESULT_KEY,
                {"status": KEPT, "reason": reason, "deleted": [], "run_id": run_id, "at": time.time()},
            )
        summary.kept[h.name] = reason
    return summary
