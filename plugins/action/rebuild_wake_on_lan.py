"""Action plugin for rebuild_wake_on_lan: send the magic packet in-process when it runs on the controller.

The module (plugins/modules/rebuild_wake_on_lan.py) is what runs on a relay host (Wake-on-LAN
broadcasts do not cross routers, so a site may delegate to a host on the PCs' network). When the
task runs on the controller itself (local connection), starting a Python module per PC only costs
CPU: this plugin builds and sends the same packet directly - for ~1,500 PCs that is minutes saved.
Same arguments, same result, same check mode.
"""

from __future__ import annotations

import re
import socket

from ansible.plugins.action import ActionBase

_VALID = frozenset(("mac", "broadcast", "port", "count"))


def magic_packet(mac: str) -> bytes:
    """6 x FF then 16 x the MAC (the same rule as the module)."""
    if re.fullmatch(r"[0-9a-fA-F]{2}([:.-]?[0-9a-fA-F]{2}){5}", mac.strip()) is None:
        raise ValueError(f"not a MAC address: {mac!r}")
    return b"\xff" * 6 + bytes.fromhex(re.sub(r"[^0-9a-fA-F]", "", mac)) * 16


class ActionModule(ActionBase):
    _VALID_ARGS = _VALID

    def run(self, tmp=None, task_vars=None):  # type: ignore[no-untyped-def]
        result = super().run(tmp, task_vars)
        if getattr(self._connection, "transport", "") not in ("local", "ansible.builtin.local"):
            # A relay host sends it: run the module there.
            result.update(self._execute_module(module_name="rebuild_wake_on_lan", task_vars=task_vars))
            return result
        args = self._task.args
        unknown = set(args) - _VALID
        if unknown:
            return {**result, "failed": True, "msg": f"Unsupported parameters: {', '.join(sorted(unknown))}"}
        if not args.get("mac") or not args.get("broadcast"):
            return {**result, "failed": True, "msg": "missing required arguments: mac, broadcast"}
        try:
            packet = magic_packet(str(args["mac"]))
            port, count = int(args.get("port", 9)), max(1, int(args.get("count", 1)))
        except ValueError as exc:
            return {**result, "failed": True, "msg": str(exc)}
        mac = packet[6:12].hex(":")
        if self._task.check_mode:
            return {**result, "changed": True, "mac": mac, "sent": 0}
        sent = 0
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                for _ in range(count):
                    sock.sendto(packet, (str(args["broadcast"]), port))
                    sent += 1
        except OSError as exc:
            return {
                **result,
                "failed": True,
                "mac": mac,
                "msg": f"cannot send Wake-on-LAN to {args['broadcast']}:{port}: {exc}",
            }
        return {**result, "changed": True, "mac": mac, "sent": sent}
