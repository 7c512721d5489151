"""The reimage role's controller-side plugins, run through Ansible itself (no lab needed)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ansible_ad_hoc as _ansible

from rebuild.secrets import SecretStore, create_key_file

ROOT = Path(__file__).resolve().parents[2]


def test_wake_on_lan_sends_one_magic_packet_and_not_in_check_mode() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        args = ["-m", "rebuild_wake_on_lan", "-a", f"mac=AA-BB-CC-dd-ee-ff broadcast=127.0.0.1 port={port}"]
        checked = _ansible([*args, "--check"])
        assert checked["sent"] == 0 and checked["mac"] == "aa:bb:cc:dd:ee:ff"
        with pytest.raises(TimeoutError):
            listener.settimeout(0.5)
            listener.recvfrom(200)
        listener.settimeout(5)
        result = _ansible(args)
        packet, _ = listener.recvfrom(200)
    assert result["sent"] == 1 and not result["_failed"]
    assert packet == b"\xff" * 6 + bytes.fromhex("aabbccddeeff") * 16


def test_wake_on_lan_rejects_a_bad_mac() -> None:
    result = _ansible(["-m", "rebuild_wake_on_lan", "-a", "mac=zz:bb:cc:dd:ee:ff broadcast=127.0.0.1"])
    assert result["_failed"] and "not a MAC address" in str(result["msg"])


def test_secret_lookup_reads_the_store_and_names_a_missing_host(tmp_path: Path) -> None:
    key = create_key_file(tmp_path / "vault.key")  # as an operator makes one (README, Secrets)
    store = SecretStore(tmp_path, key_file=key)
    value = store.rotate("ARL-PC-0001")
    env = {"REBUILD_STATE_DIR": str(tmp_path), "REBUILD_VAULT_PASSWORD_FILE": str(key)}
    got = _ansible(["-m", "debug", "-a", "msg={{ lookup('rebuild_secret', 'ARL-PC-0001') | length }}"], env)
    assert got["msg"] == len(value)
    missing = _ansible(["-m", "debug", "-a", "msg={{ lookup('rebuild_secret', 'ARL-PC-0002') }}"], env)
    assert missing["_failed"] and "no local_admin secret for host ARL-PC-0002" in str(missing["msg"])
    defaulted = _ansible(
        [
            "-m",
            "debug",
            "-a",
            "msg={{ lookup('rebuild_secret', 'site-arlon', name='hypervisor_token', default='') }}",
        ],
        env,
    )
    assert defaulted["msg"] == ""


def test_wake_on_lan_module_sends_the_same_packet_from_a_relay(tmp_path: Path) -> None:
    """The module itself (what a relay host on the PCs' network runs), outside the controller shortcut."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        args = tmp_path / "args.json"
        args.write_text(
            json.dumps(
                {"ANSIBLE_MODULE_ARGS": {"mac": "aa:bb:cc:dd:ee:01", "broadcast": "127.0.0.1", "port": port}}
            )
        )
        out = subprocess.run(
            [sys.executable, str(ROOT / "plugins/modules/rebuild_wake_on_lan.py"), str(args)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        packet, _ = listener.recvfrom(200)
    assert json.loads(out.stdout)["sent"] == 1
    assert packet == b"\xff" * 6 + bytes.fromhex("aabbccddee01") * 16


def test_gate_opens_on_its_file_and_a_cancelled_wait_does_not_start(tmp_path: Path) -> None:
    from rebuild.contract import CANCEL_SUFFIX

    opened = tmp_path / "t1-b001-slots" / "PC1"
    opened.parent.mkdir()
    opened.touch()
    result = _ansible(["-m", "rebuild_gate", "-a", f"path={opened}"])
    assert not result["_failed"] and result["changed"] is False

    # What the orchestrator writes when the site stops while PC2 waits for its slot.
    waiting = opened.parent / "PC2"
    Path(f"{waiting}{CANCEL_SUFFIX}").write_text("the site is stopping - circuit breaker\n")
    result = _ansible(["-m", "rebuild_gate", "-a", f"path={waiting} timeout=30"])
    assert result["_failed"] and result["rebuild_not_started"] is True
    assert result["msg"] == "not started: the site is stopping - circuit breaker"


def test_boot_trigger_reads_only_its_method_s_variables() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        host_vars = {"rebuild_mac": "aa:bb:cc:dd:ee:01", "rebuild_wol_broadcast": "127.0.0.1"}
        # A BMC password lookup that would fail if templated: a PC's trigger must not touch it.
        poisoned = {
            **host_vars,
            "rebuild_wol_port": port,
            "reimage__wol_count": 1,
            "reimage__bmc_password": "{{ undefined_variable_boom }}",
        }
        result = _ansible(
            ["-m", "rebuild_boot_trigger", "-a", "method=wake_on_lan", "-e", json.dumps(poisoned)]
        )
        packet, _ = listener.recvfrom(200)
    assert not result["_failed"] and result["method"] == "wake_on_lan" and result["sent"] == 1
    assert packet == b"\xff" * 6 + bytes.fromhex("aabbccddee01") * 16
    missing = _ansible(["-m", "rebuild_boot_trigger", "-a", "method=wake_on_lan"])
    assert missing["_failed"] and "needs the host variable rebuild_mac (mac)" in str(missing["msg"])


def test_phase_done_names_its_phase_and_refuses_an_unknown_one_or_an_undocumented_option() -> None:
    facts = {"counts": {"ok": 3}}
    done = _ansible(["-m", "rebuild_phase_done", "-a", json.dumps({"phase": "harden", "facts": facts})])
    assert not done["_failed"] and done["rebuild_phase"] == "harden" and done["facts"] == facts
    unknown = _ansible(["-m", "rebuild_phase_done", "-a", "phase=backup"])
    assert unknown["_failed"] and "must be one of reimage, harden, redeploy, verify" in str(unknown["msg"])
    extra = _ansible(["-m", "rebuild_gate", "-a", "path=/nonexistent wait=3"])
    assert extra["_failed"] and "wait" in str(extra["msg"])  # only the documented options


def test_boot_trigger_refuses_to_send_anything_in_a_dry_run() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        host_vars = json.dumps(
            {
                "rebuild_mac": "aa:bb:cc:dd:ee:ff",
                "rebuild_wol_broadcast": "127.0.0.1",
                "rebuild_wol_port": port,
                "rebuild_dry_run": True,
            }
        )
        result = _ansible(["-m", "rebuild_boot_trigger", "-a", "method=wake_on_lan", "-e", host_vars])
        listener.settimeout(0.5)
        with pytest.raises(TimeoutError):
            listener.recvfrom(200)
    assert result["_failed"] and "refused in a dry run" in str(result["msg"])


def test_secret_lookup_refuses_a_missing_or_unsafe_key(tmp_path: Path) -> None:
    key = create_key_file(tmp_path / "vault.key")
    SecretStore(tmp_path, key_file=key).rotate("ARL-PC-0001")
    lookup = ["-m", "debug", "-a", "msg={{ lookup('rebuild_secret', 'ARL-PC-0001') | length }}"]
    typo = tmp_path / "vault.kye"
    got = _ansible(lookup, {"REBUILD_STATE_DIR": str(tmp_path), "REBUILD_VAULT_PASSWORD_FILE": str(typo)})
    assert got["_failed"] and f"vault key {typo}" in str(got["msg"]) and "no such file" in str(got["msg"])
    assert not typo.exists()  # never created
    key.chmod(0o644)
    got = _ansible(lookup, {"REBUILD_STATE_DIR": str(tmp_path), "REBUILD_VAULT_PASSWORD_FILE": str(key)})
    assert got["_failed"] and "mode 0644 lets group or others" in str(got["msg"])


def _image_check_over_https(address: str, extra: str) -> dict[str, object]:
    """rebuild_image_check through Ansible's winrm connection (HTTPS, 5986) to `address`."""
    return _ansible(
        [
            "-e",
            "ansible_port=5986 ansible_winrm_scheme=https ansible_user=rb-admin ansible_password=x "
            "ansible_winrm_transport=ntlm ansible_winrm_server_cert_validation=validate",
            "-m",
            "rebuild_image_check",
            "-a",
            f"image_id=img sha256=00 sleep=1 {extra}",
        ],
        {"ANSIBLE_INVENTORY_ENABLED": "host_list"},
        host=address,
        connection="ansible.builtin.winrm",
    )


def test_image_check_looks_again_soon_then_up_to_sleep_apart(lab_prefix: str) -> None:
    """Issue 15: a host back a moment after a look is not left idle for a whole `sleep`: the looks
    start `first_sleep` apart and grow to `sleep`. Nothing listens at the address: every look
    fails at once, and the deadline decides how many there were."""
    address = f"{lab_prefix}.0.10"
    growing = _image_check_over_https(address, "timeout=3 sleep=2 first_sleep=0.25")
    fixed = _image_check_over_https(address, "timeout=3 sleep=2 first_sleep=2")
    assert "no answer with the new credential within 3 s" in str(growing["msg"])
    assert int(str(growing["attempts"])) >= 4  # 0, 0.25, 0.56, 0.95, 1.44, 2.05, 2.81 s
    assert int(str(fixed["attempts"])) == 2  # 0 and 2 s: the old fixed poll


@pytest.mark.parametrize("waits", ["first_sleep=0", "sleep=-1", "first_sleep=soon"])
def test_image_check_refuses_waits_that_are_not_positive_seconds(lab_prefix: str, waits: str) -> None:
    result = _image_check_over_https(f"{lab_prefix}.0.11", f"timeout=3 {waits}")
    assert result["_failed"] and "rebuild_image_check: first_sleep and sleep:" in str(result["msg"])
    assert "attempts" not in result  # refused before any look at the host


def test_image_check_fails_early_when_winrm_answers_on_http_only(lab_prefix: str) -> None:
    """Issue 12 item 8: a host whose first logon could not make its HTTPS listener keeps HTTP
    (the listener is removed only once HTTPS works); the check says so after `https_grace`
    instead of waiting out the hour. Nothing listens on 5986 here; 5985 answers as WinRM does."""
    import http.server
    import threading

    address = f"{lab_prefix}.0.9"

    class WinRMHttpOnly(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", "Negotiate")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    # Without an HTTP listener either: the host is simply not back; the timeout decides.
    result = _image_check_over_https(address, "timeout=3 https_grace=1")
    assert "no answer with the new credential within 3 s" in str(result["msg"])
    assert not result.get("winrm_https_missing")

    server = http.server.HTTPServer((address, 5985), WinRMHttpOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = _image_check_over_https(address, "timeout=600 https_grace=2")
    finally:
        server.shutdown()
        server.server_close()
    assert result["winrm_https_missing"] is True and result["back"] is False
    assert "HTTPS listener refuses connections for 2 s" in str(result["msg"])
    assert "WinRMHttpsError" in str(result["msg"])
    assert int(str(result["attempts"])) < 30  # ended by the grace, not the 600 s timeout
