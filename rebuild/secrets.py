"""Per-host secrets, encrypted at rest with ansible-vault, never printed.

The store is a directory of vault files, one per host (`<state>/secrets/<HOST>.vault`), so a
crash while one host's secret is written can never damage another's. The key is a vault
password file named by REBUILD_VAULT_PASSWORD_FILE; when unset, one is created (mode 0600)
beside the store on first use — fine for a rehearsal, while a real recovery keeps its key
off the controller's state disk (e.g. on the crisis cell's key holder's medium).
"""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret

from rebuild import atomicfile
from rebuild.errors import ConfigError

KEY_FILE_ENV = "REBUILD_VAULT_PASSWORD_FILE"
STATE_DIR_ENV = "REBUILD_STATE_DIR"
# Windows' complexity rules need every class; exclude characters that break XML or quoting.
_ALPHABET = string.ascii_letters + string.digits + "-_.!#%+=:"


class Redacted(str):
    """A secret value whose repr never shows it (tracebacks, debug prints)."""

    def __repr__(self) -> str:
        return "'***'"


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV, "state"))


def generate_secret(length: int = 24) -> str:
    while True:
        value = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in value)
            and any(c.isupper() for c in value)
            and any(c.isdigit() for c in value)
            and any(not c.isalnum() for c in value)
        ):
            return value


class SecretStore:
    """Encrypted per-host secrets under `<state_dir>/secrets`."""

    def __init__(self, state_dir: Path | None = None, key_file: Path | None = None) -> None:
        self.state_dir = state_dir if state_dir is not None else default_state_dir()
        self.directory = self.state_dir / "secrets"
        env_key = os.environ.get(KEY_FILE_ENV)
        self.key_file = key_file or (Path(env_key) if env_key else self.state_dir / "vault-password")
        self._vault: VaultLib | None = None

    def _lib(self) -> VaultLib:
        if self._vault is None:
            if not self.key_file.exists():
                atomicfile.write_bytes(
                    self.key_file, generate_secret(48).encode(), mode=atomicfile.PRIVATE
                )
            key = self.key_file.read_bytes().strip()
            if not key:
                raise ConfigError(f"vault password file {self.key_file} is empty")
            self._vault = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(key))])
        return self._vault

    def _path(self, host: str, name: str) -> Path:
        if not host or "/" in host or host.startswith("."):
            raise ConfigError(f"invalid host name for the secret store: {host!r}")
        return self.directory / f"{host}.{name}.vault"

    def get(self, host: str, name: str = "local_admin") -> Redacted | None:
        path = self._path(host, name)
        if not path.exists():
            return None
        try:
            return Redacted(self._lib().decrypt(path.read_bytes()).decode())
        except Exception as exc:  # wrong key or damaged file: say which, never the content
            why = type(exc).__name__
            raise ConfigError(f"cannot decrypt secret {name} of {host} ({path}): {why}") from None

    def put(self, host: str, value: str, name: str = "local_admin") -> None:
        sealed = self._lib().encrypt(value.encode())
        atomicfile.write_bytes(self._path(host, name), sealed, mode=atomicfile.PRIVATE)

    def rotate(self, host: str, name: str = "local_admin") -> Redacted:
        """Generate, store and return a new secret for the host."""
        value = generate_secret()
        self.put(host, value, name)
        return Redacted(value)

    def ensure(self, host: str, name: str = "local_admin") -> Redacted:
        """The host's secret, generated on first need."""
        return self.get(host, name) or self.rotate(host, name)
