"""Per-host secrets, encrypted at rest with ansible-vault, never printed.

The store is a directory of vault files, one per host (`<state>/secrets/<HOST>.vault`), so a
crash while one host's secret is written can never damage another's. The key is a vault
password file named by REBUILD_VAULT_PASSWORD_FILE, kept off the controller's state disk (e.g. on
the crisis cell's key holder's medium). It must exist - a mistyped path is refused, never
replaced by a new key that would make every stored secret unreadable - and be a regular file
owned by the user running rebuild that neither group nor others may read or write. Only a
rehearsal (lab) may use a key of its own, created beside its throw-away store.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
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

# Secrets a remembering store (SecretStore(remember=True)) decrypted in this process: per secret
# file, a digest of the vault key and the sealed text, and the value. A rotated secret is a new
# sealed text (new salt), so it is decrypted again and replaces the old value; another key never
# finds a value. One entry per file this process read (a batch's hosts), so a large batch never
# evicts the secrets it is using. Each decryption is a PBKDF2 key derivation (ansible-vault format
# 1.1); Ansible's main process decrypts its batch's host secrets before it forks a task's worker
# (the rebuild_worker_preload vars plugin), and the worker inherits them (fork, copy-on-write).
_REMEMBERED: dict[Path, tuple[bytes, str]] = {}


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


# Shown whenever the key is missing or unusable: how an operator makes a proper one (README).
KEY_HOWTO = (
    "create one with `(umask 077 && head -c 48 /dev/urandom | base64 > /path/rebuild-vault.key)` "
    f"and export {KEY_FILE_ENV}=/path/rebuild-vault.key"
)


def check_key_file(path: Path) -> Path:
    """`path` if it can be the vault key: an existing regular file, owned by the current user,
    that neither group nor others can read or write. Else a ConfigError naming the problem."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"vault key {path} ({KEY_FILE_ENV}): no such file; {KEY_HOWTO}") from None
    except OSError as exc:
        raise ConfigError(f"vault key {path} ({KEY_FILE_ENV}): cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"vault key {path} ({KEY_FILE_ENV}): not a regular file")
    if info.st_uid != os.getuid():
        raise ConfigError(
            f"vault key {path} ({KEY_FILE_ENV}): owned by uid {info.st_uid}, not by the user running "
            f"rebuild (uid {os.getuid()}); the key must be yours alone"
        )
    if info.st_mode & 0o077:
        raise ConfigError(
            f"vault key {path} ({KEY_FILE_ENV}): mode {stat.S_IMODE(info.st_mode):04o} lets group or others "
            f"read or write it; make it private with `chmod 600 {path}`"
        )
    return path


def create_key_file(path: Path) -> Path:
    """A new random vault key at `path` (mode 0600) unless one is there. Rehearsals only: a real
    recovery's key is made by the operator (KEY_HOWTO) and kept off the state disk."""
    if not path.exists():
        atomicfile.write_bytes(path, generate_secret(48).encode(), mode=atomicfile.PRIVATE)
    return check_key_file(path)


class SecretStore:
    """Encrypted per-host secrets under `<state_dir>/secrets`."""

    def __init__(
        self,
        state_dir: Path | None = None,
        key_file: Path | None = None,
        *,
        rehearsal: bool = False,
        remember: bool = False,
    ) -> None:
        """The key is `key_file`, else $REBUILD_VAULT_PASSWORD_FILE; a rehearsal without either
        uses (and creates on first need) `<state_dir>/vault-password`. `remember`: decrypt each
        sealed secret once per process (the rebuild_secret lookup in Ansible's workers)."""
        self.state_dir = state_dir if state_dir is not None else default_state_dir()
        self.directory = self.state_dir / "secrets"
        env_key = os.environ.get(KEY_FILE_ENV)
        self._key_file = key_file or (Path(env_key) if env_key else None)
        self._create_key = rehearsal and self._key_file is None
        if self._create_key:
            self._key_file = self.state_dir / "vault-password"
        self._vault: VaultLib | None = None
        self._key_digest = b""
        self._remember = remember
        self._listing: dict[str, list[str]] | None = None

    def key_path(self) -> Path | None:
        """The key file's path (not checked), or None when none is configured."""
        return self._key_file

    @property
    def key_file(self) -> Path:
        if self._key_file is None:
            raise ConfigError(
                f"{KEY_FILE_ENV} is not set: rebuild needs the vault key that encrypts its secret store "
                f"({self.directory}); {KEY_HOWTO}"
            )
        return self._key_file

    def check_key(self) -> Path:
        """The usable key file (created first in a rehearsal), or a ConfigError saying what is wrong."""
        return create_key_file(self.key_file) if self._create_key else check_key_file(self.key_file)

    def check_opens(self) -> None:
        """The key is usable and decrypts the store (one of its files, if it has any): a wrong key
        is found before a run starts, not at its first secret."""
        self._lib()
        for path in sorted(self.directory.glob("*.vault"))[:1]:
            host, name = path.name.split(".")[:2]
            self.get(host, name)

    def _lib(self) -> VaultLib:
        if self._vault is None:
            key = self.check_key().read_bytes().strip()
            if not key:
                raise ConfigError(f"vault key {self.key_file} ({KEY_FILE_ENV}) is empty; {KEY_HOWTO}")
            self._vault = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(key))])
            self._key_digest = hashlib.sha256(key).digest()
        return self._vault

    def _path(self, host: str, name: str) -> Path:
        if not host or "/" in host or host.startswith("."):
            raise ConfigError(f"invalid host name for the secret store: {host!r}")
        return self.directory / f"{host}.{name}.vault"

    def get(self, host: str, name: str = "local_admin") -> Redacted | None:
        path = self._path(host, name)
        if not path.exists():
            return None
        vault = self._lib()  # a missing or unsafe key says so itself
        try:
            sealed = path.read_bytes()
            if not self._remember:
                return Redacted(vault.decrypt(sealed).decode())
            seen = hashlib.sha256(self._key_digest + sealed).digest()
            remembered = _REMEMBERED.get(path)
            if remembered is None or remembered[0] != seen:
                remembered = _REMEMBERED[path] = (seen, vault.decrypt(sealed).decode())
            return Redacted(remembered[1])
        except Exception as exc:  # wrong key or damaged file: say which, never the content
            raise ConfigError(
                f"cannot decrypt secret {name} of {host} ({path}) with the vault key {self.key_file}: "
                f"wrong key or damaged file ({type(exc).__name__})"
            ) from None

    def preload(self, host: str) -> int:
        """Decrypt every secret of `host` into this process's memory (a remembering store), so that
        processes forked afterwards read them without a key derivation: Ansible's main process,
        before it forks a task's workers. Returns how many are remembered. Best effort: a secret
        that cannot be read now is left to the read that needs it, which names what is wrong."""
        if not self._remember:
            raise ValueError("preload needs a remembering store (remember=True)")
        count = 0
        for name in self._names().get(host, ()):
            try:
                count += self.get(host, name) is not None
            except ConfigError:
                continue
        return count

    def _names(self) -> dict[str, list[str]]:
        """The store's secret names per host, listed once per store (secrets are created before a
        batch starts; one made later is simply not preloaded)."""
        if self._listing is None:
            self._listing = {}
            try:
                files = sorted(os.listdir(self.directory))
            except OSError:
                files = []
            for file in files:  # <host>.<name>.vault; a host name may hold dots, a name never
                host, _, name = file.removesuffix(".vault").rpartition(".")
                if file.endswith(".vault") and host and name:
                    self._listing.setdefault(host, []).append(name)
        return self._listing

    def put(self, host: str, value: str, name: str = "local_admin") -> None:
        sealed = self._lib().encrypt(value.encode())
        atomicfile.write_bytes(self._path(host, name), sealed, mode=atomicfile.PRIVATE)

    def delete(self, host: str, name: str = "local_admin") -> bool:
        """Remove the host's secret for good (atomicfile.remove: gone or whole, never half).
        False when there was none. Needs no key: nothing is decrypted."""
        return atomicfile.remove(self._path(host, name))

    def rotate(self, host: str, name: str = "local_admin") -> Redacted:
        """Generate, store and return a new secret for the host."""
        value = generate_secret()
        self.put(host, value, name)
        return Redacted(value)

    def ensure(self, host: str, name: str = "local_admin") -> Redacted:
        """The host's secret, generated on first need."""
        return self.get(host, name) or self.rotate(host, name)
