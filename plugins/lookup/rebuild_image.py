"""Lookup plugin: a host's entry of the clean image catalogue (inventories/data/images.yml)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rebuild_image
short_description: The clean image catalogue's entry for an OS key
description:
  - Returns, for each term (a register OS key, C(rebuild_os)), the catalogue's entry for it as a dict
    (C(image_id), C(sha256), C(file), C(ui_languages), ...). A key the catalogue does not have is an
    error naming the catalogue file and the keys it has, so a host is never reimaged without a known
    clean image.
  - An entry without C(ui_languages) (the image's installed UI languages, a non-empty list) is an
    error, because Windows Setup's UILanguage must be one of them and the role cannot render an
    answer file without knowing them.
  - The catalogue is parsed once per process and content (reference data, read-only).
options:
  _terms:
    description: OS keys.
    required: true
  catalogue:
    description: Path of the catalogue file (format of C(inventories/data/images.yml)).
    type: path
    required: true
"""

EXAMPLES = r"""
- name: The image a host must come back with
  ansible.builtin.debug:
    msg: "{{ lookup('rebuild_image', rebuild_os, catalogue='/srv/rebuild/images.yml').image_id }}"
"""

RETURN = r"""
_list:
  description: One catalogue entry (dict) per term.
  type: list
  elements: dict
"""

from pathlib import Path

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):  # type: ignore[no-untyped-def]
        import yaml

        from rebuild.yamlfile import load_shared_yaml

        self.set_options(var_options=variables, direct=kwargs)
        path = Path(self.get_option("catalogue"))
        try:
            catalogue = load_shared_yaml(path)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise AnsibleError(f"rebuild_image: cannot read the image catalogue {path}: {exc}") from None
        images = catalogue.get("images") if isinstance(catalogue, dict) else None
        if not isinstance(images, dict):
            raise AnsibleError(
                f"rebuild_image: {path} has no `images:` mapping (see inventories/data/images.yml)"
            )
        entries = []
        for term in terms:
            entry = images.get(str(term))
            if not isinstance(entry, dict):
                raise AnsibleError(
                    f"rebuild_image: OS {term!r} is not in the image catalogue {path} "
                    f"(it has: {', '.join(sorted(images)) or 'nothing'})"
                )
            languages = entry.get("ui_languages")
            if (
                not isinstance(languages, list)
                or not languages
                or not all(isinstance(lang, str) and lang for lang in languages)
            ):
                raise AnsibleError(
                    f"rebuild_image: {path}: {term}: ui_languages must list the image's installed UI "
                    f"languages (e.g. [en-US, fr-FR]), got {languages!r}"
                )
            entries.append(dict(entry))
        return entries
