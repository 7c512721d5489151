"""Argument types shared by the verbs: an option that names nothing is refused, never read as
"everything" (an empty `$HOSTS` in a script must not widen a wipe to the whole site).

Each factory takes the option's name so the refusal names it. They raise OptionError (exit 3),
which argparse lets through (it turns only ValueError/TypeError into its own usage error), and
`rebuild.cli.main` prints it like every other RebuildError. Ranges that need project data
(tiers, site capacity) are checked by the command itself before anything is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from rebuild.errors import OptionError

_N = TypeVar("_N", int, float)


def unique_names(names: Iterable[str]) -> tuple[str, ...]:
    """Names in order, each once whatever its case (`A,a,A` is one host)."""
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.upper(), name)
    return tuple(seen.values())


def hosts_arg(option: str) -> Callable[[str], tuple[str, ...]]:
    """`H1,H2,...` -> host names, each once; refuses a value that names no host."""

    def parse(text: str) -> tuple[str, ...]:
        names = unique_names(n.strip() for n in text.split(",") if n.strip())
        if not names:
            raise OptionError(
                f"{option} {text!r} names no host: give at least one host name "
                "(leave the option out to mean every host). Nothing was touched."
            )
        return names

    return parse


def name_arg(option: str) -> Callable[[str], str]:
    """A site key, host or sheet name: refuses an empty or blank one."""

    def parse(text: str) -> str:
        if not text.strip():
            raise OptionError(f"{option} is empty: give a name (leave the option out for the default)")
        return text.strip()

    return parse


def site_key(text: str) -> str:
    """The site's key when `text` names a site by it exactly (a site name that is not one, e.g.
    `arlon,site_bastogne`, must never reach an Ansible --limit)."""
    from rebuild.sites import get_site

    site = get_site(text)
    if site.name != text:
        raise OptionError(f"site {text!r}: give the site's key {site.name!r}")
    return site.name


def _number_arg(option: str, kind: Callable[[str], _N], what: str) -> Callable[[str], _N]:
    def parse(text: str) -> _N:
        try:
            return kind(text)
        except ValueError:
            raise OptionError(f"{option} {text!r} is not {what}") from None

    return parse


def int_arg(option: str) -> Callable[[str], int]:
    return _number_arg(option, int, "a whole number")


def fraction_arg(option: str) -> Callable[[str], float]:
    """A float; its range is the command's to check (e.g. the breaker's 0 < x <= 1)."""
    return _number_arg(option, float, "a number")


def path_arg(option: str) -> Callable[[str], Path]:
    """A path option: refuses an empty one (it would silently mean the current folder)."""

    def parse(text: str) -> Path:
        if not text.strip():
            raise OptionError(f"{option} is empty: give a path")
        return Path(text)

    return parse


def dir_arg(option: str) -> Callable[[str], Path]:
    """An output folder option: a path (never empty) that is not an existing file."""
    as_path = path_arg(option)

    def parse(text: str) -> Path:
        path = as_path(text)
        if path.exists() and not path.is_dir():
            raise OptionError(f"{option} {path}: is a file, not a directory")
        return path

    return parse
