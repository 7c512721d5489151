#!/usr/bin/python
"""Documentation of the rebuild_apps action (plugins/action/rebuild_apps.py) for `ansible-doc`.

The action runs on the controller; this file holds no code (ansible.windows' layout)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rebuild_apps
short_description: Install what a host's service needs, from the application catalogue, in one call
description:
  - Computes on the controller the host's applications, certificates and printers from the catalogue
    (C(inventories/data/applications.yml) - rules per kind and service, printers per room, applications
    the register names) and runs C(win_rebuild_apps) once with that list - one WinRM round trip.
  - Every installer is hash-checked on the host before anything runs.
  - Reads the host variables C(rebuild_kind), C(rebuild_service), C(rebuild_site), C(rebuild_location)
    and C(rebuild_applications).
options:
  catalogue:
    description: Path of the catalogue (default the project's C(applications.yml) in the data directory).
    type: path
  repository:
    description:
      - Override of the catalogue's repository root, an https URL (e.g. a site-local package server).
      - A UNC share is refused (the second hop has no credential).
    type: str
  update_defender_signatures:
    description: Also update Defender security intelligence.
    type: bool
    default: true
  defender_signature_source:
    description: UNC share of definition updates (default the host's configured source).
    type: str
author: rebuild
"""

EXAMPLES = r"""
- name: Applications, certificates and printers from the catalogue
  rebuild_apps:
    update_defender_signatures: true
  register: redeploy__apps
"""

RETURN = r"""
applications:
  description: Per application, C(id) and C(status) as C(win_rebuild_apps) reports them.
  returned: success
  type: list
  elements: dict
certificates:
  description: Per certificate, C(id) and C(status).
  returned: success
  type: list
  elements: dict
printers:
  description: Per printer, C(name) and C(status).
  returned: success
  type: list
  elements: dict
summary:
  description: Status per application, certificate and printer (kept in the journal by the phase's end).
  returned: success
  type: dict
"""
