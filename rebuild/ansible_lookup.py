"""The shared base of rebuild's lookup plugins that answer from a project data file (plugins/lookup/).

Each such plugin used to repeat the same body; the base does it once:
- Options: read from the task's keywords and variables by Ansible's own `set_options`, so an
  undocumented option is refused by Ansible, naming it.
- Errors: a `RebuildError` (a data file that is wrong, a key it does not have) becomes an
  `AnsibleError` that names the lookup and says what is wrong, never a Python traceback.
- The import guard: the plugin imports rebuild through this module, so on a controller without
  the rebuild package Ansible refuses to load the plugin, naming the missing module.

A plugin sets `NAME` and implements `look_up(terms)`, returning one dict per term.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

from rebuild.errors import RebuildError


class RebuildLookup(LookupBase):  # type: ignore[misc]  # ansible ships no type hints
    """Base of rebuild's data lookups: options set, one `look_up`, errors named."""

    NAME: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.NAME:
            raise TypeError(f"{cls.__name__}: set NAME to the lookup's name")

    def run(
        self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[dict[str, Any]]:
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return self.look_up([str(term) for term in terms])
        except RebuildError as exc:
            raise AnsibleError(f"{self.NAME}: {exc}") from None

    def path_option(self, name: str) -> Path | None:
        """A path option, None when not given (the loader then takes the project's default)."""
        value = self.get_option(name)
        return Path(value) if value else None

    def look_up(self, terms: list[str]) -> list[dict[str, Any]]:
        """The plugin's answer: one dict per term."""
        raise NotImplementedError
