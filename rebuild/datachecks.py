"""What the data folder must say before a site is planned or run: one place for `plan` and `site`.

Each check reads project data (patch catalogue, Windows LAPS and BitLocker policies, Secure Boot
policy, EDR catalogue) and raises ConfigError naming the file and key, so a bad file stops the
command before the journal records anything, never host by host in the middle of a wave.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from rebuild.bitlocker import load_bitlocker_policy
from rebuild.laps import refuse_unmanageable_oses
from rebuild.patch import refuse_stale_images
from rebuild.verify.expect import refuse_bad_verification_data


def refuse_bad_data(catalogues: Mapping[Path | None, Iterable[str]]) -> None:
    """`catalogues`: the OS keys of the site's hosts per image catalogue (None: the project's)."""
    os_keys = {catalogue: list(keys) for catalogue, keys in catalogues.items()}
    refuse_stale_images(os_keys)
    refuse_unmanageable_oses(key for keys in os_keys.values() for key in keys)
    load_bitlocker_policy()
    refuse_bad_verification_data()
