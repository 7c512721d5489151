"""The lab's SIMULATED hypervisor REST API for virtual servers (see docs/hypervisor-api.md).

Small on purpose, shaped like a real one: bearer-token auth on every call, JSON in and
out, 401/404/400/409 with a message naming what is wrong. A power action with
`"boot": "network"` boots the VM from the network once (the boot server's per-MAC entry
then decides whether it installs), as a one-time boot override does on real hypervisors.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.httpservice import LoopbackHttpService, OwnedServer
from rebuild.lab.imaging import Imager
from rebuild.lab.state import Phase

ACTIONS = ("reset", "on", "off")
BOOTS = ("network", "disk")
MAX_BODY = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    server: HypervisorApi._Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        headers = {"WWW-Authenticate": 'Bearer realm="rebuild-lab-hypervisor"'} if status == 401 else None
        self._send(status, {"error": {"code": status, "message": message}}, headers)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            self._error(401, "missing bearer token")
            return False
        if not hmac.compare_digest(token.strip().encode(), self.server.owner.token.encode()):
            self._error(401, "invalid token")
            return False
        return True

    def _route(self) -> list[str]:
        return [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/") if p]

    def do_GET(self) -> None:
        if not self._authorised():
            return
        api = self.server.owner
        parts = self._route()
        if parts == ["vms"]:
            self._send(200, {"vms": [api.describe(t) for t in api.vms.values()]})
        elif len(parts) == 2 and parts[0] == "vms":
            vm = api.vms.get(parts[1])
            if vm is None:
                self._error(404, f"no virtual machine {parts[1]!r}")
            else:
                self._send(200, api.describe(vm))
        else:
            self._error(404, f"no resource {urlsplit(self.path).path}")

    def do_POST(self) -> None:
        if not self._authorised():
            return
        api = self.server.owner
        parts = self._route()
        if not (len(parts) == 3 and parts[0] == "vms" and parts[2] == "power"):
            self._error(404, f"no resource {urlsplit(self.path).path}")
            return
        vm = api.vms.get(parts[1])
        if vm is None:
            self._error(404, f"no virtual machine {parts[1]!r}")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self._error(400, "a JSON body is required")
            return
        try:
            body = json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._error(400, "body is not JSON")
            return
        if not isinstance(body, dict):
            self._error(400, "body must be a JSON object")
            return
        unknown = sorted(set(body) - {"action", "boot"})
        if unknown:
            self._error(400, f"unknown field(s): {', '.join(unknown)}")
            return
        action, boot = body.get("action"), body.get("boot", "disk")
        if action not in ACTIONS:
            self._error(400, f"action must be one of {', '.join(ACTIONS)} (got {action!r})")
            return
        if boot not in BOOTS:
            self._error(400, f"boot must be one of {', '.join(BOOTS)} (got {boot!r})")
            return
        status, result = api.power(vm, action, boot)
        if status >= 400:
            self._error(status, str(result["message"]))
        else:
            self._send(status, result)

    def do_PUT(self) -> None:
        self._error(405, "method not allowed")

    do_DELETE = do_PATCH = do_PUT


class HypervisorApi(LoopbackHttpService):
    """REST API on 127.0.0.1:<port> for the lab's virtual twins."""

    class _Server(OwnedServer):
        owner: HypervisorApi

    def __init__(self, lab: Lab, imager: Imager, port: int = 0) -> None:
        self.lab = lab
        self.imager = imager
        self.vms = {(t.vm_ref or t.name): t for t in lab.twins.values() if t.platform == "virtual"}
        self.token = secrets.token_urlsafe(32)
        self.token_file: Path = lab.config.lab_dir / "hypervisor.token"
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.token + "\n")
        self._lock = threading.Lock()
        self._serve(HypervisorApi._Server(("127.0.0.1", port), _Handler), "lab-hypervisor")

    def describe(self, vm: TwinRecord) -> dict[str, Any]:
        phase = self.lab.state(vm.name).phase
        return {
            "ref": vm.vm_ref or vm.name,
            "name": vm.name,
            "power_state": "off" if phase == Phase.OFF else "on",
            "mac": vm.mac,
            "simulated": True,
        }

    def power(self, vm: TwinRecord, action: str, boot: str) -> tuple[int, dict[str, Any]]:
        with self._lock:  # one power change at a time per API, like a host's task queue
            on = self.imager.is_on(vm.name)
            if action == "off":
                if not on:
                    return 409, {"message": f"virtual machine {vm.vm_ref or vm.name} is already off"}
                self.imager.power_off(vm.name, via="hypervisor")
            elif action == "on":
                if on:
                    return 409, {
                        "message": f"virtual machine {vm.vm_ref or vm.name} is already on; use reset"
                    }
                self.imager.boot(vm.name, boot == "network", via="hypervisor")
            else:
                if not on:
                    return 409, {"message": f"virtual machine {vm.vm_ref or vm.name} is off; use on"}
                self.lab.record(vm.name, "reset", via="hypervisor", boot=boot)
                self.imager.boot(vm.name, boot == "network", via="hypervisor")
        return 202, {**self.describe(vm), "action": action, "boot": boot}
