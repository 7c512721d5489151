"""Action plugin: wait until a reimaged host answers and prove it runs the expected clean image."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rebuild_image_check
short_description: Wait for a reimaged Windows host over its connection and check its image stamp
description:
  - Repeats, until C(timeout), one read of the rebuild stamp (C(ansible.windows.win_reg_stat) on
    C(stamp_key)) through the task's connection - which uses the host's new credential. A host that is
    still installing, still on its old disk (old credential) or unreachable is retried after C(sleep).
  - One module run per attempt does both jobs of C(wait_for_connection) + a stamp read, halving the
    WinRM round trips per host; it is what keeps a fleet's reimaging cheap on the controller.
  - The host is accepted only when C(ImageId) and C(ImageSha256) equal the catalogue's; a host that answers
    with another image fails at once (it is not retried: it will not change by itself).
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
    description: Seconds between attempts.
    type: int
    default: 5
  must_match:
    description: Fail unless the host answered with the expected image.
    type: bool
    default: true
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

import time
from typing import Any

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase


def _value(properties: dict[str, Any], name: str) -> str:
    for key, entry in properties.items():  # registry value names are case-insensitive
        if key.lower() == name.lower():
            return str((entry or {}).get("value", "") if isinstance(entry, dict) else entry)
    return ""


class ActionModule(ActionBase):
    _VALID_ARGS = frozenset(("image_id", "sha256", "stamp_key", "timeout", "sleep", "must_match"))

    def run(self, tmp=None, task_vars=None):  # type: ignore[no-untyped-def]
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        expected_id = str(args["image_id"])
        expected_sha = str(args["sha256"]).lower()
        key = str(args.get("stamp_key") or r"HKLM:\SOFTWARE\GHAL\Rebuild")
        timeout = int(args.get("timeout", 3600))
        sleep = max(1, int(args.get("sleep", 5)))
        must_match = bool(args.get("must_match", True))
        deadline = time.monotonic() + timeout
        attempts, last_error = 0, ""
        result.update(changed=False, back=False, matches=False, image_id="", image_sha256="")
        while True:
            attempts += 1
            try:
                if attempts > 1:
                    self._connection.reset()
                stat = self._execute_module(
                    module_name="ansible.windows.win_reg_stat", module_args={"path": key}, task_vars=task_vars
                )
            except Exception as exc:  # not back yet: installing, old credential, unreachable
                stat, last_error = None, to_text(exc)
            if stat is not None and not stat.get("failed") and not stat.get("unreachable"):
                props = stat.get("properties") or {}
                result.update(back=True, image_id=_value(props, "ImageId"),
                              image_sha256=_value(props, "ImageSha256").lower())
                result["matches"] = result["image_id"] == expected_id and result["image_sha256"] == expected_sha
                break
            if stat is not None:
                last_error = to_text(stat.get("msg", "read failed"))
            if time.monotonic() + sleep > deadline:
                break
            time.sleep(sleep)
        result["attempts"] = attempts
        if must_match and not result["back"]:
            result["failed"] = True
            result["msg"] = f"no answer with the new credential within {timeout} s ({attempts} tries): {last_error}"
        elif must_match and not result["matches"]:
            result["failed"] = True
            result["msg"] = (
                f"reports image {result['image_id'] or 'none'} sha256 {result['image_sha256'] or 'none'}; "
                f"the catalogue expects {expected_id} sha256 {expected_sha}"
            )
        return result
