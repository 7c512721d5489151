"""The patch catalogue (inventories/data/patch_levels.yml): how current a rebuilt host must be.

Per OS key of the image catalogue: the build and minimum UBR a host must show before it is
promoted, where the missing updates come from (hash-checked offline packages, or the site's
update server rebuilt in tier 0), and how old a golden image may be. Format: docs/contracts.md.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rebuild.errors import ConfigError
from rebuild.tiers import default_data_dir
from rebuild.yamlfile import load_data_file, load_shared_yaml

PATCH_FILE = "patch_levels.yml"
SOURCES = ("offline", "wsus")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KB = re.compile(r"^KB\d{6,8}$")
_BUILD = re.compile(r"^\d{5}$")


@dataclass(frozen=True)
class Package:
    kb: str
    file: str  # relative to the catalogue's https repository
    sha256: str
    ubr: int  # the level the package brings the host to


@dataclass(frozen=True)
class OsPatchLevel:
    os: str
    build: str
    minimum_ubr: int
    source: str  # offline | wsus
    wsus_server: str
    packages: tuple[Package, ...]
    max_image_age_days: int

    @property
    def minimum(self) -> str:
        return f"{self.build}.{self.minimum_ubr}"

    def missing_packages(self, ubr: int) -> list[Package]:
        """The packages a host at `ubr` still needs, in order."""
        return [p for p in self.packages if p.ubr > ubr]


@dataclass(frozen=True)
class PatchCatalogue:
    source: Path
    levels: dict[str, OsPatchLevel]
    update_timeout_minutes: int
    repository: str  # https:// root the offline packages' files are relative to

    def for_os(self, os_key: str, where: str = "") -> OsPatchLevel:
        if os_key not in self.levels:
            prefix = f"{where}: " if where else ""
            raise ConfigError(
                f"{prefix}OS {os_key!r} has no entry in the patch catalogue {self.source} "
                f"(known: {', '.join(sorted(self.levels))})"
            )
        return self.levels[os_key]


def _int(raw: Any, what: str, minimum: int = 0) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise ConfigError(f"{what} must be a whole number >= {minimum}, not {raw!r}")
    return raw


def _package(raw: Any, where: str) -> Package:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a package is a mapping {{kb, file, sha256, ubr}}, not {raw!r}")
    unknown = sorted(set(raw) - {"kb", "file", "sha256", "ubr"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    kb, file, sha = (str(raw.get(k) or "") for k in ("kb", "file", "sha256"))
    if not _KB.match(kb):
        raise ConfigError(f"{where}: kb {kb!r} is not a KB number (KB5070312)")
    path = Path(file)
    if not file.lower().endswith((".msu", ".cab")) or path.is_absolute() or ".." in path.parts:
        raise ConfigError(f"{where} ({kb}): file {file!r} must be a relative .msu or .cab path")
    if not _SHA256.match(sha.lower()):
        raise ConfigError(f"{where} ({kb}): sha256 {sha!r} is not 64 hex digits")
    return Package(kb, file, sha.lower(), _int(raw.get("ubr"), f"{where} ({kb}): ubr", 1))


def parse_patch_catalogue(raw: Any, source: Path) -> PatchCatalogue:
    """Validate the whole file; ConfigError naming the file, the entry and what is wrong."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping with max_image_age_days, os and images")
    unknown = sorted(set(raw) - {"max_image_age_days", "update_timeout_minutes", "repository", "os"})
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
    default_age = _int(raw.get("max_image_age_days"), f"{source}: max_image_age_days", 1)
    timeout = _int(raw.get("update_timeout_minutes", 60), f"{source}: update_timeout_minutes", 1)
    repository = str(raw.get("repository") or "")
    if repository and not repository.startswith("https://"):
        # The host fetches the packages itself; an NTLM WinRM session has no second hop to a share.
        raise ConfigError(f"{source}: repository {repository!r} must be an https:// URL")
    oses = raw.get("os")
    if not isinstance(oses, Mapping) or not oses:
        raise ConfigError(f"{source}: 'os' must map each OS key to its patch level")
    levels: dict[str, OsPatchLevel] = {}
    for key, entry in oses.items():
        where = f"{source}: os {key}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a mapping")
        bad = sorted(
            set(entry) - {"build", "minimum_ubr", "source", "wsus_server", "packages", "max_image_age_days"}
        )
        if bad:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(bad)}")
        build = str(entry.get("build") or "")
        if not _BUILD.match(build):
            raise ConfigError(f"{where}: build {build!r} is not a Windows build number (20348)")
        src = str(entry.get("source") or "")
        if src not in SOURCES:
            raise ConfigError(f"{where}: source {src!r} must be one of {', '.join(SOURCES)}")
        wsus = str(entry.get("wsus_server") or "")
        if src == "wsus" and not wsus.startswith(("https://", "http://")):
            raise ConfigError(f"{where}: source wsus needs wsus_server (the site's update server URL)")
        packages = entry.get("packages") or []
        if not isinstance(packages, list):
            raise ConfigError(f"{where}: packages must be a list")
        parsed = tuple(_package(p, f"{where} packages[{i}]") for i, p in enumerate(packages))
        minimum = _int(entry.get("minimum_ubr"), f"{where}: minimum_ubr")
        if parsed and not repository:
            raise ConfigError(f"{where}: packages need the catalogue's repository (https:// root)")
        if src == "offline" and parsed and max(p.ubr for p in parsed) < minimum:
            raise ConfigError(
                f"{where}: the packages reach UBR {max(p.ubr for p in parsed)}, below minimum_ubr {minimum}"
            )
        levels[str(key)] = OsPatchLevel(
            str(key),
            build,
            minimum,
            src,
            wsus,
            parsed,
            _int(entry.get("max_image_age_days", default_age), f"{where}: max_image_age_days", 1),
        )
    return PatchCatalogue(source, levels, timeout, repository)


def load_patch_catalogue(path: Path | None = None) -> PatchCatalogue:
    path = path or default_data_dir() / PATCH_FILE
    raw = load_data_file(path, "patch catalogue")
    return parse_patch_catalogue(raw, path)


@dataclass(frozen=True)
class CatalogueImage:
    """What the stale-image rule needs of an image catalogue entry (images.yml)."""

    image_id: str
    built: dt.date | None  # the day the golden image was built (offline servicing included)


def catalogue_images(images_file: Path | None = None) -> dict[str, CatalogueImage]:
    """OS key -> image id and build date of the image catalogue the hosts are reimaged from.

    The build date lives with the image it describes (images.yml `built`), so a catalogue of
    other images (a site's own, the lab's) carries its own dates."""
    path = images_file or default_data_dir() / "images.yml"
    try:
        raw = load_shared_yaml(path)
    except FileNotFoundError:
        raise ConfigError(f"image catalogue {path} not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"image catalogue {path}: cannot be read: {exc}") from None
    entries = raw.get("images") if isinstance(raw, Mapping) else None
    if not isinstance(entries, Mapping):
        raise ConfigError(f"image catalogue {path}: no 'images' mapping")
    images: dict[str, CatalogueImage] = {}
    for os_key, entry in entries.items():
        entry = entry if isinstance(entry, Mapping) else {}
        value = entry.get("built")
        try:
            built = (
                None
                if value is None
                else value
                if isinstance(value, dt.date)
                else dt.date.fromisoformat(str(value))
            )
        except ValueError:
            raise ConfigError(
                f"image catalogue {path}: {os_key}: built {value!r} is not a date (YYYY-MM-DD)"
            ) from None
        images[str(os_key)] = CatalogueImage(str(entry.get("image_id") or ""), built)
    return images


def stale_images(
    os_keys: Iterable[str],
    *,
    today: dt.date,
    catalogue: PatchCatalogue | None = None,
    images_file: Path | None = None,
) -> list[str]:
    """One line per OS whose image is too old (or of unknown age) to rebuild hosts from."""
    catalogue = catalogue or load_patch_catalogue()
    images = catalogue_images(images_file)
    source = images_file or default_data_dir() / "images.yml"
    problems: list[str] = []
    for os_key in sorted(set(os_keys)):
        image = images.get(os_key)
        if image is None or not image.image_id:
            continue  # not in the image catalogue: the inventory/reimage checks name it
        level = catalogue.for_os(os_key, f"image {image.image_id}")
        if image.built is None:
            problems.append(
                f"image {image.image_id} ({os_key}) has no build date in {source} ({os_key}: "
                "built: YYYY-MM-DD): its age cannot be checked"
            )
            continue
        age = (today - image.built).days
        if age > level.max_image_age_days:
            problems.append(
                f"image {image.image_id} ({os_key}) was built {image.built.isoformat()}, {age} days ago; "
                f"the patch catalogue allows {level.max_image_age_days} days"
            )
    return problems


def refuse_stale_images(
    os_keys_by_catalogue: Mapping[Path | None, Iterable[str]], *, today: dt.date | None = None
) -> None:
    """Raise ConfigError naming every stale image: nothing is planned or recorded from one.
    Keys are image catalogues (None: the project's), values the OS keys reimaged from each."""
    problems = [
        problem
        for images_file, os_keys in os_keys_by_catalogue.items()
        for problem in stale_images(os_keys, today=today or dt.date.today(), images_file=images_file)
    ]
    if problems:
        raise ConfigError(
            "stale golden image(s), refused before anything was recorded or touched:\n  "
            + "\n  ".join(problems)
            + "\nService the image offline with the month's cumulative update (docs/site-run.md, "
            "Patch level), record its new build date in the image catalogue, then plan again."
        )
