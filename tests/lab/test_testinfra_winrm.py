"""Done-when: testinfra's own `winrm://` backend checks registry, service and file state on a twin.

The twin is served by the lab's real WinRM transport (HTTPS, NTLM, certificate validated
against the lab CA) with the real command executor, in-process. The same checks must fail
when the twin's state is wrong.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import testinfra
import testinfra.host
from twins import server_twin

from rebuild.lab import images
from rebuild.lab.ca import LabCA
from rebuild.lab.context import Lab, LabConfig, TwinRecord
from rebuild.lab.server import WinRMServer
from rebuild.lab.state import Service, StateStore, TwinState
from rebuild.verify.plugin import winrm_conn_args
from rebuild.verify.session import SessionShellBackend
from rebuild.verify.windows import WindowsReads

PASSWORD = "Pre-incident-Pa55!"
SMB1_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters"


@pytest.fixture
def twin_host(
    tmp_path: Path, lab_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Lab, TwinRecord, object]]:
    twin = server_twin(f"{lab_prefix}.0.2")
    store = StateStore(tmp_path / "twins.sqlite")
    store.put(twin.name, images.compromised_state(twin, PASSWORD))
    lab = Lab(LabConfig(lab_dir=tmp_path, address_prefix=lab_prefix), store, {twin.name: twin})
    ca = LabCA.create(tmp_path / "ca")
    ca.issue(twin.name, twin.address)
    loop = asyncio.new_event_loop()
    server = WinRMServer(lab, ca)  # default executor factory: rebuild.lab.exec.execute
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    # testinfra's winrm backend has no CA option; requests (under pywinrm) reads this variable.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.bundle_path))
    host = testinfra.get_host(f"winrm://rb-admin:{PASSWORD}@{twin.address}:5986")
    try:
        yield lab, twin, host
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        store.close()


def ps(host: object, script: str) -> str:
    """How a verification suite runs PowerShell through testinfra's cmd-shell backend."""
    return host.check_output(f'powershell -NoProfile -NonInteractive -Command "{script}"')  # type: ignore[attr-defined]


def assert_hardened(host: object) -> None:
    """A miniature verification suite, written for a real Windows host."""
    smb1 = ps(host, f"(Get-ItemProperty -Path '{SMB1_KEY}' -Name SMB1).SMB1")
    assert smb1 == "0", f"SMB1 server still enabled (SMB1={smb1})"
    svc = json.loads(
        ps(host, "Get-Service -Name WinDefend | Select-Object Name,Status,StartType | ConvertTo-Json")
    )
    assert svc["Status"] == 4 and svc["StartType"] == 2, f"Defender service not running/automatic: {svc}"
    assert ps(host, rf"Test-Path -LiteralPath '{images.RANSOM_NOTES[1]}'") == "False", (
        "ransom note still on disk"
    )


def harden(state: TwinState) -> None:
    state.registry[SMB1_KEY]["SMB1"] = 0
    state.services["WinDefend"].state = "Running"
    state.services["WinDefend"].start_mode = "Automatic"
    for note in images.RANSOM_NOTES:
        state.files.pop(note, None)


def test_testinfra_detects_windows_and_reads_systeminfo(twin_host: tuple[Lab, TwinRecord, object]) -> None:
    _, _, host = twin_host
    assert host.system_info.type == "windows"  # type: ignore[attr-defined]
    assert host.system_info.distribution == "Microsoft Windows Server 2022 Standard"  # type: ignore[attr-defined]
    assert host.run("uname -s").rc == 1  # type: ignore[attr-defined]


def test_checks_fail_on_the_compromised_twin(twin_host: tuple[Lab, TwinRecord, object]) -> None:
    _, _, host = twin_host
    with pytest.raises(AssertionError, match="SMB1 server still enabled"):
        assert_hardened(host)


def test_checks_pass_once_state_is_right_and_fail_again_on_drift(
    twin_host: tuple[Lab, TwinRecord, object],
) -> None:
    lab, twin, host = twin_host
    lab.update(twin.name, harden)
    assert_hardened(host)

    def drift(state: TwinState) -> None:
        state.services["WinDefend"].state = "Stopped"

    lab.update(twin.name, drift)
    with pytest.raises(AssertionError, match="Defender service not running"):
        assert_hardened(host)

    lab.update(twin.name, harden)
    lab.update(twin.name, lambda s: s.files.__setitem__(images.RANSOM_NOTES[1], "x"))
    with pytest.raises(AssertionError, match="ransom note"):
        assert_hardened(host)


def test_unsupported_command_fails_loudly(twin_host: tuple[Lab, TwinRecord, object]) -> None:
    _, _, host = twin_host
    result = host.run('powershell -NoProfile -Command "Invoke-WebRequest http://127.0.0.1/"')  # type: ignore[attr-defined]
    assert result.rc != 0
    assert "does not simulate" in result.stderr


FRENCH_DISPLAY = "Service de télémétrie Maternité"


def _add_french_service(state: TwinState) -> None:
    # A French Windows shows localised display names: accented text in every Get-Service read.
    state.services["GhalMat"] = Service("GhalMat", FRENCH_DISPLAY, "Manual", "Stopped", r"C:\GHAL\mat.exe")


def test_accented_output_needs_a_utf8_shell(twin_host: tuple[Lab, TwinRecord, object]) -> None:
    """Issue 12 item 16: a 437 shell sends 'é' as byte 0x82; a strict UTF-8 reader raises.
    Verification's own backend opens 65001 shells and reads the French name intact."""
    lab, twin, host = twin_host
    lab.update(twin.name, _add_french_service)
    read = "Get-Service -Name GhalMat | Select-Object DisplayName | ConvertTo-Json"
    # Old behaviour: testinfra's stock backend (pywinrm default, code page 437).
    raw = host.run(f'powershell -NoProfile -NonInteractive -Command "{read}"')  # type: ignore[attr-defined]
    assert b"Maternit\x82" in raw.stdout_bytes
    with pytest.raises(UnicodeDecodeError):
        raw.stdout_bytes.decode("utf-8")

    target = {"scheme": "https", "address": twin.address, "port": 5986}
    backend = SessionShellBackend(
        f"{twin.address}:5986", winrm_conn_args(target, "rb-admin", PASSWORD), no_ssl=False
    )
    try:
        win = WindowsReads(testinfra.host.Host(backend))
        shown = {s["Name"]: s["DisplayName"] for s in win.services()}
    finally:
        backend.close()
    assert shown["GhalMat"] == FRENCH_DISPLAY
