"""Injected faults: what can go wrong with a twin, set from a YAML file or the CLI.

A fault is a name and its parameters, per twin, kept in `Lab.faults`; each lab subsystem asks
`lab.fault(host, name)`. The WinRM ones act in rebuild.lab.server; the others are read by the
reimage side (never_wakes, bmc_unreachable, reimage_fails, slow_host) and by module twins
(drift_after_harden, drift_after_redeploy).

File format (YAML), host -> fault -> parameters:

    ARL-SRV-0001:
      slow_host: {delay: 3}
      drop_mid_command: {count: 1}
    ARL-PC-0007:
      never_wakes: {}
      drift_after_harden: {settings: [smb1, defender_realtime]}
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from rebuild.errors import ConfigError

# name -> {parameter: (type, required)}
FAULTS: dict[str, dict[str, tuple[type, bool]]] = {
    "never_wakes": {},
    "bmc_unreachable": {},
    "reimage_fails": {"reason": (str, False)},
    "winrm_auth_refused": {},
    "drop_mid_command": {"count": (int, False)},  # without count: every command's Receive drops
    "slow_host": {"delay": (float, True)},
    "drift_after_harden": {"settings": (list, True)},
    # read after win_rebuild_apps runs: re-infection after redeploy (defender_off, ransom_note)
    "drift_after_redeploy": {"changes": (list, True)},
    # read by Start-Process in the PowerShell evaluator: the installer leaves a child process running
    "installer_leaves_process": {},
    # read by the win_hotfix twin (rebuild/lab/exec/modules/updates.py): Add-WindowsPackage throws
    "update_fails": {"reason": (str, False)},
    # read by the microsoft.ad.object_info twin of a DC (rebuild/lab/directory.py): krbtgt was reset
    # only once since the incident; clearing the fault is the second reset
    "krbtgt_reset_once": {},
    # read at the first logon of a reimage (rebuild/lab/images.py): Get-Certificate -Url fails (the CA
    # denies the request), so no HTTPS listener; the product's command records why (WinRMHttpsError)
    "certificate_enrolment_fails": {"reason": (str, False)},
    # read by the SecureBoot cmdlets (rebuild/lab/exec/twin_firmware.py): the machine boots legacy BIOS,
    # has Secure Boot off, or its db lacks the Windows UEFI CA 2023 (2011 certificates only)
    "legacy_bios": {},
    "secure_boot_off": {},
    "db_2011_only": {},
    # read by the simulated EDR agent's installer (rebuild/lab/installers.py): installed, not onboarded
    "edr_not_onboarded": {},
    # read by Get-Tpm and Enable-BitLocker (rebuild/lab/exec/twin_bitlocker.py): the machine has no TPM
    "no_tpm": {},
    # read by Backup-BitLockerKeyProtector (rebuild/lab/exec/twin_bitlocker.py): the directory refuses
    # the computer's write of its recovery information (access denied), so nothing is escrowed
    "escrow_refused": {},
    # read by Reset-LapsPassword (rebuild/lab/exec/twin_laps.py): the directory refuses the new LAPS
    # password (event 10017), the managed account keeps its password
    "laps_rotation_fails": {},
    # read by shutdown.exe /r (rebuild/lab/exec/reboot.py): the next restart request is refused
    # (Access is denied.(5)) and nothing restarts; spent by that refusal
    "restart_refused_once": {},
}


def validate(
    host: str, name: str, params: Any, known_hosts: Iterable[str] | None = None, where: str = ""
) -> dict[str, Any]:
    """Checked parameters of one fault; ConfigError naming host and fault when wrong."""
    prefix = f"{where}: " if where else ""
    if known_hosts is not None and host not in set(known_hosts):
        raise ConfigError(f"{prefix}fault {name!r} names host {host!r}, which is not a twin of this lab")
    if name not in FAULTS:
        raise ConfigError(f"{prefix}host {host}: unknown fault {name!r} (known: {', '.join(sorted(FAULTS))})")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ConfigError(f"{prefix}host {host}, fault {name}: parameters must be a mapping, not {params!r}")
    spec = FAULTS[name]
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ConfigError(f"{prefix}host {host}, fault {name}: unknown parameter(s) {', '.join(unknown)}")
    checked: dict[str, Any] = {}
    for key, (kind, required) in spec.items():
        if key not in params:
            if required:
                raise ConfigError(f"{prefix}host {host}, fault {name}: parameter {key!r} is required")
            continue
        value = params[key]
        try:
            if kind is list:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError
                checked[key] = list(value)
            elif kind is float:
                checked[key] = float(value)
                if checked[key] < 0:
                    raise ValueError
            elif kind is int:
                checked[key] = int(value)
                if checked[key] < 0:
                    raise ValueError
            else:
                checked[key] = str(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{prefix}host {host}, fault {name}: bad value {value!r} for {key!r}") from None
    return checked


def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """CLI `key=value` pairs; a value with commas is a list (settings=a,b)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"fault parameter {pair!r} is not key=value")
        params[key] = value.split(",") if key in ("settings", "changes") else value
    return params


def load_file(path: Path, known_hosts: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """All faults of a file, validated as a whole before any is applied."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read fault file: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of host -> fault -> parameters")
    hosts = set(known_hosts)
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for host, faults in raw.items():
        if not isinstance(faults, dict):
            raise ConfigError(f"{path}: host {host}: expected a mapping of fault -> parameters")
        for name, params in faults.items():
            result.setdefault(str(host), {})[str(name)] = validate(
                str(host), str(name), params, hosts, str(path)
            )
    return result


def apply(
    lab_faults: dict[str, dict[str, dict[str, Any]]], faults: dict[str, dict[str, dict[str, Any]]]
) -> None:
    for host, named in faults.items():
        lab_faults.setdefault(host, {}).update(named)


def clear(lab_faults: dict[str, dict[str, dict[str, Any]]], host: str, name: str | None = None) -> None:
    if name is None:
        lab_faults.pop(host, None)
    else:
        lab_faults.get(host, {}).pop(name, None)
