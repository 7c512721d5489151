"""The application catalogue: what each host gets in redeploy and what verify expects.

Loaded from inventories/data/applications.yml. Validation is strict and names the entry
at fault, because a typo here would install the wrong thing on a whole service.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from rebuild.datadir import default_data_dir
from rebuild.errors import ConfigError
from rebuild.yamlfile import load_shared_yaml, load_yaml

CATALOGUE_FILE = "applications.yml"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
KINDS = ("server", "workstation")
INSTALLER_TYPES = ("msi", "exe")
CERT_STORES = ("Root", "CA", "My", "TrustedPublisher")


@dataclass(frozen=True)
class Application:
    id: str
    name: str  # DisplayName under the Uninstall keys
    version: str  # DisplayVersion, pinned
    installer: str  # relative to the catalogue's repository
    type: str  # msi | exe
    arguments: str
    sha256: str


@dataclass(frozen=True)
class Certificate:
    id: str
    name: str
    version: str
    file: str
    store: str
    sha256: str
    thumbprint: str  # SHA-1 of the DER file, lower case


@dataclass(frozen=True)
class Printer:
    site: str
    room: str
    name: str
    driver: str
    port: str


@dataclass(frozen=True)
class Rule:
    name: str
    kinds: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    certificates: tuple[str, ...] = ()

    def matches(self, kind: str, service: str) -> bool:
        return (not self.kinds or kind in self.kinds) and (not self.services or service in self.services)


@dataclass(frozen=True)
class HostDeployment:
    """Everything one host receives, in install order (dependencies are not modelled)."""

    applications: tuple[Application, ...]
    certificates: tuple[Certificate, ...]
    printers: tuple[Printer, ...]

    def module_args(self, repository: str) -> dict[str, Any]:
        """Arguments of one win_rebuild_apps call for this host."""
        return {
            "repository": repository,
            "applications": [
                {
                    "id": a.id,
                    "name": a.name,
                    "version": a.version,
                    "installer": a.installer,
                    "type": a.type,
                    "arguments": a.arguments,
                    "sha256": a.sha256,
                }
                for a in self.applications
            ],
            "certificates": [
                {
                    "id": c.id,
                    "name": c.name,
                    "file": c.file,
                    "store": c.store,
                    "sha256": c.sha256,
                    "thumbprint": c.thumbprint,
                }
                for c in self.certificates
            ],
            "printers": [{"name": p.name, "driver": p.driver, "port": p.port} for p in self.printers],
        }


@dataclass(frozen=True)
class Catalogue:
    repository: str
    applications: dict[str, Application]
    certificates: dict[str, Certificate]
    rules: tuple[Rule, ...]
    printers: dict[str, tuple[Printer, ...]] = field(default_factory=dict)
    source: str = CATALOGUE_FILE

    @cached_property
    def _ids_by_name(self) -> dict[str, str]:
        return {a.name.casefold(): a.id for a in self.applications.values()}

    def application_id(self, wanted: str) -> str | None:
        """The id of the application a register names by id or DisplayName (any case), or None.

        The register is checked with this when it is validated, and redeploy resolves with it:
        one rule, so what validation accepted is what gets installed.
        """
        key = wanted.strip()
        return key if key in self.applications else self._ids_by_name.get(key.casefold())

    def for_host(
        self,
        *,
        hostname: str,
        kind: str,
        service: str,
        site: str = "",
        location: str = "",
        extra: Sequence[str] = (),
    ) -> HostDeployment:
        """What `hostname` gets: every matching rule, plus register-named applications.

        `extra` are the register's applications for the host; each must be a catalogue id
        or DisplayName (case-insensitive) — an unknown one is an error naming the host,
        since installing "something like it" is not an option in a clinical setting.
        """
        if kind not in KINDS:
            raise ConfigError(f"host {hostname}: kind {kind!r} is not one of {', '.join(KINDS)}")
        app_ids: list[str] = []
        cert_ids: list[str] = []
        for rule in self.rules:
            if rule.matches(kind, service):
                app_ids += [a for a in rule.applications if a not in app_ids]
                cert_ids += [c for c in rule.certificates if c not in cert_ids]
        for wanted in extra:
            if not wanted.strip():
                continue
            app_id = self.application_id(wanted)
            if app_id is None:
                raise ConfigError(
                    f"host {hostname}: application {wanted!r} from the register is not in "
                    f"{self.source} (known: {', '.join(sorted(self.applications))})"
                )
            if app_id not in app_ids:
                app_ids.append(app_id)
        room = location.casefold()
        printers = tuple(
            p for p in self.printers.get(site, ()) if room and room.startswith(p.room.casefold())
        )
        return HostDeployment(
            applications=tuple(self.applications[a] for a in app_ids),
            certificates=tuple(self.certificates[c] for c in cert_ids),
            printers=printers,
        )


def _require(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if value is None or (isinstance(value, str) and not value.strip() and key != "arguments"):
        raise ConfigError(f"{where}: missing '{key}'")
    if not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: '{key}' must be a string, got {type(value).__name__}")
    return str(value)


def _strings(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: '{key}' must be a list of names")
    return tuple(value)


def repository_problem(repository: Any) -> str | None:
    """Why a repository root cannot serve the redeploy phase, or None.

    Only https:// URLs. The module runs inside a WinRM session authenticated by NTLM, which
    carries no credentials for a second hop: a UNC share answers Access denied (Microsoft
    Learn, "Making the second hop in PowerShell Remoting"). An HTTPS package source works
    the same before and after the domain join; every file is checked by SHA-256 on the host.
    """
    if (
        isinstance(repository, str)
        and repository.startswith("https://")
        and len(repository) > len("https://")
    ):
        return None
    if isinstance(repository, str) and repository.startswith("\\\\"):
        return (
            f"{repository!r} is a UNC share: the WinRM session (NTLM) has no network credentials "
            "for it (double hop, Access denied); serve the installers over https:// instead"
        )
    return f"must be an https:// URL (got {repository!r})"


def parse_catalogue(raw: Any, source: str = CATALOGUE_FILE, known_services: Iterable[str] = ()) -> Catalogue:
    """Validate a loaded YAML document. Every problem names the entry and the field."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping at top level")
    repository = raw.get("repository")
    problem = repository_problem(repository)
    if problem or not isinstance(repository, str):
        raise ConfigError(f"{source}: 'repository' {problem}")

    apps: dict[str, Application] = {}
    for app_id, entry in (raw.get("applications") or {}).items():
        where = f"{source}: applications.{app_id}"
        if not _ID.match(str(app_id)) or not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: id must be lower-case [a-z0-9-] and the entry a mapping")
        sha = _require(entry, "sha256", where).lower()
        if not _SHA256.match(sha):
            raise ConfigError(f"{where}: sha256 {sha!r} is not 64 hex digits")
        kind = _require(entry, "type", where)
        if kind not in INSTALLER_TYPES:
            raise ConfigError(f"{where}: type {kind!r} is not one of {', '.join(INSTALLER_TYPES)}")
        installer = _require(entry, "installer", where)
        if ".." in installer.replace("\\", "/").split("/") or installer.startswith(("/", "\\")):
            raise ConfigError(f"{where}: installer {installer!r} must be relative to the repository")
        apps[app_id] = Application(
            id=app_id,
            name=_require(entry, "name", where),
            version=_require(entry, "version", where),
            installer=installer,
            type=kind,
            arguments=str(entry.get("arguments") or ""),
            sha256=sha,
        )
    if not apps:
        raise ConfigError(f"{source}: no applications")

    certs: dict[str, Certificate] = {}
    for cert_id, entry in (raw.get("certificates") or {}).items():
        where = f"{source}: certificates.{cert_id}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: must be a mapping")
        sha = _require(entry, "sha256", where).lower()
        thumb = _require(entry, "thumbprint", where).lower()
        if not _SHA256.match(sha):
            raise ConfigError(f"{where}: sha256 {sha!r} is not 64 hex digits")
        if not _SHA1.match(thumb):
            raise ConfigError(f"{where}: thumbprint {thumb!r} is not 40 hex digits")
        store = _require(entry, "store", where)
        if store not in CERT_STORES:
            raise ConfigError(f"{where}: store {store!r} is not one of {', '.join(CERT_STORES)}")
        certs[cert_id] = Certificate(
            id=cert_id,
            name=_require(entry, "name", where),
            version=_require(entry, "version", where),
            file=_require(entry, "file", where),
            store=store,
            sha256=sha,
            thumbprint=thumb,
        )

    services = set(known_services)
    rules: list[Rule] = []
    for i, entry in enumerate(raw.get("rules") or [], start=1):
        where = f"{source}: rules[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: must be a mapping")
        rule = Rule(
            name=str(entry.get("name") or f"rule {i}"),
            kinds=_strings(entry, "kinds", where),
            services=_strings(entry, "services", where),
            applications=_strings(entry, "applications", where),
            certificates=_strings(entry, "certificates", where),
        )
        where = f"{source}: rule '{rule.name}'"
        for k in rule.kinds:
            if k not in KINDS:
                raise ConfigError(f"{where}: kind {k!r} is not one of {', '.join(KINDS)}")
        for s in rule.services:
            if services and s not in services:
                raise ConfigError(f"{where}: service {s!r} is not a service key of tiers.yml")
        for a in rule.applications:
            if a not in apps:
                raise ConfigError(f"{where}: application {a!r} is not in the catalogue")
        for c in rule.certificates:
            if c not in certs:
                raise ConfigError(f"{where}: certificate {c!r} is not in the catalogue")
        rules.append(rule)

    printers: dict[str, tuple[Printer, ...]] = {}
    for site, entries in (raw.get("printers") or {}).items():
        found: list[Printer] = []
        for i, entry in enumerate(entries or [], start=1):
            where = f"{source}: printers.{site}[{i}]"
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{where}: must be a mapping")
            found.append(
                Printer(
                    site=str(site),
                    room=_require(entry, "room", where),
                    name=_require(entry, "name", where),
                    driver=_require(entry, "driver", where),
                    port=_require(entry, "port", where),
                )
            )
        printers[str(site)] = tuple(found)

    return Catalogue(
        repository=repository,
        applications=apps,
        certificates=certs,
        rules=tuple(rules),
        printers=printers,
        source=source,
    )


def _service_keys(data_dir: Path) -> list[str]:
    tiers_file = data_dir / "tiers.yml"
    if not tiers_file.exists():
        return []
    raw = load_yaml(tiers_file) or {}
    return [key for tier in raw.get("tiers", []) for key in (tier.get("services") or {})]


def load_catalogue(path: Path | None = None, data_dir: Path | None = None) -> Catalogue:
    """Load and validate the catalogue (default: inventories/data/applications.yml)."""
    data_dir = data_dir or default_data_dir()
    path = path or data_dir / CATALOGUE_FILE
    try:
        raw = load_shared_yaml(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: application catalogue not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_catalogue(raw, source=str(path), known_services=_service_keys(data_dir))
