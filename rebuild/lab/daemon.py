"""The lab daemon: one background process that carries every twin, and its control API.

`rebuild lab up` starts `python -m rebuild.lab.daemon` detached (it survives the CLI), waits
until the daemon reports ready in `<lab_dir>/daemon.json` (pid, ports, control URL) and prints
that this is a SIMULATED lab. Ready means: twins created, certificates issued, every WinRM
listener open, the reimage side (Redfish, WoL, boot server, hypervisor) started, the inventory
overlay written and the secret store seeded.

Control API (HTTP on 127.0.0.1:<control_port>, JSON):
  GET  /status            phase per twin, counts per phase, ready flag
  GET  /requests          WS-Man requests answered per twin (round trips)
  GET  /faults            faults in force
  GET  /twins/<name>      one twin's whole state (TwinState JSON, with its event history)
  POST /faults            {"faults": {host: {name: params}}} add faults (validated as a whole)
  POST /faults/clear      {"host": H, "name": N|null}
  POST /shutdown          clean stop
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuild.errors import ConfigError, RebuildError
from rebuild.lab import faults as faults_mod
from rebuild.lab import fleet, images
from rebuild.lab.ca import LabCA
from rebuild.lab.context import Lab, LabConfig
from rebuild.lab.server import WinRMServer, _read_request, _response
from rebuild.secrets import generate_secret

log = logging.getLogger("rebuild.lab.daemon")
BANNER = "SIMULATED lab (rebuild): every host here is a simulation on loopback, not a real machine."
DEFAULT_LAB_DIR = Path(os.environ.get("REBUILD_LAB_DIR", ".lab"))


def info_path(lab_dir: Path) -> Path:
    return lab_dir / "daemon.json"


def _write_info(lab_dir: Path, info: dict[str, Any]) -> None:
    tmp = info_path(lab_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True))
    os.replace(tmp, info_path(lab_dir))


def phases(lab_dir: Path) -> dict[str, str]:
    """Phase per twin straight from the state DB (cheap: no full state decode)."""
    db = sqlite3.connect(f"file:{fleet.state_db(lab_dir)}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT name, json_extract(state, '$.phase') FROM twin ORDER BY name").fetchall()
    finally:
        db.close()
    return {name: phase for name, phase in rows}


@dataclass
class DaemonOptions:
    lab_dir: Path
    register: Path
    site: str | None
    address_prefix: str
    imaging_seconds: float
    http_port: int = 5985
    https_port: int = 5986
    bmc_power_seconds: int | None = None  # None: the emulator's random, up to 11 s (LabConfig)
    restart_seconds: float = 0.0  # WinRM refused while a twin restarts; 0: back at once (LabConfig)


class LabDaemon:
    def __init__(self, options: DaemonOptions) -> None:
        self.options = options
        self._stop = asyncio.Event()
        self.ready = False
        self.lab: Lab | None = None
        self.winrm: WinRMServer | None = None
        self._reimage: Any = None
        self._started = time.monotonic()

    async def run(self) -> None:
        opts = self.options
        lab_dir = opts.lab_dir.resolve()
        hosts = fleet.load_hosts(opts.register, opts.site)
        records = fleet.allocate(hosts, opts.address_prefix)
        config = LabConfig(
            lab_dir=lab_dir,
            address_prefix=opts.address_prefix,
            winrm_http_port=opts.http_port,
            winrm_https_port=opts.https_port,
            imaging_seconds=opts.imaging_seconds,
            bmc_power_seconds=opts.bmc_power_seconds,
            restart_seconds=opts.restart_seconds,
            domain_admin_user=fleet.DOMAIN_JOIN_USER,
            domain_admin_password=generate_secret(),
        )
        images.ensure_repository(lab_dir)
        fleet.reset_product_state(lab_dir)
        lab, passwords = fleet.create_twins(config, records)
        self.lab = lab
        ca = LabCA.create(lab_dir / "ca")
        fleet.issue_certificates(ca, records)
        self.winrm = WinRMServer(lab, ca)
        await self.winrm.start()
        from rebuild.lab import reimage  # the reimage side (Redfish, WoL, boot server, hypervisor)

        self._reimage = reimage.start(lab)
        control = await asyncio.start_server(self._control, host="127.0.0.1", port=config.control_port)
        config.control_port = control.sockets[0].getsockname()[1]
        fleet.write_overlay(lab, hosts, ca.bundle_path, self._reimage.endpoints())
        info = {
            "pid": os.getpid(),
            "lab_dir": str(lab_dir),
            "address_prefix": config.address_prefix,
            "twins": len(records),
            "control_url": f"http://127.0.0.1:{config.control_port}",
            "ports": {
                "winrm_http": config.winrm_http_port,
                "winrm_https": config.winrm_https_port,
                "control": config.control_port,
                "boot_http": config.boot_http_port,
                "wol": config.wol_port,
                "hypervisor": config.hypervisor_port,
                "redfish": config.redfish_port,
            },
            "inventory": {
                s: str(fleet.inventory_dir(lab_dir) / f"{s}.yml") for s in sorted({h.site for h in hosts})
            },
            "state_dir": str(fleet.secrets_dir(lab_dir)),
            "ca_bundle": str(ca.bundle_path),
            "ready": False,
            "simulated": True,
            "simulated_durations": config.simulated_durations(),
            "restart_seconds": config.restart_seconds,  # for tools that wait out a twin's restart
        }
        _write_info(lab_dir, info)
        # Seeding ~6 ms per vault file: after the listeners are up, still before "ready".
        await asyncio.to_thread(fleet.seed_secrets, lab_dir, passwords)
        await asyncio.to_thread(
            fleet.seed_domain_join,
            lab_dir,
            sorted({h.site for h in hosts}),
            config.domain_admin_user,
            config.domain_admin_password,
        )
        await asyncio.to_thread(self._reimage.seed_secrets)  # hypervisor token, BMC credential
        info["ready"] = True
        info["seconds_to_ready"] = round(time.monotonic() - self._started, 2)
        _write_info(lab_dir, info)
        self.ready = True
        log.info("%s %d twins ready in %.1f s", BANNER, len(records), info["seconds_to_ready"])
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        await self._stop.wait()
        control.close()
        await self.shutdown()

    async def shutdown(self) -> None:
        if self._reimage is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._reimage.stop)
        if self.winrm is not None:
            await self.winrm.stop()
        if self.lab is not None:
            self.lab.store.close()
        info = info_path(self.options.lab_dir.resolve())
        info.unlink(missing_ok=True)

    # -- control API ----------------------------------------------------------------------------

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            if request is None:
                return
            try:
                if request.path == "/power":  # boots fetch from the boot server: off the event loop
                    status, payload = await asyncio.to_thread(
                        self._route, request.method, request.path, request.body
                    )
                else:
                    status, payload = self._route(request.method, request.path, request.body)
            except ConfigError as exc:
                status, payload = 400, {"error": str(exc)}
            body = json.dumps(payload).encode()
            writer.write(
                _response(
                    status,
                    "OK" if status == 200 else "Error",
                    body,
                    [("Content-Type", "application/json"), ("Connection", "close")],
                )
            )
            await writer.drain()
        except Exception:
            log.exception("control API error")
        finally:
            writer.close()

    def _route(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        assert self.lab is not None and self.winrm is not None
        lab = self.lab
        if method == "GET" and path == "/status":
            by_name = phases(lab.config.lab_dir)
            twins = [
                {
                    "name": n,
                    "site": r.site,
                    "address": r.address,
                    "kind": r.kind,
                    "platform": r.platform,
                    "phase": by_name.get(n, "unknown"),
                    "faults": sorted(lab.faults.get(n, {})),
                }
                for n, r in sorted(lab.twins.items())
            ]
            return 200, {
                "ready": self.ready,
                "simulated": True,
                "twins": twins,
                "counts": dict(Counter(t["phase"] for t in twins)),
            }
        if method == "GET" and path == "/requests":
            return 200, {n: self.winrm.request_count(n) for n in lab.twins}
        if method == "GET" and path == "/faults":
            return 200, lab.faults
        if method == "GET" and path.startswith("/twins/"):
            name = path.removeprefix("/twins/")
            if name not in lab.twins:
                return 404, {"error": f"no twin named {name!r} in this lab"}
            state = json.loads(lab.state(name).to_json())
            for user in state.get("users", {}).values():  # never hand out a password, even a simulated one
                user["password"] = "***" if user.get("password") else ""
            for protector in state.get("bitlocker", {}).get("protectors", []):  # recovery passwords too
                if protector.get("password"):
                    protector["password"] = "***"
            return 200, state
        data = json.loads(body or b"{}")
        if method == "POST" and path == "/faults":
            raw = data.get("faults", {})
            checked = {
                host: {
                    name: faults_mod.validate(host, name, params, lab.twins) for name, params in named.items()
                }
                for host, named in raw.items()
            }
            faults_mod.apply(lab.faults, checked)
            return 200, lab.faults
        if method == "POST" and path == "/faults/clear":
            faults_mod.clear(lab.faults, data["host"], data.get("name"))
            return 200, lab.faults
        if method == "POST" and path == "/power":
            # The lab's power button: someone at the machine presses it (or holds it to force off).
            host, action = data.get("host", ""), data.get("action", "")
            if host not in lab.twins or action not in ("on", "off"):
                return 400, {"error": f"power needs a twin of this lab and on|off, got {host!r} {action!r}"}
            if action == "off":
                self._reimage.imager.power_off(host, via="power-button")
                return 200, {"host": host, "booted": "off"}
            if self._reimage.imager.is_on(host):
                return 409, {"error": f"{host} is already on"}
            return 200, {"host": host, "booted": self._reimage.imager.boot(host, True, "power-button")}
        if method == "POST" and path == "/shutdown":
            asyncio.get_running_loop().call_soon(self._stop.set)
            return 200, {"stopping": True}
        return 404, {"error": f"no such control endpoint {method} {path}"}


# -- client side (CLI, tests) -------------------------------------------------------------------


class LabClient:
    """Talks to a running lab's control API (found through `<lab_dir>/daemon.json`)."""

    def __init__(self, lab_dir: Path) -> None:
        self.lab_dir = lab_dir
        path = info_path(lab_dir)
        if not path.exists():
            raise RebuildError(
                f"no lab running in {lab_dir} ({path} not found): start one with `rebuild lab up`"
            )
        self.info: dict[str, Any] = json.loads(path.read_text())

    def call(self, method: str, path: str, payload: Any = None, timeout: float = 30) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", int(self.info["ports"]["control"]), timeout=timeout)
        try:
            body = json.dumps(payload).encode() if payload is not None else None
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = json.loads(response.read() or b"null")
        except OSError as exc:
            raise RebuildError(f"lab in {self.lab_dir} does not answer on its control port: {exc}") from None
        finally:
            conn.close()
        if response.status != 200:
            raise RebuildError(f"lab control {method} {path}: {data.get('error', data)}")
        return data

    def status(self) -> dict[str, Any]:
        return dict(self.call("GET", "/status"))

    def requests(self) -> dict[str, int]:
        return dict(self.call("GET", "/requests"))

    def set_faults(self, faults: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
        return dict(self.call("POST", "/faults", {"faults": faults}))

    def set_fault(self, host: str, name: str, **params: Any) -> dict[str, Any]:
        return self.set_faults({host: {name: params}})

    def clear_fault(self, host: str, name: str | None = None) -> dict[str, Any]:
        return dict(self.call("POST", "/faults/clear", {"host": host, "name": name}))

    def faults(self) -> dict[str, Any]:
        return dict(self.call("GET", "/faults"))

    def power(self, host: str, action: str) -> dict[str, Any]:
        """Press a twin's power button (on: it boots as its firmware says, network first)."""
        return dict(self.call("POST", "/power", {"host": host, "action": action}))

    def twin(self, name: str) -> dict[str, Any]:
        """A twin's whole state (TwinState as JSON), history of lab events included."""
        return dict(self.call("GET", f"/twins/{name}"))


def up(options: DaemonOptions, timeout: float = 300.0) -> dict[str, Any]:
    """Start the daemon in the background and wait until it is ready; returns daemon.json."""
    lab_dir = options.lab_dir.resolve()
    lab_dir.mkdir(parents=True, exist_ok=True)
    if info_path(lab_dir).exists():
        running = json.loads(info_path(lab_dir).read_text())
        if _alive(int(running.get("pid", 0))):
            raise RebuildError(
                f"a lab is already running in {lab_dir} (pid {running['pid']}): `rebuild lab down` first"
            )
        info_path(lab_dir).unlink()
    if not options.register.exists():
        raise ConfigError(f"register {options.register} not found")
    argv = [
        sys.executable,
        "-m",
        "rebuild.lab.daemon",
        "--lab-dir",
        str(lab_dir),
        "--register",
        str(options.register.resolve()),
        "--address-prefix",
        options.address_prefix,
        "--imaging-seconds",
        str(options.imaging_seconds),
        "--http-port",
        str(options.http_port),
        "--https-port",
        str(options.https_port),
        "--restart-seconds",
        str(options.restart_seconds),
    ]
    if options.site:
        argv += ["--site", options.site]
    if options.bmc_power_seconds is not None:
        argv += ["--bmc-power-seconds", str(options.bmc_power_seconds)]
    log_path = lab_dir / "daemon.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            raise RebuildError(
                f"lab daemon exited with {process.returncode}; {log_path}:\n" + "\n".join(tail)
            )
        path = info_path(lab_dir)
        if path.exists():
            with contextlib.suppress(ValueError):
                info = json.loads(path.read_text())
                if isinstance(info, dict) and info.get("ready"):
                    return dict(info)
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGTERM)
    raise RebuildError(f"lab daemon not ready after {timeout:.0f} s; see {log_path}")


def _alive(pid: int) -> bool:
    """Is the process running? A zombie (exited, not yet reaped by its parent) is not."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it
            return False
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def down(lab_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the lab in lab_dir cleanly. False when none was running."""
    path = info_path(lab_dir)
    if not path.exists():
        return False
    info = json.loads(path.read_text())
    pid = int(info.get("pid", 0))
    with contextlib.suppress(RebuildError):
        LabClient(lab_dir).call("POST", "/shutdown", timeout=5)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        time.sleep(1)
    path.unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rebuild.lab.daemon", description=BANNER)
    parser.add_argument("--lab-dir", type=Path, required=True)
    parser.add_argument("--register", type=Path, required=True)
    parser.add_argument("--site")
    parser.add_argument("--address-prefix", default="127.20")
    parser.add_argument("--imaging-seconds", type=float, default=5.0)
    parser.add_argument("--http-port", type=int, default=5985)
    parser.add_argument("--https-port", type=int, default=5986)
    parser.add_argument("--bmc-power-seconds", type=int, default=None)
    parser.add_argument("--restart-seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = DaemonOptions(
        args.lab_dir,
        args.register,
        args.site,
        args.address_prefix,
        args.imaging_seconds,
        args.http_port,
        args.https_port,
        args.bmc_power_seconds,
        args.restart_seconds,
    )
    daemon = LabDaemon(options)
    try:
        asyncio.run(daemon.run())
    except RebuildError as exc:
        log.error("lab daemon cannot start: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
