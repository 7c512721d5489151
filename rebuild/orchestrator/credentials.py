"""Secrets around a site run: imported from the operator's environment, rotated before a wipe.

Ansible reads secrets only through the rebuild_secret lookup; the launcher strips credentials
from its environment (rebuild.launcher.child_env).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret

from rebuild.errors import ConfigError
from rebuild.launcher import NodeSecrets
from rebuild.orchestrator.resume import HostWork
from rebuild.secrets import SecretStore, generate_secret
from rebuild.sites import Site

# Credentials an operator may give through the environment; imported into the encrypted store
# (entry `site-<site>`) at the start of a run. Ansible never sees them in its environment
# (rebuild.childenv): its roles read them from the store with the rebuild_secret lookup.
ENV_CREDENTIALS = {
    "REBUILD_BMC_USER": "bmc_user",
    "REBUILD_BMC_PASSWORD": "bmc_password",
    "REBUILD_HYPERVISOR_TOKEN": "hypervisor_token",
    "REBUILD_DOMAIN_JOIN_USER": "domain_join_user",
    "REBUILD_DOMAIN_JOIN_PASSWORD": "domain_join_password",
    # Read-only account of the image share (Setup's InstallFrom/Credentials): guest access is refused.
    "REBUILD_IMAGE_SHARE_USER": "image_share_user",
    "REBUILD_IMAGE_SHARE_PASSWORD": "image_share_password",
}
# The redeploy role joins a host to the site's domain with these (roles/redeploy/defaults).
DOMAIN_JOIN_SECRETS = ("domain_join_user", "domain_join_password")


def import_env_credentials(store: SecretStore, site: str, env: Mapping[str, str]) -> None:
    """Site-wide credentials from the environment into the store entry `site-<site>`."""
    for var, name in ENV_CREDENTIALS.items():
        value = env.get(var)
        if value:
            store.put(f"site-{site}", value, name)


def rotate_before_wipe(store: SecretStore, host: str) -> None:
    """A new local admin secret before the wipe; the pre-incident one is kept once, apart."""
    current = store.get(host)
    if current is not None and store.get(host, "local_admin_previous") is None:
        store.put(host, current, "local_admin_previous")
    store.rotate(host)
    # The built-in Administrator's password in the answer file (Server OOBE needs one).
    store.rotate(host, "builtin_admin")
    # The answer file's one-time local admin secret, replaced over WinRM at first contact.
    store.rotate(host, "local_admin_bootstrap")


def check_domain_join(
    store: SecretStore, site: Site, work: Mapping[str, HostWork], *, dry_run: bool, env: Mapping[str, str]
) -> None:
    """Hosts that will join the site's domain after their wipe need the join credential now:
    found out after the wipe, the host would stay unjoined, out of service."""
    if dry_run or not site.domain:
        return
    joining = sorted(name for name, w in work.items() if "redeploy" in w.phases)
    if not joining:
        return
    entry = f"site-{site.name}"
    missing = [
        f"{name} (or {var})"
        for var, name in ENV_CREDENTIALS.items()
        if name in DOMAIN_JOIN_SECRETS and not env.get(var) and store.get(entry, name) is None
    ]
    if missing:
        shown = ", ".join(joining[:5]) + (f" and {len(joining) - 5} more" if len(joining) > 5 else "")
        raise ConfigError(
            f"site {site.name}: {len(joining)} host(s) join domain {site.domain} after "
            f"their wipe ({shown}) but the secret store {store.directory} has no "
            f"{' and no '.join(missing)} in entry {entry}; give the join account as "
            "REBUILD_DOMAIN_JOIN_USER and REBUILD_DOMAIN_JOIN_PASSWORD (imported into the store "
            "at the start of the run). Nothing was wiped."
        )


def batch_secrets(store: SecretStore, entries: Iterable[str]) -> NodeSecrets:
    """What a batch on an execution node may read: every secret of `entries` (its hosts and its
    site), re-sealed with a new key of its own, in the store's file form. The controller's store
    and key never leave the controller; the node's copy lives as long as the batch."""
    key = generate_secret(48)
    sealer = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(key.encode()))])
    wanted = set(entries)
    files: dict[str, str] = {}
    for path in sorted(store.directory.glob("*.vault")):
        entry, name = path.name.split(".")[:2]
        value = store.get(entry, name) if entry in wanted else None
        if value is not None:
            files[path.name] = sealer.encrypt(value.encode()).decode()
    return NodeSecrets(key=key, files=files)
