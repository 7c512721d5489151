"""The verification suites' reads (rebuild.verify.windows) run on a twin through the lab's PowerShell
evaluator, and a read Windows PowerShell 5.1 would refuse fails the check the same way."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from twins import SERVER, two_twin_lab

from rebuild.lab import images
from rebuild.lab.context import Lab
from rebuild.lab.exec import execute
from rebuild.verify.windows import ReadError, WindowsReads

TWIN = SERVER


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str


class Host:
    """testinfra's winrm backend sends the whole command line as the WinRS command."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def run(self, command: str, *args: str) -> Result:
        assert not args
        rc, out, err = execute(self.lab, TWIN, command, [], b"")
        return Result(rc, out.decode(), err.decode())


@pytest.fixture
def reads(tmp_path: Path) -> Iterator[WindowsReads]:
    with two_twin_lab(tmp_path, "pw") as lab:
        yield WindowsReads(Host(lab))


def test_the_image_check_reads_no_stamp_as_an_answer(reads: WindowsReads) -> None:
    """rebuild_image_check sends the stamp read then `exit 0`: a host with no stamp answered
    (it fails at once as "image none") - only a transport error is retried."""
    from rebuild.verify.windows import STAMP_KEY, encoded, image_stamp_script

    result = reads.host.run(encoded(image_stamp_script(STAMP_KEY) + "; exit 0"))
    assert (result.rc, result.stdout.strip()) == (0, "")
    assert "Cannot find path" in result.stderr


def test_every_read_runs_on_a_twin(reads: WindowsReads) -> None:
    with pytest.raises(ReadError, match=r"Cannot find path 'HKLM:.SOFTWARE.GHAL.Rebuild'"):
        reads.image_stamp()  # the compromised disk has no rebuild stamp: Windows' own error
    assert reads.operating_system()["BuildNumber"] == "20348"
    assert reads.computer_system()["PartOfDomain"] is True
    assert reads.defender()["RealTimeProtectionEnabled"] is False
    services = {s["Name"]: s for s in reads.services()}
    assert services[images.MALICIOUS_SERVICE]["Status"] == 4
    tasks = reads.scheduled_tasks()
    assert any(t["TaskPath"] + t["TaskName"] == images.MALICIOUS_TASK for t in tasks)
    assert any(f["Name"] == "Restore-My-Files.txt" for f in reads.folder("C:\\"))
    assert reads.folder("C:\\NoSuchFolder") == []
    assert reads.exists(images.RANSOM_NOTES[0]) is True
    assert {"DisplayName": "AnyDesk", "DisplayVersion": "7.0.14"} in reads.installed_applications()
    admins = [a["Name"] for a in reads.administrators()]
    assert f"ARL-SRV-0001\\{images.UNKNOWN_ADMIN}" in admins
    smb = reads.registry_key(r"HKLM:\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters")
    assert smb is not None and smb["SMB1"] == 1
    assert reads.registry_key(r"HKLM:\SOFTWARE\NoSuchKey") is None
    assert reads.optional_feature("SMB1Protocol") == {"FeatureName": "SMB1Protocol", "State": 2}
    profiles = {p["Name"]: p for p in reads.firewall_profiles()}
    assert profiles["Domain"]["Enabled"] == 0
    assert reads.json("whoami | ConvertTo-Json -Compress").startswith("arl-srv-0001\\")
    assert reads.json("(Get-MpComputerStatus).AntivirusEnabled | ConvertTo-Json -Compress") is False


@pytest.mark.parametrize(
    ("script", "windows_says"),
    [
        # -Recurse is not a parameter of Get-ItemProperty (microsoft.powershell.management/get-itemproperty).
        (
            r"Get-ItemProperty -Path 'HKLM:\SOFTWARE\GHAL' -Recurse | ConvertTo-Json -Compress",
            "A parameter cannot be found that matches parameter name 'Recurse'.",
        ),
        # The null-conditional member access exists only in PowerShell 7.1+.
        ("(Get-MpComputerStatus)?.AntivirusEnabled | ConvertTo-Json -Compress", "Windows PowerShell 5.1"),
        # ConvertTo-Json -AsArray came with PowerShell 6.2.
        (
            "Get-Service WinRM | Select-Object Name | ConvertTo-Json -AsArray",
            "A parameter cannot be found that matches parameter name 'AsArray'.",
        ),
    ],
)
def test_a_read_windows_would_refuse_fails_the_check_with_windows_message(
    reads: WindowsReads, script: str, windows_says: str
) -> None:
    with pytest.raises(ReadError, match=r"failed on the host \(rc 1\)") as failed:
        reads.json(script)
    assert windows_says in str(failed.value)


def test_bitlocker_read_gives_statuses_and_protector_types_but_no_recovery_password(
    reads: WindowsReads,
) -> None:
    """test_bitlocker's read: status names and protector ids/types; the password stays on the host."""
    assert reads.bitlocker_volume() == {
        "VolumeStatus": "FullyDecrypted",
        "ProtectionStatus": "Off",
        "EncryptionPercentage": 0,
        "KeyProtector": [],
    }
    assert reads.tpm() == {"TpmPresent": True, "TpmReady": True}
    script = (
        "$null = Enable-BitLocker -MountPoint C: -EncryptionMethod XtsAes256 -UsedSpaceOnly "
        "-SkipHardwareTest -TpmProtector; $null = Add-BitLockerKeyProtector -MountPoint C: "
        "-RecoveryPasswordProtector"
    )
    from rebuild.verify.windows import encoded

    assert reads.host.run(encoded(script)).rc == 0
    volume = WindowsReads(reads.host).bitlocker_volume()  # reads are cached per WindowsReads
    assert (volume["VolumeStatus"], volume["ProtectionStatus"]) == ("FullyEncrypted", "On")
    assert sorted(p["KeyProtectorType"] for p in volume["KeyProtector"]) == ["RecoveryPassword", "Tpm"]
    assert all(set(p) == {"KeyProtectorId", "KeyProtectorType"} for p in volume["KeyProtector"])


def test_every_registered_read_cmdlet_is_served_by_the_twin_host() -> None:
    """One table of read cmdlets (read_cmdlets.READ_CMDLETS): those of cmdlets.py and of
    twin_firmware.py alike are bound by the twin host with their registered parameters, and a name
    registered twice is refused at import."""
    from rebuild.lab.exec.read_cmdlets import READ_CMDLETS, read_cmdlet
    from rebuild.lab.exec.twin_host import twin_cmdlets

    served = twin_cmdlets()
    assert {"Get-Service", "Get-ItemProperty", "Confirm-SecureBootUEFI", "Get-SecureBootUEFI"} <= set(
        READ_CMDLETS
    )
    for name, read in READ_CMDLETS.items():
        assert served[name.lower()].sig.name == name
        assert {p.name for p in read.signature.params} <= {p.name for p in served[name.lower()].sig.params}
    with pytest.raises(ValueError, match="read cmdlet Get-Service registered twice"):
        read_cmdlet("Get-Service", "microsoft.powershell.management/get-service")(
            READ_CMDLETS["Get-Service"].read
        )


def test_a_registry_key_is_read_in_one_command(reads: WindowsReads) -> None:
    """registry_key sends one command whatever the key: values, an empty key ({}), none (None)."""
    lab = reads.host.lab  # type: ignore[attr-defined]
    lab.update(TWIN.name, lambda state: state.registry.__setitem__(r"HKLM:\SOFTWARE\GHAL\Empty", {}))
    before = reads.commands
    assert reads.registry_key(r"HKLM:\SOFTWARE\GHAL\Empty") == {}
    assert reads.registry_key(r"HKLM:\SOFTWARE\NoSuchKey") is None
    smb = reads.registry_key(r"HKLM:\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters")
    assert smb is not None and smb["SMB1"] == 1
    assert reads.commands - before == 3


def test_registry_keys_read_together_answer_as_their_own_reads(reads: WindowsReads) -> None:
    """The batched read runs on the twin as Windows PowerShell 5.1 would (one command) and each key
    gets what its own read gets: values with their PS* properties, {} for a key without values,
    None for a missing key, a list for a wildcard path matching several keys."""
    lab = reads.host.lab  # type: ignore[attr-defined]
    keys = {r"HKLM:\SOFTWARE\GHAL\Empty": {}, r"HKLM:\SOFTWARE\GHAL\Nics\A": {"NetbiosOptions": 2},
            r"HKLM:\SOFTWARE\GHAL\Nics\B": {"NetbiosOptions": 0}}  # fmt: skip
    lab.update(TWIN.name, lambda state: state.registry.update(keys))
    paths = [
        r"HKLM:\SOFTWARE\GHAL\Empty",
        r"HKLM:\SOFTWARE\NoSuchKey",
        r"HKLM:\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters",
        r"HKLM:\SOFTWARE\GHAL\Nics\*",
        r"HKLM:\SOFTWARE\It's Quoted",
    ]
    own = WindowsReads(reads.host)
    expected = {path: own.registry_key(path) for path in paths}
    assert expected[paths[0]] == {} and expected[paths[1]] is None and expected[paths[4]] is None
    assert (
        expected[paths[2]] is not None and expected[paths[2]]["SMB1"] == 1 and "PSPath" in expected[paths[2]]
    )
    assert [k["NetbiosOptions"] for k in expected[paths[3]]] == [2, 0]  # type: ignore[union-attr]
    reads.plan_registry_keys(paths)
    before = reads.commands
    assert {path: reads.registry_key(path) for path in paths} == expected
    assert reads.commands - before == 1 and not reads.batch_failures


def test_a_hosts_baseline_keys_are_read_in_a_few_commands(reads: WindowsReads) -> None:
    """All the registry keys the suites read for the twin, on the twin: as many commands as batches
    (each within cmd.exe's command line), the same answers as one command per key."""
    from rebuild.verify.expect import build_expectations
    from rebuild.verify.registry_keys import registry_keys_read
    from rebuild.verify.windows import MAX_COMMAND_LINE, encoded, registry_batch_script, registry_batches

    expect = build_expectations(
        {"inventory_hostname": TWIN.name, "rebuild_kind": TWIN.kind, "rebuild_service": TWIN.service,
         "rebuild_os": TWIN.os, "rebuild_site": TWIN.site, "rebuild_domain": "ghal.lan"}
    )  # fmt: skip
    paths = registry_keys_read(expect)
    batches = registry_batches(paths)
    assert len(paths) > 30 and 1 < len(batches) < 5
    assert all(len(encoded(registry_batch_script(b))) <= MAX_COMMAND_LINE for b in batches)
    own = WindowsReads(reads.host)
    expected = {path: own.registry_key(path) for path in paths}
    reads.plan_registry_keys(paths)
    before = reads.commands
    assert {path: reads.registry_key(path) for path in paths} == expected
    assert reads.commands - before == len(batches) and not reads.batch_failures
