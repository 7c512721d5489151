"""Hardening exceptions (inventories/data/harden_exceptions.yml): a control off for a host,
group or site, always with a reason and an approver, optionally until a date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rebuild.datadir import data_file
from rebuild.errors import ConfigError
from rebuild.yamlfile import load_shared_yaml

EXCEPTIONS_FILE = "harden_exceptions.yml"  # in the data directory (rebuild.datadir)
SCOPES = ("host", "group", "site")


@dataclass(frozen=True)
class HardenException:
    control: str
    scope: str  # host | group | site
    target: str
    reason: str
    approved_by: str
    expires: dt.date | None = None

    def matches(self, host: str, groups: Iterable[str], site: str) -> bool:
        if self.scope == "host":
            return self.target.lower() == host.lower()
        if self.scope == "group":
            return self.target in set(groups)
        return self.target == site

    def active(self, today: dt.date) -> bool:
        return self.expires is None or today <= self.expires

    def as_dict(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "scope": self.scope,
            "target": self.target,
            "reason": self.reason,
            "approved_by": self.approved_by,
            "expires": self.expires.isoformat() if self.expires else None,
        }


def load_exceptions(
    path: Path | None = None, known_controls: Iterable[str] | None = None
) -> list[HardenException]:
    """Read and validate the exceptions file. A missing default file means no exceptions."""
    default = data_file(EXCEPTIONS_FILE)
    path = path or default
    try:
        raw = load_shared_yaml(path)
    except FileNotFoundError:
        if path == default:
            return []
        raise ConfigError(f"{path}: exceptions file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_exceptions(raw, str(path), known_controls)


def parse_exceptions(
    raw: Any, source: str = "exceptions", known_controls: Iterable[str] | None = None
) -> list[HardenException]:
    if raw is None:
        return []
    if not isinstance(raw, dict) or not isinstance(raw.get("exceptions", []), list):
        raise ConfigError(f"{source}: must be a mapping with a list `exceptions`")
    known = set(known_controls) if known_controls is not None else None
    problems: list[str] = []
    out: list[HardenException] = []
    for index, item in enumerate(raw.get("exceptions") or [], start=1):
        where = f"{source}: exception #{index}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        for extra in sorted(set(item) - {"control", "scope", "target", "reason", "approved_by", "expires"}):
            problems.append(f"{where}: unknown field {extra!r}")
        control = item.get("control")
        if isinstance(control, str):
            where = f"{where} ({control})"
        bad = False
        if not isinstance(control, str) or not control:
            problems.append(f"{where}: `control` must name a baseline control id")
            bad = True
        elif known is not None and control not in known:
            problems.append(f"{where}: control {control!r} is not in the baseline")
            bad = True
        if item.get("scope") not in SCOPES:
            problems.append(
                f"{where}: `scope` must be one of {', '.join(SCOPES)} (got {item.get('scope')!r})"
            )
            bad = True
        for name in ("target", "reason", "approved_by"):
            value = item.get(name)
            if not isinstance(value, str) or not value.strip():
                problems.append(
                    f"{where}: `{name}` must be a non-empty string (an exception needs a recorded {name})"
                )
                bad = True
        expires = item.get("expires")
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                problems.append(f"{where}: `expires` must be a date YYYY-MM-DD (got {expires!r})")
                bad = True
        elif expires is not None and not isinstance(expires, dt.date):
            problems.append(f"{where}: `expires` must be a date YYYY-MM-DD (got {expires!r})")
            bad = True
        if bad:
            continue
        out.append(
            HardenException(
                control=str(control),
                scope=str(item["scope"]),
                target=str(item["target"]),
                reason=str(item["reason"]).strip(),
                approved_by=str(item["approved_by"]).strip(),
                expires=expires if isinstance(expires, dt.date) else None,
            )
        )
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in the hardening exceptions:\n" + "\n".join(problems))
    return out
