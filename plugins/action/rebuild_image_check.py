"""Action plugin: wait until a reimaged host answers and prove it runs the expected clean image.

Options and result: plugins/modules/rebuild_image_check.py (`ansible-doc -t module rebuild_image_check`).
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

from ansible.module_utils.common.text.converters import to_text

from rebuild.ansible_action import RebuildAction
from rebuild.polling import poll_waits
from rebuild.verify.https_setup_error import read_https_setup_error
from rebuild.verify.windows import STAMP_KEY, image_stamp_script


def _stamp(stdout: str) -> tuple[str, str]:
    """ImageId and ImageSha256 from the read's JSON ("" when the key or a value is missing)."""
    try:
        values = json.loads(stdout) if stdout.strip() else {}
    except ValueError:
        values = {}
    if not isinstance(values, dict):
        values = {}
    return str(values.get("ImageId") or ""), str(values.get("ImageSha256") or "").lower()


def _winrm_http_answers(address: str, port: int) -> bool:
    """Whether a WinRM HTTP listener answers there: Windows answers an unauthenticated WS-Man POST
    with 401 and the authentication schemes it offers (MS-WSMV 3.2.4.1.1, Authentication)."""
    conn = http.client.HTTPConnection(address, port, timeout=3)
    try:
        conn.request(
            "POST", "/wsman", body=b"", headers={"Content-Type": "application/soap+xml;charset=UTF-8"}
        )
        response = conn.getresponse()
        return response.status == 401 and bool(response.getheader("WWW-Authenticate"))
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class ActionModule(RebuildAction):
    NAME = "rebuild_image_check"

    def _https_target(self) -> str | None:
        """The host's address when this task's connection is WinRM over HTTPS, else None."""
        try:
            if self._connection.transport.split(".")[-1] != "winrm":
                return None
            if str(self._connection.get_option("scheme")).lower() != "https":
                return None
            return str(self._connection.get_option("remote_addr"))
        except (AttributeError, KeyError, ValueError):
            return None

    def _host_reason(self, address: str, port: int, key: str) -> str:
        """The host's own WinRMHttpsError, read over HTTP with this task's credential ("" if none)."""
        try:
            user = str(self._connection.get_option("remote_user") or "")
            password = str(self._connection.get_option("remote_password") or "")
        except (AttributeError, KeyError, ValueError):
            return ""
        return read_https_setup_error(address, port, user, password, key) if user else ""

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        expected_id = str(args["image_id"])
        expected_sha = str(args["sha256"]).lower()
        key = str(args.get("stamp_key") or STAMP_KEY)
        timeout = int(args.get("timeout", 3600))
        # Short looks first (a host back a moment after one is seen at once), up to `sleep` apart.
        try:
            waits = poll_waits(float(args.get("first_sleep", 0.25)), float(args.get("sleep", 5)))
        except (TypeError, ValueError) as exc:
            return {"failed": True, "msg": f"rebuild_image_check: first_sleep and sleep: {exc}"}
        must_match = bool(args.get("must_match", True))
        https_grace = int(args.get("https_grace", 600))
        http_port = int(args.get("http_port", 5985))
        https_target = self._https_target()
        deadline = time.monotonic() + timeout
        attempts, last_error = 0, ""
        http_only_since: float | None = None
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
            elif https_target is not None and _winrm_http_answers(https_target, http_port):
                # Up, WinRM on HTTP only: the first logon's HTTPS listener was not made (yet).
                http_only_since = http_only_since or time.monotonic()
                reason = self._host_reason(https_target, http_port, key)
                if reason:  # the host says why: no point waiting out the grace
                    result.update(winrm_https_missing=True, winrm_https_error=reason)
                    break
                if time.monotonic() - http_only_since >= https_grace:
                    result["winrm_https_missing"] = True
                    break
            else:
                http_only_since = None
            sleep = next(waits)
            if time.monotonic() + sleep > deadline:
                break
            time.sleep(sleep)
        result["attempts"] = attempts
        if result.get("winrm_https_error"):
            result["failed"] = True
            result["msg"] = (
                f"the host answers WinRM over HTTP (port {http_port}) but has no HTTPS listener; its first "
                f"logon reports ({key} WinRMHttpsError): {result['winrm_https_error']} - fix that and "
                "reimage it"
            )
        elif result.get("winrm_https_missing"):
            result["failed"] = True
            result["msg"] = (
                f"the host answers WinRM over HTTP (port {http_port}) but its HTTPS listener refuses "
                f"connections for {https_grace} s: the first-logon WinRM HTTPS setup failed (certificate "
                f"enrolment?); the host wrote the reason to {key} WinRMHttpsError (read it at the console "
                "or over an HTTP session) - fix enrolment and reimage it"
            )
        elif must_match and not result["back"]:
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
