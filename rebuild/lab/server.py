"""The twins' WinRM listeners: HTTP/1.1 on 5985 and HTTPS on 5986, each on its own address.

One asyncio loop carries every twin (about 3,400 listening sockets for the bundled fleet).
The transport does what HTTP.sys and the WinRM service do before WS-Man sees a request:
TLS with the twin's certificate, authentication (rebuild.lab.auth; NTLM is bound to the TCP
connection), refusing clients while the twin is not running Windows (off, imaging, failed) or
its WinRM service is stopped, and the WinRM-side injected faults (winrm_auth_refused,
drop_mid_command, slow_host). SOAP itself is rebuild.lab.wsman.

NTLM message encryption over plain HTTP (multipart/encrypted, [MS-WSMV] 2.2.9.1.1) is
rebuild.lab.winrm_sealing: an NTLM-authenticated HTTP connection may send sealed messages
without AllowUnencrypted, as Windows allows.

A restart takes `LabConfig.restart_seconds` (docs/lab-windows-rules.md, "A restart takes time"):
from the moment Windows goes down (the end of `shutdown /r /t N`'s notice, a boot from disk after
power-on or reset) the twin's listeners are closed and its open connections reset; then they
listen again. A client's connect is refused meanwhile, where Windows Firewall's stealth mode would
leave it unanswered until the client's timeout (KB 2586744): over a real restart both end as a
failed connection, which win_reboot retries alike (ansible.windows plugin_utils/_reboot.py); an
unanswered SYN would outlive the lab's shortened downtimes and reach the new boot instead.
LastBootUpTime is the moment it went down (rebuild.lab.exec.cmdlets.boot_time): the kernel
starts before the WinRM service answers (Win32_OperatingSystem).

SIMULATION limits: no Kerberos/CredSSP/certificate auth, no SPNEGO-wrapped tokens, no sealing
after Basic or over HTTPS (such bodies get a 400 saying so); no chunked bodies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from rebuild.lab.auth import AuthError, NtlmAcceptor, check_basic, service_policy, tls_server_end_point
from rebuild.lab.ca import LabCA
from rebuild.lab.context import Lab, TwinRecord
from rebuild.lab.state import LocalUser, Phase, TwinState
from rebuild.lab.winrm_sealing import CONTENT_TYPE, NtlmSealing, SealingError
from rebuild.lab.wsman import DropConnection, Executor, WinRS

log = logging.getLogger("rebuild.lab.server")

LIVE_PHASES = (Phase.COMPROMISED, Phase.CLEAN)  # phases in which a twin runs Windows and answers
_MAX_HEADER = 64 * 1024
_MAX_BODY = 4 * 1024 * 1024
_IDLE_SECONDS = 120.0  # HTTP.sys closes idle keep-alive connections after 2 minutes
_NOT_IMPLEMENTED_ENCRYPTION = (
    b"SIMULATED lab: WinRM message encryption is simulated only for NTLM over plain HTTP (the rebuild "
    b"lab does not simulate it after Basic authentication or over HTTPS)."
)


def lab_executor(lab: Lab, twin: TwinRecord) -> Executor:
    """The real command executor: rebuild.lab.exec.execute bound to this twin."""
    from rebuild.lab.exec import execute  # owned by the lab-exec part; fails loudly if missing

    return partial(execute, lab, twin)


@dataclass
class _Endpoint:
    twin: TwinRecord
    winrs: WinRS
    ssl_context: ssl.SSLContext | None = None
    binding: bytes | None = None  # tls-server-end-point data of the twin's certificate
    writers: set[asyncio.StreamWriter] = field(default_factory=set)  # its open TCP connections
    listeners: list[asyncio.Server] = field(default_factory=list)  # HTTP and HTTPS, closed while down
    back_up: asyncio.TimerHandle | None = None  # when a restarting twin listens again

    def restart(self) -> None:
        """Windows restarted: every TCP connection is reset and the shells are gone (in that order:
        whoever sees the shells gone, from another thread, sees the connections reset too)."""
        for writer in list(self.writers):
            writer.transport.abort()
        self.winrs.restart()

    @property
    def down(self) -> bool:
        return self.back_up is not None


@dataclass
class _Conn:
    https: bool
    user: LocalUser | None = None  # set once NTLM completed on this connection
    ntlm: NtlmAcceptor | None = None
    scheme: str = "Negotiate"
    sealing: NtlmSealing | None = None  # NTLM session security of this connection (HTTP)


@dataclass
class _HttpRequest:
    method: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes = b""


class _BadRequest(Exception):
    pass


async def _read_request(reader: asyncio.StreamReader) -> _HttpRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _BadRequest("incomplete request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise _BadRequest("request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, path, version = lines[0].split(" ", 2)
    except ValueError:
        raise _BadRequest("malformed request line") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest("malformed header line")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _BadRequest("chunked bodies are not supported by the lab")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest("bad Content-Length") from None
    if length < 0 or length > _MAX_BODY:
        raise _BadRequest("body too large")
    body = await reader.readexactly(length) if length else b""
    return _HttpRequest(method, path, version, headers, body)


def _response(
    status: int, reason: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None
) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", "Server: Microsoft-HTTPAPI/2.0"]
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class WinRMServer:
    """All twins' WinRM listeners in one loop. `await start()`, `await stop()`."""

    def __init__(
        self,
        lab: Lab,
        ca: LabCA | None,
        executor_factory: Callable[[Lab, TwinRecord], Executor] = lab_executor,
        *,
        operation_quota: int = 1500,
    ) -> None:
        self.lab = lab
        self.ca = ca
        self._executor_factory = executor_factory
        self._operation_quota = operation_quota
        self._endpoints: dict[str, _Endpoint] = {}
        self._reopening: set[asyncio.Task[None]] = set()  # listeners reopening after a restart
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        # name -> (the peeked state it was read from, has an HTTPS listener): the answer is read
        # again whenever the twin's state object is replaced (every write replaces it).
        self._https_listener: dict[str, tuple[TwinState, bool]] = {}

    @property
    def endpoints(self) -> dict[str, _Endpoint]:
        return self._endpoints

    def request_count(self, name: str) -> int:
        """WS-Man requests a twin answered so far (round trips, for benchmarks)."""
        return self._endpoints[name].winrs.requests

    def _endpoint(self, twin: TwinRecord) -> _Endpoint:
        winrs = WinRS(
            twin.name,
            self._executor_factory(self.lab, twin),
            shell_quota=self.lab.config.shell_quota,
            operation_quota=self._operation_quota,
        )
        endpoint = _Endpoint(twin, winrs)
        if self.ca is not None:
            issued = self.ca.twin_cert(twin.name)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(issued.cert_path, issued.key_path)
            endpoint.ssl_context = context
            leaf_pem = issued.cert_path.read_bytes().split(b"-----END CERTIFICATE-----")[0]
            leaf_der = ssl.PEM_cert_to_DER_cert(leaf_pem.decode() + "-----END CERTIFICATE-----\n")
            endpoint.binding = tls_server_end_point(leaf_der)
        return endpoint

    # Lab events after which Windows has restarted (or is gone): its WinRS shells no longer exist.
    _RESTART_EVENTS = ("boot", "power_off", "reset", "reimage")

    def _on_lab_event(self, name: str, entry: dict[str, Any]) -> None:
        """Called from whichever thread recorded the event; shells live in the loop's thread."""
        if self._loop is None or name not in self._endpoints:
            return
        endpoint = self._endpoints[name]
        event = entry.get("event")
        if event == "reboot":  # shutdown /r /t N: Windows goes down N seconds later
            delay = max(float(entry.get("delay", 0) or 0), 0.5)
            self._loop.call_soon_threadsafe(self._loop.call_later, delay, self._go_down, endpoint)
        elif event == "boot" and entry.get("source") == "disk":  # Windows starts from its disk
            self._loop.call_soon_threadsafe(self._go_down, endpoint)
        elif event in self._RESTART_EVENTS:
            self._loop.call_soon_threadsafe(endpoint.restart)
            if event == "reimage" and entry.get("status") == "done":
                # imaging_seconds is the whole install, its own restarts included: up now.
                self._loop.call_soon_threadsafe(self._come_back, endpoint)

    def _go_down(self, endpoint: _Endpoint) -> None:
        """Windows is restarting: shells and connections are gone, and nothing listens on 5985/5986
        until the WinRM service has started again, restart_seconds later (a later restart extends it)."""
        endpoint.restart()
        seconds = self.lab.config.restart_seconds
        if seconds <= 0 or self._loop is None:
            return
        if endpoint.back_up is not None:
            endpoint.back_up.cancel()
        else:
            for listener in endpoint.listeners:
                listener.close()  # the client's connect is refused (see the module docstring)
        endpoint.back_up = self._loop.call_later(seconds, self._come_back, endpoint)
        # Named without "boot": a twin's boot time is when it went down (exec.cmdlets.boot_time).
        self.lab.record(endpoint.twin.name, "winrm_stopped", reason="restarting", seconds=seconds)

    def _come_back(self, endpoint: _Endpoint) -> None:
        if endpoint.back_up is None:
            return
        endpoint.back_up.cancel()
        endpoint.back_up = None
        self.lab.record(endpoint.twin.name, "winrm_listening")
        task = asyncio.ensure_future(self._listen(endpoint))
        self._reopening.add(task)
        task.add_done_callback(self._reopening.discard)

    async def _listen(self, endpoint: _Endpoint) -> None:
        """Open the twin's listeners: HTTP, and HTTPS when it has a certificate."""
        config, twin = self.lab.config, endpoint.twin
        endpoint.listeners = [
            await asyncio.start_server(
                partial(self._serve, endpoint, False),
                host=twin.address,
                port=config.winrm_http_port,
                reuse_address=True,
                limit=_MAX_HEADER,
            )
        ]
        if endpoint.ssl_context is not None:
            endpoint.listeners.append(
                await asyncio.start_server(
                    partial(self._serve, endpoint, True),
                    host=twin.address,
                    port=config.winrm_https_port,
                    ssl=endpoint.ssl_context,
                    reuse_address=True,
                    limit=_MAX_HEADER,
                    ssl_handshake_timeout=15,
                )
            )

    async def start(self, twins: list[TwinRecord] | None = None) -> None:
        """Open both listeners of every twin (or of the given ones)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self.lab._listeners.append(self._on_lab_event)
        for twin in twins if twins is not None else list(self.lab.twins.values()):
            endpoint = self._endpoint(twin)
            self._endpoints[twin.name] = endpoint
            await self._listen(endpoint)

    async def stop(self) -> None:
        if self._on_lab_event in self.lab._listeners:
            self.lab._listeners.remove(self._on_lab_event)
        for task in list(self._reopening):
            task.cancel()
        listeners = [listener for e in self._endpoints.values() for listener in e.listeners]
        for endpoint in self._endpoints.values():
            if endpoint.back_up is not None:
                endpoint.back_up.cancel()
                endpoint.back_up = None
        for server in listeners:
            server.close()
        for writer in list(self._connections):
            writer.transport.abort()
        for server in listeners:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    # -- one TCP connection ------------------------------------------------------------------

    def _live_state(self, twin: TwinRecord, https: bool = False) -> TwinState | None:
        """The twin's state if it is running Windows with WinRM up, else None (refuse the client).
        READ ONLY (Lab.peek: twice per request, it must not cost a copy of the twin)."""
        state = self.lab.peek(twin.name)
        if state.phase not in LIVE_PHASES:
            return None
        service = next((s for n, s in state.services.items() if n.lower() == "winrm"), None)
        if service is not None and service.state != "Running":
            return None
        if https and not self._has_https_listener(twin.name, state):
            return None  # no HTTPS listener (e.g. its certificate enrolment failed): 5986 is closed
        return state

    def _has_https_listener(self, name: str, state: TwinState) -> bool:
        """Does the twin's registry hold an HTTPS WinRM listener? Scanning every key on every
        request cost more than the answer: it is kept until the state object changes."""
        kept = self._https_listener.get(name)
        if kept is not None and kept[0] is state:
            return kept[1]
        found = any(key.upper().endswith("\\LISTENER\\*+HTTPS") for key in state.registry)
        self._https_listener[name] = (state, found)
        return found

    async def _serve(
        self, endpoint: _Endpoint, https: bool, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._connections.add(writer)
        endpoint.writers.add(writer)
        conn = _Conn(https=https)
        try:
            while True:
                if self._live_state(endpoint.twin, https) is None:
                    writer.transport.abort()  # nothing listens on a host that is off or imaging
                    return
                try:
                    request = await asyncio.wait_for(_read_request(reader), timeout=_IDLE_SECONDS)
                except _BadRequest as exc:
                    writer.write(_response(400, "Bad Request", str(exc).encode(), [("Connection", "close")]))
                    await writer.drain()
                    return
                if request is None:
                    return
                try:
                    answer = await self._answer(endpoint, conn, request)
                except DropConnection:
                    self.lab.record(endpoint.twin.name, "winrm_connection_dropped", fault="drop_mid_command")
                    writer.transport.abort()
                    return
                if answer is None:
                    writer.transport.abort()
                    return
                writer.write(answer)
                await writer.drain()
                if request.headers.get("connection", "").lower() == "close" or request.version == "HTTP/1.0":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            return
        except Exception:
            log.exception("lab WinRM transport error on %s", endpoint.twin.name)
        finally:
            self._connections.discard(writer)
            endpoint.writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def _challenge_headers(self, state: TwinState) -> list[tuple[str, str]]:
        headers = [("WWW-Authenticate", "Negotiate")]
        if service_policy(state).basic:
            headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        return headers

    async def _answer(self, endpoint: _Endpoint, conn: _Conn, request: _HttpRequest) -> bytes | None:
        twin = endpoint.twin
        state = self._live_state(twin, conn.https)
        if state is None:
            return None
        slow = self.lab.fault(twin.name, "slow_host")
        if slow:
            await asyncio.sleep(float(slow.get("delay", slow.get("seconds", 5))))
        if request.path.split("?")[0].lower() != "/wsman":
            return _response(404, "Not Found")
        if request.method != "POST":
            return _response(405, "Method Not Allowed", headers=[("Allow", "POST")])

        def unauthorised() -> bytes:  # built only when refused: it reads the twin's WinRM policy
            return _response(401, "Unauthorized", headers=self._challenge_headers(state))

        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        user: LocalUser | None = None
        refused = self.lab.fault(twin.name, "winrm_auth_refused") is not None
        try:
            if scheme.lower() == "basic":
                conn.user = conn.ntlm = conn.sealing = None
                user = check_basic(state, token.strip(), https=conn.https)
            elif scheme.lower() in ("negotiate", "ntlm"):
                raw = base64.b64decode(token.strip(), validate=True)
                if not raw.startswith(b"NTLMSSP\x00"):
                    raise AuthError("only raw NTLM tokens are simulated (no Kerberos / SPNEGO)")
                if raw[8:12] == b"\x01\x00\x00\x00":  # NEGOTIATE: start a handshake on this connection
                    conn.user = conn.sealing = None
                    conn.scheme = scheme
                    conn.ntlm = NtlmAcceptor(
                        state.hostname,
                        partial(self.lab.state, twin.name),
                        endpoint.binding if conn.https else None,
                    )
                    challenge = conn.ntlm.step(raw)
                    assert challenge is not None
                    header = f"{scheme} {base64.b64encode(challenge).decode()}"
                    return _response(401, "Unauthorized", headers=[("WWW-Authenticate", header)])
                if conn.ntlm is None:
                    raise AuthError("NTLM AUTHENTICATE without a NEGOTIATE on this connection")
                acceptor, conn.ntlm = conn.ntlm, None
                acceptor.step(raw)
                conn.user = user = acceptor.user
                conn.sealing = None if conn.https else NtlmSealing(acceptor.flags, acceptor.session_key)
            elif conn.user is not None:
                user = conn.user
            else:
                return unauthorised()
            if refused:
                raise AuthError("injected fault winrm_auth_refused")
        except (AuthError, binascii.Error) as exc:
            conn.user = conn.ntlm = conn.sealing = None
            log.info("lab WinRM auth refused on %s: %s", twin.name, exc)
            self.lab.record(twin.name, "winrm_auth_refused", reason=str(exc))
            return unauthorised()
        assert user is not None

        if not request.body:
            return _response(200, "OK")  # the empty POST clients use to set up a security context
        content_type = request.headers.get("content-type", "")
        body = request.body
        sealing: NtlmSealing | None = None
        if "multipart/encrypted" in content_type.lower():
            if conn.sealing is None:
                return _response(
                    400, "Bad Request", _NOT_IMPLEMENTED_ENCRYPTION, [("Content-Type", "text/plain")]
                )
            sealing = conn.sealing
            try:
                body = sealing.open(body)
            except SealingError as exc:
                log.info("lab WinRM refused an encrypted message on %s: %s", twin.name, exc)
                conn.user = conn.sealing = None
                return unauthorised()
        elif not conn.https and not service_policy(state).allow_unencrypted:
            # Windows refuses unencrypted WS-Man over HTTP unless AllowUnencrypted is set.
            conn.user = None
            return unauthorised()

        port = self.lab.config.winrm_https_port if conn.https else self.lab.config.winrm_http_port
        endpoint_url = f"{'https' if conn.https else 'http'}://{twin.address}:{port}/wsman"
        status, answer = await endpoint.winrs.handle(
            body, user.name, endpoint_url, drop_on_receive=partial(self._take_drop, twin.name)
        )
        reason = "OK" if status == 200 else "Internal Server Error"
        if sealing is not None:
            return _response(status, reason, sealing.close(answer), [("Content-Type", CONTENT_TYPE)])
        return _response(status, reason, answer, [("Content-Type", "application/soap+xml;charset=UTF-8")])

    def _take_drop(self, name: str) -> bool:
        """Consume one drop_mid_command fault occurrence (params: count, default every time)."""
        params: dict[str, Any] | None = self.lab.fault(name, "drop_mid_command")
        if params is None:
            return False
        count = params.get("count")
        if count is None:
            return True
        if int(count) <= 0:
            return False
        params["count"] = int(count) - 1
        return True
