#!/usr/bin/python
"""Documentation of the rebuild_boot_entry action (plugins/action/rebuild_boot_entry.py) for `ansible-doc`.

The action runs on the controller; this file holds no code (ansible.windows' layout)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rebuild_boot_entry
short_description: Write or remove a host's per-MAC iPXE entry and its answer file on the boot server
description:
  - Renders the role's C(ipxe.j2) and C(unattend.xml.j2) templates with the host's variables and writes
    C(<pxe_root>/mac-<mac>.ipxe) (0644), C(<pxe_root>/unattend/<mac>.xml) (0600, directory 0700) and
    C(<pxe_root>/unattend/<mac>.disk.json) (the system disk criteria, 0600) on the host the task runs on
    (C(delegate_to) the boot server), and the role's WinPE files (C(files/winpe/winpeshl.ini),
    C(files/winpe/rebuild-setup.ps1)) under C(<pxe_root>/winpe/rebuild/) (0644, no secret);
    C(state=absent) removes the host's three files.
  - The entry is always written anew (removed first) - the boot server serves an entry file once.
  - When the boot server is the controller itself (local connection), files are written directly and
    atomically in one step, without a module run per file - this keeps a whole fleet's reimaging cheap
    on the controller. Otherwise the standard C(copy) / C(file) actions do the transfer.
  - The answer file holds the host's new local admin secret; always set C(no_log=true) on this task.
    Nothing rendered is returned in the result.
options:
  pxe_root:
    description: Directory the boot server serves.
    type: path
    required: true
  mac_key:
    description: MAC address as twelve lower-case hex digits (the boot server's file naming).
    type: str
    required: true
  state:
    description: C(present) writes both files, C(absent) removes both.
    type: str
    default: present
    choices: [present, absent]
  ipxe_template:
    description: Template of the iPXE script (searched in the role's templates/).
    type: str
    default: ipxe.j2
  answer_template:
    description: Template of the answer file.
    type: str
    default: unattend.xml.j2
  disk_template:
    description: Template of the system disk criteria WinPE reads.
    type: str
    default: system-disk.json.j2
"""

EXAMPLES = r"""
- name: Write the boot entry and answer file
  rebuild_boot_entry:
    pxe_root: "{{ rebuild_pxe_root }}"
    mac_key: "{{ rebuild_mac | replace(':', '') | lower }}"
  delegate_to: "{{ rebuild_boot_server }}"
  no_log: true
"""

RETURN = r"""
files:
  description: Paths written or removed.
  returned: always
  type: list
  elements: str
"""
