"""Lookup plugin: a host's BitLocker settings from the policy (inventories/data/bitlocker.yml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

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


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):  # type: ignore[no-untyped-def]
        from rebuild.bitlocker import load_bitlocker_policy, redeploy_settings
        from rebuild.errors import RebuildError

        self.set_options(var_options=variables, direct=kwargs)
        data_dir = self.get_option("data_dir")
        service = str(self.get_option("service"))
        try:
            policy = load_bitlocker_policy(Path(data_dir) if data_dir else None)
            entries: list[dict[str, Any]] = [redeploy_settings(policy, str(t), service) for t in terms]
        except RebuildError as exc:
            raise AnsibleError(f"rebuild_bitlocker: {exc}") from None
        return entries
