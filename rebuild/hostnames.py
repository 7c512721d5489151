"""Host names as the product trusts them: the register's rule, applied wherever a name is read.

A name from a hand-written inventory (or any file) is trusted only when the register's
hostname rule (`rebuild.register.validate.normalise_hostname`) gives it back unchanged, so a
name like `../../../PWN-0001` is refused before it reaches the journal, a log or a file name.
`host_file` is the one way to build a path from a host name.
"""

from __future__ import annotations

from pathlib import Path

from rebuild.errors import ConfigError
from rebuild.register.validate import RowError, normalise_hostname

RULE = "the register's hostname rule (rebuild.register.validate.normalise_hostname)"


def checked_hostname(name: str, where: str) -> str:
    """`name` when the register's rule keeps it as it is; ConfigError naming host and rule."""
    try:
        normal = normalise_hostname(name)
    except RowError as exc:
        raise ConfigError(f"{where}: host {name!r} refused by {RULE}: {exc}") from None
    if normal != name:
        raise ConfigError(
            f"{where}: host {name!r} refused by {RULE}: hosts are named as the register writes them, "
            f"{normal!r} here"
        )
    return name


def host_file(directory: Path, host: str, suffix: str = "") -> Path:
    """`<directory>/<host><suffix>`, refusing a host name the rule does not keep as it is."""
    return directory / f"{checked_hostname(host, str(directory))}{suffix}"
