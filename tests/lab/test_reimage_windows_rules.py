"""Windows Setup and boot-chain rules the lab enforces (docs/lab-windows-rules.md).

Each test feeds the lab the answer file or boot entry the product used to write (refused the
way Windows refuses it) and the one it writes now (accepted).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from reimage_helpers import (
    catalogue,
    events,
    install_and_log_on,
    make_lab,
    render_entry,
    running_services,
    wait_for,
)

from rebuild.lab import reimage
from rebuild.lab.context import Lab
from rebuild.lab.images import RANSOM_NOTE, STAMP_KEY, AppliedImage
from rebuild.lab.state import Phase, TwinState

PASSWORD = "Rule-Test-Pass-1"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Lab, reimage.ReimageServices]]:
    with running_services(tmp_path) as pair:  # Redfish has its own test module
        yield pair


def _failure(lab: Lab, name: str) -> str:
    wait_for(lambda: lab.state(name).phase == Phase.FAILED, 10, f"{name} failed")
    return str(next(e for e in events(lab, name, "reimage") if e["status"] == "failed")["reason"])


def test_ui_language_without_a_language_pack_stops_setup(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    old, new = "ARL-PC-0001", "ARL-PC-0002"
    # Old product: fr-BE (a locale; no fr-BE language pack exists) as Setup's UI language.
    render_entry(lab, old, svc.boot.url, PASSWORD, ui_language="fr-BE")
    render_entry(lab, new, svc.boot.url, PASSWORD)  # fr-FR, in the image's ui_languages
    svc.imager.boot(old, True, "test")
    svc.imager.boot(new, True, "test")
    reason = _failure(lab, old)
    assert "language page" in reason and "fr-BE" in reason and "en-US, fr-FR" in reason
    assert "imaging" not in [e.get("status") for e in events(lab, old, "reimage")]
    state = wait_for(lambda: (s := lab.state(new)).phase == Phase.CLEAN and s, 10, "clean")
    assert state.locale == "fr-BE"  # locales stay Belgian; only the UI language is fr-FR
    # Stopped before the wipe: without its entry the old PC boots its (compromised) disk.
    for path in (lab.config.lab_dir / "boot").glob("**/*02000a000001*"):
        path.unlink()
    svc.imager.power_off(old, via="test")
    svc.imager.boot(old, True, "test")
    assert lab.state(old).phase == Phase.COMPROMISED and RANSOM_NOTE in lab.state(old).files


def test_image_languages_come_from_the_catalogue(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, _ = running
    assert all(entry["ui_languages"] == ["en-US", "fr-FR"] for entry in catalogue(lab).values())


def test_server_without_administrator_password_stops_at_oobe(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    name = "ARL-VM-0001"  # Windows Server 2016
    _, answer = render_entry(lab, name, svc.boot.url, PASSWORD, builtin_admin_password="Builtin-1!")
    text = answer.read_text()
    answer.write_text(re.sub(r"<AdministratorPassword>.*?</AdministratorPassword>", "", text, flags=re.S))
    svc.imager.boot(name, True, "test")
    reason = _failure(lab, name)
    assert "OOBE" in reason and "AdministratorPassword" in reason and "Builtin-1!" not in reason
    assert lab.state(name).phase == Phase.FAILED  # WinRM answers only compromised/clean twins

    # The product's answer file (AdministratorPassword set), in a new (one-shot) entry.
    render_entry(lab, name, svc.boot.url, PASSWORD, builtin_admin_password="Builtin-1!")
    svc.imager.power_off(name, via="test")
    svc.imager.boot(name, True, "test")
    state = wait_for(lambda: (s := lab.state(name)).phase == Phase.CLEAN and s, 10, "clean")
    assert state.users["Administrator"].password == "Builtin-1!"


def test_workstation_needs_no_administrator_password(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    name = "ARL-PC-0001"  # client OOBE does not ask for the built-in Administrator (disabled)
    _, answer = render_entry(lab, name, svc.boot.url, PASSWORD)
    text = answer.read_text()
    answer.write_text(re.sub(r"<AdministratorPassword>.*?</AdministratorPassword>", "", text, flags=re.S))
    svc.imager.boot(name, True, "test")
    wait_for(lambda: lab.state(name).phase == Phase.CLEAN, 10, "clean")


def _without_entry_header(script: Path) -> None:
    lines = script.read_text().splitlines(True)
    script.write_text("".join(line for line in lines if "rebuild-entry:" not in line))


def test_pxe_first_pc_reinstalls_when_its_entry_is_served_again(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    old, new = "ARL-PC-0001", "ARL-PC-0002"
    script, _ = render_entry(lab, old, svc.boot.url, PASSWORD)
    _without_entry_header(script)  # the old entry: a static file, served at every boot
    render_entry(lab, new, svc.boot.url, PASSWORD)  # one-shot
    svc.imager.boot(old, True, "wol")
    svc.imager.boot(new, True, "wol")
    assert "reinstall loop" in _failure(lab, old)
    wait_for(lambda: lab.state(new).phase == Phase.CLEAN, 10, "clean")
    # The one-shot entry: fetched twice (the network boot, then Setup's restart), the second
    # time the boot server answered "boot the local disk".
    fetched = [r for r in svc.boot.requests if r["path"] == "/mac-02000a000002.ipxe"]
    assert [r["status"] for r in fetched] == [200, 200]
    assert svc.boot.resolve("mac-02000a000002.ipxe", lab.twins[new].address)[1].endswith(b"exit\n")
    wait_for(lambda: len(events(lab, new, "reimage")) == 2, 5, "the done event")
    assert [e["status"] for e in events(lab, new, "reimage")] == ["started", "done"]


def test_host_files_only_to_the_host_and_only_while_its_entry_exists(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    name, other = "ARL-PC-0001", "ARL-PC-0002"
    script, answer = render_entry(lab, name, svc.boot.url, PASSWORD)
    mine, theirs = lab.twins[name].address, lab.twins[other].address
    assert svc.boot.resolve("unattend/02000a000001.xml", theirs)[0] == 403
    assert svc.boot.resolve("mac-02000a000001.ipxe", theirs)[0] == 403
    status, body = svc.boot.resolve("unattend/02000a000001.xml", mine)
    assert status == 200 and PASSWORD.encode() in body
    script.unlink()  # the role removed the entry: the answer file left behind is not served
    assert svc.boot.resolve("unattend/02000a000001.xml", mine)[0] == 404
    assert answer.exists()
    # A twin woken with another host's address never gets the entry: it boots its disk.
    render_entry(lab, name, svc.boot.url, PASSWORD, boot_client=theirs)
    svc.imager.boot(name, True, "wol")
    assert lab.state(name).phase == Phase.COMPROMISED and not events(lab, name, "reimage")


SAN_LUN = {"number": 0, "bus": "Fibre Channel", "size_gb": 2048, "serial": "SAN-LUN-7", "holds": "data"}


def _set_disks(lab: Lab, name: str, disks: list[dict[str, object]]) -> None:
    def change(state: TwinState) -> None:
        state.disks = disks

    lab.update(name, change)


def _old_winpe(lab: Lab, svc: reimage.ReimageServices, name: str, ini: str, answer_target: str) -> None:
    """The product's old entry shape: a hand-written winpeshl.ini, the answer file as given."""
    script, answer = render_entry(lab, name, svc.boot.url, PASSWORD)
    old = lab.config.lab_dir / "boot" / "winpe" / "old"
    old.mkdir(parents=True, exist_ok=True)
    (old / "winpeshl.ini").write_text(ini)
    text = answer.read_text().replace("REBUILD-SYSTEM-DISK", "0")  # the old `DiskID 0`
    answer.write_text(text)
    lines = [
        line
        for line in script.read_text().splitlines()
        if "rebuild-setup.ps1" not in line and "disk.json" not in line
    ]
    lines = [
        line.replace("winpe/rebuild/winpeshl.ini", "winpe/old/winpeshl.ini").replace(
            "rebuild-unattend.xml", answer_target
        )
        for line in lines
    ]
    script.write_text("\n".join(lines) + "\n")


def test_disk_zero_wipes_a_san_lun_and_the_chosen_system_disk_does_not(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    old, new = "ARL-PC-0001", "ARL-PC-0002"
    local = {"number": 1, "bus": "NVMe", "size_gb": 512, "serial": "NVME-1", "holds": "system"}
    for host in (old, new):
        _set_disks(lab, host, [SAN_LUN, dict(local)])
    setup = "X:\\sources\\setup.exe, /unattend:X:\\Windows\\System32\\unattend.xml"
    ini = f"[LaunchApps]\r\nwpeinit.exe\r\n{setup}\r\n"
    _old_winpe(lab, svc, old, ini, "unattend.xml")
    render_entry(lab, new, svc.boot.url, PASSWORD)
    svc.imager.boot(old, True, "test")
    svc.imager.boot(new, True, "test")
    reason = _failure(lab, old)
    assert "wiped disk 0" in reason and "DATA disk" in reason and lab.state(old).wiped_disk == 0
    state = wait_for(lambda: (s := lab.state(new)).phase == Phase.CLEAN and s, 10, "clean")
    assert state.wiped_disk == 1 and state.disks[0] == SAN_LUN  # the LUN is untouched


def test_several_candidate_disks_refuse_to_start_setup_unless_the_serial_says(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    disks = [
        {"number": 0, "bus": "SATA", "size_gb": 1024, "serial": "DATA-1", "holds": "data"},
        {"number": 1, "bus": "NVMe", "size_gb": 512, "serial": "NVME-1", "holds": "system"},
    ]
    _set_disks(lab, name, disks)
    render_entry(lab, name, svc.boot.url, PASSWORD)
    svc.imager.boot(name, True, "test")
    reason = _failure(lab, name)
    assert "2 disks match" in reason and "nothing wiped" in reason
    assert lab.state(name).wiped_disk == -1 and RANSOM_NOTE in lab.state(name).files  # old disk as it was
    render_entry(lab, name, svc.boot.url, PASSWORD, system_disk_serial="NVME-1")
    svc.imager.power_off(name, via="test")
    svc.imager.boot(name, True, "test")
    state = wait_for(lambda: (s := lab.state(name)).phase == Phase.CLEAN and s, 10, "clean")
    assert state.wiped_disk == 1


@pytest.mark.parametrize(
    ("ini", "target", "message"),
    [
        # Setup started with no /unattend: the answer file in System32 is not where it looks.
        ("[LaunchApps]\r\nwpeinit.exe\r\nX:\\sources\\setup.exe\r\n", "autounattend.xml", "Setup waits"),
        # No wpeinit: no network, no boot server, no image share.
        (
            "[LaunchApps]\r\nX:\\sources\\setup.exe, /unattend:X:\\Windows\\System32\\a.xml\r\n",
            "a.xml",
            "wpeinit",
        ),
        ("[LaunchApps]\r\nwpeinit.exe\r\nX:\\tools\\other.exe\r\n", "a.xml", "does not simulate"),
    ],
)
def test_winpe_must_start_setup_with_the_answer_file(
    running: tuple[Lab, reimage.ReimageServices], ini: str, target: str, message: str
) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    _old_winpe(lab, svc, name, ini, target)
    svc.imager.boot(name, True, "test")
    assert message in _failure(lab, name)
    assert lab.state(name).wiped_disk == -1


def test_entry_naming_a_missing_winpe_file_fails_the_boot(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    lab, svc = running
    name = "ARL-PC-0001"
    script, _ = render_entry(lab, name, svc.boot.url, PASSWORD)
    # The old entry: winpe/winpeshl.ini, which the product never shipped (the lab no longer stands in).
    script.write_text(script.read_text().replace("winpe/rebuild/winpeshl.ini", "winpe/winpeshl.ini"))
    svc.imager.boot(name, True, "test")
    assert "could not download /winpe/winpeshl.ini" in _failure(lab, name)


def test_image_share_refuses_guest_access(running: tuple[Lab, reimage.ReimageServices]) -> None:
    lab, svc = running
    old, wrong, new = "ARL-PC-0001", "ARL-PC-0002", "ARL-VM-0001"
    _, answer = render_entry(lab, old, svc.boot.url, PASSWORD)
    # The old answer file: InstallFrom without Credentials, Setup opens the share as guest.
    answer.write_text(re.sub(r"<Credentials>.*?</Credentials>", "", answer.read_text(), flags=re.S))
    render_entry(lab, wrong, svc.boot.url, PASSWORD, image_share_password="not-the-password")
    render_entry(lab, new, svc.boot.url, PASSWORD)
    for host in (old, wrong, new):
        svc.imager.boot(host, True, "test")
    assert "guest access to SMB shares is refused" in _failure(lab, old)
    reason = _failure(lab, wrong)
    assert "access denied for rebuild-image-reader" in reason and "not-the-password" not in reason
    state = wait_for(lambda: (s := lab.state(new)).phase == Phase.CLEAN and s, 10, "clean")
    image = catalogue(lab)["windows-server-2016"]
    assert (state.image_id, state.image_sha256) == (image["image_id"], image["sha256"])


def _first_logon_answer(lab: Lab) -> tuple[AppliedImage, str]:
    from rebuild.lab.images import ensure_repository, read_image

    image = read_image(ensure_repository(lab.config.lab_dir)["windows-11-23h2"].path)
    _, path = render_entry(lab, "ARL-PC-0001", "http://boot:8080", PASSWORD)
    return image, path.read_text().replace("REBUILD-SYSTEM-DISK", "0")


def test_first_logon_stamp_reading_the_share_as_a_local_account_is_refused(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, physical_servers=False)
    try:
        image, text = _first_logon_answer(lab)
        # The old stamp: hash the WIM over SMB at first logon, as the local rebuild admin.
        wim = "'\\\\rebuild-lab\\share\\images\\w.wim'"
        old = (
            text.replace("New-Item -Path", f"$h = (Get-FileHash -LiteralPath {wim}).Hash; New-Item -Path")
            .replace("'REBUILD-IMAGE-ID'", "$i")
            .replace("'REBUILD-IMAGE-SHA256'", "$h")
        )
        state = install_and_log_on(lab, "ARL-PC-0001", old, image)
        assert state.registry[STAMP_KEY]["ImageSha256"] == "" and state.image_id == ""
        ran = events(lab, "ARL-PC-0001", "first_logon_command")
        # Get-FileHash's error (no guest access to the share); the later statements still ran.
        assert "Get-FileHash : Access is denied." in ran[0]["stderr"]
        # Not filled in (WinPE's script did not run): the literals are what gets stamped.
        state = install_and_log_on(lab, "ARL-PC-0001", text, image)
        assert state.registry[STAMP_KEY]["ImageSha256"] == "REBUILD-IMAGE-SHA256"
    finally:
        lab.store.close()


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        # ?? is PowerShell 7's null-coalescing operator: 5.1 does not parse the script at all.
        ("-Value 'REBUILD-IMAGE-ID'", "-Value ($null ?? 'REBUILD-IMAGE-ID')", "cannot parse this script"),
        # A misspelt parameter: Set-ItemProperty refuses to bind it, that value is never written
        # (the statement ends; the script goes on, so the command's exit code is still 0).
        ("-Name ImageId", "-Nmae ImageId", "A parameter cannot be found that matches parameter name 'Nmae'"),
    ],
)
def test_first_logon_powershell_windows_refuses_leaves_no_stamp(
    tmp_path: Path, old: str, new: str, says: str
) -> None:
    lab = make_lab(tmp_path, physical_servers=False)
    try:
        image, text = _first_logon_answer(lab)
        assert old in text
        state = install_and_log_on(lab, "ARL-PC-0001", text.replace(old, new, 1), image)
        assert "ImageId" not in state.registry.get(STAMP_KEY, {}) and state.image_id == ""
        ran = events(lab, "ARL-PC-0001", "first_logon_command")
        assert ran[0]["order"] == 1 and says in ran[0]["stderr"]
    finally:
        lab.store.close()


def test_autologon_session_is_closed_by_the_last_first_logon_command(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, physical_servers=False)
    try:
        image, new = _first_logon_answer(lab)
        old = re.sub(
            r"<SynchronousCommand[^>]*>\s*<Order>4</Order>.*?</SynchronousCommand>", "", new, flags=re.S
        )
        assert "shutdown.exe /l" in new and "shutdown.exe /l" not in old
        assert install_and_log_on(lab, "ARL-PC-0001", old, image).console_session == "rb-admin"
        state = install_and_log_on(lab, "ARL-PC-0001", new, image)
        assert state.console_session == ""  # shutdown.exe /l /f ran in the console session
        policies = state.registry["HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System"]
        assert policies["LocalAccountTokenFilterPolicy"] == 1  # reg.exe add ran through cmd.exe
        ran = events(lab, "ARL-PC-0001", "first_logon_command")[-4:]
        assert [(e["order"], e["exit_code"]) for e in ran] == [(1, 0), (2, 0), (3, 0), (4, 0)]
    finally:
        lab.store.close()


def test_certificate_enrolment_without_credential_leaves_no_https_listener(tmp_path: Path) -> None:
    from rebuild.lab.images import STAMP_KEY, ensure_repository, read_image

    lab = make_lab(tmp_path, physical_servers=False)
    try:
        image = read_image(ensure_repository(lab.config.lab_dir)["windows-11-23h2"].path)
        url = "https://pki.ghal.lan/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP"
        _, path = render_entry(lab, "ARL-PC-0001", "http://boot:8080", PASSWORD, enroll_url=url)
        new = path.read_text().replace("REBUILD-SYSTEM-DISK", "0")
    finally:
        lab.store.close()
    assert "-Credential $cred" in new and "Enrol-Pass-1" in new
    listener = "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WSMAN\\Listener\\*+HTTPS"
    # The old command: Get-Certificate -Url without -Credential, HTTP listener removed regardless.
    old = re.sub(r"\$p = ConvertTo-SecureString.*?\$cred = [^;]*; ", "", new).replace(
        " -Credential $cred", ""
    )
    old = re.sub(r"try \{ (.*?) \} catch \{.*?\}\"</CommandLine>", r'\1"</CommandLine>', old, flags=re.S)
    lab = make_lab(tmp_path / "again", physical_servers=False)
    try:
        state = install_and_log_on(lab, "ARL-PC-0001", old, image)
        assert listener not in state.registry and "WinRMHttpsError" not in state.registry[STAMP_KEY]
        # The product's command with the failure (same missing credential): the failure is reported.
        failing = new.replace(" -Credential $cred", "")
        state = install_and_log_on(lab, "ARL-PC-0001", failing, image)
        assert listener not in state.registry
        assert "requires authentication" in state.registry[STAMP_KEY]["WinRMHttpsError"]
        # With the enrolment credential: the HTTPS listener exists, on the enrolled certificate.
        state = install_and_log_on(lab, "ARL-PC-0001", new, image)
        thumb = state.registry[listener]["certThumbprint"]
        assert f"HKLM:\\SOFTWARE\\Microsoft\\SystemCertificates\\MY\\Certificates\\{thumb}" in state.registry
        assert not any(key.endswith("\\Listener\\*+HTTP") for key in state.registry)
        assert "Enrol-Pass-1" not in str(state.history)
    finally:
        lab.store.close()


def test_first_logon_winrm_https_command_runs_through_powershell(tmp_path: Path) -> None:
    """Order 3 runs after Order 1 like the others: WinRM on, an HTTPS listener on the self-signed
    certificate's thumbprint, the HTTP listener Enable-PSRemoting made removed."""
    lab = make_lab(tmp_path, physical_servers=False)
    try:
        image, text = _first_logon_answer(lab)
        state = install_and_log_on(lab, "ARL-PC-0001", text, image)
        ran = [(e["order"], e["exit_code"]) for e in events(lab, "ARL-PC-0001", "first_logon_command")]
        assert ran[-4:] == [(1, 0), (2, 0), (3, 0), (4, 0)]
        listeners = {
            k.rsplit("\\", 1)[-1]: x for k, x in state.registry.items() if "\\WSMAN\\Listener\\" in k
        }
        assert list(listeners) == ["*+HTTPS"]
        thumb = listeners["*+HTTPS"]["certThumbprint"]
        cert = f"HKLM:\\SOFTWARE\\Microsoft\\SystemCertificates\\MY\\Certificates\\{thumb}"
        assert thumb and state.registry[cert]["Subject"] == "CN=ARL-PC-0001"
        assert (state.services["WinRM"].start_mode, state.services["WinRM"].state) == ("Automatic", "Running")
        assert "WinRMHttpsError" not in state.registry[STAMP_KEY]
    finally:
        lab.store.close()


def test_first_logon_winrm_command_with_a_misspelt_parameter_keeps_http_and_says_why(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, physical_servers=False)
    try:
        image, text = _first_logon_answer(lab)
        wrong = text.replace("-CertificateThumbPrint", "-CertificateThumbprnt")
        assert wrong != text
        state = install_and_log_on(lab, "ARL-PC-0001", wrong, image)
        assert not any(k.endswith("\\Listener\\*+HTTPS") for k in state.registry)
        assert any(k.endswith("\\Listener\\*+HTTP") for k in state.registry)  # Enable-PSRemoting's
        assert state.registry[STAMP_KEY]["WinRMHttpsError"] == (
            "A parameter cannot be found that matches parameter name 'CertificateThumbprnt'."
        )
    finally:
        lab.store.close()


def test_an_entry_written_again_is_served_again_once() -> None:
    """The boot server's one-shot is per entry file: a rewritten entry (new run) is a new one."""
    import tempfile

    from rebuild.lab.bootserver import BootServer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "boot"
        server = BootServer(root, Path(tmp) / "log").start()
        try:
            entry = root / "mac-02000a000001.ipxe"
            entry.write_text("#!ipxe\n# rebuild-entry: one-shot client=127.9.0.2\nkernel wimboot\n")
            assert b"kernel wimboot" in server.resolve(entry.name, "127.9.0.2")[1]
            assert server.resolve(entry.name, "127.9.0.2")[1].endswith(b"exit\n")
            entry.unlink()  # what rebuild_boot_entry does before writing an entry
            entry.write_text("#!ipxe\n# rebuild-entry: one-shot client=127.9.0.2\nkernel wimboot\n")
            assert b"kernel wimboot" in server.resolve(entry.name, "127.9.0.2")[1]
        finally:
            server.stop()


def test_image_check_reports_the_hosts_own_enrolment_error_at_once(
    running: tuple[Lab, reimage.ReimageServices],
) -> None:
    """Issue 12 item 8: with the lab fault certificate_enrolment_fails the first logon keeps HTTP,
    makes no HTTPS listener and records why; the image check (HTTPS) reads that reason over HTTP
    (NTLM, sealed) with its own credential and fails at once with it, not after https_grace."""
    import asyncio
    import json
    import threading

    from conftest import ansible_ad_hoc

    from rebuild.lab.ca import LabCA
    from rebuild.lab.server import WinRMServer

    lab, svc = running
    name = "ARL-PC-0001"
    url = "https://pki.ghal.lan/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP"
    render_entry(lab, name, svc.boot.url, PASSWORD, enroll_url=url)
    reason = "Get-Certificate : Refusé par le module de stratégie"  # a French host's own words
    lab.faults[name] = {"certificate_enrolment_fails": {"reason": reason}}
    svc.imager.boot(name, True, "test")
    wait_for(lambda: lab.state(name).phase == Phase.CLEAN, 10, "clean")

    ca = LabCA.create(lab.config.lab_dir / "ca")
    for twin in lab.twins.values():
        ca.issue(twin.name, twin.address)
    loop = asyncio.new_event_loop()
    server = WinRMServer(lab, ca)
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    connection = lab.config.lab_dir / "connection.json"  # the password stays off the command line
    connection.write_text(
        json.dumps(
            {
                "ansible_port": 5986,
                "ansible_winrm_scheme": "https",
                "ansible_user": "rb-admin",
                "ansible_password": PASSWORD,
                "ansible_winrm_transport": "ntlm",
                "ansible_winrm_ca_trust_path": str(ca.bundle_path),
            }
        )
    )
    try:
        result = ansible_ad_hoc(
            [
                "-e",
                f"@{connection}",
                "-m",
                "rebuild_image_check",
                "-a",
                "image_id=img sha256=00 sleep=1 timeout=600 https_grace=600",
            ],
            {"ANSIBLE_INVENTORY_ENABLED": "host_list"},
            host=lab.twins[name].address,
            connection="ansible.builtin.winrm",
        )
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert result["_failed"] is True
    assert result["winrm_https_error"] == reason
    assert "its first logon reports" in str(result["msg"]) and reason in str(result["msg"])
    assert int(str(result["attempts"])) <= 2  # at once, not after the 600 s grace
    assert PASSWORD not in json.dumps(result)


def test_first_logon_history_masks_the_enrolment_password_its_command_carries(tmp_path: Path) -> None:
    """PowerShell's error position echoes the command line: the recorded stderr must not hold the
    enrolment account's password the WinRM command passes to ConvertTo-SecureString."""
    from rebuild.lab.answerfile import parse_answer_file
    from rebuild.lab.first_logon import _redacted
    from rebuild.lab.images import ensure_repository

    lab = make_lab(tmp_path, physical_servers=False)
    try:
        ensure_repository(lab.config.lab_dir)
        url = "https://pki.ghal.lan/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP"
        _, path = render_entry(lab, "ARL-PC-0001", "http://boot:8080", PASSWORD, enroll_url=url)
        answer = parse_answer_file(path.read_text().replace("REBUILD-SYSTEM-DISK", "0"))
    finally:
        lab.store.close()
    line = next(c for c in answer.first_logon_commands if "ConvertTo-SecureString" in c)
    err = f"At line:1 char:60\n+ {line}\nEnable-PSRemotin : The term is not recognized".encode()
    text = _redacted(err, answer, line)
    assert "Enrol-Pass-1" not in text and "********" in text and "Enable-PSRemotin" in text
