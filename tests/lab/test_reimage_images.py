"""Twin states (compromised / clean), the lab image repository, answer files and iPXE entries."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from reimage_helpers import OLD_PASSWORD, make_lab, render_entry, twins

from rebuild.lab.answerfile import AnswerFileError, parse_answer_file
from rebuild.lab.images import (
    MALICIOUS_SERVICE,
    MALICIOUS_TASK,
    RANSOM_NOTE,
    STAMP_KEY,
    UNKNOWN_ADMIN,
    ImageError,
    clean_state,
    compromised_state,
    ensure_repository,
    read_image,
)
from rebuild.lab.imaging import read_ipxe_script
from rebuild.lab.state import Phase, TwinState

SMB_SERVER = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters"
RECORDS = twins("127.201")


@pytest.mark.parametrize(
    ("name", "caption", "build"),
    [
        ("ARL-PC-0001", "Microsoft Windows 11 Enterprise", "22631"),
        ("ARL-PC-0002", "Microsoft Windows 10 Enterprise", "19045"),
        ("ARL-SRV-0001", "Microsoft Windows Server 2022 Standard", "20348"),
        ("ARL-SRV-0002", "Microsoft Windows Server 2019 Standard", "17763"),
        ("ARL-VM-0001", "Microsoft Windows Server 2016 Standard", "14393"),
    ],
)
def test_compromised_state_is_what_the_attackers_left(name: str, caption: str, build: str) -> None:
    state = compromised_state(RECORDS[name], OLD_PASSWORD)
    assert (state.os_caption, state.os_build, state.phase) == (caption, build, Phase.COMPROMISED)
    assert state.hostname == name and state.domain_joined and state.image_id == ""
    assert RANSOM_NOTE in state.files and any(f.endswith(".lockbit") for f in state.files)
    assert state.services[MALICIOUS_SERVICE].state == "Running" and MALICIOUS_TASK in state.tasks
    assert UNKNOWN_ADMIN in state.groups["Administrators"] and state.users[UNKNOWN_ADMIN].enabled
    assert (
        state.defender["RealTimeProtectionEnabled"] is False
        and state.services["WinDefend"].state == "Stopped"
    )
    assert state.features["SMB1Protocol"] is True and state.registry[SMB_SERVER]["SMB1"] == 1
    assert state.users["rb-admin"].password == OLD_PASSWORD and "rb-admin" in state.groups["Administrators"]
    assert STAMP_KEY not in state.registry
    # Round-trips through the state store's JSON.
    assert TwinState.from_json(state.to_json()) == state


def test_compromised_states_do_not_share_unknown_passwords() -> None:
    a = compromised_state(RECORDS["ARL-PC-0001"], OLD_PASSWORD)
    b = compromised_state(RECORDS["ARL-PC-0002"], OLD_PASSWORD)
    assert a.users[UNKNOWN_ADMIN].password != b.users[UNKNOWN_ADMIN].password
    assert (
        a.users["Administrator"].password
        and a.users["Administrator"].password != b.users["Administrator"].password
    )
    a.files.clear()
    assert RANSOM_NOTE in compromised_state(RECORDS["ARL-PC-0001"], OLD_PASSWORD).files  # no shared template


def test_compromised_state_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match=r"ARL-PC-0001.*password"):
        compromised_state(RECORDS["ARL-PC-0001"], "")
    bad = RECORDS["ARL-PC-0001"].__class__(**{**RECORDS["ARL-PC-0001"].__dict__, "os": "windows-xp"})
    with pytest.raises(ValueError, match="ARL-PC-0001: unknown OS key 'windows-xp'"):
        compromised_state(bad, OLD_PASSWORD)


def test_repository_and_catalogue(tmp_path: Path) -> None:
    images = ensure_repository(tmp_path)
    assert set(images) >= {"windows-server-2016", "windows-server-2022", "windows-11-23h2"}
    img = images["windows-server-2022"]
    assert img.path == tmp_path / img.file and img.path.read_bytes().startswith(b"SIMULATED WINDOWS IMAGE")
    applied = read_image(img.path)
    assert (applied.image_id, applied.build, applied.sha256) == (img.image_id, "20348", img.sha256)
    # Deterministic, and a tampered file stays tampered at the next lab up.
    assert ensure_repository(tmp_path / "again")["windows-server-2022"].sha256 == img.sha256
    img.path.write_bytes(img.path.read_bytes() + b"x")
    assert ensure_repository(tmp_path)["windows-server-2022"].sha256 != img.sha256
    (tmp_path / "not-an-image.wim").write_bytes(b"MZ\x90\x00")
    with pytest.raises(ImageError, match="not an image file"):
        read_image(tmp_path / "not-an-image.wim")


def _answer(tmp_path: Path, name: str = "ARL-PC-0001", password: str = "S3cret&<x>") -> str:
    lab = make_lab(tmp_path, physical_servers=False)
    try:
        ensure_repository(lab.config.lab_dir)
        _, path = render_entry(lab, name, "http://boot.example:8080", password)
        # As rebuild-setup.ps1 leaves it in WinPE: the chosen system disk in every DiskID.
        return path.read_text().replace("<DiskID>REBUILD-SYSTEM-DISK</DiskID>", "<DiskID>0</DiskID>")
    finally:
        lab.store.close()


def test_role_answer_file_parses_as_setup_reads_it(tmp_path: Path) -> None:
    answer = parse_answer_file(_answer(tmp_path), "unattend/x.xml")
    assert answer.computer_name == "ARL-PC-0001" and answer.time_zone == "Romance Standard Time"
    assert (answer.user_locale, answer.input_locale) == ("fr-BE", "080c:0000080c")
    assert [(a.name, a.groups, a.password) for a in answer.accounts] == [
        ("rb-admin", ("Administrators",), "S3cret&<x>")
    ]
    assert answer.wipe_disk and [p.type for p in answer.partitions] == ["EFI", "MSR", "Primary"]
    assert answer.install_from.endswith("images\\w11-23h2-ent-2026.11.wim") and answer.image_index == 1
    assert answer.auto_logon_user == "rb-admin"
    assert any("GHAL\\Rebuild" in c for c in answer.first_logon_commands)
    assert "S3cret" not in repr(answer)  # passwords never print


def test_encoded_password_is_decoded_like_setup(tmp_path: Path) -> None:
    text = _answer(tmp_path)
    encoded = base64.b64encode("Encoded-Pass1Password".encode("utf-16-le")).decode()
    text = re.sub(
        r"<LocalAccount wcm:action=\"add\">(.*?)<Value>[^<]*</Value>\s*<PlainText>true</PlainText>",
        lambda m: m.group(0).replace(m.group(0)[m.group(0).index("<Value>"):],
                                     f"<Value>{encoded}</Value><PlainText>false</PlainText>"),
        text, count=1, flags=re.S,
    )  # fmt: skip
    assert parse_answer_file(text).accounts[0].password == "Encoded-Pass1"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("<ComputerName>ARL-PC-0001</ComputerName>", "<ComputerName>*</ComputerName>", "random name"),
        (
            "<ComputerName>ARL-PC-0001</ComputerName>",
            "<ComputerName>ARL-PC-0001-TOO-LONG</ComputerName>",
            "not a valid computer name",
        ),
        ("<ComputerName>ARL-PC-0001</ComputerName>", "", "ComputerName: missing"),
        (
            "<PartitionID>3</PartitionID>\n          </InstallTo>",
            "<PartitionID>2</PartitionID>\n          </InstallTo>",
            "not a Primary partition",
        ),
        ("<Type>EFI</Type>", "<Type>Primary</Type>", "no EFI partition"),
        (
            "Microsoft-Windows-International-Core-WinPE",
            "Microsoft-Windows-Foo",
            "Setup would ask for a language",
        ),
        ("<UserLocale>fr-BE</UserLocale>", "<UserLocale>french</UserLocale>", "not a locale"),
        ("<Key>/IMAGE/INDEX</Key>", "<Key>/IMAGE/COLOUR</Key>", "unknown key"),
        ('xmlns="urn:schemas-microsoft-com:unattend"', 'xmlns="urn:example"', "not unattend"),
    ],
)
def test_incomplete_or_invalid_answer_file_fails(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = _answer(tmp_path)
    assert old in text
    with pytest.raises(AnswerFileError, match=re.escape(message)) as caught:
        parse_answer_file(text.replace(old, new, 1 if "ComputerName" in old else -1), "unattend/x.xml")
    assert "unattend/x.xml" in str(caught.value) and "S3cret" not in str(caught.value)


def test_clean_state_takes_answer_file_and_applied_image(tmp_path: Path) -> None:
    images = ensure_repository(tmp_path / "repo")
    image = read_image(images["windows-server-2016"].path)
    # As rebuild-setup.ps1 fills them in WinPE from the WIM Setup applies.
    text = _answer(tmp_path, "ARL-VM-0001", "Vm-Pass-1")
    text = text.replace("REBUILD-IMAGE-ID", image.image_id).replace("REBUILD-IMAGE-SHA256", image.sha256)
    answer = parse_answer_file(text)
    state = clean_state(RECORDS["ARL-VM-0001"], answer, image)
    assert state.phase == Phase.CLEAN and state.hostname == "ARL-VM-0001" and not state.domain_joined
    assert STAMP_KEY not in state.registry  # the first logon's own PowerShell writes it (first_logon)
    assert state.os_caption == "Microsoft Windows Server 2016 Standard"
    assert state.features["SMB1Protocol"] is True  # Server 2016's own default: not hardened yet
    assert state.registry[SMB_SERVER].get("SMB1") is None  # no value written: OS default
    assert state.users["rb-admin"].password == "Vm-Pass-1" and state.users["Administrator"].enabled
    assert RANSOM_NOTE not in state.files and UNKNOWN_ADMIN not in state.users
    policies = state.registry["HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System"]
    assert "LocalAccountTokenFilterPolicy" not in policies  # the first logon's reg.exe add sets it


def test_first_logon_commands_do_not_run_without_autologon(tmp_path: Path) -> None:
    images = ensure_repository(tmp_path / "repo")
    image = read_image(images["windows-11-23h2"].path)
    text = re.sub(r"<AutoLogon>.*?</AutoLogon>", "", _answer(tmp_path), flags=re.S)
    state = clean_state(RECORDS["ARL-PC-0001"], parse_answer_file(text), image)
    assert STAMP_KEY not in state.registry and state.image_id == ""  # nobody logged on: no stamp
    assert state.services["WinRM"].state == "Stopped"  # client default, no HTTPS listener
    win11 = state.registry["HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"]
    assert win11["ProductName"] == "Windows 10 Enterprise" and win11["CurrentBuild"] == "22631"  # real quirk


def test_ipxe_entries() -> None:
    mac = "02:00:0a:00:00:01"
    url = "http://boot:8080/mac-02000a000001.ipxe"
    install = read_ipxe_script(
        "#!ipxe\nset base http://boot:8080\nkernel ${base}/winpe/wimboot gui\n"
        "initrd ${base}/unattend/${mac:hexraw}.xml autounattend.xml\n"
        "initrd ${base}/winpe/sources/boot.wim boot.wim\n"
        "boot || goto failed\n:failed\nshell\n",
        url,
        mac,
    )
    assert install.install and install.answer_url == "http://boot:8080/unattend/02000a000001.xml"
    assert "http://boot:8080/winpe/wimboot" in install.files
    assert not read_ipxe_script("#!ipxe\nexit\n", url, mac).install
    assert not read_ipxe_script("#!ipxe\nsanboot --drive 0x80\n", url, mac).install
    assert "Exec format error" in read_ipxe_script("kernel wimboot\n", url, mac).reason
    relative = read_ipxe_script("#!ipxe\nkernel winpe/wimboot\ninitrd unattend/a.xml a.xml\nboot\n", url, mac)
    assert relative.answer_url == "http://boot:8080/unattend/a.xml"
