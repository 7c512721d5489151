"""Lookup plugin: a host's Windows LAPS settings from the policy (inventories/data/laps.yml)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rebuild_laps
short_description: Whether Windows LAPS takes over a host's local administrator, and with which policy
description:
  - For the OS key given as the term (C(rebuild_os)) and I(domain) (C(rebuild_domain)), returns a
    dict C(managed), C(reason) (why not, when not managed), C(policy_root), C(registry_values)
    (REG_DWORD name -> value), C(rotation_timeout_minutes), C(event_log) and C(events)
    (C(ad_updated), C(local_updated), C(ad_update_failed) event ids).
  - The policy is validated as a whole; a wrong entry, or an OS the policy does not name, is an
    error naming the file and the key (rebuild/laps.py).
options:
  _terms:
    description: One OS key of the image catalogue.
    required: true
  domain:
    description: The host's DNS domain after the join; empty when it stays in a workgroup.
    type: str
    default: ""
  service:
    description: The host's service key (tiers.yml); the policy may exempt a service (domain controllers).
    type: str
    default: ""
  policy_file:
    description: The LAPS policy file. Default laps.yml of the project's data (REBUILD_DATA_DIR honoured).
    type: path
"""

EXAMPLES = r"""
- name: Windows LAPS settings of this host
  ansible.builtin.debug:
    msg: >-
      {{ lookup('rebuild_laps', rebuild_os, domain=rebuild_domain | default(''), service=rebuild_service) }}
"""

RETURN = r"""
_list:
  description: One dict per term.
  type: list
  elements: dict
"""


from typing import Any

from rebuild.ansible_lookup import RebuildLookup
from rebuild.laps import host_settings, load_laps_policy


class LookupModule(RebuildLookup):
    NAME = "rebuild_laps"

    def look_up(self, terms: list[str]) -> list[dict[str, Any]]:
        policy = load_laps_policy(self.path_option("policy_file"))
        domain = str(self.get_option("domain") or "")
        service = str(self.get_option("service") or "")
        return [host_settings(policy, term, domain, service) for term in terms]
