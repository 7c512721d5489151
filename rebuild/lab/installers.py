"""The lab's installer repository: SIMULATED stand-ins for the catalogue's installers.

A real hospital keeps vendor installers on a deployment share; the lab keeps one small
deterministic file per catalogue entry under `<lab_dir>/installers/<relative path>`.
The content is fixed by (id, version), so the product catalogue's SHA-256 can be checked
against it exactly as on Windows: a file changed afterwards (tampering) no longer matches
and win_rebuild_apps.ps1, run by the evaluator, refuses to run it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING

from rebuild.lab.state import Service, TwinState

if TYPE_CHECKING:
    from rebuild.applications import Catalogue

SIMULATED_BANNER = "SIMULATED installer - lab rehearsal only, not software"


_CATALOGUE: dict[tuple[str, bytes], Catalogue] = {}


def catalogue() -> Catalogue:
    """The product's application catalogue (`rebuild.applications.load_catalogue`), the same
    object until applications.yml or tiers.yml changes: the lab reads it on every download from
    the share and every installer run, and parsing and validating it each time was a tenth of
    a module run. Keyed by a digest of both files' bytes, so an edited catalogue is read anew."""
    from rebuild.applications import CATALOGUE_FILE, load_catalogue
    from rebuild.datadir import default_data_dir

    data_dir = default_data_dir()
    digest = hashlib.blake2b(digest_size=16)
    for name in (CATALOGUE_FILE, "tiers.yml"):  # what load_catalogue reads
        try:
            digest.update((data_dir / name).read_bytes())
        except FileNotFoundError:
            digest.update(b"\0missing:" + name.encode())
        digest.update(b"\0")
    key = (str(data_dir), digest.digest())
    found = _CATALOGUE.get(key)
    if found is None:
        found = load_catalogue()  # a missing or invalid catalogue fails as it always did
        _CATALOGUE.clear()
        _CATALOGUE[key] = found
    return found


def simulated_content(entry_id: str, version: str) -> bytes:
    """The bytes the lab serves for one catalogue entry (installer, certificate...)."""
    return f"{SIMULATED_BANNER}\nid={entry_id}\nversion={version}\n".encode()


def simulated_sha256(entry_id: str, version: str) -> str:
    return hashlib.sha256(simulated_content(entry_id, version)).hexdigest()


# The fictional Harfang EDR agent's MSI (SIMULATED; vendor and product invented for the lab): it
# installs its sensor service and onboards the sensor to the tenant it was given, writing the
# onboarding state under its Status key (1 = onboarded), as Defender for Endpoint writes
# OnboardingState under ...\Windows Advanced Threat Protection\Status. The lab fault
# `edr_not_onboarded` is an install whose onboarding did not complete (state 0, sensor stopped).
EDR_SENSOR_SERVICE = ("HarfangSensor", "Harfang EDR Sensor")
EDR_STATUS_KEY = "HKLM:\\SOFTWARE\\Harfang\\EDR\\Status"
EDR_AGENT_ID = "edr-agent"


def edr_install_effects(state: TwinState, onboarded: bool) -> None:
    """What the simulated EDR agent's installer leaves on the twin."""
    name, display = EDR_SENSOR_SERVICE
    state.services[name] = Service(name, display, "Automatic", "Running" if onboarded else "Stopped")
    state.registry.setdefault(EDR_STATUS_KEY, {})["OnboardingState"] = 1 if onboarded else 0


def repository_dir(lab_dir: Path) -> Path:
    return lab_dir / "installers"


def local_path(lab_dir: Path, relative: str) -> Path:
    """Where an installer given relative to the repository root lives in the lab.

    The relative part is written Windows-style in the catalogue (`omnipro\\x.msi` or
    `omnipro/x.msi`); anything climbing out of the repository is refused.
    """
    parts = PureWindowsPath(relative.replace("/", "\\")).parts
    if not parts or any(p in ("..", "") for p in parts) or PureWindowsPath(relative).is_absolute():
        raise ValueError(f"installer path {relative!r} is not inside the repository")
    return repository_dir(lab_dir).joinpath(*parts)


def ensure_repository(lab_dir: Path, entries: list[tuple[str, str, str]]) -> None:
    """Write the simulated file of every (id, version, relative path) that is missing.

    Existing files are left alone, so a test can tamper with one and it stays tampered.
    """
    for entry_id, version, relative in entries:
        path = local_path(lab_dir, relative)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        # Twins install concurrently: each writer gets its own temp file, then an atomic rename
        # (both write the same bytes, so whoever renames last changes nothing).
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(simulated_content(entry_id, version))
        if path.exists():  # another twin won the race; never overwrite (a tampered file stays tampered)
            os.unlink(tmp)
            continue
        os.replace(tmp, path)
