"""The environment rebuild gives every process it starts (ansible-runner and Ansible, the
verification's pytest): an explicit allow-list, the same for all of them.

ansible-runner records the whole environment of each run in `artifacts/<ident>/command`, and
Ansible hands it to every plugin: an operator's shell full of credentials (ANSIBLE_WINRM_PWD,
AWX_API_KEY, cloud keys, proxy URLs with a password) must not follow. Only the variables named
below pass, each for a stated reason; anything else - including any other ANSIBLE_* setting,
which can carry a password (ANSIBLE_BECOME_PASS, ANSIBLE_NET_PASSWORD, ...) - is dropped.
Credentials reach Ansible through the encrypted store and the `rebuild_secret` lookup only.
"""

from __future__ import annotations

from collections.abc import Mapping

# name -> why a child needs it. None of these ever holds a secret.
ALLOWED: dict[str, str] = {
    # The system
    "PATH": "finds ansible-playbook and the virtualenv's python",
    "HOME": "Ansible's local temp and user collections (~/.ansible)",
    "USER": "Ansible's and getpass's idea of the local user",
    "LOGNAME": "idem, where USER is not set",
    "TMPDIR": "where Python and Ansible put temporary files",
    "TZ": "timestamps in logs and events",
    "LANG": "ansible-core refuses to start without a UTF-8 locale",
    "LC_ALL": "locale (see LANG)",
    "LC_CTYPE": "locale (see LANG)",
    "LC_MESSAGES": "locale (see LANG)",
    "LC_NUMERIC": "locale (see LANG)",
    "LC_TIME": "locale (see LANG)",
    "LC_COLLATE": "locale (see LANG)",
    "PYTHONPATH": "where the rebuild package is found when it is not installed in the virtualenv",
    "PYTHONDONTWRITEBYTECODE": "the verification's pytest leaves no .pyc in the suites",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "the verification's pytest loads rebuild's plugin only",
    # rebuild's own paths (never a secret: the vault key file is named, its content is not passed)
    "REBUILD_STATE_DIR": "the state directory the lookup and action plugins read",
    "REBUILD_VAULT_PASSWORD_FILE": "the vault key file's path, for the rebuild_secret lookup",
    "REBUILD_DATA_DIR": "the project data (sites, tiers, catalogues) the plugins read",
    "REBUILD_RUN_DIR": "where rebuild_verify writes its logs and JUnit XML",
    "REBUILD_VERIFY_SOCKET": "the site run's verification server's socket path (the secret goes over it)",
    # Ansible settings rebuild sets or relies on
    "ANSIBLE_CONFIG": "the project's ansible.cfg (plugin paths, roles, no diffs)",
    "ANSIBLE_FORKS": "one fork per host of the batch",
    "ANSIBLE_INVENTORY_ENABLED": "the batch inventory is YAML: no other inventory plugin is tried",
    "ANSIBLE_COLLECTIONS_PATH": "collections installed from Galaxy outside the default path",
    "ANSIBLE_NOCOLOR": "plain text in the stdout artifact and the per-host logs",
    # Set by ansible-runner for its event callback (ansible_runner/config/_base.py, awx_display)
    "ANSIBLE_STDOUT_CALLBACK": "ansible-runner's awx_display callback (events for the journal)",
    "ORIGINAL_STDOUT_CALLBACK": "the callback awx_display wraps",
    "ANSIBLE_CALLBACK_PLUGINS": "where ansible-runner's callback lives",
    "ANSIBLE_RETRY_FILES_ENABLED": "no .retry files (ansible-runner sets it)",
    "ANSIBLE_HOST_KEY_CHECKING": "ansible-runner's default",
    "ANSIBLE_ROLES_PATH": "ansible-runner's roles_path option",
    "ANSIBLE_CACHE_PLUGIN": "ansible-runner's fact cache option",
    "ANSIBLE_CACHE_PLUGIN_CONNECTION": "ansible-runner's fact cache option",
    "AWX_ISOLATED_DATA_DIR": "where awx_display writes job events",
    "RUNNER_OMIT_EVENTS": "awx_display: keep event data",
    "RUNNER_ONLY_FAILED_EVENTS": "awx_display: keep every event",
}


def child_env(env: Mapping[str, str], **overrides: str) -> dict[str, str]:
    """`env` reduced to the allow-list, then `overrides` (which must be allowed names too)."""
    unknown = sorted(set(overrides) - set(ALLOWED))
    if unknown:  # a programming error: a new variable needs its reason in ALLOWED first
        raise ValueError(f"child_env: {', '.join(unknown)} not in the allow-list")
    kept = {key: value for key, value in env.items() if key in ALLOWED}
    kept.update(overrides)
    return kept
