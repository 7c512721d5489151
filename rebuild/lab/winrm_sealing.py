"""WinRM message encryption over plain HTTP with NTLM session security (SIMULATION of the server side).

What a Windows WinRM HTTP listener does with an NTLM-authenticated connection: bodies are
`multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted"`, each part
`<4-byte little-endian signature length><signature><sealed SOAP>` ([MS-WSMV] 2.2.9.1.1,
"Negotiate" encrypted messages), sealed and signed with the connection's NTLM session keys
([MS-NLMP] 3.4.3 Message Confidentiality, 3.4.4 Message Signature; client-to-server keys are the
"initiate" ones, server-to-client the "accept" ones; each direction keeps its own RC4 state and
sequence number). A message whose signature does not verify, or whose declared length differs,
is refused. The crypto primitives are pyspnego's.
"""

from __future__ import annotations

import hmac
import re
import struct

from spnego._ntlm_raw.crypto import rc4, rc4init, sealkey, signkey
from spnego._ntlm_raw.security import seal, sign

BOUNDARY = b"--Encrypted Boundary"
PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
CONTENT_TYPE = f'multipart/encrypted;protocol="{PROTOCOL}";boundary="Encrypted Boundary"'


class SealingError(Exception):
    """An encrypted WinRM message the listener refuses (bad framing, signature or length)."""


class NtlmSealing:
    """One NTLM-authenticated connection's session security, server side."""

    def __init__(self, flags: int, session_key: bytes) -> None:
        self._flags = flags
        self._in_handle = rc4init(sealkey(flags, session_key, "initiate"))
        self._in_sign = signkey(flags, session_key, "initiate")
        self._in_seq = 0
        self._out_handle = rc4init(sealkey(flags, session_key, "accept"))
        self._out_sign = signkey(flags, session_key, "accept")
        self._out_seq = 0

    def open(self, body: bytes) -> bytes:
        """The SOAP message inside a client's multipart/encrypted body."""
        parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
        if len(parts) != 2:
            raise SealingError("one encrypted part (header + octet stream) expected")
        header, payload = parts
        if PROTOCOL.encode() not in header:
            raise SealingError(f"encrypted part is not {PROTOCOL}")
        length = re.search(rb"Length=(\d+)", header)
        if length is None:
            raise SealingError("encrypted part has no OriginalContent Length")
        payload = payload.removesuffix(BOUNDARY + b"--\r\n")
        payload = payload.removeprefix(b"\tContent-Type: application/octet-stream\r\n")
        if len(payload) < 4:
            raise SealingError("encrypted part too short")
        size = struct.unpack("<I", payload[:4])[0]
        signature, sealed = payload[4 : 4 + size], payload[4 + size :]
        message = rc4(self._in_handle, sealed)
        expected = sign(self._flags, self._in_handle, self._in_sign, self._in_seq, message)
        self._in_seq += 1
        if not hmac.compare_digest(expected, signature):
            raise SealingError("message signature does not verify")
        if len(message) != int(length.group(1)):
            raise SealingError("decrypted length differs from OriginalContent Length")
        return message

    def close(self, message: bytes) -> bytes:
        """A server message as a multipart/encrypted body (CONTENT_TYPE)."""
        sealed, signature = seal(self._flags, self._out_handle, self._out_sign, self._out_seq, message)
        self._out_seq += 1
        return (
            BOUNDARY + b"\r\n"
            b"\tContent-Type: " + PROTOCOL.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(message)).encode()
            + b"\r\n"
            + BOUNDARY
            + b"\r\n"
            b"\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<I", len(signature))
            + signature
            + sealed
            + BOUNDARY
            + b"--\r\n"
        )
