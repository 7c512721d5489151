"""The lab services that reimage a SIMULATED twin, running.

`start(lab)` brings up the lab's reimage paths and returns an object with `.stop()`:
the HTTP boot server, the Wake-on-LAN receiver, the hypervisor API and the Redfish BMCs
(sushy-emulator), all driving one `Imager` (`rebuild.lab.imaging`: how a twin boots and
reinstalls). Actual ports are written back into `lab.config` so the inventory overlay can
point at them; `endpoints()` lists them.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from typing import Any

from rebuild.lab.bootserver import BootServer
from rebuild.lab.context import Lab
from rebuild.lab.fleet import product_store
from rebuild.lab.hypervisor import HypervisorApi
from rebuild.lab.images import ensure_repository
from rebuild.lab.imaging import Imager, Scheduler, Stoppable
from rebuild.lab.redfish import RedfishBmcs
from rebuild.lab.state import Phase
from rebuild.lab.wol import WolListener


class ReimageServices:
    """The lab's reimage paths, running. `stop()` ends them all (sushy-emulator included)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        cfg = lab.config
        logs = cfg.lab_dir / "logs"
        self.images = ensure_repository(cfg.lab_dir)
        self._stoppers: list[Stoppable] = []
        try:
            self.scheduler = Scheduler()
            self._stoppers.append(self.scheduler)
            self.boot = BootServer(cfg.lab_dir / "boot", logs / "bootserver.log", cfg.boot_http_port).start()
            self._stoppers.append(self.boot)
            # The image share's read-only account (a rehearsal's site secret image_share_*).
            if not cfg.image_share_password:
                cfg.image_share_password = secrets.token_urlsafe(18)
            self.share_user, self.share_password = cfg.image_share_user, cfg.image_share_password
            self.imager = Imager(lab, self.boot.url, self.scheduler, (self.share_user, self.share_password))
            self.wol = WolListener(lab, self._wake, logs / "wol.log", cfg.wol_port, self._wol_ignores).start()
            self._stoppers.append(self.wol)
            self.hypervisor = HypervisorApi(lab, self.imager, cfg.hypervisor_port).start()
            self._stoppers.append(self.hypervisor)
            self.redfish = RedfishBmcs(lab, self.imager, self.scheduler, cfg.redfish_port).start()
            self._stoppers.append(self.redfish)
        except BaseException:
            self.stop()
            raise
        cfg.boot_http_port = self.boot.port
        cfg.wol_port = self.wol.port
        cfg.hypervisor_port = self.hypervisor.port
        cfg.redfish_port = self.redfish.port

    def _wol_ignores(self, name: str) -> str:
        """A real network card wakes only a machine that is off; a running one ignores the packet."""
        phase = self.lab.state(name).phase
        if phase == Phase.IMAGING:
            return "machine is on (installing)"
        if phase != Phase.OFF:
            return f"machine is on ({phase})"
        return ""

    def _wake(self, name: str) -> None:
        self.imager.boot(name, True, "wol")

    def endpoints(self) -> dict[str, Any]:
        """Values the lab's inventory overlay needs (per host: `redfish.system_id`). No secrets."""
        cfg = self.lab.config
        return {
            "rebuild_pxe_root": str((cfg.lab_dir / "boot").resolve()),
            "rebuild_boot_server": "localhost",
            "rebuild_boot_url": self.boot.url,
            # Windows Setup reads the image from this share; the lab resolves it under <lab_dir>.
            "rebuild_image_share": "\\\\rebuild-lab\\images-share",
            "rebuild_wol_broadcast": "127.0.0.1",
            "rebuild_wol_port": self.wol.port,
            "rebuild_hypervisor_url": self.hypervisor.url,
            "rebuild_bmc_address": self.redfish.url,
            "rebuild_image_catalogue": str((cfg.lab_dir / "images.yml").resolve()),
        }

    def site_secrets(self) -> dict[str, dict[str, str]]:
        """Secret store entries a rehearsal needs: `site-<site>` -> {hypervisor_token, bmc_user, ...}.

        The product reads these from the secret store (never the inventory);
        the lab daemon writes these with `SecretStore.put(entry, value, name=...)`.
        """
        found: dict[str, dict[str, str]] = {}
        for twin in self.lab.twins.values():
            entry = found.setdefault(f"site-{twin.site}", {})
            entry["image_share_user"] = self.share_user
            entry["image_share_password"] = self.share_password
            if twin.platform == "virtual":
                entry["hypervisor_token"] = self.hypervisor.token
            elif twin.kind == "server":
                entry["bmc_user"] = self.redfish.username
                entry["bmc_password"] = self.redfish.password
        return {site: values for site, values in sorted(found.items()) if values}

    def seed_secrets(self) -> None:
        """Write `site_secrets()` into the rehearsal's secret store (the one the fleet seeds)."""
        store = product_store(self.lab.config.lab_dir)
        for entry, values in self.site_secrets().items():
            for key, value in values.items():
                store.put(entry, value, key)

    def stop(self) -> None:
        # In parallel: each listener takes up to its poll interval to notice.
        def quietly(stopper: Stoppable) -> None:
            with contextlib.suppress(Exception):
                stopper.stop()

        clock = getattr(self, "scheduler", None)
        threads = [threading.Thread(target=quietly, args=(s,)) for s in self._stoppers if s is not clock]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=15)
        if clock is not None:
            quietly(clock)
        self._stoppers.clear()


def start(lab: Lab) -> ReimageServices:
    """Start the lab's reimage paths for this lab; call `.stop()` on the result to end them."""
    return ReimageServices(lab)
