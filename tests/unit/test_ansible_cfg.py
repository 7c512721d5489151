"""ansible.cfg names only folders the project has: a stale path hides where plugins really live."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PATH_SETTINGS = (
    "roles_path",
    "library",
    "action_plugins",
    "lookup_plugins",
    "inventory_plugins",
    "vars_plugins",
)


def test_every_plugin_and_role_folder_named_exists() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "ansible.cfg")
    defaults = cfg["defaults"]
    missing = [f"{key} = {defaults[key]}" for key in _PATH_SETTINGS if not (ROOT / defaults[key]).is_dir()]
    assert not missing, f"ansible.cfg names folders that do not exist: {missing}"
    unknown = {k for k in defaults if k.endswith(("_plugins", "module_utils"))} - set(_PATH_SETTINGS)
    assert not unknown, f"ansible.cfg has plugin paths this test does not check: {unknown}"
