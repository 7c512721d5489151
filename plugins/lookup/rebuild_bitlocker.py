"""Lookup plugin: a host's BitLocker settings from the policy (inventories/data/bitlocker.yml)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rebuild_bitlocker
short_description: Whether a host's OS volume must be BitLocker-encrypted, and how
description:
  - For the host kind given as the term (C(rebuild_kind)) and I(service) (C(rebuild_service)),
    returns a dict C(required), C(reason) (why not, when not required), C(encryption_method),
    C(used_space_only) and C(encryption_timeout_minutes).
  - The policy is validated as a whole; a wrong entry is an error naming the file and the key
    (rebuild/bitlocker.py).
options:
  _terms:
    description: One host kind (server | workstation).
    required: true
  service:
    description: The host's service key (tiers.yml).
    type: str
    required: true
  data_dir:
    description: Folder of bitlocker.yml and tiers.yml. Default the project's (REBUILD_DATA_DIR honoured).
    type: path
"""

EXAMPLES = r"""
- name: BitLocker settings of this host
  ansible.builtin.debug:
    msg: "{{ lookup('rebuild_bitlocker', rebuild_kind, service=rebuild_service) }}"
"""

RETURN = r"""
_list:
  description: One dict per term.
  type: list
  elements: dict
"""


from typing import Any

from rebuild.ansible_lookup import RebuildLookup
from rebuild.bitlocker import load_bitlocker_policy, redeploy_settings


class LookupModule(RebuildLookup):
    NAME = "rebuild_bitlocker"

    def look_up(self, terms: list[str]) -> list[dict[str, Any]]:
        policy = load_bitlocker_policy(self.path_option("data_dir"))
        service = str(self.get_option("service"))
        return [redeploy_settings(policy, term, service) for term in terms]
