"""Where the state directory (journal, runs, secrets, vault key) is: the same from any folder.

Order: `--state-dir`, else $REBUILD_STATE_DIR, else `state/` of the project checkout
(`<project>/state`, beside `inventories/` and `playbooks/`), never the current folder: an
operator who runs `rebuild site` from another folder must reach the same journal, or a host
verified there would be listed for WIPE again by a fresh, empty journal.

`other_journals` lists the journals holding a site that a run could know of (the default one and
`./state`), so a run about to start a fresh journal can refuse and say where the site's history is.
"""

from __future__ import annotations

import os
from pathlib import Path

from rebuild.journal import JOURNAL_FILE, journal_holds_site
from rebuild.tiers import PROJECT_ROOT

STATE_DIR_ENV = "REBUILD_STATE_DIR"  # the same variable rebuild.secrets and the plugins read
PROJECT_STATE_DIR = PROJECT_ROOT / "state"


def default_state_dir() -> Path:
    """$REBUILD_STATE_DIR, else the project's `state/` (absolute: independent of the folder)."""
    env = os.environ.get(STATE_DIR_ENV)
    return Path(env).resolve() if env else PROJECT_STATE_DIR


def resolve_state_dir(explicit: Path | None) -> Path:
    """The state directory a command uses: `--state-dir` when given, else the default."""
    return explicit.resolve() if explicit is not None else default_state_dir()


def other_journals(site: str, state_dir: Path) -> list[Path]:
    """Journals other than `state_dir`'s that hold `site`, among those a run can know of: the
    default one (this function's `default_state_dir`) and `./state` (the default of earlier
    versions: the current folder's)."""
    candidates = {default_state_dir(), Path("state").resolve()}
    candidates.discard(state_dir.resolve())
    return sorted(d / JOURNAL_FILE for d in candidates if journal_holds_site(d / JOURNAL_FILE, site))
