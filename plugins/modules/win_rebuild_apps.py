# Documentation only: the module is win_rebuild_apps.ps1 (ansible.windows style).

DOCUMENTATION = r"""
---
module: win_rebuild_apps
short_description: Install a host's pinned applications, certificates and printers in one call, hash-checked
description:
  - Brings a freshly rebuilt Windows host to its service's software state in a single WinRM round trip
    instead of one task per package.
  - Every installer and certificate file is downloaded over HTTPS to a local staging folder and its
    SHA-256 compared with the catalogue BEFORE anything runs. If any file needed does not match, nothing
    is installed and the module fails naming the file (a tampered repository must never run on a
    clinical host).
  - Idempotent. An application whose DisplayName is registered under the Uninstall keys with the pinned
    DisplayVersion is left alone; a certificate already in the store with its thumbprint is left alone;
    a printer already present with the same driver and port is left alone.
  - Each installer is waited for as its own process (not its children, unlike C(Start-Process -Wait)),
    at most I(installer_timeout_minutes); exit codes 0, 3010 and 1641 are success (the last two set
    C(reboot_required)).
  - Supports check mode (reports what would be installed; copies and runs nothing).
options:
  repository:
    description:
      - The https:// root the relative installer and certificate paths are resolved against.
      - A UNC share is refused. The module runs in an NTLM WinRM session, which has no network
        credentials for a second hop (Access denied).
    type: str
    required: true
  applications:
    description: Applications to have at their pinned version.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Catalogue id.
        type: str
        required: true
      name:
        description: DisplayName the installer registers under the Uninstall keys.
        type: str
        required: true
      version:
        description: DisplayVersion expected after install.
        type: str
        required: true
      installer:
        description: Installer path relative to I(repository).
        type: str
        required: true
      type:
        description: Installer technology.
        type: str
        choices: [msi, exe]
        required: true
      arguments:
        description: Silent install arguments (for msi, appended to C(msiexec /i <file> /qn /norestart)).
        type: str
        default: ''
      sha256:
        description: Expected SHA-256 of the installer file (hex).
        type: str
        required: true
  certificates:
    description: Certificate files (DER) to import into C(Cert:\LocalMachine\<store>).
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Catalogue id.
        type: str
        required: true
      name:
        description: Name for people.
        type: str
        required: true
      file:
        description: Certificate path relative to I(repository).
        type: str
        required: true
      store:
        description: LocalMachine store name.
        type: str
        choices: [Root, CA, My, TrustedPublisher]
        required: true
      sha256:
        description: Expected SHA-256 of the file.
        type: str
        required: true
      thumbprint:
        description: Expected thumbprint (SHA-1 of the DER certificate).
        type: str
        required: true
  printers:
    description: Printer queues to add (TCP/IP port named after the printer's address).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Queue name.
        type: str
        required: true
      driver:
        description: Installed driver name.
        type: str
        required: true
      port:
        description: Printer address.
        type: str
        required: true
  installer_timeout_minutes:
    description: How long one installer may run before it is stopped and reported failed.
    type: int
    default: 30
  update_defender_signatures:
    description: Update Microsoft Defender security intelligence after installing (C(Update-MpSignature)).
    type: bool
    default: false
  defender_signature_max_age_hours:
    description: Only update Defender signatures older than this (keeps the module idempotent).
    type: int
    default: 12
  defender_signature_source:
    description:
      - UNC share holding definition updates for C(Update-MpSignature -UpdateSource FileShares). When empty,
        the host's configured update source is used.
    type: str
    default: ''
author:
  - rebuild project
"""

EXAMPLES = r"""
- name: Install the service's applications, certificates and printers (one call)
  win_rebuild_apps:
    repository: 'https://deploy.ghal.lan/rebuild/apps'
    applications:
      - id: omnipro-client
        name: Omnipro Client
        version: 8.4.2
        installer: omnipro/OmniproClient-8.4.2.msi
        type: msi
        arguments: SERVER=omnipro.ghal.lan
        sha256: bab51a22396090a2dd6eb2376896d270a6b1bac257597bacc40aa6039f1f4482
    certificates:
      - id: ghal-root-ca
        name: GHAL Root CA
        file: certs/GHAL-Root-CA-2024.cer
        store: Root
        sha256: 0e2da3f23287e934a9dbb7962320a2a676d81d3c8df27492aad67cc709afc819
        thumbprint: f3c807aeeb47ced4a328983abc938868d360bb0a
    update_defender_signatures: true
"""

RETURN = r"""
applications:
  description: One entry per application asked for.
  returned: always
  type: list
  elements: dict
  sample:
    - {id: omnipro-client, name: Omnipro Client, version: 8.4.2, before: null, after: 8.4.2,
       changed: true, status: installed, sha256_ok: true, error: null}
certificates:
  description: One entry per certificate (id, store, thumbprint, changed, status, error).
  returned: always
  type: list
  elements: dict
printers:
  description: One entry per printer (name, changed, status, error).
  returned: always
  type: list
  elements: dict
defender:
  description: Defender signature state after the optional update.
  returned: when update_defender_signatures
  type: dict
  sample: {updated: true, signature_version: 1.421.80.0, signature_last_updated: '2026-11-25T23:10:00'}
failed_items:
  description: Ids of the items that failed (hash mismatch, missing file, installer exit code).
  returned: always
  type: list
  elements: str
"""
