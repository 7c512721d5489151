"""The lab's PXE boot server: HTTP for iPXE, serving `<lab_dir>/boot/` (the pxe_root).

The reimage role writes `mac-<aabbccddeeff>.ipxe` and `unattend/<aabbccddeeff>.xml` here;
iPXE (qemu's real firmware, or a twin's simulated network boot) fetches them over HTTP.
It is a plain read-only file server: GET/HEAD only, no listing, nothing outside the root.
Every request is logged (JSON lines in `<lab_dir>/logs/bootserver.log` and in memory) with
its query, so a test can show which per-MAC script a machine fetched. Paths only are
logged: answer files carry secrets and their content never reaches a log.

`boot.ipxe` is the script a DHCP server would hand out as bootfile: it chains the per-MAC
entry and falls back to the local disk (`exit`) when there is none, as in a real
iPXE deployment.

The boot server contract (docs/contracts.md, docs/threat-model.md): a per-MAC entry whose
header has a `# rebuild-entry:` line is honoured as follows (an entry without it is served like
any static file, as a plain web server would - which is how the old product looped):
- `one-shot`: the entry is served once; afterwards the same entry (same file) answers an iPXE
  script that boots the local disk (`exit`, ipxe.org/cmd/exit: back to the firmware, which boots
  its next boot option), so a PXE-first machine does not reinstall at every Setup reboot;
- `client=<address>`: the entry and the host's files (`unattend/<mac>.*`) are served only to that
  address (403 for anyone else);
- a host's files are served only while its entry exists (404 once the role removed it).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from rebuild.lab.httpservice import LoopbackHttpService, OwnedServer

DEFAULT_SCRIPT = """#!ipxe
# SIMULATED lab boot server (rebuild): the bootfile a DHCP server would hand out.
# A machine boots its per-MAC entry when the reimage role wrote one; otherwise its disk.
# (hexhyp, not the colon form: iPXE would read a relative URI with a colon as a scheme.)
chain mac-${mac:hexraw}.ipxe?mac=${net0/mac:hexhyp} || exit
"""


# The WinPE boot files a site stages on its boot server (wimboot, BCD, boot.sdi, boot.wim): here
# SIMULATED stand-ins at the paths the reimage role's iPXE entry loads, so a missing one fails
# the boot as it would. What WinPE runs (winpeshl.ini and the rest) is the product's to write.
# They are not bootable (qemu's iPXE refuses wimboot: Exec format error).
_STANDIN = "SIMULATED {} (rebuild lab stand-in, not bootable)\n"
WINPE_STANDINS = {
    "winpe/wimboot": _STANDIN.format("wimboot"),
    "winpe/boot/bcd": _STANDIN.format("BCD"),
    "winpe/boot/boot.sdi": _STANDIN.format("boot.sdi"),
    "winpe/sources/boot.wim": _STANDIN.format("WinPE boot.wim"),
}


# A one-shot entry's second and later fetches: boot the local disk (ipxe.org/cmd/exit).
SERVED_ONCE_SCRIPT = """#!ipxe
# SIMULATED lab boot server (rebuild): this one-shot entry was already served; boot the local disk.
exit
"""

_ENTRY_HEADER = "# rebuild-entry:"
_HOST_FILE = re.compile(
    r"^(?:mac-(?P<entry>[0-9a-f]{12})\.ipxe|unattend/(?P<file>[0-9a-f]{12})\.[A-Za-z0-9.]+)$"
)


@dataclass(frozen=True)
class EntryRules:
    """What an entry's `# rebuild-entry:` header asks of the boot server."""

    declared: bool = False
    one_shot: bool = False
    client: str = ""


def entry_rules(text: str) -> EntryRules:
    for line in text.splitlines()[:10]:
        if line.startswith(_ENTRY_HEADER):
            words = line[len(_ENTRY_HEADER) :].split()
            clients = [w.split("=", 1)[1] for w in words if w.startswith("client=")]
            return EntryRules(True, "one-shot" in words, clients[0] if clients else "")
    return EntryRules()


def mac_hexhyp(mac: str) -> str:
    """aa:bb:cc:dd:ee:ff -> aa-bb-cc-dd-ee-ff (iPXE's ${mac:hexhyp}, as boot.ipxe sends it)."""
    return mac_hexraw(mac)[0:2] + "".join("-" + mac_hexraw(mac)[i : i + 2] for i in range(2, 12, 2))


def mac_hexraw(mac: str) -> str:
    """aa:bb:cc:dd:ee:ff -> aabbccddeeff (iPXE's ${mac:hexraw})."""
    return mac.replace(":", "").replace("-", "").lower()


class _Handler(BaseHTTPRequestHandler):
    server: BootServer._Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are logged as JSON by BootServer, not on stderr

    def _serve(self, body: bool) -> None:
        split = urlsplit(self.path)
        rel = unquote(split.path).lstrip("/")
        status, data = self.server.owner.resolve(rel, self.client_address[0])
        self.server.owner.log_request_entry(
            self.client_address[0], self.command, split.path, split.query, status
        )
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if status == 200 else "text/plain; charset=utf-8")
        reason = "forbidden" if status == 403 else "not found"
        payload = data if status == 200 else f"{status} {reason}\n".encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def do_GET(self) -> None:
        self._serve(True)

    def do_HEAD(self) -> None:
        self._serve(False)

    def _refuse(self) -> None:
        self.server.owner.log_request_entry(self.client_address[0], self.command, self.path, "", 405)
        self.send_response(405)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse


class BootServer(LoopbackHttpService):
    """HTTP boot server on 127.0.0.1:<port> (0 = a free port) serving `root`."""

    class _Server(OwnedServer):
        owner: BootServer

    def __init__(self, root: Path, log_path: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "unattend").mkdir(exist_ok=True)
        default = self.root / "boot.ipxe"
        default.write_text(DEFAULT_SCRIPT)
        for rel, content in WINPE_STANDINS.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.requests: list[dict[str, Any]] = []
        self._served: set[tuple[str, int, int]] = (
            set()
        )  # one-shot entries already served (path, inode, mtime)
        self._lock = threading.Lock()
        self._serve(BootServer._Server((host, port), _Handler), "lab-bootserver")

    def resolve(self, rel: str, client: str = "") -> tuple[int, bytes]:
        """(status, content) for a path relative to the root; never outside it, no listing."""
        if not rel or "\x00" in rel:
            return 404, b""
        target = (self.root / rel).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return 404, b""
        host = _HOST_FILE.match(target.relative_to(self.root).as_posix())
        if host is None:
            return self._read(target)
        mac = host.group("entry") or host.group("file")
        entry_path = self.root / f"mac-{mac}.ipxe"
        status, entry = self._read(entry_path)
        if status != 200:
            return 404, b""  # a host's files only while its entry exists
        rules = entry_rules(entry.decode("utf-8", "replace"))
        if rules.client and client != rules.client:
            return 403, b""
        if host.group("file"):
            return self._read(target)
        if rules.one_shot:
            try:
                st = entry_path.stat()
            except OSError:
                return 404, b""
            key = (str(entry_path), st.st_ino, st.st_mtime_ns)
            with self._lock:
                if key in self._served:
                    return 200, SERVED_ONCE_SCRIPT.encode()
                self._served.add(key)
        return 200, entry

    @staticmethod
    def _read(path: Path) -> tuple[int, bytes]:
        try:
            return 200, path.read_bytes()
        except OSError:
            return 404, b""

    def log_request_entry(self, client: str, method: str, path: str, query: str, status: int) -> None:
        entry = {
            "at": time.time(),
            "client": client,
            "method": method,
            "path": path,
            "query": {k: v[0] if len(v) == 1 else v for k, v in parse_qs(query).items()},
            "status": status,
        }
        with self._lock:
            self.requests.append(entry)
            with self.log_path.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")

    def requests_for(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]
