#!/usr/bin/python
"""Controller-side module: wake a PC with a Wake-on-LAN magic packet."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rebuild_wake_on_lan
short_description: Send a Wake-on-LAN magic packet to a PC's network
description:
  - Builds the magic packet (6 x C(FF) then 16 x the MAC address) and sends it as UDP to the
    directed broadcast address of the PC's network, so the PC powers on and network-boots.
  - Runs on the controller (delegated to C(localhost)). In check mode the packet is built but not sent.
options:
  mac:
    description: MAC address of the PC (C(aa:bb:cc:dd:ee:ff), C(-) or no separators accepted).
    type: str
    required: true
  broadcast:
    description: Address the packet is sent to (the network's directed broadcast).
    type: str
    required: true
  port:
    description: UDP port (7 or 9 by convention).
    type: int
    default: 9
  count:
    description: How many packets to send (UDP may drop one).
    type: int
    default: 1
author: rebuild
"""

EXAMPLES = r"""
- name: Wake the PC
  rebuild_wake_on_lan:
    mac: "{{ rebuild_mac }}"
    broadcast: "{{ rebuild_wol_broadcast }}"
    port: "{{ rebuild_wol_port | default(9) }}"
  delegate_to: localhost
"""

RETURN = r"""
mac:
  description: The normalised MAC the packet wakes.
  returned: success
  type: str
sent:
  description: Packets sent (0 in check mode).
  returned: success
  type: int
"""

import re
import socket

from ansible.module_utils.basic import AnsibleModule


def magic_packet(mac: str) -> bytes:
    digits = re.sub(r"[^0-9a-fA-F]", "", mac)
    if len(digits) != 12 or len(re.sub(r"[0-9a-fA-F:.-]", "", mac)) != 0:
        raise ValueError(f"not a MAC address: {mac!r}")
    return b"\xff" * 6 + bytes.fromhex(digits) * 16


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "mac": {"type": "str", "required": True},
            "broadcast": {"type": "str", "required": True},
            "port": {"type": "int", "default": 9},
            "count": {"type": "int", "default": 1},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        packet = magic_packet(p["mac"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    mac = packet[6:12].hex(":")
    if module.check_mode:
        module.exit_json(changed=True, mac=mac, sent=0)
    sent = 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            for _ in range(max(1, p["count"])):
                sock.sendto(packet, (p["broadcast"], p["port"]))
                sent += 1
    except OSError as exc:
        module.fail_json(msg=f"cannot send Wake-on-LAN to {p['broadcast']}:{p['port']}: {exc}", mac=mac)
    module.exit_json(changed=True, mac=mac, sent=sent)


if __name__ == "__main__":
    main()
