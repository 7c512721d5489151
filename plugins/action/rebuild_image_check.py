"""Action plugin: wait until a reimaged host answers and prove it runs the expected clean image.

Options and result: plugins/modules/rebuild_image_check.py (`ansible-doc -t module rebuild_image_check`).
"""

from __future__ import annotations

import json
import time

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

try:
    from rebuild.verify.windows import STAMP_KEY, image_stamp_script
except ImportError as exc:  # pragma: no cover - a controller without the rebuild package
    raise ImportError(
        "rebuild_image_check needs the rebuild package on the controller (pip install -e .)"
    ) from exc


def _stamp(stdout: str) -> tuple[str, str]:
    """ImageId and ImageSha256 from the read's JSON ("" when the key or a value is missing)."""
    try:
        values = json.loads(stdout) if stdout.strip() else {}
    except ValueError:
        values = {}
    if not isinstance(values, dict):
        values = {}
    return str(values.get("ImageId") or ""), str(values.get("ImageSha256") or "").lower()


class ActionModule(ActionBase):
    _VALID_ARGS = frozenset(("image_id", "sha256", "stamp_key", "timeout", "sleep", "must_match"))

    def run(self, tmp=None, task_vars=None):  # type: ignore[no-untyped-def]
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        expected_id = str(args["image_id"])
        expected_sha = str(args["sha256"]).lower()
        key = str(args.get("stamp_key") or STAMP_KEY)
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
                # No stamp is an answer too ("none": fails at once), not a failed read to retry.
                read = self._low_level_execute_command(image_stamp_script(key) + "; exit 0")
            except Exception as exc:  # not back yet: installing, old credential, unreachable
                read, last_error = None, to_text(exc)
            if read is not None and not read.get("rc"):
                # It answered with its new credential; no stamp (no such key) reads as "none".
                image_id, image_sha256 = _stamp(to_text(read.get("stdout", "")))
                result.update(back=True, image_id=image_id, image_sha256=image_sha256)
                result["matches"] = image_id == expected_id and image_sha256 == expected_sha
                break
            if read is not None:
                last_error = to_text(read.get("stderr", "")).strip()[:300] or f"rc {read.get('rc')}"
            if time.monotonic() + sleep > deadline:
                break
            time.sleep(sleep)
        result["attempts"] = attempts
        if must_match and not result["back"]:
            result["failed"] = True
            result["msg"] = (
                f"no answer with the new credential within {timeout} s ({attempts} tries): {last_error}"
            )
        elif must_match and not result["matches"]:
            result["failed"] = True
            result["msg"] = (
                f"reports image {result['image_id'] or 'none'} sha256 {result['image_sha256'] or 'none'}; "
                f"the catalogue expects {expected_id} sha256 {expected_sha}"
            )
        return result
