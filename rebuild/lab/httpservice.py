"""A lab HTTP service (boot server, hypervisor API) on a loopback port, in a thread of its own."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Any, Self


class OwnedServer(ThreadingHTTPServer):
    """The HTTP server; handlers reach the service that owns it through `owner`."""

    daemon_threads = True
    owner: Any


class LoopbackHttpService:
    """Start/stop, port and URL of one lab HTTP server; subclasses call `_serve` in __init__."""

    _httpd: OwnedServer
    _thread: threading.Thread

    def _serve(self, server: OwnedServer, thread_name: str) -> None:
        server.owner = self
        self._httpd = server
        self._thread = threading.Thread(target=server.serve_forever, name=thread_name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
