"""Vars plugin: decrypt a batch's host secrets once, in ansible-playbook's main process.

Every task templates its host's connection password (`lookup('rebuild_secret', inventory_hostname)`,
inventories/data/connection.yml) in a worker process forked for that task and host; a decryption
there is a PBKDF2 key derivation per task. The strategy asks the vars plugins for a host's
variables in the main process just before it forks the host's worker (VariableManager.get_vars),
so this plugin decrypts the host's secrets into rebuild.secrets' per-process memory then; the
worker inherits them (fork) and the lookup finds them. The secrets stay in memory: this plugin
returns no variables, writes nothing and logs nothing. A rotated secret is a new sealed text,
decrypted again at the next task.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: rebuild_secret_preload
short_description: Decrypt each host's rebuild secrets once, before Ansible forks its task workers
description:
  - Returns no variables. For each inventory host Ansible asks about, decrypts the host's secrets
    and those of its site (store entry C(site-<rebuild_site>), when the host variable
    C(rebuild_site) is a plain name) in rebuild's encrypted store (the store and key the
    C(rebuild_secret) lookup uses by default,
    C($REBUILD_STATE_DIR/secrets) and C($REBUILD_VAULT_PASSWORD_FILE)) and keeps them in the
    memory of this process only, so that task workers forked afterwards read them without an
    ansible-vault key derivation each.
  - Best effort and silent. Without a store or key, or with a secret that cannot be decrypted, it
    does nothing, and the C(rebuild_secret) lookup that needs the secret reports the problem.
  - Enabled in the project's C(ansible.cfg) (C(vars_plugins_enabled)); runs when tasks ask for
    variables (the default C(demand) stage), in the process that asks.
"""

import os
from pathlib import Path
from typing import Any

from ansible.inventory.host import Host
from ansible.plugins.vars import BaseVarsPlugin


class VarsModule(BaseVarsPlugin):
    REQUIRES_ENABLED = True  # only where ansible.cfg names it

    def __init__(self) -> None:
        super().__init__()
        self._store: Any = None

    def get_vars(self, loader: Any, path: str, entities: Any, cache: bool = True) -> dict[str, Any]:
        hosts = [entity for entity in entities if isinstance(entity, Host)]
        if hosts:
            store = self._secret_store()
            for host in hosts:
                store.preload(host.name)
                # Its site's shared secrets (entry site-<rebuild_site>: image share, domain join),
                # when the inventory names the site plainly (not a template).
                site = host.vars.get("rebuild_site")
                if isinstance(site, str) and site and "{" not in site:
                    store.preload(f"site-{site}")
        return {}

    def _secret_store(self) -> Any:
        if self._store is None:
            from rebuild.secrets import STATE_DIR_ENV, SecretStore

            # The rebuild_secret lookup's defaults: the same store, key and per-process memory.
            state_dir = Path(os.environ.get(STATE_DIR_ENV) or "state")
            self._store = SecretStore(state_dir, remember=True)
        return self._store
