"""The lab's WinRM transport against the real clients (pywinrm, requests_ntlm), in-process.

The command executor here is a test double standing in for rebuild.lab.exec (it only
answers a few cmd commands) so transport behaviour is tested on its own.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import winrm
from twins import pc_twin, server_twin
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)

from rebuild.lab import images
from rebuild.lab.auth import AuthError, NtlmAcceptor
from rebuild.lab.ca import LabCA
from rebuild.lab.context import Lab, LabConfig, TwinRecord
from rebuild.lab.server import WinRMServer
from rebuild.lab.state import Phase, StateStore
from rebuild.lab.wsman import Executor

pytestmark = pytest.mark.lab

PASSWORD = "Pre-incident-Pa55!"
WSMAN_SERVICE = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WSMAN\Service"


def _executor(lab: Lab, twin: TwinRecord) -> Executor:
    def run(command: str, arguments: list[str], stdin: bytes) -> tuple[int, bytes, bytes]:
        line = " ".join([command, *arguments]).strip()
        if line == "hostname":
            return 0, (lab.state(twin.name).hostname + "\r\n").encode(), b""
        if line.startswith("sleep "):
            time.sleep(float(line.split()[1]))
            return 0, b"slept\r\n", b""
        if line == "big":
            return 0, b"x" * 300_000, b""
        if line == "stdin-length":
            return 0, str(len(stdin)).encode(), b""
        if line == "restart-now":  # what shutdown.exe /r /t 0 does to the lab (rebuild.lab.exec.reboot)
            lab.record(twin.name, "reboot", delay=0, via="test")
            return 0, b'{"stdout":"","stderr":"","rc":0}\r\n', b""
        return 1, b"", f"'{line}' is not recognized (test executor)\r\n".encode()

    return run


@dataclass
class Harness:
    lab: Lab
    ca: LabCA
    server: WinRMServer
    twin: TwinRecord
    loop: asyncio.AbstractEventLoop

    def url(self, https: bool = True) -> str:
        return f"{'https' if https else 'http'}://{self.twin.address}:{5986 if https else 5985}/wsman"

    def session(
        self,
        user: str = "rb-admin",
        password: str = PASSWORD,
        transport: str = "ntlm",
        https: bool = True,
        **kwargs: object,
    ) -> winrm.Session:
        if https:
            kwargs.setdefault("ca_trust_path", str(self.ca.bundle_path))
        return winrm.Session(self.url(https), auth=(user, password), transport=transport, **kwargs)

    def protocol(self, **kwargs: object) -> winrm.Protocol:
        return winrm.Protocol(
            self.url(),
            transport="ntlm",
            username="rb-admin",
            password=PASSWORD,
            ca_trust_path=str(self.ca.bundle_path),
            **kwargs,
        )

    def change(self, fn: object) -> None:
        self.lab.update(self.twin.name, fn)  # type: ignore[arg-type]


@pytest.fixture
def harness(tmp_path: Path, lab_prefix: str) -> Iterator[Harness]:
    twin = server_twin(f"{lab_prefix}.0.2")
    other = pc_twin(f"{lab_prefix}.0.3")
    config = LabConfig(lab_dir=tmp_path, address_prefix=lab_prefix, shell_quota=3)
    store = StateStore(tmp_path / "twins.sqlite")
    store.put_many({t.name: images.compromised_state(t, PASSWORD) for t in (twin, other)})
    lab = Lab(config, store, {twin.name: twin, other.name: other})
    ca = LabCA.create(tmp_path / "ca")
    for t in (twin, other):
        ca.issue(t.name, t.address)
    loop = asyncio.new_event_loop()
    server = WinRMServer(lab, ca, _executor, operation_quota=4)
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield Harness(lab, ca, server, twin, loop)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        store.close()


def test_ntlm_over_https_with_certificate_validation_runs_a_command(harness: Harness) -> None:
    result = harness.session().run_cmd("hostname")
    assert result.status_code == 0
    assert result.std_out == b"ARL-SRV-0001\r\n"


def test_exit_code_and_stderr_come_back(harness: Harness) -> None:
    result = harness.session().run_cmd("nonsense")
    assert result.status_code == 1
    assert b"not recognized" in result.std_err


def test_stdin_in_several_sends_reaches_the_command_and_large_output_spans_receives(harness: Harness) -> None:
    p = harness.protocol()
    shell = p.open_shell()
    command = p.run_command(shell, "stdin-length")
    p.send_command_input(shell, command, b"a" * 200_000)
    p.send_command_input(shell, command, b"b" * 50_000, end=True)
    out, _err, code = p.get_command_output(shell, command)
    assert (out, code) == (b"250000", 0)
    command = p.run_command(shell, "big")
    first = p.get_command_output_raw(shell, command)
    assert first[3] is False and len(first[0]) < 300_000  # not done: more output waits
    out, _err, code = p.get_command_output(shell, command)
    assert len(first[0]) + len(out) == 300_000 and code == 0
    p.cleanup_command(shell, command)
    p.close_shell(shell)


def test_wrong_password_and_unknown_user_are_rejected(harness: Harness) -> None:
    with pytest.raises(InvalidCredentialsError):
        harness.session(password="guess").run_cmd("hostname")
    with pytest.raises(InvalidCredentialsError):
        harness.session(user="nobody").run_cmd("hostname")


def test_certificate_validation_is_real(harness: Harness, tmp_path: Path) -> None:
    other_ca = LabCA.create(tmp_path / "other-ca")
    with pytest.raises(requests.exceptions.SSLError):
        harness.session(ca_trust_path=str(other_ca.bundle_path)).run_cmd("hostname")
    # The twin's certificate names its own address only: checked against another name, it fails.
    import ssl

    context = ssl.create_default_context(cafile=str(harness.ca.bundle_path))
    address = harness.twin.address
    with (
        socket.create_connection((address, 5986), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=address),
    ):
        pass
    with (
        socket.create_connection((address, 5986), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="arl-pc-0001")


def test_non_builtin_admin_needs_local_account_token_filter_policy(harness: Harness) -> None:
    key = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System"
    harness.change(lambda s: s.registry[key].__setitem__("LocalAccountTokenFilterPolicy", 0))
    with pytest.raises(InvalidCredentialsError):
        harness.session().run_cmd("hostname")


def test_disabled_account_is_refused(harness: Harness) -> None:
    harness.change(lambda s: setattr(s.users["rb-admin"], "enabled", False))
    with pytest.raises(InvalidCredentialsError):
        harness.session().run_cmd("hostname")


def test_basic_is_off_by_default_and_never_over_plain_http_without_allow_unencrypted(
    harness: Harness,
) -> None:
    with pytest.raises(InvalidCredentialsError):
        harness.session(transport="basic").run_cmd("hostname")
    harness.change(lambda s: s.registry.setdefault(WSMAN_SERVICE, {}).__setitem__("auth_basic", 1))
    assert harness.session(transport="basic").run_cmd("hostname").status_code == 0
    with pytest.raises(InvalidCredentialsError):
        harness.session(transport="basic", https=False).run_cmd("hostname")
    harness.change(lambda s: s.registry[WSMAN_SERVICE].__setitem__("allow_unencrypted", 1))
    assert harness.session(transport="basic", https=False).run_cmd("hostname").std_out == b"ARL-SRV-0001\r\n"
    # Group policy wins over the service configuration.
    policy = r"HKLM:\SOFTWARE\Policies\Microsoft\Windows\WinRM\Service"
    harness.change(lambda s: s.registry.setdefault(policy, {}).__setitem__("AllowBasic", 0))
    with pytest.raises(InvalidCredentialsError):
        harness.session(transport="basic").run_cmd("hostname")


def test_ntlm_over_plain_http_runs_sealed_and_a_tampered_message_is_refused(harness: Harness) -> None:
    """[MS-WSMV] 2.2.9.1.1: over HTTP, NTLM seals each message (multipart/encrypted) and needs no
    AllowUnencrypted; a message whose signature does not verify is refused."""
    result = harness.session(https=False).run_cmd("hostname")  # pywinrm encrypts over HTTP with NTLM
    assert result.status_code == 0 and result.std_out == b"ARL-SRV-0001\r\n"

    from winrm.encryption import Encryption

    session = harness.session(https=False)
    original = Encryption._build_ntlm_message

    def tampered(self: Encryption, message: bytes, host: object) -> bytes:
        stream = original(self, message, host)
        return stream[:-1] + bytes([stream[-1] ^ 1])  # one bit of the sealed SOAP flipped

    Encryption._build_ntlm_message = tampered  # type: ignore[method-assign]
    try:
        with pytest.raises((InvalidCredentialsError, WinRMTransportError)):
            session.run_cmd("hostname")
    finally:
        Encryption._build_ntlm_message = original  # type: ignore[method-assign]


def test_shell_quota_fault_past_max_shells_per_user(harness: Harness) -> None:
    p = harness.protocol()
    shells = [p.open_shell() for _ in range(3)]
    with pytest.raises(WSManFaultError) as caught:
        p.open_shell()
    assert caught.value.wsman_fault_code == 2150859173
    assert "maximum number of 3 concurrent shells" in caught.value.reason
    p.close_shell(shells[0], close_session=False)
    p.close_shell(p.open_shell(), close_session=False)


def test_operation_quota_gives_0x803381A6_and_a_new_shell_resets_it(harness: Harness) -> None:
    p = harness.protocol()
    shell = p.open_shell()
    for _ in range(4):
        command = p.run_command(shell, "hostname")
        p.get_command_output(shell, command)
        p.cleanup_command(shell, command)  # terminate does not give the operation back (text shell)
    with pytest.raises(WSManFaultError) as caught:
        p.run_command(shell, "hostname")
    assert caught.value.wmierror_code == 0x803381A6
    p.close_shell(shell, close_session=False)
    shell = p.open_shell()
    assert p.run_command(shell, "hostname")


def test_receive_times_out_like_windows_then_completes(harness: Harness) -> None:
    p = winrm.Protocol(
        harness.url(),
        transport="ntlm",
        username="rb-admin",
        password=PASSWORD,
        ca_trust_path=str(harness.ca.bundle_path),
        operation_timeout_sec=1,
        read_timeout_sec=5,
    )
    shell = p.open_shell()
    command = p.run_command(shell, "sleep 2.5")
    with pytest.raises(WinRMOperationTimeoutError):
        p.get_command_output_raw(shell, command)
    out, _err, code = p.get_command_output(shell, command)
    assert (out, code) == (b"slept\r\n", 0)


def _raw(harness: Harness, body: str, session: requests.Session) -> requests.Response:
    return session.post(
        harness.url(),
        data=body.encode(),
        verify=str(harness.ca.bundle_path),
        headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
        timeout=10,
    )


def test_relates_to_and_faults_for_bad_requests(harness: Harness) -> None:
    from requests_ntlm import HttpNtlmAuth

    session = requests.Session()
    session.auth = HttpNtlmAuth("rb-admin", PASSWORD)
    message_id = f"uuid:{uuid.uuid4()}"
    p = harness.protocol()
    create = p.build_wsman_header(
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd",
        message_id=message_id[5:],
    )
    import xmltodict

    envelope = xmltodict.unparse(
        {"env:Envelope": {**create, "env:Body": {"rsp:Shell": {"rsp:InputStreams": "stdin"}}}}
    )
    answer = _raw(harness, envelope, session)
    assert answer.status_code == 200
    assert f"<a:RelatesTo>{message_id}</a:RelatesTo>" in answer.text

    bad = _raw(harness, "<not-xml", session)
    assert bad.status_code == 500 and "w:SchemaValidationError" in bad.text

    no_shell = p.build_wsman_header(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command",
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd",
        shell_id="00000000-0000-0000-0000-000000000000",
    )
    body = {"rsp:CommandLine": {"rsp:Command": "hostname"}}
    missing = _raw(harness, xmltodict.unparse({"env:Envelope": {**no_shell, "env:Body": body}}), session)
    assert (
        missing.status_code == 500
        and 'Code="2150858843"' in missing.text
        and "w:InvalidSelectors" in missing.text
    )
    assert "<a:RelatesTo>uuid:" in missing.text

    psrp = p.build_wsman_header(
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
        "http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
    )
    unsupported = _raw(harness, xmltodict.unparse({"env:Envelope": {**psrp, "env:Body": {}}}), session)
    assert unsupported.status_code == 500 and "w:DestinationUnreachable" in unsupported.text


def test_fault_winrm_auth_refused(harness: Harness) -> None:
    harness.lab.faults[harness.twin.name] = {"winrm_auth_refused": {}}
    with pytest.raises(InvalidCredentialsError):
        harness.session().run_cmd("hostname")
    harness.lab.faults.clear()
    assert harness.session().run_cmd("hostname").status_code == 0


def test_fault_drop_mid_command_once(harness: Harness) -> None:
    harness.lab.faults[harness.twin.name] = {"drop_mid_command": {"count": 1}}
    p = harness.protocol()
    shell = p.open_shell()
    command = p.run_command(shell, "stdin-length")
    p.send_command_input(shell, command, b"abc", end=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        p.get_command_output(shell, command)
    # The command ran on the twin; after the drop the shell is still there and answers.
    p2 = harness.protocol()
    assert p2.get_command_output(shell, command) == (b"3", b"", 0)
    assert harness.session().run_cmd("hostname").status_code == 0
    events = [e["event"] for e in harness.lab.state(harness.twin.name).history]
    assert "winrm_connection_dropped" in events


def test_fault_slow_host_delays_every_answer(harness: Harness) -> None:
    start = time.monotonic()
    harness.session().run_cmd("hostname")
    fast = time.monotonic() - start
    harness.lab.faults[harness.twin.name] = {"slow_host": {"delay": 0.5}}
    start = time.monotonic()
    harness.session().run_cmd("hostname")
    assert time.monotonic() - start >= fast + 0.5 * 4  # create, command, receive, signal, delete (+auth)


@pytest.mark.parametrize("phase", [Phase.IMAGING, Phase.OFF, Phase.FAILED])
def test_a_twin_that_is_not_running_windows_does_not_answer(harness: Harness, phase: Phase) -> None:
    harness.change(lambda s: setattr(s, "phase", phase))
    with pytest.raises(requests.exceptions.ConnectionError):
        harness.session().run_cmd("hostname")


def test_stopped_winrm_service_does_not_answer(harness: Harness) -> None:
    harness.change(lambda s: setattr(s.services["WinRM"], "state", "Stopped"))
    with pytest.raises(requests.exceptions.ConnectionError):
        harness.session().run_cmd("hostname")


def test_https_closes_when_its_listener_is_deleted_and_opens_when_it_is_back(harness: Harness) -> None:
    """The transport keeps whether a twin has an HTTPS listener per state; a change to the twin
    (Remove-Item WSMan:\\localhost\\Listener\\...) must be seen by the very next connection."""
    assert harness.session().run_cmd("hostname").status_code == 0
    listener = next(
        k for k in harness.lab.state(harness.twin.name).registry if k.upper().endswith("\\*+HTTPS")
    )
    values = harness.lab.state(harness.twin.name).registry[listener]
    harness.change(lambda s: s.registry.pop(listener))
    with pytest.raises(requests.exceptions.ConnectionError):
        harness.session().run_cmd("hostname")
    harness.change(lambda s: s.registry.__setitem__(listener, values))
    assert harness.session().run_cmd("hostname").status_code == 0


def test_channel_binding_mismatch_is_refused(harness: Harness) -> None:
    """The acceptor compares the client's CBT with this channel's certificate hash."""
    import spnego
    from spnego.channel_bindings import GssChannelBindings

    state = harness.lab.state(harness.twin.name)
    client = spnego.client(
        "rb-admin",
        PASSWORD,
        protocol="ntlm",
        channel_bindings=GssChannelBindings(application_data=b"tls-server-end-point:" + b"x" * 32),
    )
    acceptor = NtlmAcceptor(
        state.hostname, lambda: state, channel_binding=b"tls-server-end-point:" + b"y" * 32
    )
    challenge = acceptor.step(client.step() or b"")
    with pytest.raises(AuthError, match="channel binding"):
        acceptor.step(client.step(challenge) or b"")
    # Same binding on both sides: accepted.
    binding = b"tls-server-end-point:" + b"z" * 32
    client = spnego.client(
        "rb-admin", PASSWORD, protocol="ntlm", channel_bindings=GssChannelBindings(application_data=binding)
    )
    acceptor = NtlmAcceptor(state.hostname, lambda: state, channel_binding=binding)
    acceptor.step(client.step(acceptor.step(client.step() or b"")) or b"")
    assert acceptor.user is not None and acceptor.user.name == "rb-admin"


def test_listeners_are_on_the_twins_own_address_only(harness: Harness) -> None:
    with socket.create_connection((harness.twin.address, 5986), timeout=5):
        pass
    unused = harness.twin.address.rsplit(".", 1)[0] + ".200"
    with pytest.raises(OSError):
        socket.create_connection((unused, 5986), timeout=2).close()


def test_testinfra_winrm_backend_connects_over_ntlm_with_validation(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """testinfra's own winrm:// backend (NTLM only, cert validated through REQUESTS_CA_BUNDLE)."""
    import urllib.parse

    import testinfra

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(harness.ca.bundle_path))
    secret = urllib.parse.quote(PASSWORD, safe="")
    host = testinfra.get_host(f"winrm://rb-admin:{secret}@{harness.twin.address}:5986")
    assert host.run("hostname").stdout == "ARL-SRV-0001\r\n"
    wrong = testinfra.get_host(f"winrm://rb-admin:wrong@{harness.twin.address}:5986")
    with pytest.raises(InvalidCredentialsError):
        wrong.run("hostname")


def test_a_restart_ends_every_shell_so_leaked_shells_do_not_eat_the_quota(harness: Harness) -> None:
    p = harness.protocol()
    shells = [p.open_shell() for _ in range(3)]  # leaked by a client that reset its connection
    with pytest.raises(WSManFaultError):
        p.open_shell()
    harness.lab.record(harness.twin.name, "reboot", delay=0, via="test")
    endpoint = harness.server.endpoints[harness.twin.name]
    deadline = time.monotonic() + 5  # until the shells are gone and the old connections closed
    while (endpoint.winrs.shells or endpoint.writers) and time.monotonic() < deadline:
        time.sleep(0.1)
    with pytest.raises(WSManFaultError) as caught:
        p.run_command(shells[0], "hostname")
    assert caught.value.wsman_fault_code == 2150858843  # the shell died with the old boot
    assert p.open_shell()


def test_local_admin_refused_once_joined_under_the_security_baseline_gpo(harness: Harness) -> None:
    """Issue 12 item 15: after the join's restart the domain's baseline GPO denies network logon to
    S-1-5-114; only a computer in the staging OU (GPO blocked) still lets rb-admin in."""
    from rebuild.lab.auth import GP_STATE_KEY, GPO_BLOCKED_OUS
    from rebuild.lab.exec.modules.domain import computer_dn, lab_domain

    domain = lab_domain()
    dc = ",".join(f"DC={p}" for p in domain.split("."))

    def join(ou: str) -> None:
        def apply(state: object) -> None:
            state.domain, state.domain_joined = domain, True  # type: ignore[attr-defined]
            state.registry[GP_STATE_KEY] = {"Distinguished-Name": computer_dn("ARL-SRV-0001", domain, ou)}  # type: ignore[attr-defined]

        harness.change(apply)
        harness.lab.record(harness.twin.name, "domain_joined", domain=domain, ou=ou)

    join("")  # the old join: default Computers container, baseline GPO linked at the domain root
    assert harness.session().run_cmd("hostname").status_code == 0  # policy applies at the next start
    harness.lab.record(harness.twin.name, "reboot", via="test")
    with pytest.raises(InvalidCredentialsError):
        harness.session().run_cmd("hostname")

    join(f"{GPO_BLOCKED_OUS[0]},{dc}")  # the product's join: staging OU, baseline GPO blocked
    harness.lab.record(harness.twin.name, "reboot", via="test")
    assert harness.session().run_cmd("hostname").status_code == 0


# --- a restart takes time (LabConfig.restart_seconds; docs/lab-windows-rules.md) -------------------


def _refused(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def _wait(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_restarting_twin_refuses_winrm_then_answers_with_a_new_boot_time(harness: Harness) -> None:
    from rebuild.lab.exec.cmdlets import boot_time

    harness.lab.config.restart_seconds = 2.0
    address = harness.twin.address
    p = harness.protocol()
    shell = p.open_shell()
    before = boot_time(harness.lab, harness.twin).when
    harness.lab.record(harness.twin.name, "reboot", delay=0, via="test")  # shutdown /r /t 0
    _wait(lambda: _refused(address, 5986), 3)
    went_down = time.monotonic()
    assert _refused(address, 5985)  # both listeners are gone
    with pytest.raises(requests.exceptions.ConnectionError):
        p.run_command(shell, "hostname")  # the kept-alive connection was reset with the restart
    with pytest.raises(requests.exceptions.ConnectionError):
        harness.session().run_cmd("hostname")
    time.sleep(1.0)
    assert _refused(address, 5986) and _refused(address, 5985)  # still restarting
    _wait(lambda: not _refused(address, 5986), 5)
    assert time.monotonic() - went_down >= 2.0 - 0.1  # down for restart_seconds (loop timer slack)
    assert not _refused(address, 5985)
    assert harness.session().run_cmd("hostname").std_out == b"ARL-SRV-0001\r\n"
    with pytest.raises(WSManFaultError):
        p.run_command(shell, "hostname")  # the shell died with the old boot
    assert boot_time(harness.lab, harness.twin).when > before


def test_a_boot_from_disk_takes_restart_seconds_and_a_reimage_is_up_when_done(harness: Harness) -> None:
    harness.lab.config.restart_seconds = 30.0  # longer than this test: only reimage ends it
    address = harness.twin.address
    harness.lab.record(harness.twin.name, "boot", via="test", source="disk")
    _wait(lambda: _refused(address, 5986), 3)
    harness.lab.record(harness.twin.name, "boot", via="test", source="network")  # still down
    time.sleep(0.2)
    assert _refused(address, 5986)
    # imaging_seconds is the whole install with its restarts: the twin answers once it is done.
    harness.lab.record(harness.twin.name, "reimage", status="done", image_id="x", image_sha256="0")
    _wait(lambda: not _refused(address, 5986), 3)
    assert harness.session().run_cmd("hostname").status_code == 0


@pytest.mark.parametrize("restart_seconds", [0.0, 2.0])
def test_win_reboot_finishing_its_restart_command_late_meets_a_lost_connection(
    harness: Harness, restart_seconds: float
) -> None:
    """The bench failure (docs/site-run.md, "Limits (known)"): under load, win_reboot's connection
    finished its `shutdown /r` command (ansible's winrm plugin signals the command's end after reading
    its output, _winrm_exec's `finally: cleanup_command`) after the notice ran out. A twin back at
    once answers with "shell not found", a WSMan fault win_reboot fails on; a twin still restarting
    refuses the connection, which win_reboot's own code takes as the restart under way
    (ansible.windows plugin_utils/_reboot.py: _execute_command turns any requests RequestException
    into AnsibleConnectionFailure, which _perform_reboot catches and carries on)."""
    from ansible_collections.ansible.windows.plugins.plugin_utils import _reboot

    harness.lab.config.restart_seconds = restart_seconds
    p = harness.protocol()

    class Stalled:
        """The winrm connection plugin's exec_command, its controller stalled 1.2 s (notice 0.5 s)
        between reading the command's output and signalling its end."""

        def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> Any:
            shell = p.open_shell()
            command = p.run_command(shell, "restart-now")
            try:
                out, err, rc = p.get_command_output(shell, command)
                return rc, out, err
            finally:
                time.sleep(1.2)
                p.cleanup_command(shell, command)

    if restart_seconds == 0:
        with pytest.raises(WSManFaultError) as caught:
            _reboot._perform_reboot("win_reboot", Stalled(), "shutdown /r")  # type: ignore[arg-type]
        assert caught.value.wsman_fault_code == 2150858843  # shell not found: the task fails
    else:
        assert _reboot._perform_reboot("win_reboot", Stalled(), "shutdown /r") is None  # type: ignore[arg-type]
