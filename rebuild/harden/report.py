"""Per-host hardening report: every control compliant, fixed, excepted or failed.

Built from the module's per-control result plus the compiler's exceptions, kept in the
journal as the host's `harden` result blob, and rendered as text (terminal, logs) and HTML
(auditors). In an audit (check mode) nothing is fixed: a control is compliant or
noncompliant. Controls whose settings Windows enforces only after a restart carry
`pending_reboot` until the host has restarted; they are never shown as plainly done.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from rebuild.harden.compile import Excepted


class Status(StrEnum):
    COMPLIANT = "compliant"  # was already compliant
    FIXED = "fixed"  # changed by this run, now compliant
    EXCEPTED = "excepted"  # turned off for this host by a recorded exception
    FAILED = "failed"  # error, not compliant after the run, or not applied
    NONCOMPLIANT = "noncompliant"  # audit only: would be changed
    NOT_APPLICABLE = "not_applicable"  # host lacks what the control requires (e.g. VBS hardware)


STATUS_ORDER = [
    Status.FAILED,
    Status.NONCOMPLIANT,
    Status.FIXED,
    Status.EXCEPTED,
    Status.COMPLIANT,
    Status.NOT_APPLICABLE,
]


@dataclass
class ControlResult:
    id: str
    title: str
    status: Status
    reason: str = ""
    pending_reboot: bool = False
    noncompliant: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)


@dataclass
class HostReport:
    host: str
    mode: str  # apply | audit
    at: str  # ISO 8601 UTC
    controls: list[ControlResult]

    def counts(self) -> dict[str, int]:
        c = Counter(r.status.value for r in self.controls)
        return {s.value: c.get(s.value, 0) for s in Status}

    @property
    def failed(self) -> list[ControlResult]:
        return [r for r in self.controls if r.status is Status.FAILED]

    @property
    def pending_reboot(self) -> list[str]:
        return [r.id for r in self.controls if r.pending_reboot]

    def status_of(self, control_id: str) -> ControlResult:
        for r in self.controls:
            if r.id == control_id:
                return r
        raise KeyError(control_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "mode": self.mode,
            "at": self.at,
            "counts": self.counts(),
            "pending_reboot": self.pending_reboot,
            "controls": [{**asdict(r), "status": r.status.value} for r in self.controls],
        }

    def summary(self) -> dict[str, Any]:
        """Compact form for the phase's done marker: counts, statuses, reasons where not plain."""
        return {
            "mode": self.mode,
            "counts": self.counts(),
            "controls": {r.id: r.status.value for r in self.controls},
            "reasons": {r.id: r.reason for r in self.controls if r.reason},
            "pending_reboot": self.pending_reboot,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> HostReport:
        controls = [
            ControlResult(**{**{k: v for k, v in c.items() if k != "status"}, "status": Status(c["status"])})
            for c in raw["controls"]
        ]
        return cls(host=raw["host"], mode=raw["mode"], at=raw["at"], controls=controls)


def report_from_journal(results: Mapping[str, Any], key: str = "harden") -> HostReport | None:
    """The report a harden run left in a host's journal results (the done marker's `report`)."""
    blob = results.get(key) or {}
    raw = blob.get("report", blob) if isinstance(blob, Mapping) else None
    if not isinstance(raw, Mapping) or "controls" not in raw:
        return None
    return HostReport.from_dict(raw)


def journal_reports(journal: Any, site: str | None = None, key: str = "harden") -> list[HostReport]:
    """Every host's report of `key` (harden / harden_audit) kept in the journal, by host name."""
    found = []
    for record in journal.hosts(site):
        rep = report_from_journal(record.results, key)
        if rep is not None:
            found.append(rep)
    return sorted(found, key=lambda r: r.host)


def build_report(
    host: str,
    module_result: Mapping[str, Any],
    excepted: Iterable[Excepted | Mapping[str, Any]] = (),
    check_mode: bool = False,
    at: dt.datetime | None = None,
) -> HostReport:
    """Classify every control of one host from the module's result and the exceptions."""
    rows: list[ControlResult] = []
    for c in module_result.get("controls", []):
        rows.append(_classify(c, check_mode))
    for e in excepted:
        e = e if isinstance(e, Mapping) else asdict(e)
        reason = f"{e['reason']} (approved by {e['approved_by']}; {e['scope']} {e['target']}"
        reason += f"; until {e['expires']})" if e.get("expires") else ")"
        rows.append(
            ControlResult(id=e["control"], title=e.get("title", ""), status=Status.EXCEPTED, reason=reason)
        )
    rows.sort(key=lambda r: r.id)
    when = (at or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()
    return HostReport(host=host, mode="audit" if check_mode else "apply", at=when, controls=rows)


def _classify(c: Mapping[str, Any], check_mode: bool) -> ControlResult:
    base: dict[str, Any] = {
        "id": str(c["id"]),
        "title": str(c.get("title", "")),
        "pending_reboot": bool(c.get("pending_reboot")),
        "noncompliant": list(c.get("noncompliant") or []),
        "before": dict(c.get("before") or {}),
        "after": dict(c.get("after") or {}),
    }
    if c.get("error"):
        return ControlResult(**base, status=Status.FAILED, reason=str(c["error"]))
    if c.get("not_applicable"):
        return ControlResult(**base, status=Status.NOT_APPLICABLE, reason=str(c.get("skip_reason", "")))
    if c.get("skipped"):
        return ControlResult(**base, status=Status.FAILED, reason=str(c.get("skip_reason", "not applied")))
    if check_mode:
        if c.get("compliant"):
            return ControlResult(**base, status=Status.COMPLIANT)
        return ControlResult(**base, status=Status.NONCOMPLIANT, reason="not compliant: " + _what(base))
    if not c.get("compliant") and c.get("pending_reboot"):
        # Written, in effect only after the restart (e.g. Credential Guard running): never
        # called compliant before that; the harden role restarts and audits again.
        if c.get("changed"):
            return ControlResult(**base, status=Status.FIXED, reason="in effect after the pending restart")
        return ControlResult(
            **base, status=Status.NONCOMPLIANT, reason="configured, in effect after the pending restart"
        )
    if not c.get("compliant"):
        return ControlResult(**base, status=Status.FAILED, reason="not compliant after the run")
    if not c.get("changed"):
        return ControlResult(**base, status=Status.COMPLIANT)
    disabled = [str(x) for k in _LISTED for x in (base["before"].get(k) or []) if k in base["noncompliant"]]
    return ControlResult(
        **base, status=Status.FIXED, reason=f"disabled: {', '.join(disabled)}" if disabled else ""
    )


_LISTED = ("service_allowlist", "task_allowlist")  # their value is the list of unknown items


def _what(base: Mapping[str, Any]) -> str:
    """The non-compliant settings, naming the unknown services/tasks an allowlist found."""
    parts = []
    for key in base["noncompliant"]:
        found = base["before"].get(key)
        if key in _LISTED and isinstance(found, list) and found:
            parts.append(f"{key} ({', '.join(map(str, found))})")
        else:
            parts.append(key)
    return ", ".join(parts)


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("rebuild.harden", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def render_text(reports: Sequence[HostReport], title: str = "Hardening report") -> str:
    lines = [title, "=" * len(title)]
    for rep in reports:
        counts = ", ".join(f"{k} {v}" for k, v in rep.counts().items() if v)
        lines.append(f"\n{rep.host}  ({rep.mode}, {rep.at})  {counts}")
        if rep.pending_reboot:
            lines.append(f"  pending reboot: {', '.join(rep.pending_reboot)}")
        order = {s: i for i, s in enumerate(STATUS_ORDER)}
        for r in sorted(rep.controls, key=lambda r: (order[r.status], r.id)):
            flag = " [pending reboot]" if r.pending_reboot else ""
            lines.append(f"  {r.status.value:<14} {r.id:<14} {r.title}{flag}")
            if r.reason:
                lines.append(f"  {'':<14} {'':<14} -> {r.reason}")
    return "\n".join(lines) + "\n"


def render_html(reports: Sequence[HostReport], title: str = "Hardening report") -> str:
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    hosts = [
        {"report": r, "rows": sorted(r.controls, key=lambda c: (order[c.status], c.id)), "counts": r.counts()}
        for r in reports
    ]
    return (
        _env()
        .get_template("report.html.j2")
        .render(title=title, hosts=hosts, statuses=[s.value for s in Status])
    )
