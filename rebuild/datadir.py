"""Where rebuild finds its data files (sites, tiers, catalogues, baseline, indicators...).

One rule for every module: `inventories/data` of this checkout, unless the environment
variable REBUILD_DATA_DIR names another directory (a rehearsal, a bench, a hospital's own
copy). Read at each call, not at import, so a caller that sets it first is always honoured.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "REBUILD_DATA_DIR"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    """inventories/data of this checkout, unless REBUILD_DATA_DIR names another."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else PROJECT_ROOT / "inventories" / "data"


def data_file(name: str) -> Path:
    """The data file `name` (e.g. "baseline.yml") in the data directory."""
    return default_data_dir() / name
