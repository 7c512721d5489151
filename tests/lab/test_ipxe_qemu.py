"""A real iPXE firmware (Debian's ipxe-qemu ROM) network-boots in qemu against the lab's boot server.

qemu runs under TCG with user networking, restricted (`restrict=on`: the guest reaches
nothing but its own DHCP/TFTP and one forwarded address, whose connections a small relay
process carries to the boot server on 127.0.0.1; qemu's guestfwd to a tcp: chardev would
carry only the first connection). DHCP hands iPXE a TFTP bootfile
that chains the boot server's `boot.ipxe` over HTTP; that script chains the per-MAC entry
the reimage role rendered. The boot server's log must show iPXE fetching exactly that
script, with the VM's MAC in the query, and then what the script loads (wimboot). The lab's
wimboot is a SIMULATED stand-in, so iPXE stops there; qemu is then killed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reimage_helpers import make_lab, render_entry

from rebuild.lab import reimage
from rebuild.lab.bootserver import mac_hexhyp, mac_hexraw

pytestmark = pytest.mark.slow

GUEST_BOOT_SERVER = "10.0.2.100:8080"  # inside qemu's private user network, forwarded to 127.0.0.1
TIME_LIMIT = 120.0  # TCG on a shared 2-core machine: iPXE fetched after ~5 s when idle

# One process per guest connection (qemu guestfwd cmd:), carrying it to the boot server.
RELAY = """
import os, selectors, socket, sys
# From the twin's own loopback address: the boot server serves a host's entry only to it.
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), source_address=(sys.argv[2], 0))
sel = selectors.DefaultSelector()
sel.register(0, selectors.EVENT_READ)
sel.register(sock, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj == 0:
            data = os.read(0, 65536)
            if not data:
                sys.exit(0)  # iPXE closed (or qemu died): nothing more to carry
            sock.sendall(data)
        else:
            data = sock.recv(65536)
            if not data:
                sys.exit(0)
            os.write(1, data)
"""


def test_real_ipxe_fetches_the_per_mac_script(tmp_path: Path) -> None:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        print("SKIP reason: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86 ipxe-qemu)")
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86 ipxe-qemu)")
    lab = make_lab(tmp_path, physical_servers=False)
    svc = reimage.start(lab)
    proc: subprocess.Popen[bytes] | None = None
    try:
        name = "ARL-PC-0001"
        mac = lab.twins[name].mac
        render_entry(lab, name, f"http://{GUEST_BOOT_SERVER}", "Qemu-Test-Secret-1")
        tftp = tmp_path / "tftp"
        tftp.mkdir()
        # What a site's DHCP/TFTP hands out: a tiny script chaining the boot server's boot.ipxe.
        (tftp / "undionly.ipxe").write_text(f"#!ipxe\nchain http://{GUEST_BOOT_SERVER}/boot.ipxe\n")
        (tmp_path / "relay.py").write_text(RELAY)
        netdev = (
            f"user,id=n0,restrict=on,tftp={tftp},bootfile=undionly.ipxe,"
            f"guestfwd=tcp:{GUEST_BOOT_SERVER}-cmd:{sys.executable} {tmp_path / 'relay.py'} "
            f"{svc.boot.port} {lab.twins[name].address}"
        )
        command = [
            qemu, "-machine", "pc,accel=tcg", "-m", "64", "-nodefaults", "-display", "none",
            "-serial", "none", "-monitor", "none", "-no-reboot",
            "-netdev", netdev, "-device", f"e1000,netdev=n0,mac={mac}", "-boot", "n",
        ]  # fmt: skip
        log = (tmp_path / "qemu.log").open("wb")
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        script = f"/mac-{mac_hexraw(mac)}.ipxe"
        deadline = time.time() + TIME_LIMIT
        while time.time() < deadline and proc.poll() is None:
            if svc.boot.requests_for(script) and svc.boot.requests_for("/winpe/wimboot"):
                break
            time.sleep(0.5)
        assert proc.poll() is None, f"qemu exited early: {(tmp_path / 'qemu.log').read_text()}"
        fetched = svc.boot.requests_for(script)
        assert fetched, f"iPXE did not fetch {script} within {TIME_LIMIT} s; requests: {svc.boot.requests}"
        assert fetched[0]["query"] == {"mac": mac_hexhyp(mac)} and fetched[0]["status"] == 200
        assert svc.boot.requests_for("/boot.ipxe")[0]["at"] <= fetched[0]["at"]
        # iPXE ran that script: it asked for the wimboot the script names, right after.
        wimboot = svc.boot.requests_for("/winpe/wimboot")
        assert wimboot and wimboot[0]["at"] >= fetched[0]["at"]
        # Only the boot server was reached, and only by this VM (from the address its entry names).
        assert {r["client"] for r in svc.boot.requests} == {lab.twins[name].address}
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
        svc.stop()
        lab.store.close()
