"""Read the project's YAML data files with libyaml when it is there.

The baseline, catalogues and inventories are parsed on the controller once per host and
task (Ansible workers are short-lived forks): the pure-Python parser made that a tenth of a
site run's CPU. Same safe subset, same errors (yaml.YAMLError with the line), ~10x faster.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_text(text: str) -> Any:
    """Parse YAML text with the safe loader (C implementation when PyYAML has it)."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader (C or Python), never the full one


def load_yaml(path: Path) -> Any:
    """Parse one YAML file (UTF-8) with the safe loader. Text that is not UTF-8 is a YAMLError
    (which every caller reports with the file's name), not a UnicodeDecodeError traceback."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise yaml.YAMLError(
            f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}): save it as UTF-8"
        ) from None
    return load_yaml_text(text)


_SHARED: dict[tuple[str, bytes], Any] = {}


def load_shared_yaml(path: Path) -> Any:
    """Like `load_yaml`, parsed once per process and content: for read-only reference data
    (baseline, catalogues, indicators). Callers must not modify what they get.

    Ansible imports the project's action plugins in ansible-playbook's own process before it forks
    a worker per host and task; a plugin that loads its data at import leaves it parsed in every
    worker. The key holds a digest of the bytes, so an edited file is parsed again."""
    data = path.read_bytes()
    key = (str(path.resolve()), hashlib.blake2b(data, digest_size=16).digest())
    if key not in _SHARED:
        _SHARED[key] = load_yaml_text(data.decode("utf-8"))
    return _SHARED[key]


def load_data_file(path: Path, what: str) -> Any:
    """A shared data file (`load_shared_yaml`); ConfigError naming `what` and the file when it is
    missing or cannot be parsed, so no traceback reaches the operator."""
    from rebuild.errors import ConfigError

    try:
        return load_shared_yaml(path)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{what} {path}: cannot be read: {exc}") from None
