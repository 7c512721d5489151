"""The verification server's client and wire format (the server is rebuild.verify.server).

One request per connection, frames of a 4-byte big-endian length then the payload.
Request: JSON {host, kind, junit, timeout_s, config}. Reply: JSON {rc, timed_out, error}, then
the child's combined stdout and stderr as raw bytes. The configuration carries the password:
it goes only to a socket whose folder is private to this user (check_socket_folder).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOCKET_ENV = "REBUILD_VERIFY_SOCKET"  # how the site run tells rebuild_verify where the server is
_LENGTH = struct.Struct(">I")
_MAX_FRAME = 64 * 1024 * 1024
CONNECT_TIMEOUT_S = 10.0
SERVER_GRACE_S = 30.0  # the server kills at the request's deadline; this guards against the server


@dataclass(frozen=True)
class ChildOutcome:
    """How one host's pytest ended, whichever process ran it."""

    returncode: int | None  # None: killed on its deadline
    output: bytes  # stdout and stderr together
    timed_out: bool


class ServerUnavailable(Exception):
    """The server could not be reached or could not answer; the caller runs pytest itself."""


def send_frame(conn: socket.socket, payload: bytes) -> None:
    conn.sendall(_LENGTH.pack(len(payload)) + payload)


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = conn.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            raise ConnectionError("connection closed mid-frame")
        chunks += chunk
    return bytes(chunks)


def recv_frame(conn: socket.socket) -> bytes:
    (size,) = _LENGTH.unpack(_recv_exact(conn, _LENGTH.size))
    if size > _MAX_FRAME:
        raise ConnectionError(f"frame of {size} bytes refused")
    return _recv_exact(conn, size)


def check_socket_folder(path: Path) -> None:
    """The password is about to be sent: the socket's folder must be ours and private (0700),
    so no other local user can have put a listener there."""
    try:
        info = os.stat(path.parent)
    except OSError as exc:
        raise ServerUnavailable(f"verification server socket {path}: {exc.strerror}") from None
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise ServerUnavailable(
            f"verification server socket folder {path.parent} is not private to this user (0700)"
        )


def verify_through_server(
    path: Path, *, host: str, kind: str, junit: Path, timeout_s: float, config: dict[str, Any]
) -> ChildOutcome:
    """One host's pytest in a fork of the server; ServerUnavailable when the server cannot say."""
    check_socket_folder(path)
    request = json.dumps(
        {"host": host, "kind": kind, "junit": str(junit), "timeout_s": timeout_s, "config": config}
    ).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(CONNECT_TIMEOUT_S)
            conn.connect(str(path))
            send_frame(conn, request)
            del request
            conn.settimeout(timeout_s + SERVER_GRACE_S)
            head = json.loads(recv_frame(conn))
            output = recv_frame(conn)
    except (OSError, ValueError) as exc:  # ConnectionError and socket.timeout are OSErrors
        raise ServerUnavailable(f"verification server at {path}: {exc}") from None
    if head.get("error"):
        raise ServerUnavailable(f"verification server at {path}: {head['error']}")
    rc = head.get("rc")
    return ChildOutcome(None if rc is None else int(rc), output, bool(head.get("timed_out")))
