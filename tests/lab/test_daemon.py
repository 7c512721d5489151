"""The lab daemon as users and other tests drive it: `rebuild lab up|status|fault|down`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import winrm
import yaml

from rebuild.errors import RebuildError
from rebuild.lab import daemon, fleet
from rebuild.secrets import SecretStore

pytestmark = pytest.mark.lab


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rebuild", "lab", *args], capture_output=True, text=True, timeout=120, env=env
    )


def _overlay_hosts(path: Path) -> dict[str, dict[str, object]]:
    inventory = yaml.safe_load(path.read_text())
    hosts: dict[str, dict[str, object]] = {}
    for group in inventory["all"]["children"].values():
        for name, hv in (group.get("hosts") or {}).items():
            if hv:
                hosts[name] = hv
    return hosts


def test_up_status_down_for_one_site(lab_factory: Callable[..., object]) -> None:
    lab = lab_factory(site="arlon")
    status = lab.client.status()  # type: ignore[attr-defined]
    sites = {t["site"] for t in status["twins"]}
    assert sites == {"arlon"} and status["ready"] is True and status["simulated"] is True
    # The morning after: servers run their compromised disk, containment shut the PCs down.
    servers = sum(1 for t in status["twins"] if lab.client.twin(t["name"])["kind"] == "server")  # type: ignore[attr-defined]
    assert status["counts"] == {"compromised": servers, "off": len(status["twins"]) - servers}
    addresses = [t["address"] for t in status["twins"]]
    assert len(set(addresses)) == len(addresses)
    prefix = lab.info["address_prefix"]  # type: ignore[attr-defined]
    assert all(a.startswith(prefix + ".") for a in addresses)

    out = _cli("status", "--lab-dir", str(lab.lab_dir))  # type: ignore[attr-defined]
    assert out.returncode == 0 and "SIMULATED" in out.stdout
    off = len(addresses) - servers
    assert f"{len(addresses)} twins (ready) - compromised: {servers}, off: {off}" in out.stdout

    pid = lab.info["pid"]  # type: ignore[attr-defined]
    with socket.create_connection((addresses[0], 5986), timeout=5):
        pass
    down = _cli("down", "--lab-dir", str(lab.lab_dir))  # type: ignore[attr-defined]
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not daemon._alive(pid)
    with pytest.raises(OSError):
        socket.create_connection((addresses[0], 5986), timeout=2).close()
    assert not daemon.info_path(lab.lab_dir).exists()  # type: ignore[attr-defined]


def test_overlay_points_at_the_twins_and_trusts_the_lab_ca(lab: object) -> None:
    status = lab.client.status()  # type: ignore[attr-defined]
    by_name = {t["name"]: t for t in status["twins"]}
    inventory = lab.inventory("arlon")  # type: ignore[attr-defined]
    raw = yaml.safe_load(inventory.read_text())
    conn = raw["all"]["vars"]
    # The product's connection settings are kept as they are: HTTPS, NTLM, validation on.
    assert conn["ansible_winrm_server_cert_validation"] == "validate"
    assert conn["ansible_winrm_scheme"] == "https" and conn["ansible_winrm_transport"] == "ntlm"
    hosts = _overlay_hosts(inventory)
    assert hosts and set(hosts) <= set(by_name)
    for name, hv in hosts.items():
        assert hv["ansible_host"] == by_name[name]["address"]
        assert hv["rebuild_ca_bundle"] == str(lab.ca_bundle)  # type: ignore[attr-defined]
        assert str(hv["rebuild_pxe_root"]).startswith(str(lab.lab_dir))  # type: ignore[attr-defined]
        assert str(hv["rebuild_wol_broadcast"]).startswith("127.")
        if hv["rebuild_platform"] == "physical" and hv["rebuild_kind"] == "server":
            assert str(hv["rebuild_bmc_address"]).startswith("http://127.0.0.1:")
            assert hv["rebuild_redfish_system_id"]
    assert "SIMULATED" in inventory.read_text().splitlines()[0]
    # No secret in the overlay: passwords come from the seeded secret store only.
    store = lab.store()  # type: ignore[attr-defined]
    text = inventory.read_text()
    for name in hosts:
        secret = store.get(name)
        assert secret and secret not in text


def test_seeded_secret_is_the_twins_rb_admin_password(lab: object) -> None:
    twin = next(t for t in lab.client.status()["twins"] if t["phase"] == "compromised")  # type: ignore[attr-defined]
    store = SecretStore(lab.state_dir, key_file=lab.state_dir / "vault-password")  # type: ignore[attr-defined]
    password = store.get(twin["name"])
    assert password
    url = f"https://{twin['address']}:5986/wsman"
    protocol = winrm.Protocol(
        url, transport="ntlm", username="rb-admin", password=str(password), ca_trust_path=str(lab.ca_bundle)
    )  # type: ignore[attr-defined]
    shell = protocol.open_shell()  # authenticated and authorised: the shell exists
    protocol.close_shell(shell)
    bad = winrm.Protocol(
        url,
        transport="ntlm",
        username="rb-admin",
        password=str(password) + "x",
        ca_trust_path=str(lab.ca_bundle),
    )  # type: ignore[attr-defined]
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        bad.open_shell()
    state = lab.client.twin(twin["name"])  # type: ignore[attr-defined]
    assert state["phase"] == "compromised" and state["users"]["rb-admin"]["enabled"] is True
    assert state["users"]["rb-admin"]["password"] == "***" and str(password) not in json.dumps(state)
    assert any(e["event"] == "winrm_auth_refused" for e in state["history"])


def test_fault_cli_sets_validates_and_clears(lab: object, tmp_path: Path) -> None:
    lab_dir = str(lab.lab_dir)  # type: ignore[attr-defined]
    name = lab.client.status()["twins"][0]["name"]  # type: ignore[attr-defined]
    ok = _cli("fault", "--lab-dir", lab_dir, name, "slow_host", "delay=0.2")
    assert ok.returncode == 0, ok.stderr
    assert lab.client.faults()[name] == {"slow_host": {"delay": 0.2}}  # type: ignore[attr-defined]

    unknown_host = _cli("fault", "--lab-dir", lab_dir, "NOPE-0001", "never_wakes")
    assert unknown_host.returncode == 2 and "NOPE-0001" in unknown_host.stderr
    unknown_fault = _cli("fault", "--lab-dir", lab_dir, name, "explodes")
    assert unknown_fault.returncode == 2 and "unknown fault 'explodes'" in unknown_fault.stderr
    missing = _cli("fault", "--lab-dir", lab_dir, name, "slow_host")
    assert missing.returncode == 2 and "'delay' is required" in missing.stderr

    good = tmp_path / "faults.yml"
    good.write_text(yaml.safe_dump({name: {"drift_after_harden": {"settings": ["smb1"]}, "never_wakes": {}}}))
    assert _cli("fault", "--lab-dir", lab_dir, "--file", str(good)).returncode == 0
    assert set(lab.client.faults()[name]) == {"slow_host", "drift_after_harden", "never_wakes"}  # type: ignore[attr-defined]
    # A bad file changes nothing, and says which host and fault are wrong.
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({name: {"reimage_fails": {}}, "GHOST-01": {"never_wakes": {}}}))
    refused = _cli("fault", "--lab-dir", lab_dir, "--file", str(bad))
    assert refused.returncode == 2 and "GHOST-01" in refused.stderr and str(bad) in refused.stderr
    assert "reimage_fails" not in lab.client.faults()[name]  # type: ignore[attr-defined]

    assert _cli("fault", "--lab-dir", lab_dir, "--clear", name, "never_wakes").returncode == 0
    assert "never_wakes" not in lab.client.faults()[name]  # type: ignore[attr-defined]
    assert _cli("fault", "--lab-dir", lab_dir, "--clear", name).returncode == 0
    assert name not in lab.client.faults()  # type: ignore[attr-defined]


def test_a_second_lab_in_the_same_dir_is_refused(lab: object) -> None:
    options = daemon.DaemonOptions(lab.lab_dir, fleet.SMALL_REGISTER, None, "127.21", 1.0)  # type: ignore[attr-defined]
    with pytest.raises(RebuildError, match="already running"):
        daemon.up(options)


def test_bad_register_stops_lab_up_with_the_problem(tmp_path: Path) -> None:
    register = tmp_path / "register.csv"
    register.write_text(fleet.SMALL_REGISTER.read_text().replace("Windows Server 2022", "Windows 3.11", 1))
    out = _cli(
        "up", "--lab-dir", str(tmp_path / "lab"), "--register", str(register), "--address-prefix", "127.22"
    )
    assert out.returncode == 2
    assert "Windows 3.11" in out.stderr or "row 2" in out.stderr
    assert not daemon.info_path(tmp_path / "lab").exists()


def test_addresses_are_stable_across_lab_ups() -> None:
    hosts = fleet.load_hosts(fleet.SMALL_REGISTER)
    first = fleet.allocate(hosts, "127.40")
    second = fleet.allocate(list(reversed(hosts)), "127.40")
    assert {n: r.address for n, r in first.items()} == {n: r.address for n, r in second.items()}
    ranked = sorted(first)
    assert first[ranked[0]].address == "127.40.0.2" and first[ranked[1]].address == "127.40.0.3"
    with pytest.raises(RebuildError, match=r"127\.N"):
        fleet.allocate(hosts, "10.0")
    assert json.dumps  # stable JSON-able records


def test_ansible_win_ping_on_arlon_over_https_with_certificate_validation(lab: object) -> None:
    """Issue 3's done-when: the product's connection settings, the lab overlay, seeded secrets."""
    env = {**os.environ, **lab.env}  # type: ignore[attr-defined]
    inventory = str(lab.inventory("arlon"))  # type: ignore[attr-defined]
    twins = [t for t in lab.client.status()["twins"] if t["site"] == "arlon"]  # type: ignore[attr-defined]
    # Containment powered the PCs off; the running Arlon machines are its servers.
    arlon = [t["name"] for t in twins if t["phase"] == "compromised"]
    assert arlon and len(arlon) < len(twins)
    ping = subprocess.run(
        ["ansible", "-i", inventory, "-m", "ansible.windows.win_ping", "site_arlon:&kind_server"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=fleet.PROJECT_ROOT,
    )
    assert ping.returncode == 0, ping.stdout[-2000:] + ping.stderr[-2000:]
    assert ping.stdout.count("| SUCCESS") == len(arlon)
    assert '"ping": "pong"' in ping.stdout
    # Validation is really on: trusting another CA bundle makes the same ping fail.
    other = subprocess.run(
        [
            "ansible",
            "-i",
            inventory,
            "-m",
            "ansible.windows.win_ping",
            arlon[0],
            "-e",
            "rebuild_ca_bundle=/etc/ssl/certs/ca-certificates.crt",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=fleet.PROJECT_ROOT,
    )
    assert other.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in other.stdout + other.stderr


def test_lab_up_again_in_the_same_dir_is_a_fresh_rehearsal(lab_factory: Callable[..., object]) -> None:
    lab = lab_factory(site="bastogne")
    lab_dir = lab.lab_dir  # type: ignore[attr-defined]
    before = {t["name"]: t["address"] for t in lab.client.status()["twins"]}  # type: ignore[attr-defined]
    old_secret = lab.store().get(next(iter(before)))  # type: ignore[attr-defined]
    prefix = lab.info["address_prefix"]  # type: ignore[attr-defined]
    assert daemon.down(lab_dir)
    (lab_dir / "state" / "journal.sqlite").write_text("stale rehearsal")
    options = daemon.DaemonOptions(lab_dir, fleet.SMALL_REGISTER, "bastogne", prefix, 1.0)
    info = daemon.up(options)
    try:
        client = daemon.LabClient(lab_dir)
        after = {t["name"]: t["address"] for t in client.status()["twins"]}
        assert after == before  # same register, same addresses
        assert not (lab_dir / "state" / "journal.sqlite").exists()
        state = Path(info["state_dir"])
        assert SecretStore(state, key_file=state / "vault-password").get(next(iter(before))) != old_secret
    finally:
        daemon.down(lab_dir)


def test_power_button_boots_a_contained_pc_on_its_old_disk(lab_factory: Callable[..., object]) -> None:
    lab = lab_factory(site="arlon")
    client = lab.client  # type: ignore[attr-defined]
    pc = next(t["name"] for t in client.status()["twins"] if t["kind"] == "workstation")
    assert client.twin(pc)["phase"] == "off"  # containment shut it down
    # No install entry on the boot server: network boot falls back to the compromised disk.
    assert client.power(pc, "on") == {"host": pc, "booted": "disk"}
    assert client.twin(pc)["phase"] == "compromised"
    with pytest.raises(RebuildError, match="already on"):
        client.power(pc, "on")
    client.power(pc, "off")
    assert client.twin(pc)["phase"] == "off"
    with pytest.raises(RebuildError, match="on\\|off"):
        client.power("NOT-A-TWIN", "on")
