"""Twin of plugins/modules/win_rebuild_apps.ps1 (SIMULATION).

Same argument spec (validated by the runner from win_rebuild_apps.py), same result shape,
same order of work: refuse a UNC repository (the double hop an NTLM session cannot make),
find what is missing, stage every file and check its SHA-256, and only
when ALL match run anything. Installers come from the lab's installer repository
(rebuild/lab/installers.py, under `<lab_dir>/installers/`), populated from the product
catalogue: an installer the catalogue does not list does not exist (404), and a file changed
after it was written (tampering) fails its hash exactly as Get-FileHash would.

What "installing" changes on the twin is what Windows would show afterwards: the
Uninstall key's DisplayName/DisplayVersion (TwinState.applications), the certificate under
HKLM\\SOFTWARE\\Microsoft\\SystemCertificates\\<store>\\Certificates\\<THUMBPRINT>, the printer
under HKLM\\SYSTEM\\CurrentControlSet\\Control\\Print\\Printers\\<name>, and Defender's
signature date after Update-MpSignature.

SIMULATION: the lab runs no HTTPS package server; the https:// repository's files are read
from `<lab_dir>/installers` as such a server would serve them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from pathlib import Path
from typing import Any

from rebuild.lab.exec.modules import ModuleContext, ModuleFailed, module_twin
from rebuild.lab.installers import ensure_repository, local_path
from rebuild.lab.state import RANSOM_NOTE, TwinState

CERT_KEY = "HKLM:\\SOFTWARE\\Microsoft\\SystemCertificates\\{store}\\Certificates\\{thumb}"
PRINTER_KEY = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Print\\Printers\\{name}"
# Drivers present on a clean Windows install (the module adds queues, not drivers).
INBOX_DRIVERS = {
    "Microsoft IPP Class Driver",
    "Microsoft Print To PDF",
    "Microsoft XPS Document Writer v4",
    "Generic / Text Only",
}
_HTTPS = re.compile(r"^https://[^/]+/.*$")
_UNC = re.compile(r"^\\\\[^\\/]+\\[^\\/]+")


def _populate(lab_dir: Path) -> None:
    """The lab's share holds exactly the catalogue's files (written once, then left alone)."""
    from rebuild.applications import load_catalogue

    cat = load_catalogue()
    entries = [(a.id, a.version, a.installer) for a in cat.applications.values()]
    entries += [(c.id, c.version, c.file) for c in cat.certificates.values()]
    ensure_repository(lab_dir, entries)


DRIFTS = ("defender_off", "ransom_note")


def _signature_age_hours(state: TwinState) -> float:
    text = str(state.defender.get("AntivirusSignatureLastUpdated") or "")
    try:
        when = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    except ValueError:
        return float("inf")  # never updated
    return (dt.datetime.now(dt.UTC) - when).total_seconds() / 3600


def _drift(ctx: ModuleContext) -> None:
    """Injected fault `drift_after_redeploy`: the host is re-infected right after redeploy.

    SIMULATION of what verification must catch: an attacker foothold (or a bad installer)
    turning Defender back off and leaving a ransom note. The module's own result does not
    show it - on Windows it would not either.
    """
    fault = ctx.lab.fault(ctx.twin.name, "drift_after_redeploy")
    if not fault:
        return
    changes = [str(c) for c in fault.get("changes", [])]
    unknown = [c for c in changes if c not in DRIFTS]
    if unknown:
        raise ModuleFailed(
            f"lab fault drift_after_redeploy: unknown change(s) {unknown} (known: {list(DRIFTS)})"
        )

    def apply(s: TwinState) -> None:
        if "defender_off" in changes:
            for key in (
                "RealTimeProtectionEnabled",
                "BehaviorMonitorEnabled",
                "IoavProtectionEnabled",
                "OnAccessProtectionEnabled",
            ):
                s.defender[key] = False
            s.registry.setdefault(
                "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\Real-Time Protection", {}
            )["DisableRealtimeMonitoring"] = 1
        if "ransom_note" in changes:
            s.files[RANSOM_NOTE] = (
                "SIMULATED ransom note (rebuild lab drift fault).\r\nRestore-My-Files.txt\r\n"
            )

    ctx.lab.update(ctx.twin.name, apply)
    ctx.record("drift_after_redeploy", changes=changes)


def _stage(lab_dir: Path, repository: str, relative: str) -> bytes:
    try:
        path = local_path(lab_dir, relative)
    except ValueError as exc:
        raise FileNotFoundError(str(exc)) from None
    if not path.is_file():
        raise FileNotFoundError(
            f"The remote server returned an error: (404) Not Found. ({repository}/{relative})"
        )
    return path.read_bytes()


@module_twin("win_rebuild_apps")
def win_rebuild_apps(ctx: ModuleContext) -> dict[str, Any]:
    p = ctx.params
    repository = str(p["repository"]).rstrip("\\/")
    if _UNC.match(repository):
        # Every lab WinRM session is NTLM (or Basic): Windows gives it no network credentials,
        # so a UNC path from inside it is the double hop and fails Access denied (Microsoft
        # Learn, "Making the second hop in PowerShell Remoting"). What the old module met.
        ctx.record("unc_double_hop_refused", repository=repository)
        raise ModuleFailed(
            f"cannot copy from {repository}: Access to the path '{repository}' is denied. "
            "(the WinRM session is NTLM-authenticated and has no network credentials)"
        )
    if not _HTTPS.match(repository):
        raise ModuleFailed(
            f"repository '{repository}' is not an https:// URL: a UNC share cannot be read from this "
            "WinRM session (NTLM, no credentials for a second hop)"
        )
    state = ctx.state()
    apps_out: list[dict[str, Any]] = []
    certs_out: list[dict[str, Any]] = []
    printers_out: list[dict[str, Any]] = []
    failed: list[str] = []
    app_work: list[tuple[dict[str, Any], dict[str, Any]]] = []
    cert_work: list[tuple[dict[str, Any], dict[str, Any]]] = []
    printer_work: list[tuple[dict[str, Any], dict[str, Any]]] = []

    for app in p.get("applications") or []:
        before = state.applications.get(app["name"])
        entry: dict[str, Any] = {
            "id": app["id"],
            "name": app["name"],
            "version": app["version"],
            "before": before,
            "after": before,
            "changed": False,
            "status": "present",
            "sha256_ok": None,
            "error": None,
        }
        apps_out.append(entry)
        if before != app["version"]:
            entry.update(changed=True, status="would_install" if ctx.check_mode else "pending")
            app_work.append((app, entry))
    for cert in p.get("certificates") or []:
        thumb = str(cert["thumbprint"]).upper()
        present = CERT_KEY.format(store=cert["store"].upper(), thumb=thumb) in state.registry
        entry = {
            "id": cert["id"],
            "store": cert["store"],
            "thumbprint": thumb,
            "changed": not present,
            "status": "present" if present else ("would_import" if ctx.check_mode else "pending"),
            "error": None,
        }
        certs_out.append(entry)
        if not present:
            cert_work.append((cert, entry))
    for printer in p.get("printers") or []:
        existing = state.registry.get(PRINTER_KEY.format(name=printer["name"]))
        same = (
            existing is not None
            and bool(existing)
            and existing.get("Printer Driver") == printer["driver"]
            and existing.get("Port") == f"IP_{printer['port']}"
        )
        entry = {
            "name": printer["name"],
            "changed": not same,
            "status": "present" if same else ("would_add" if ctx.check_mode else "pending"),
            "error": None,
        }
        printers_out.append(entry)
        if not same:
            printer_work.append((printer, entry))

    result: dict[str, Any] = {
        "applications": apps_out,
        "certificates": certs_out,
        "printers": printers_out,
        "failed_items": failed,
    }
    if ctx.check_mode:
        result["changed"] = bool(app_work or cert_work or printer_work)
        return result

    lab_dir = ctx.lab.config.lab_dir
    _populate(lab_dir)
    staged: dict[int, bytes] = {}
    for spec, entry in [*app_work, *cert_work]:
        relative = spec.get("installer") or spec["file"]
        try:
            data = _stage(lab_dir, repository, relative)
        except FileNotFoundError as exc:
            entry.update(status="failed", error=f"cannot download {relative} from {repository}: {exc}")
            failed.append(spec["id"])
            continue
        actual = hashlib.sha256(data).hexdigest()
        ok = actual == str(spec["sha256"]).lower()
        if "sha256_ok" in entry:
            entry["sha256_ok"] = ok
        if not ok:
            entry.update(
                status="failed", error=f"SHA-256 of {relative} is {actual}, catalogue says {spec['sha256']}"
            )
            failed.append(spec["id"])
            continue
        staged[id(spec)] = data
    if failed:
        for _spec, entry in [*app_work, *cert_work, *printer_work]:
            if entry["status"] == "pending":
                entry.update(status="not_run", changed=False)
        ctx.record("installer_refused", items=list(failed))
        raise ModuleFailed(
            f"installer verification failed, nothing was installed: {', '.join(failed)}", **result
        )

    def install(s: TwinState) -> None:
        for app, entry in app_work:
            s.applications[app["name"]] = app["version"]
            entry.update(after=app["version"], status="upgraded" if entry["before"] else "installed")
        for cert, entry in cert_work:
            thumb = hashlib.sha1(staged[id(cert)]).hexdigest().upper()
            if thumb != str(cert["thumbprint"]).upper():
                entry.update(
                    status="failed",
                    error=f"imported thumbprint {thumb} is not the catalogue's {cert['thumbprint']}",
                )
                failed.append(cert["id"])
                continue
            s.registry[CERT_KEY.format(store=cert["store"].upper(), thumb=thumb)] = {
                "FriendlyName": cert["name"]
            }
            entry["status"] = "imported"
        for printer, entry in printer_work:
            if printer["driver"] not in INBOX_DRIVERS:
                entry.update(
                    status="failed", error=f"The specified driver does not exist. ({printer['driver']})"
                )
                failed.append(printer["name"])
                continue
            s.registry[PRINTER_KEY.format(name=printer["name"])] = {
                "Name": printer["name"],
                "Printer Driver": printer["driver"],
                "Port": f"IP_{printer['port']}",
            }
            entry["status"] = "added"
        if p.get("update_defender_signatures"):
            updated = _signature_age_hours(s) > float(p.get("defender_signature_max_age_hours") or 12)
            if updated:
                s.defender["AntivirusSignatureLastUpdated"] = time.strftime(
                    "%Y-%m-%dT%H:%M:%S", time.gmtime()
                )
                version = (str(s.defender.get("AntivirusSignatureVersion") or "1.421.0.0") + ".0.0.0").split(
                    "."
                )[:4]
                s.defender["AntivirusSignatureVersion"] = (
                    f"{version[0]}.{version[1]}.{int(version[2]) + 80}.{version[3]}"
                )
            result["defender"] = {
                "updated": updated,
                "signature_version": s.defender.get("AntivirusSignatureVersion"),
                "signature_last_updated": s.defender.get("AntivirusSignatureLastUpdated"),
            }

    ctx.update(install)
    ctx.record("applications_installed", applications=[a["id"] for a, _ in app_work])
    _drift(ctx)
    result["changed"] = bool(
        app_work or cert_work or printer_work or (result.get("defender") or {}).get("updated")
    )
    if failed:
        raise ModuleFailed(f"failed: {', '.join(failed)}", **result)
    return result
