"""The PowerShell reads verification makes, over testinfra's host (WinRM backend).

Every read is one standard Windows PowerShell 5.1 pipeline ending in `ConvertTo-Json
-Compress`, sent as `powershell.exe -EncodedCommand` (UTF-16LE base64) so no quoting of
paths can go wrong through cmd.exe. Results are cached per session: the suites ask many
questions of few reads, which keeps WinRM round trips per host low.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class CommandResult(Protocol):
    rc: int
    stdout: str
    stderr: str


class HostLike(Protocol):
    def run(self, command: str, *args: str) -> CommandResult: ...


def _transient(exc: Exception) -> bool:
    import requests
    import winrm.exceptions

    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if isinstance(exc, winrm.exceptions.WSManFaultError):
        # 0x80338029 operation timeout, 0x803381A6 quota, 0x8033805B shell not found (lost session)
        return exc.wsman_fault_code in (0x80338029, 0x803381A6, 0x8033805B) or "shell was not found" in str(
            exc
        )
    return isinstance(exc, winrm.exceptions.WinRMTransportError)


class ReadError(AssertionError):
    """A read failed on the host: the check that needed it fails with Windows' own message."""


def encoded(script: str) -> str:
    return (
        "powershell.exe -NoProfile -NonInteractive -EncodedCommand "
        + base64.b64encode(script.encode("utf-16-le")).decode()
    )


def ps_quote(text: str) -> str:
    """A PowerShell single-quoted literal."""
    return "'" + text.replace("'", "''") + "'"


STAMP_KEY = r"HKLM:\SOFTWARE\GHAL\Rebuild"
CURRENT_VERSION_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion"


def image_stamp_script(key: str = STAMP_KEY) -> str:
    """The read of the image stamp the install writes at first logon (ImageId, ImageSha256): the
    reimage's image check and verification ask the same question the same way."""
    return (
        f"Get-ItemProperty -Path {ps_quote(key)} | Select-Object ImageId,ImageSha256 "
        "| ConvertTo-Json -Compress"
    )


def as_list(value: Any) -> list[Any]:
    """ConvertTo-Json gives an object for one result and an array for several."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class SecureBootState:
    """What Confirm-SecureBootUEFI and the firmware's db say (Microsoft Learn, SecureBoot module)."""

    uefi: bool  # False: a BIOS (non-UEFI) machine, where the SecureBoot cmdlets are not supported
    enabled: bool
    uefi_ca_2023: bool  # the db trusts the Windows UEFI CA 2023 (the 2011 CAs expire in 2026)

    def describe(self) -> str:
        if not self.uefi:
            return "legacy BIOS boot (Confirm-SecureBootUEFI: Cmdlet not supported on this platform)"
        ca = "trusts" if self.uefi_ca_2023 else "does not trust"
        return f"Secure Boot {'on' if self.enabled else 'off'}, db {ca} the {WINDOWS_UEFI_CA_2023}"


# Both SecureBoot cmdlets fail so on a BIOS (non-UEFI) machine (learn.microsoft.com, Confirm-SecureBootUEFI).
SECURE_BOOT_NOT_SUPPORTED = "Cmdlet not supported on this platform"
WINDOWS_UEFI_CA_2023 = "Windows UEFI CA 2023"


def db_trusts_uefi_ca_2023(db: list[int]) -> bool:
    """Microsoft's documented check, done on the controller: the db's bytes read as ASCII contain
    the CA's name (`[Text.Encoding]::ASCII.GetString((Get-SecureBootUEFI db).bytes) -match ...`)."""
    return WINDOWS_UEFI_CA_2023 in bytes(int(b) & 0xFF for b in db).decode("ascii", "replace")


_MS_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")


def parse_date(value: Any) -> dt.datetime | None:
    """DateTime as PowerShell 5.1's ConvertTo-Json writes it ("\\/Date(ms)\\/") or ISO text."""
    if value in (None, ""):
        return None
    if isinstance(value, dict) and "value" in value:  # -Depth output of a DateTime with DisplayHint
        value = value["value"]
    text = str(value)
    if m := _MS_DATE.search(text):
        return dt.datetime.fromtimestamp(int(m.group(1)) / 1000, dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def registry_key_script(path: str) -> str:
    """One key's values as JSON, nothing when it is missing, `{}` when it has no values."""
    quoted = ps_quote(path)
    return (
        f"if (Test-Path -Path {quoted}) {{ $values = Get-ItemProperty -Path {quoted}; "
        "if ($null -eq $values) { '{}' } else { $values | ConvertTo-Json -Compress } }"
    )


# WinRS runs its command line through cmd.exe, whose command line is at most 8191 characters
# (Microsoft Learn, "Command prompt (Cmd.exe) command-line string limitation"); a margin is kept.
MAX_COMMAND_LINE = 8000


def registry_batch_script(paths: Sequence[str]) -> str:
    """Several keys in one command. Each key's values are converted exactly as its own read
    converts them (`registry_key_script`: ConvertTo-Json's default -Depth 2, Microsoft Learn
    ConvertTo-Json) and carried as a string, so a batched answer is the same JSON; the wrapper
    holds only strings (depth 1). A key that fails to read is caught with Windows' message and
    does not stop the others."""
    listed = ",".join(ps_quote(p) for p in paths)
    return (
        f"@(foreach ($p in @({listed})) {{ try {{ $j = $null\n"
        "if (Test-Path -Path $p) { $v = Get-ItemProperty -Path $p -ErrorAction Stop\n"
        "if ($null -eq $v) { $j = '{}' } else { $j = $v | ConvertTo-Json -Compress } }\n"
        "[pscustomobject]@{P = $p; J = $j; E = $null} }\n"
        "catch { [pscustomobject]@{P = $p; J = $null; E = $_.Exception.Message} } }) "
        "| ConvertTo-Json -Compress -Depth 2"
    )


def registry_batches(paths: Sequence[str]) -> list[list[str]]:
    """The paths in order, cut so that no command line exceeds MAX_COMMAND_LINE. A path too long
    to go in any batch is left out: its own read sends it."""
    batches: list[list[str]] = []
    current: list[str] = []
    for path in paths:
        if len(encoded(registry_batch_script([*current, path]))) <= MAX_COMMAND_LINE:
            current.append(path)
        elif len(encoded(registry_batch_script([path]))) <= MAX_COMMAND_LINE:
            batches.append(current)
            current = [path]
    if current:
        batches.append(current)
    return [b for b in batches if b]


def parse_registry_batch(paths: Sequence[str], result: CommandResult) -> dict[str, Any]:
    """Each path's values (what its own read gives) or the ReadError of its read. Raises
    ValueError when the batch itself failed or its answer does not name every path once."""
    if result.rc != 0:
        raise ValueError(f"rc {result.rc}: {result.stderr.strip()[:200]}")
    rows = as_list(json.loads(result.stdout.strip() or "null"))
    answers: dict[str, Any] = {}
    for row in rows:
        if not isinstance(row, dict) or row.get("P") not in paths or row["P"] in answers:
            raise ValueError(f"unexpected row {str(row)[:200]}")
        path, text, error = row["P"], row.get("J"), row.get("E")
        if error is not None:
            answers[path] = ReadError(f"reading registry key {path} failed on the host: {str(error)[:400]}")
        else:
            answers[path] = json.loads(text) if text else None
    if len(answers) != len(set(paths)):
        raise ValueError(f"{len(answers)} answers for {len(set(paths))} keys")
    return answers


class WindowsReads:
    """Cached reads of one host."""

    UNINSTALL = (
        r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\*",
        r"HKLM:\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\*",
    )

    def __init__(self, host: HostLike) -> None:
        self.host = host
        self._cache: dict[str, Any] = {}
        self._planned: dict[str, None] = {}  # registry keys to read in batches, in order
        self._registry: dict[str, Any] = {}  # a batched key's values, or the ReadError of its read
        self.batch_failures: list[str] = []  # batched reads that failed whole (their keys read one by one)
        self.commands = 0  # WinRM commands sent (each is one shell round trip set)
        self.retries = 0

    def json(self, script: str, *, allow_missing: bool = False) -> Any:
        """Run `script | ConvertTo-Json -Compress`; None when it printed nothing."""
        if script in self._cache:
            return self._cache[script]
        result = self._run(encoded(script))
        if result.rc != 0 and not allow_missing:
            raise ReadError(f"`{script}` failed on the host (rc {result.rc}): {result.stderr.strip()[:400]}")
        text = result.stdout.strip()
        value = json.loads(text) if text else None
        self._cache[script] = value
        return value

    def _run(self, command: str, attempts: int = 3) -> CommandResult:
        """Send one read. A transport error (connection reset, shell lost) is retried: every read
        here is side-effect free, and one dropped TCP connection must not quarantine a host."""
        for attempt in range(1, attempts + 1):
            self.commands += 1
            try:
                return self.host.run(command)
            except Exception as exc:  # pywinrm / requests transport errors
                if attempt == attempts or not _transient(exc):
                    raise
                self.retries += 1
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    # --- the reads -------------------------------------------------------------------------

    def image_stamp(self) -> dict[str, Any]:
        return self.json(image_stamp_script(STAMP_KEY)) or {}

    def operating_system(self) -> dict[str, Any]:
        return (
            self.json(
                "Get-CimInstance -ClassName Win32_OperatingSystem "
                "| Select-Object Caption,BuildNumber,Version | ConvertTo-Json -Compress"
            )
            or {}
        )

    def patch_level(self) -> dict[str, Any]:
        """CurrentBuildNumber and UBR (update build revision): the OS build as winver shows it,
        raised by each cumulative update."""
        return (
            self.json(
                f"Get-ItemProperty -Path {ps_quote(CURRENT_VERSION_KEY)} "
                "| Select-Object CurrentBuildNumber,UBR | ConvertTo-Json -Compress"
            )
            or {}
        )

    def secure_boot(self) -> SecureBootState:
        """Secure Boot state and whether the db trusts the 2023 CA. A BIOS machine answers with the
        cmdlet's documented error, which is a state here, not a failed read."""
        script = "Confirm-SecureBootUEFI | ConvertTo-Json -Compress"
        if script not in self._cache:
            result = self._run(encoded(script))
            if result.rc != 0 and SECURE_BOOT_NOT_SUPPORTED in result.stderr:
                self._cache[script] = None
            elif result.rc != 0:
                raise ReadError(
                    f"`{script}` failed on the host (rc {result.rc}): {result.stderr.strip()[:400]}"
                )
            else:
                self._cache[script] = json.loads(result.stdout.strip() or "null")
        enabled = self._cache[script]
        if enabled is None:
            return SecureBootState(uefi=False, enabled=False, uefi_ca_2023=False)
        db = (
            self.json("Get-SecureBootUEFI -Name db | Select-Object Name,Bytes | ConvertTo-Json -Compress")
            or {}
        )
        return SecureBootState(True, enabled is True, db_trusts_uefi_ca_2023(as_list(db.get("Bytes"))))

    def bitlocker_volume(self) -> dict[str, Any]:
        """The OS volume's BitLocker state (Get-BitLockerVolume): statuses as their names (5.1's
        ConvertTo-Json writes enums as numbers) and each key protector's id and type only (the
        recovery password itself never leaves the host)."""
        return (
            self.json(
                "$v = Get-BitLockerVolume -MountPoint C:\n"
                "[pscustomobject]@{VolumeStatus = [string]$v.VolumeStatus; "
                "ProtectionStatus = [string]$v.ProtectionStatus; "
                "EncryptionPercentage = $v.EncryptionPercentage; "
                "KeyProtector = @($v.KeyProtector | ForEach-Object { [pscustomobject]@{"
                "KeyProtectorId = [string]$_.KeyProtectorId; "
                "KeyProtectorType = [string]$_.KeyProtectorType} })"
                "} | ConvertTo-Json -Compress -Depth 3"
            )
            or {}
        )

    def laps_rotations(self, log: str, event_ids: tuple[int, ...]) -> list[dict[str, Any]]:
        """The Windows LAPS events of these ids (Get-WinEvent): id and time only. None found is an
        answer (no rotation), not a failed read."""
        ids = ",".join(str(i) for i in event_ids)
        return as_list(
            self.json(
                # Two statements: powershell.exe's exit code is the last one's, so no event found
                # (NoMatchingEventsFound) does not fail the read; foreach, because `$null | Select-Object`
                # would print one empty object.
                f"$found = Get-WinEvent -FilterHashtable @{{LogName = {ps_quote(log)}; Id = {ids}}} "
                "-ErrorAction SilentlyContinue\n"
                "@(foreach ($e in $found) { [pscustomobject]@{Id = $e.Id; TimeCreated = $e.TimeCreated} }) "
                "| ConvertTo-Json -Compress"
            )
        )

    def tpm(self) -> dict[str, Any]:
        """Get-Tpm: whether the machine has a TPM BitLocker can use."""
        return self.json("Get-Tpm | Select-Object TpmPresent,TpmReady | ConvertTo-Json -Compress") or {}

    def computer_system(self) -> dict[str, Any]:
        return (
            self.json(
                "Get-CimInstance -ClassName Win32_ComputerSystem | Select-Object Name,Domain,PartOfDomain "
                "| ConvertTo-Json -Compress"
            )
            or {}
        )

    def defender(self) -> dict[str, Any]:
        return (
            self.json(
                "Get-MpComputerStatus | Select-Object AMServiceEnabled,AntivirusEnabled,AntispywareEnabled,"
                "RealTimeProtectionEnabled,BehaviorMonitorEnabled,IoavProtectionEnabled,IsTamperProtected,"
                "AntivirusSignatureLastUpdated,AntivirusSignatureVersion | ConvertTo-Json -Compress"
            )
            or {}
        )

    def services(self) -> list[dict[str, Any]]:
        return as_list(
            self.json(
                "Get-Service | Select-Object Name,DisplayName,Status,StartType | ConvertTo-Json -Compress"
            )
        )

    def scheduled_tasks(self) -> list[dict[str, Any]]:
        return as_list(
            self.json("Get-ScheduledTask | Select-Object TaskPath,TaskName,State | ConvertTo-Json -Compress")
        )

    def folder(self, path: str) -> list[dict[str, Any]]:
        """Files directly in a folder (hidden ones too); [] when the folder does not exist."""
        if not self.json(f"Test-Path -LiteralPath {ps_quote(path)} | ConvertTo-Json -Compress"):
            return []
        return as_list(
            self.json(
                f"Get-ChildItem -LiteralPath {ps_quote(path)} -Force -File "
                "| Select-Object Name,FullName,Length | ConvertTo-Json -Compress"
            )
        )

    def exists(self, path: str) -> bool:
        return bool(self.json(f"Test-Path -LiteralPath {ps_quote(path)} | ConvertTo-Json -Compress"))

    def installed_applications(self) -> list[dict[str, Any]]:
        items: list[Any] = []
        for path in self.UNINSTALL:
            if not self.json(f"Test-Path -Path {ps_quote(path[:-2])} | ConvertTo-Json -Compress"):
                continue  # no 32-bit view on this host
            items += as_list(
                self.json(
                    f"Get-ItemProperty -Path {ps_quote(path)} | Select-Object DisplayName,DisplayVersion "
                    "| ConvertTo-Json -Compress"
                )
            )
        return [i for i in items if isinstance(i, dict) and i.get("DisplayName")]

    def administrators(self) -> list[dict[str, Any]]:
        return as_list(
            self.json(
                "Get-LocalGroupMember -SID 'S-1-5-32-544' | Select-Object Name,ObjectClass,PrincipalSource "
                "| ConvertTo-Json -Compress"
            )
        )

    def plan_registry_keys(self, paths: Iterable[str]) -> None:
        """The keys this host's checks will read: the first `registry_key` of one of them reads
        all of them in as few commands as the command line allows (`registry_batches`)."""
        for path in paths:
            if path not in self._registry:
                self._planned.setdefault(path, None)

    def registry_key(self, path: str) -> dict[str, Any] | None:
        """All values of one key (a dict, or a list for a wildcard path matching several keys), or
        None when the key does not exist.

        A planned key is answered from the batched read; any other, or one whose batch failed, by
        one command of its own (a WinRM round-trip set per read is most of a verification's
        cost): nothing printed when the key is missing, `{}` for a key without values
        (Get-ItemProperty then returns no object)."""
        if path in self._planned:
            self._read_planned_keys()
        if path in self._registry:
            answer = self._registry[path]
            if isinstance(answer, ReadError):
                raise answer
            found: dict[str, Any] | None = answer
            return found
        found = self.json(registry_key_script(path))
        return found

    def _read_planned_keys(self) -> None:
        """One command per batch; a batch that fails as a whole leaves its keys to their own
        reads, so nothing is lost but the saving."""
        planned, self._planned = list(self._planned), {}
        for batch in registry_batches(planned):
            try:
                result = self._run(encoded(registry_batch_script(batch)))
                answers = parse_registry_batch(batch, result)
            except Exception as exc:  # transport error after retries, or an answer not understood
                self.batch_failures.append(f"{len(batch)} key(s): {str(exc)[:200]}")
                continue
            self._registry.update(answers)

    def optional_feature(self, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.json(
            f"Get-WindowsOptionalFeature -Online -FeatureName {ps_quote(name)} "
            "| Select-Object FeatureName,State | ConvertTo-Json -Compress",
            allow_missing=True,
        )
        return found

    def firewall_profiles(self) -> list[dict[str, Any]]:
        return as_list(
            self.json(
                # ActiveStore: what is in effect (local settings merged with Group Policy).
                "Get-NetFirewallProfile -PolicyStore ActiveStore | Select-Object Name,Enabled,"
                "DefaultInboundAction,DefaultOutboundAction,LogAllowed,LogBlocked,LogFileName,"
                "LogMaxSizeKilobytes | ConvertTo-Json -Compress"
            )
        )
