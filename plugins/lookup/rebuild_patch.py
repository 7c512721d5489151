"""Lookup plugin: a host's entry of the patch catalogue (inventories/data/patch_levels.yml)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rebuild_patch
short_description: The patch catalogue's minimum level and update source for an OS key
description:
  - Returns, for each term (a register OS key, C(rebuild_os)), a dict C(build), C(minimum_ubr),
    C(source) (offline | wsus), C(wsus_server), C(repository), C(update_timeout_minutes) and
    C(packages) (list of C(kb), C(url), C(sha256), C(ubr), in the order they are applied).
  - With I(ubr), C(packages) holds only those a host at that UBR still needs.
  - The catalogue is validated as a whole; a wrong entry or an unknown OS key is an error naming the
    file, the entry and what is wrong (rebuild/patch.py).
options:
  _terms:
    description: OS keys.
    required: true
  ubr:
    description: The host's current UBR; only the packages above it are returned. -1 returns all.
    type: int
    default: -1
  catalogue:
    description: Path of the patch catalogue. Default the project's (REBUILD_DATA_DIR honoured).
    type: path
"""

EXAMPLES = r"""
- name: Packages a host at UBR 2700 still needs
  ansible.builtin.debug:
    msg: "{{ lookup('rebuild_patch', rebuild_os, ubr=2700).packages }}"
"""

RETURN = r"""
_list:
  description: One dict per term.
  type: list
  elements: dict
"""


from pathlib import Path
from typing import Any

from rebuild.ansible_lookup import RebuildLookup
from rebuild.patch import load_patch_catalogue


class LookupModule(RebuildLookup):
    NAME = "rebuild_patch"

    def look_up(self, terms: list[str]) -> list[dict[str, Any]]:
        catalogue = load_patch_catalogue(self.path_option("catalogue"))
        ubr = int(self.get_option("ubr"))
        entries: list[dict[str, Any]] = []
        for term in terms:
            level = catalogue.for_os(term)
            packages = level.missing_packages(ubr) if ubr >= 0 else list(level.packages)
            entries.append(
                {
                    "build": level.build,
                    "minimum_ubr": level.minimum_ubr,
                    "source": level.source,
                    "wsus_server": level.wsus_server,
                    "repository": catalogue.repository,
                    "update_timeout_minutes": catalogue.update_timeout_minutes,
                    "packages": [
                        {
                            "kb": p.kb,
                            "url": f"{catalogue.repository.rstrip('/')}/{p.file}",
                            "file": Path(p.file).name,
                            "sha256": p.sha256,
                            "ubr": p.ubr,
                        }
                        for p in packages
                    ],
                }
            )
        return entries
