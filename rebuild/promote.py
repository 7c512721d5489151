"""Quarantine, then promote: only hosts that passed verification leave the recovery network.

A host that fails verification is quarantined by the journal transition (verifying ->
quarantined, with its failing checks); it is never promoted. A verified host is promoted
by the configured action:

* `network-api`: POST to the network team's API, which moves the host out of the recovery
  network. Configured by `inventories/data/promotion.yml` (`url`, `token_env`) or the
  environment (`REBUILD_PROMOTE_URL`, `REBUILD_PROMOTE_TOKEN`); the token is read from the
  environment only, so it never sits in a data file, the journal or a report.
* `recorded-decision` when no URL is configured: the decision (who, when, why) is written
  to the journal so the network team can act on it, and the report shows it.

The outcome of every attempt is kept in the host's journal results under `promote`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rebuild.datadir import data_file
from rebuild.errors import ConfigError
from rebuild.journal import Journal, Phase
from rebuild.yamlfile import load_yaml

if TYPE_CHECKING:  # imported where a network API is called: a run without one never loads it (~60 ms)
    import requests

DATA_FILE = "promotion.yml"  # in the data directory (rebuild.datadir)


@dataclass(frozen=True)
class PromotionConfig:
    url: str = ""  # empty: record the decision only
    token: str = field(default="", repr=False)  # never printed
    timeout_s: float = 10.0
    ca_bundle: str = ""  # verify the API's certificate against this bundle ("" = system trust)

    @property
    def action(self) -> str:
        return "network-api" if self.url else "recorded-decision"


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> PromotionConfig:
    """Environment beats the data file. A URL without a token is refused (the API needs one)."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    path = path or data_file(DATA_FILE)
    if path.exists():
        loaded = load_yaml(path) or {}
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{path}: expected a mapping")
        if "token" in loaded:
            raise ConfigError(
                f"{path}: do not put the API token in a data file; name an env variable in token_env"
            )
        raw = dict(loaded)
    url = env.get("REBUILD_PROMOTE_URL") or str(raw.get("url") or "")
    token_env = str(raw.get("token_env") or "REBUILD_PROMOTE_TOKEN")
    token = env.get(token_env, "")
    if url and not url.startswith(("https://", "http://")):
        raise ConfigError(f"promotion url {url!r} must be an http(s) URL ({path} or REBUILD_PROMOTE_URL)")
    if url and not token:
        raise ConfigError(f"promotion url is set but {token_env} is empty: the network API needs its token")
    return PromotionConfig(
        url=url,
        token=token,
        timeout_s=float(raw.get("timeout_s") or 10.0),
        ca_bundle=str(raw.get("ca_bundle") or ""),
    )


@dataclass
class PromotionSummary:
    promoted: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # host -> why the API refused
    quarantined: list[str] = field(default_factory=list)  # left where they are, on purpose


def promote_verified(
    journal: Journal,
    site: str,
    *,
    run_id: str,
    operator: str,
    config: PromotionConfig,
    session: requests.Session | None = None,
) -> PromotionSummary:
    """Promote every verified, not yet promoted host of `site`; quarantined hosts stay put."""
    summary = PromotionSummary()
    http = session
    for h in journal.hosts(site):
        if h.phase is Phase.QUARANTINED:
            summary.quarantined.append(h.name)
            continue
        if h.phase is not Phase.VERIFIED:
            continue
        if (h.results.get("promote") or {}).get("status") == "promoted":
            summary.already.append(h.name)
            continue
        record: dict[str, Any] = {
            "action": config.action,
            "at": time.time(),
            "by": operator,
            "run_id": run_id,
        }
        if not config.url:
            record.update(
                status="promoted", note="no network API configured: decision recorded for the network team"
            )
        else:
            import requests

            http = http or requests.Session()
            try:
                resp = http.post(
                    config.url,
                    json={"host": h.name, "site": site, "action": "leave-recovery-network", "run_id": run_id},
                    headers={"Authorization": f"Bearer {config.token}"},
                    timeout=config.timeout_s,
                    verify=config.ca_bundle or True,
                )
                record["http_status"] = resp.status_code
                if 200 <= resp.status_code < 300:
                    record["status"] = "promoted"
                else:
                    record["status"] = "error"
                    record["error"] = f"network API answered {resp.status_code}: {resp.text[:200]}"
            except requests.RequestException as exc:
                record["status"] = "error"
                record["error"] = f"network API unreachable: {type(exc).__name__}"
        journal.set_result(h.name, "promote", record)
        if record["status"] == "promoted":
            summary.promoted.append(h.name)
        else:
            summary.errors[h.name] = str(record["error"])
    return summary
