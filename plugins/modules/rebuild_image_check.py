#!/usr/bin/python
"""Documentation of the rebuild_image_check action (plugins/action/rebuild_image_check.py) for `ansible-doc`.

The action runs on the controller; this file holds no code (ansible.windows' layout)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rebuild_image_check
short_description: Wait for a reimaged Windows host over its connection and check its image stamp
description:
  - Repeats, until C(timeout), one read of the rebuild stamp through the task's connection - which uses
    the host's new credential - a single PowerShell pipeline (C(Get-ItemProperty) on C(stamp_key) |
    C(ConvertTo-Json)), the read verification makes too. A host that is still installing, still on its
    old disk (old credential) or unreachable is retried, first after C(first_sleep), then each wait
    1.25 times the one before, up to C(sleep) apart (a host back a moment after a look is seen at once;
    a long install costs no more looks than every C(sleep) seconds, plus a few in its first seconds).
  - One command per attempt does both jobs of C(wait_for_connection) + a stamp read, and no module is
    built and sent (the exec wrapper and its module_utils, per host) - it is what keeps a fleet's
    reimaging cheap on the controller.
  - The host is accepted only when C(ImageId) and C(ImageSha256) equal the catalogue's; a host that answers
    with another image fails at once (it is not retried, it will not change by itself).
  - With C(must_match=false) (the re-check of a host caught mid-reimage) nothing fails; the result says
    whether the host is back with the expected image.
options:
  image_id:
    description: The catalogue's image id.
    type: str
    required: true
  sha256:
    description: The catalogue's SHA-256 of the image file.
    type: str
    required: true
  stamp_key:
    description: Registry key holding ImageId / ImageSha256.
    type: str
    default: HKLM:\SOFTWARE\GHAL\Rebuild
  timeout:
    description: Seconds to keep trying.
    type: int
    default: 3600
  sleep:
    description: Longest wait between two attempts (seconds).
    type: float
    default: 5
  first_sleep:
    description: Wait before the second attempt (seconds); each next one is 1.25 times longer, up to C(sleep).
    type: float
    default: 0.25
  must_match:
    description: Fail unless the host answered with the expected image.
    type: bool
    default: true
  https_grace:
    description:
      - Seconds a host may answer on WinRM over HTTP (C(http_port), an unauthenticated request gets
        WinRM's 401) while the task's HTTPS connection is refused, before the check fails at once
        instead of waiting out C(timeout). The first-logon command removes the HTTP listener only once
        the HTTPS one exists; a host left on HTTP alone failed its certificate enrolment and wrote why
        to C(stamp_key) C(WinRMHttpsError).
      - While HTTP answers and HTTPS does not, the check reads C(WinRMHttpsError) over HTTP (NTLM with
        message encryption, the task's own user and password); when the host has recorded a reason the
        check fails at once with it (result C(winrm_https_error)) instead of waiting out the grace.
      - Only used when the connection is WinRM over HTTPS.
    type: int
    default: 600
  http_port:
    description: The WinRM HTTP port looked at for C(https_grace).
    type: int
    default: 5985
"""

EXAMPLES = r"""
- name: Wait for the host and prove its image
  rebuild_image_check:
    image_id: "{{ reimage__image.image_id }}"
    sha256: "{{ reimage__image.sha256 }}"
    timeout: 3600
"""

RETURN = r"""
back:
  description: The host answered over its connection (new credential).
  returned: always
  type: bool
matches:
  description: Its stamp equals the catalogue's image.
  returned: always
  type: bool
image_id:
  description: ImageId the host reports ("" when none).
  returned: always
  type: str
image_sha256:
  description: ImageSha256 the host reports ("" when none).
  returned: always
  type: str
attempts:
  description: Reads attempted.
  returned: always
  type: int
"""
