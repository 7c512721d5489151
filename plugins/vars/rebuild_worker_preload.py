"""Vars plugin: do once, in ansible-playbook's main process, what every task worker would redo.

Ansible runs each task for each host in a worker process forked from its main process just
then; the worker inherits the main process's memory (fork, copy-on-write) and throws away what
it loaded or computed when the task ends. Two things every worker did on its own:
- decrypt its host's connection password (`lookup('rebuild_secret', inventory_hostname)`,
  inventories/data/connection.yml): an ansible-vault PBKDF2 key derivation per task;
- load the `rebuild_secret` lookup and Jinja's filter and test plugins (executing their Python
  modules and reading their documentation) for the templates it renders.
The strategy asks the vars plugins for a host's variables in the main process just before it
forks that host's worker (VariableManager.get_vars), so this plugin does both there: the plugins
once per process, the host's secrets (and its site's) into rebuild.secrets' per-process memory.
The secrets stay in memory: this plugin returns no variables, writes nothing and logs nothing.
A rotated secret is a new sealed text, decrypted again at the host's next task.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: rebuild_worker_preload
short_description: Host secrets decrypted and Jinja plugins loaded once, before task workers fork
description:
  - Returns no variables. Runs in the process that asks for variables, which for tasks is
    ansible-playbook's main process just before it forks the task's worker, so the worker
    inherits what was prepared here instead of doing it again.
  - On its first call in a process, loads the C(rebuild_secret) lookup and every Jinja filter and
    test plugin Ansible finds.
  - For each inventory host Ansible asks about, decrypts the host's secrets and those of its site
    (store entry C(site-<rebuild_site>), when the host variable C(rebuild_site) is a plain name)
    in rebuild's encrypted store (the store and key the C(rebuild_secret) lookup uses by default,
    C($REBUILD_STATE_DIR/secrets) and C($REBUILD_VAULT_PASSWORD_FILE)) and keeps them in the
    memory of this process only.
  - Best effort and silent. Without a store or key, or with a secret that cannot be decrypted, it
    does nothing, and the C(rebuild_secret) lookup that needs the secret reports the problem.
  - Enabled in the project's C(ansible.cfg) (C(vars_plugins_enabled)); runs in the default
    C(demand) stage (when tasks ask for variables).
# Options, if only the shared `stage` one: Ansible records a plugin's configuration definition only
# when its documentation declares options, and re-parses the DOCUMENTATION of one that declares none
# at every vars_loader.get() (PluginLoader._load_config_defs), i.e. at every task and host: 13 %
# of ansible-playbook's main-process CPU in a 5-host batch (py-spy), before this.
extends_documentation_fragment:
  - vars_plugin_staging
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
            store = self._prepared_store()
            for host in hosts:
                store.preload(host.name)
                # Its site's shared secrets (entry site-<rebuild_site>: image share, domain join),
                # when the inventory names the site plainly (not a template).
                site = host.vars.get("rebuild_site")
                if isinstance(site, str) and site and "{" not in site:
                    store.preload(f"site-{site}")
        return {}

    def _prepared_store(self) -> Any:
        """The secret store, after loading once the plugins every task's templates use."""
        if self._store is None:
            from ansible.plugins.loader import filter_loader, lookup_loader, test_loader

            from rebuild.secrets import STATE_DIR_ENV, SecretStore

            lookup_loader.get("rebuild_secret")
            for plugin_loader in (filter_loader, test_loader):
                for _ in plugin_loader.all():  # imports each plugin file into the loader's cache
                    pass
            # The rebuild_secret lookup's defaults: the same store, key and per-process memory.
            self._store = SecretStore(Path(os.environ.get(STATE_DIR_ENV) or "state"), remember=True)
        return self._store
