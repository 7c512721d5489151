"""Lookup plugin: a per-host secret from rebuild's encrypted store (rebuild.secrets.SecretStore)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rebuild_secret
short_description: Read a per-host secret from rebuild's ansible-vault encrypted store
description:
  - Returns the secret stored for each host named in the terms, decrypted with the vault
    password file of the store. The value is never logged by this plugin; every task that
    uses it must still set C(no_log) where the value could appear in a result.
  - The store is the directory C($REBUILD_STATE_DIR/secrets) (default C(state/secrets)); the key
    is the file named by C($REBUILD_VAULT_PASSWORD_FILE), which must exist, belong to the user and
    be private (mode 0600). This plugin never creates a key (`rebuild site` passes its own).
options:
  _terms:
    description: Inventory host names.
    required: true
  name:
    description: Which secret of the host (C(local_admin) is the account the answer file creates).
    type: str
    default: local_admin
  state_dir:
    description: State directory holding C(secrets/); defaults to C($REBUILD_STATE_DIR) or C(state).
    type: str
  default:
    description:
      - Value returned when the host has no such secret. When not given, a missing secret is an error
        naming the host and the store.
    type: str
"""

EXAMPLES = r"""
- name: Connect with the host's local admin secret (inventory all.vars)
  ansible.builtin.set_fact:
    ansible_password: "{{ lookup('rebuild_secret', inventory_hostname) }}"
  no_log: true

- name: A BMC password that may not exist
  ansible.builtin.set_fact:
    bmc_password: "{{ lookup('rebuild_secret', inventory_hostname, name='bmc_password', default='') }}"
  no_log: true
"""

RETURN = r"""
_list:
  description: One secret per term.
  type: list
  elements: str
"""

import os
from pathlib import Path

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

_MISSING = object()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):  # type: ignore[no-untyped-def]
        from rebuild.errors import RebuildError
        from rebuild.secrets import STATE_DIR_ENV, SecretStore

        default = kwargs.pop("default", _MISSING)
        self.set_options(var_options=variables, direct=kwargs)
        name = self.get_option("name")
        state_dir = self.get_option("state_dir") or os.environ.get(STATE_DIR_ENV) or "state"
        # Remembering: a worker reads the same secret twice per task, and finds those the main
        # process decrypted before forking it (the rebuild_worker_preload vars plugin).
        store = SecretStore(Path(state_dir), remember=True)
        values = []
        for term in terms:
            host = str(term)
            try:
                value = store.get(host, name)
            except RebuildError as exc:
                raise AnsibleError(str(exc)) from None
            if value is None:
                if default is _MISSING:
                    raise AnsibleError(
                        f"rebuild_secret: no {name} secret for host {host} in {store.directory} "
                        "(the orchestrator creates it before a wipe; set REBUILD_STATE_DIR)"
                    )
                value = default
            values.append(str(value))
        return values
