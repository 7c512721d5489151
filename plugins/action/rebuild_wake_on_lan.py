"""Action plugin for rebuild_wake_on_lan: send the magic packet in-process when it runs on the controller.

The module (plugins/modules/rebuild_wake_on_lan.py) is what runs on a relay host (Wake-on-LAN
broadcasts do not cross routers, so a site may delegate to a host on the PCs' network). When the
task runs on the controller itself (local connection), starting a Python module per PC only costs
CPU: this plugin builds and sends the same packet directly - for ~1,500 PCs that is minutes saved.
Same arguments, same result, same check mode.

Options and result: plugins/modules/rebuild_wake_on_lan.py (`ansible-doc -t module rebuild_wake_on_lan`).
"""

from __future__ import annotations

import re
import socket
from typing import Any

from rebuild.ansible_action import RebuildAction


def magic_packet(mac: str) -> bytes:
    """6 x FF then 16 x the MAC (the same rule as the module)."""
    if re.fullmatch(r"[0-9a-fA-F]{2}([:.-]?[0-9a-fA-F]{2}){5}", mac.strip()) is None:
        raise ValueError(f"not a MAC address: {mac!r}")
    return b"\xff" * 6 + bytes.fromhex(re.sub(r"[^0-9a-fA-F]", "", mac)) * 16


class ActionModule(RebuildAction):
    NAME = "rebuild_wake_on_lan"

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        if getattr(self._connection, "transport", "") not in ("local", "ansible.builtin.local"):
            # A relay host sends it: run the module there.
            result: dict[str, Any] = self._execute_module(module_name=self.NAME, task_vars=task_vars)
            return result
        # The options are the documented ones (the base); required ones as the module says them.
        missing = [name for name in ("mac", "broadcast") if not args.get(name)]
        if missing:
            return {"failed": True, "msg": f"missing required arguments: {', '.join(missing)}"}
        try:
            packet = magic_packet(str(args["mac"]))
            port, count = int(args.get("port", 9)), max(1, int(args.get("count", 1)))
        except ValueError as exc:
            return {"failed": True, "msg": str(exc)}
        mac = packet[6:12].hex(":")
        if self._task.check_mode:
            return {"changed": True, "mac": mac, "sent": 0}
        sent = 0
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                for _ in range(count):
                    sock.sendto(packet, (str(args["broadcast"]), port))
                    sent += 1
        except OSError as exc:
            return {
                "failed": True,
                "mac": mac,
                "msg": f"cannot send Wake-on-LAN to {args['broadcast']}:{port}: {exc}",
            }
        return {"changed": True, "mac": mac, "sent": sent}
