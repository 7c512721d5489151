"""Read the project's YAML data files with libyaml when it is there.

The baseline, catalogues and inventories are parsed on the controller once per host and
task (Ansible workers are short-lived forks): the pure-Python parser made that a tenth of a
site run's CPU. Same safe subset, same errors (yaml.YAMLError with the line), ~10x faster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_text(text: str) -> Any:
    """Parse YAML text with the safe loader (C implementation when PyYAML has it)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader, never the full one


def load_yaml(path: Path) -> Any:
    """Parse one YAML file (UTF-8) with the safe loader."""
    return load_yaml_text(path.read_text(encoding="utf-8"))
