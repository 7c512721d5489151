"""Ransomware indicators (inventories/data/iocs.yml) as verification reads them."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rebuild.datadir import data_file
from rebuild.errors import ConfigError
from rebuild.yamlfile import load_shared_yaml

IOCS_FILE = "iocs.yml"  # in the data directory (rebuild.datadir)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Indicators:
    note_names: tuple[str, ...]  # may hold * wildcards
    note_folders: tuple[str, ...]
    scheduled_tasks: tuple[str, ...]
    services: tuple[str, ...]
    files: tuple[str, ...]
    file_extensions: tuple[str, ...]
    applications: tuple[str, ...]  # DisplayName prefixes of remote-access tools
    sha256: tuple[str, ...]

    def is_note(self, file_name: str) -> bool:
        """Windows compares names case-insensitively; so do we."""
        low = file_name.casefold()
        return any(fnmatch.fnmatchcase(low, pat.casefold()) for pat in self.note_names)

    def is_encrypted(self, file_name: str) -> bool:
        low = file_name.casefold()
        return any(low.endswith(ext.casefold()) for ext in self.file_extensions)

    def bad_task(self, task_path: str) -> bool:
        leaf = task_path.rstrip("\\").rsplit("\\", 1)[-1].casefold()
        return leaf in {t.casefold() for t in self.scheduled_tasks}

    def bad_service(self, name: str) -> bool:
        return name.casefold() in {s.casefold() for s in self.services}

    def bad_application(self, display_name: str) -> bool:
        low = display_name.casefold()
        return any(low.startswith(a.casefold()) for a in self.applications)


def _names(raw: Mapping[str, Any], key: str, source: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{source}: '{key}' must be a list of non-empty names")
    return tuple(value)


def parse_indicators(raw: Any, source: str = "iocs.yml") -> Indicators:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping at top level")
    notes = raw.get("ransom_notes") or {}
    if not isinstance(notes, Mapping):
        raise ConfigError(f"{source}: 'ransom_notes' must have 'names' and 'folders'")
    hashes: list[str] = []
    for i, entry in enumerate(raw.get("sha256") or [], start=1):
        value = str(entry.get("value", "") if isinstance(entry, Mapping) else entry).lower()
        if not _SHA256.match(value):
            raise ConfigError(f"{source}: sha256[{i}] {value!r} is not 64 hex digits")
        hashes.append(value)
    exts = _names(raw, "file_extensions", source)
    for ext in exts:
        if not ext.startswith("."):
            raise ConfigError(f"{source}: file extension {ext!r} must start with '.'")
    found = Indicators(
        note_names=_names(notes, "names", f"{source}: ransom_notes"),
        note_folders=_names(notes, "folders", f"{source}: ransom_notes"),
        scheduled_tasks=_names(raw, "scheduled_tasks", source),
        services=_names(raw, "services", source),
        files=_names(raw, "files", source),
        file_extensions=exts,
        applications=_names(raw, "applications", source),
        sha256=tuple(hashes),
    )
    if not found.note_names or not found.note_folders:
        raise ConfigError(f"{source}: ransom_notes needs at least one name and one folder")
    return found


def load_indicators(path: Path | None = None) -> Indicators:
    path = path or data_file(IOCS_FILE)
    try:
        raw = load_shared_yaml(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: indicator list not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_indicators(raw, source=str(path))
