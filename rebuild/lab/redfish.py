"""The lab's Redfish BMCs: sushy-tools' `sushy-emulator --fake`, one system per physical server.

sushy-emulator (third party) serves the Redfish API; the lab runs it as a subprocess on
a private loopback port with a generated config (state dir under `<lab_dir>/redfish/`,
wiped at start) and puts a thin front on `127.0.0.1:<redfish_port>` that:

- forwards every request unchanged and relays the answer;
- keeps what the fake driver drops: `BootSourceOverrideEnabled` (sushy always reports
  Continuous). The lab honours the Redfish meaning: `Once` is consumed by the next boot,
  `Continuous` stays, `Disabled` (the initial value) means no override; a PATCH naming a
  target without `Enabled` keeps the current mode, as the property semantics say. GET of a
  system shows the lab's view of these properties, with their AllowableValues;
- keeps `BootSourceOverrideMode` (DMTF ComputerSystem Boot: the BIOS boot mode used when booting
  the override target; Legacy or UEFI). The BMCs start at Legacy and the twins are UEFI-only: a
  PXE override left in Legacy mode boots the disk, not the network;
- refuses (400, PropertyValueNotInList) a PATCH whose BootSourceOverrideEnabled/Mode is not one
  of the schema's values, before the emulator sees it;
- makes a BMC unreachable for the `bmc_unreachable` fault (connection dropped, no answer).

Like a real BMC, the emulator requires HTTP basic auth (sushy's bcrypt user file) on
everything but the service root; the lab generates the user and password at start and
the daemon writes them into the rehearsal's secret store (`site-<site>`: bmc_user,
bmc_password), where the reimage role reads them.

A watcher receives the fake driver's external notifications (it PUTs the system on every
change) and drives the emulator's clock: power changes land only when a system is read
after its random 1-11 s delay (or the lab's `bmc_power_seconds`, when set:
rebuild/lab/sushy_fixed_delay.py), so the watcher reads it then. A transition to On boots the
twin: from the network when a PXE override is armed (then the boot server decides), else
from its disk. A reset without an override therefore never reimages.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.imaging import Imager, Scheduler
from rebuild.lab.state import Phase

_NAMESPACE = uuid.UUID("3f0c1a52-7d1e-4c59-9a53-2f6e0c1b7a10")
MAX_BODY = 1024 * 1024


def system_id(record: TwinRecord) -> str:
    """The Redfish system id of a physical server twin (stable; the overlay's rebuild_redfish_system_id)."""
    return record.redfish_system_id or str(uuid.uuid5(_NAMESPACE, record.name))


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec hook giving the child SIGTERM when the lab dies (no emulator outlives it).

    Resolved in the parent: the hook itself only makes one libc call in the child.
    """
    try:
        import ctypes
        import signal

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    term = int(signal.SIGTERM)
    return lambda: prctl(1, term)  # PR_SET_PDEATHSIG


OVERRIDE_MODES = ("UEFI", "Legacy")
_OVERRIDE_ENUMS = {
    # DMTF ComputerSystem schema (Boot): the values a Redfish service accepts for these properties.
    "BootSourceOverrideEnabled": ("Once", "Continuous", "Disabled"),
    "BootSourceOverrideMode": OVERRIDE_MODES,
}


def _schema_refusal(request: dict[str, Any]) -> str:
    """Why a PATCH of a system's Boot breaks the DMTF schema's enums ("" when it does not)."""
    boot = request.get("Boot")
    if not isinstance(boot, dict):
        return ""
    for name, allowed in _OVERRIDE_ENUMS.items():
        if name in boot and boot[name] not in allowed:
            return f"The value {boot[name]!r} for the property {name} is not in the list of acceptable values"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Front(BaseHTTPRequestHandler):
    server: RedfishBmcs._Front
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _system(self) -> tuple[TwinRecord | None, list[str]]:
        parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
        if len(parts) >= 4 and parts[:3] == ["redfish", "v1", "Systems"]:
            return self.server.owner.by_id.get(parts[3]), parts[4:]
        return None, []

    def _proxy(self) -> None:
        owner = self.server.owner
        twin, rest = self._system()
        if twin is not None and owner.lab.fault(twin.name, "bmc_unreachable") is not None:
            # An unreachable BMC answers nothing: drop the connection.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        length = int(self.headers.get("Content-Length", "0") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        request: dict[str, Any] = {}
        if body and self.command in ("PATCH", "POST"):
            try:
                parsed = json.loads(body)
                request = parsed if isinstance(parsed, dict) else {}
            except (json.JSONDecodeError, UnicodeDecodeError):
                request = {}
        refusal = (
            _schema_refusal(request) if self.command == "PATCH" and twin is not None and not rest else ""
        )
        if refusal:
            data = json.dumps(
                {"error": {"code": "Base.1.8.PropertyValueNotInList", "message": refusal}}
            ).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn = http.client.HTTPConnection("127.0.0.1", owner.sushy_port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            status, reason, data = resp.status, resp.reason, resp.read()
            resp_headers = [
                (k, v)
                for k, v in resp.getheaders()
                if k.lower() not in ("content-length", "connection", "transfer-encoding", "server")
            ]
        finally:
            conn.close()
        if twin is not None and 200 <= status < 300:
            if self.command == "PATCH" and not rest:
                owner.on_patch(twin, request)
            elif self.command == "POST" and rest == ["Actions", "ComputerSystem.Reset"]:
                owner.lab.record(twin.name, "reset", via="redfish", reset_type=str(request.get("ResetType")))
            elif self.command == "GET" and not rest:
                data = owner.rewrite_system(twin, data)
        self.send_response(status, reason)
        for k, v in resp_headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _proxy


class _Notified(BaseHTTPRequestHandler):
    server: RedfishBmcs._Notifier
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", "0") or 0)
        raw = self.rfile.read(min(length, MAX_BODY))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        try:
            system = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if isinstance(system, dict):
            # Never call back into sushy from here (it waits on this answer): queue it.
            owner = self.server.owner
            owner.scheduler.at(time.time(), lambda: owner.on_notification(system))


class RedfishBmcs:
    """sushy-emulator plus the lab's front and watcher. No physical server: nothing runs."""

    class _Front(ThreadingHTTPServer):
        daemon_threads = True
        owner: RedfishBmcs

    class _Notifier(ThreadingHTTPServer):
        daemon_threads = True
        owner: RedfishBmcs

    def __init__(self, lab: Lab, imager: Imager, scheduler: Scheduler, port: int = 0) -> None:
        self.lab = lab
        self.imager = imager
        self.scheduler = scheduler
        self.servers = [t for t in lab.twins.values() if t.platform == "physical" and t.kind == "server"]
        self.by_id = {system_id(t): t for t in self.servers}
        self.dir = lab.config.lab_dir / "redfish"
        self._lock = threading.Lock()
        # Lab view of each system's override: {"target": "Pxe"|"None"|..., "enabled": "Once"|...}.
        self.override: dict[str, dict[str, str]] = {
            # Mode: the BIOS boot mode of the override (DMTF ComputerSystem Boot.BootSourceOverrideMode).
            # These BMCs hold Legacy (left by earlier tooling): an override that does not say UEFI
            # PXE-boots in Legacy mode, which these UEFI-only machines cannot (they boot their disk).
            t.name: {"target": "None", "enabled": "Disabled", "mode": "Legacy"}
            for t in self.servers
        }
        self.power: dict[str, str] = {}
        # The store keeps the BMC account name as a credential: one per lab start, so tests that
        # grep a run for every stored value do not match ordinary lab text ("rebuild-lab").
        self.username = f"lab-bmc-{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(24)
        self.sushy_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._front = RedfishBmcs._Front(("127.0.0.1", port), _Front)
        self._front.owner = self
        self._notifier = RedfishBmcs._Notifier(("127.0.0.1", 0), _Notified)
        self._notifier.owner = self
        self._threads = [
            threading.Thread(target=self._front.serve_forever, name="lab-redfish-front", daemon=True),
            threading.Thread(target=self._notifier.serve_forever, name="lab-redfish-notify", daemon=True),
        ]

    @property
    def port(self) -> int:
        return int(self._front.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        if self.dir.exists():
            shutil.rmtree(self.dir)  # sushy keeps state in SQLite: stale systems must go
        (self.dir / "state").mkdir(parents=True)
        systems = []
        for t in self.servers:
            on = self.lab.state(t.name).phase != Phase.OFF
            self.power[t.name] = "On" if on else "Off"
            systems.append(
                {
                    "uuid": system_id(t),
                    "name": t.name,
                    "power_state": self.power[t.name],
                    "external_notifier": True,
                    "nics": [{"mac": t.mac, "ip": t.address}],
                }
            )
        import bcrypt

        users = self.dir / "htpasswd"
        fd = os.open(users, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # Cost 4: sushy checks the hash on every request; this is a loopback lab, not a vault.
        digest = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{self.username}:{digest}\n")
        notify = f"http://127.0.0.1:{self._notifier.server_address[1]}/notify"
        config = self.dir / "emulator.conf"
        config.write_text(
            "# SIMULATED BMCs of the rebuild lab (generated; one system per physical server twin)\n"
            f"SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n"
            f"SUSHY_EMULATOR_LISTEN_PORT = {self.sushy_port}\n"
            "SUSHY_EMULATOR_FAKE_DRIVER = True\n"
            f"SUSHY_EMULATOR_AUTH_FILE = {str(users)!r}\n"
            f"SUSHY_EMULATOR_STATE_DIR = {str(self.dir / 'state')!r}\n"
            f"EXTERNAL_NOTIFICATION_URL = {notify!r}\n"
            f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}\n"
        )
        return config

    def start(self) -> RedfishBmcs:
        for thread in self._threads:
            thread.start()
        if not self.servers:
            return self
        self.sushy_port = _free_port()
        config = self._write_config()
        exe = Path(sys.executable).with_name("sushy-emulator")
        delay = self.lab.config.bmc_power_seconds
        emulator = (
            [str(exe) if exe.exists() else "sushy-emulator"]
            if delay is None  # the fake driver's own random delay, up to 11 s per power change
            else [sys.executable, "-m", "rebuild.lab.sushy_fixed_delay", str(delay)]
        )
        command = [
            *emulator,
            "--config",
            str(config),
            "--fake",
            "-i",
            "127.0.0.1",
            "-p",
            str(self.sushy_port),
        ]
        log = self.lab.config.lab_dir / "logs"
        log.mkdir(parents=True, exist_ok=True)
        with (log / "sushy-emulator.log").open("ab") as out:
            self._proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"sushy-emulator exited ({self._proc.returncode}); see {log / 'sushy-emulator.log'}"
                )
            try:
                status, _ = self._sushy("GET", "/redfish/v1/Systems")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"sushy-emulator did not answer within 30 s; see {log / 'sushy-emulator.log'}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        for srv in (self._front, self._notifier):
            srv.shutdown()
            srv.server_close()

    def _sushy(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.sushy_port, timeout=30)
        try:
            data = json.dumps(body).encode() if body is not None else None
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers = {"Authorization": f"Basic {token}"}
            if data:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def _read(self, sid: str) -> None:
        self._sushy("GET", f"/redfish/v1/Systems/{sid}")

    # -- what the front sees ------------------------------------------------------

    def on_patch(self, twin: TwinRecord, request: dict[str, Any]) -> None:
        boot = request.get("Boot")
        if not isinstance(boot, dict):
            return
        with self._lock:
            current = self.override[twin.name]
            target = boot.get("BootSourceOverrideTarget")
            enabled = boot.get("BootSourceOverrideEnabled")
            if target is not None:
                current["target"] = str(target)
            if enabled in ("Once", "Continuous", "Disabled"):
                current["enabled"] = str(enabled)
            mode = boot.get("BootSourceOverrideMode")
            if mode in OVERRIDE_MODES:
                current["mode"] = str(mode)
            view = dict(current)
        self.lab.record(
            twin.name,
            "boot_override",
            via="redfish",
            target=view["target"],
            enabled=view["enabled"],
            mode=view["mode"],
        )

    def rewrite_system(self, twin: TwinRecord, data: bytes) -> bytes:
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return data
        with self._lock:
            view = dict(self.override[twin.name])
        boot = doc.setdefault("Boot", {})
        boot["BootSourceOverrideEnabled"] = view["enabled"]
        boot["BootSourceOverrideMode"] = view["mode"]
        boot["BootSourceOverrideEnabled@Redfish.AllowableValues"] = ["Once", "Continuous", "Disabled"]
        boot["BootSourceOverrideMode@Redfish.AllowableValues"] = list(OVERRIDE_MODES)
        if view["enabled"] == "Disabled":
            boot["BootSourceOverrideTarget"] = "None"
        return json.dumps(doc).encode()

    # -- what the emulator tells -----------------------------------------------------

    def on_notification(self, system: dict[str, Any]) -> None:
        twin = self.by_id.get(str(system.get("uuid")))
        if twin is None:
            return
        new = str(system.get("power_state"))
        pending = system.get("pending_power")
        if isinstance(pending, dict) and "apply_time" in pending:
            # The fake driver applies a change only when the system is read after apply_time.
            sid = system_id(twin)
            self.scheduler.at(float(pending["apply_time"]) + 0.2, lambda: self._read(sid))
        with self._lock:
            old = self.power.get(twin.name, "Off")
            self.power[twin.name] = new
        if old == new:
            return
        if new == "Off":
            self.imager.power_off(twin.name, via="redfish")
        elif new == "On":
            with self._lock:
                view = self.override[twin.name]
                armed = view["target"] == "Pxe" and view["enabled"] in ("Once", "Continuous")
                # A UEFI-only machine cannot PXE-boot in Legacy (BIOS) mode: it falls to its disk.
                network = armed and view["mode"] == "UEFI"
                legacy = armed and not network
                consumed = armed and view["enabled"] == "Once"
                if consumed:
                    view.update(target="None", enabled="Disabled")
            if consumed:
                # A real BMC clears a Once override when it is used; tell the emulator too.
                self._sushy(
                    "PATCH",
                    f"/redfish/v1/Systems/{system_id(twin)}",
                    {"Boot": {"BootSourceOverrideTarget": "Hdd"}},
                )
                self.lab.record(
                    twin.name,
                    "boot_override",
                    via="redfish",
                    target="None",
                    enabled="Disabled",
                    reason="Once override consumed by this boot",
                )
            if legacy:
                self.lab.record(
                    twin.name,
                    "boot_override",
                    via="redfish",
                    target="Pxe",
                    enabled="Once",
                    reason="Legacy-mode PXE override on a UEFI-only machine: no network boot",
                )
            self.imager.boot(twin.name, network, via="redfish")
