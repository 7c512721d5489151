"""win_rebuild_apps.ps1 run for real in the lab: hash check before anything runs, idempotence, check mode.

Runs the module's own PowerShell (rebuild/lab/ps evaluator) against a real Lab object (state store
on tmp) with arguments validated from
plugins/modules/win_rebuild_apps.py by the lab's own Ansible.Basic argument checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from twins import bare_state, one_twin_lab

from rebuild.applications import load_catalogue
from rebuild.lab.context import Lab
from rebuild.lab.exec import argspec
from rebuild.lab.exec.modules import ModuleContext, ModuleFailed
from rebuild.lab.exec.modules.product import win_rebuild_apps
from rebuild.lab.exec.twin_host import CERT_KEY, PRINTER_KEY
from rebuild.lab.installers import local_path
from rebuild.lab.state import TwinState


@pytest.fixture()
def lab(tmp_path: Path) -> Lab:
    return one_twin_lab(
        tmp_path,
        bare_state(
            defender={
                "AntivirusSignatureVersion": "1.421.0.0",
                "AntivirusSignatureLastUpdated": "2026-11-01T00:00:00",
            },
        ),
    )


def call(lab: Lab, args: dict, check: bool = False, delegated: bool = True) -> dict:
    """Run plugins/modules/win_rebuild_apps.ps1 through the lab's PowerShell evaluator.

    `delegated`: the WinRM session has second-hop credentials (CredSSP / Kerberos delegation), so
    the UNC repository can be read; the lab's own WinRM (NTLM/Basic) never has them."""
    spec = argspec.load_spec("win_rebuild_apps")
    params, _ = argspec.validate_basic(spec, args, "win_rebuild_apps", {})
    ctx = ModuleContext(
        lab=lab,
        twin=lab.twins["ARL-RX-PC01"],
        module_name="win_rebuild_apps",
        params=params,
        raw_args=args,
        check_mode=check,
        delegated_credentials=delegated,
    )
    return win_rebuild_apps(ctx)


@pytest.fixture()
def args() -> dict:
    cat = load_catalogue()
    d = cat.for_host(
        hostname="ARL-RX-PC01",
        kind="workstation",
        service="radiology",
        site="arlon",
        location="Radiologie salle 1",
    )
    return {**d.module_args(cat.repository), "update_defender_signatures": True}


def test_installs_everything_then_is_idempotent(lab, args):
    first = call(lab, args)
    assert first["changed"] is True
    assert {a["id"]: a["status"] for a in first["applications"]} == {
        "edr-agent": "installed",
        "omnipro-client": "installed",
        "pacs-viewer": "installed",
    }
    assert all(a["sha256_ok"] for a in first["applications"])
    state = lab.state("ARL-RX-PC01")
    assert state.applications["Lumen PACS Viewer"] == "12.1.0"
    assert CERT_KEY.format(store="ROOT", thumb="F3C807AEEB47CED4A328983ABC938868D360BB0A") in state.registry
    assert state.registry[PRINTER_KEY.format(name="ARL-RX-PRT01")]["Port"] == "IP_10.11.25.50"
    assert state.defender["AntivirusSignatureLastUpdated"] > "2026-11-01"
    second = call(lab, {**args, "update_defender_signatures": False})
    assert second["changed"] is False
    assert {a["status"] for a in second["applications"]} == {"present"}


def test_check_mode_reports_and_changes_nothing(lab, args):
    result = call(lab, args, check=True)
    assert result["changed"] is True
    assert {a["status"] for a in result["applications"]} == {"would_install"}
    assert lab.state("ARL-RX-PC01").applications == {}
    assert not (lab.config.lab_dir / "installers").exists()  # nothing even copied


def test_tampered_installer_fails_and_nothing_runs(lab, args):
    call(lab, {**args, "applications": args["applications"][:1], "certificates": [], "printers": []})
    pacs = next(a for a in args["applications"] if a["id"] == "pacs-viewer")
    path = local_path(lab.config.lab_dir, pacs["installer"])
    path.write_bytes(path.read_bytes() + b"\x90 implant")
    with pytest.raises(ModuleFailed) as err:
        call(lab, args)
    assert "nothing was installed: pacs-viewer" in err.value.msg
    by_id = {a["id"]: a for a in err.value.result["applications"]}
    assert by_id["pacs-viewer"]["sha256_ok"] is False and "SHA-256 of pacs/" in by_id["pacs-viewer"]["error"]
    assert by_id["omnipro-client"]["status"] == "not_run"
    apps = lab.state("ARL-RX-PC01").applications
    assert "Omnipro Client" not in apps and "Lumen PACS Viewer" not in apps


def test_unc_repository_fails_in_an_ntlm_session_https_works(lab, args):
    """Issue 12 item 13: the old UNC share is a double hop from the NTLM WinRM session; the module
    refuses it before touching it (the lab's Access denied for the UNC read itself is tested on a
    small script in test_ps_twin_rules.py)."""
    with pytest.raises(ModuleFailed, match=r"is not an https:// URL.*second hop"):
        call(lab, {**args, "repository": "\\\\deploy.ghal.lan\\rebuild$\\apps"})
    assert lab.state("ARL-RX-PC01").applications == {}
    assert args["repository"].startswith("https://")
    result = call(lab, args)
    assert {a["status"] for a in result["applications"]} == {"installed"}


def test_installer_not_in_repository_fails(lab, args):
    bogus = {**args["applications"][0], "id": "x", "installer": "edr/Other-1.0.msi"}
    with pytest.raises(ModuleFailed, match="nothing was installed: x"):
        call(lab, {**args, "applications": [bogus]})


def test_unknown_driver_fails_like_windows(lab, args):
    with pytest.raises(ModuleFailed, match="failed: P1"):
        call(lab, {**args, "printers": [{"name": "P1", "driver": "HP Universal PCL6", "port": "10.11.1.1"}]})


def test_bad_arguments_rejected_from_documentation(lab, args):
    bad = {**args, "applications": [{**args["applications"][0], "type": "zip"}]}
    with pytest.raises(argspec.ArgumentFailure, match="value of type must be one of: msi, exe"):
        call(lab, bad)
    with pytest.raises(argspec.ArgumentFailure, match="missing required arguments: sha256"):
        call(
            lab,
            {**args, "applications": [{k: v for k, v in args["applications"][0].items() if k != "sha256"}]},
        )


def test_drift_fault_reinfects_after_install(lab, args):
    lab.faults["ARL-RX-PC01"] = {"drift_after_redeploy": {"changes": ["defender_off", "ransom_note"]}}
    result = call(lab, args)
    assert result["changed"] is True  # the module itself cannot see it, as on Windows
    state = lab.state("ARL-RX-PC01")
    assert state.defender["RealTimeProtectionEnabled"] is False
    assert "C:\\Users\\Public\\Desktop\\Restore-My-Files.txt" in state.files


def test_repository_population_is_safe_concurrently(tmp_path):
    import threading

    from rebuild.lab.installers import ensure_repository

    entries = [(f"app{i}", "1.0", f"dir/App{i}.msi") for i in range(30)]
    errors: list[BaseException] = []

    def populate() -> None:
        try:
            ensure_repository(tmp_path, entries)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=populate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in (tmp_path / "installers" / "dir").iterdir()) == sorted(
        f"App{i}.msi" for i in range(30)
    )


def test_defender_update_only_when_signatures_are_old(lab, args):
    first = call(lab, args)
    assert first["defender"]["updated"] is True
    again = call(lab, args)
    assert again["defender"]["updated"] is False and again["changed"] is False


def test_redeploy_installs_from_a_plain_ntlm_session(lab, args):
    """What the rehearsal needs: the product installs without second-hop credentials."""
    result = call(lab, args, delegated=False)
    assert {a["status"] for a in result["applications"]} == {"installed"}


def test_misspelt_cmdlet_parameter_in_a_copy_of_the_module_fails_as_on_windows(lab, args, monkeypatch):
    """Issue 13: a wrong parameter in our PowerShell fails with PowerShell's own binding message."""
    from rebuild.lab.exec.modules import product

    broken = product.script_source("win_rebuild_apps").replace(
        "Get-FileHash -LiteralPath $Path", "Get-FileHash -LitralPath $Path"
    )
    monkeypatch.setattr(product, "script_source", lambda name: broken)
    with pytest.raises(ModuleFailed) as err:
        call(lab, args)
    errors = [a["error"] for a in err.value.result["applications"]]
    assert any("A parameter cannot be found that matches parameter name 'LitralPath'." in e for e in errors)


def test_a_check_mode_run_whose_script_writes_fails(lab, args, monkeypatch):
    """Issue 13: a check-mode branch that writes anyway is caught, not silently applied."""
    from rebuild.lab.exec.modules import product

    broken = product.script_source("win_rebuild_apps").replace(
        "if ($check) {\n    $module.Result.changed", "if ($false) {\n    $module.Result.changed"
    )
    assert broken != product.script_source("win_rebuild_apps")
    monkeypatch.setattr(product, "script_source", lambda name: broken)
    with pytest.raises(ModuleFailed, match="changed the twin in check mode"):
        call(lab, args, check=True)
    assert lab.state("ARL-RX-PC01").applications == {}


def test_an_installer_that_leaves_a_process_behind_does_not_hang_the_task(lab, args):
    """Issue 12 item 14: Start-Process -Wait waits for the whole process tree in PowerShell 5.1
    (Start-Process -Wait, Microsoft Learn); an installer leaving an updater running would hang."""
    lab.faults["ARL-RX-PC01"] = {"installer_leaves_process": {}}
    result = call(lab, args)
    assert {a["status"] for a in result["applications"]} == {"installed"}


def test_exe_installer_and_upgrade(lab, args):
    """An .exe installer runs itself; an older installed version is reported as upgraded."""
    pacs = next(a for a in args["applications"] if a["id"] == "pacs-viewer")

    def old(s: TwinState) -> None:
        s.applications[pacs["name"]] = "1.0.0"

    lab.update("ARL-RX-PC01", old)
    result = call(
        lab, {**args, "applications": [{**pacs, "type": "exe"}], "certificates": [], "printers": []}
    )
    assert result["applications"][0]["status"] == "upgraded"
    assert lab.state("ARL-RX-PC01").applications[pacs["name"]] == pacs["version"]


def test_a_package_that_is_not_an_installer_exits_1603(lab, args):
    """msiexec's 1603 (fatal error during installation) for a file that verifies but installs nothing."""
    import hashlib

    junk = local_path(lab.config.lab_dir, "junk/Broken-1.0.msi")
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(b"not an installer")
    app = {
        **args["applications"][0],
        "installer": "junk/Broken-1.0.msi",
        "sha256": hashlib.sha256(b"not an installer").hexdigest(),
    }
    with pytest.raises(ModuleFailed, match=f"failed: {app['id']}") as err:
        call(lab, {**args, "applications": [app], "certificates": [], "printers": []})
    assert err.value.result["applications"][0]["error"] == "installer exited with 1603"


def test_certificate_whose_thumbprint_is_not_the_catalogues_fails(lab, args):
    cert = {**args["certificates"][0], "thumbprint": "00" * 20}
    with pytest.raises(ModuleFailed, match=f"failed: {cert['id']}") as err:
        call(lab, {**args, "applications": [], "certificates": [cert], "printers": []})
    assert "is not the catalogue's" in err.value.result["certificates"][0]["error"]


def test_existing_printer_with_another_driver_is_updated(lab, args):
    printer = args["printers"][0]
    call(
        lab,
        {
            **args,
            "applications": [],
            "certificates": [],
            "printers": [{**printer, "driver": "Generic / Text Only"}],
        },
    )
    result = call(lab, {**args, "applications": [], "certificates": [], "printers": [printer]})
    assert result["printers"][0]["status"] == "added" and result["changed"] is True
    key = PRINTER_KEY.format(name=printer["name"])
    assert lab.state("ARL-RX-PC01").registry[key]["Printer Driver"] == printer["driver"]


def test_defender_signatures_from_a_file_share_source(lab, args):
    result = call(
        lab,
        {
            **args,
            "applications": [],
            "certificates": [],
            "printers": [],
            "defender_signature_source": "\\\\deploy.ghal.lan\\defs",
        },
    )
    assert result["defender"]["updated"] is True
    assert (
        lab.state("ARL-RX-PC01").defender["SignatureDefinitionUpdateFileSharesSources"]
        == "\\\\deploy.ghal.lan\\defs"
    )
