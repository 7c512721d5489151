"""Quarantine then promote: only verified hosts are promoted, by API call or recorded decision."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from rebuild.errors import ConfigError
from rebuild.journal import Journal
from rebuild.model import Host
from rebuild.promote import PromotionConfig, load_config, promote_verified
from tests.hosts import register_host

STEPS = ["reimaging", "reimaged", "hardening", "hardened", "redeploying", "redeployed", "verifying"]


def mk(name: str) -> Host:
    return register_host(name, service_label="Urgences")


@pytest.fixture()
def journal(tmp_path: Path):
    j = Journal.in_state_dir(tmp_path)
    j.start_run("r1", "arlon", "alice")
    j.ensure_hosts([mk("GOOD"), mk("BAD"), mk("MID")])
    for name in ("GOOD", "BAD"):
        for step in STEPS:
            j.transition(name, step, run_id="r1")
    j.transition("GOOD", "verified", run_id="r1")
    j.transition("BAD", "quarantined", run_id="r1", reason="ransom note found")
    j.transition("MID", "reimaging", run_id="r1")
    yield j
    j.close()


class Api(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[dict, str]]] = []
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Api.calls.append((body, self.headers.get("Authorization", "")))
        self.send_response(Api.status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def api():
    Api.calls = []
    Api.status = 200
    server = HTTPServer(("127.0.0.1", 0), Api)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_port}/promote"
    server.shutdown()


def test_recorded_decision_when_no_api(journal):
    s = promote_verified(journal, "arlon", run_id="r1", operator="alice", config=PromotionConfig())
    assert s.promoted == ["GOOD"] and s.quarantined == ["BAD"]
    rec = journal.host("GOOD").results["promote"]
    assert rec["action"] == "recorded-decision" and rec["status"] == "promoted" and rec["by"] == "alice"
    assert "promote" not in journal.host("BAD").results and "promote" not in journal.host("MID").results
    again = promote_verified(journal, "arlon", run_id="r1", operator="alice", config=PromotionConfig())
    assert again.already == ["GOOD"] and again.promoted == []


def test_network_api_called_for_verified_hosts_only(journal, api):
    cfg = PromotionConfig(url=api, token="s3cr3t-token")
    s = promote_verified(journal, "arlon", run_id="r1", operator="alice", config=cfg)
    assert s.promoted == ["GOOD"]
    assert [c[0]["host"] for c in Api.calls] == ["GOOD"]
    assert Api.calls[0][1] == "Bearer s3cr3t-token"
    rec = journal.host("GOOD").results["promote"]
    assert rec["action"] == "network-api" and rec["http_status"] == 200
    assert "s3cr3t-token" not in json.dumps(journal.host("GOOD").results)
    assert "s3cr3t-token" not in repr(cfg)


def test_api_refusal_is_recorded_not_promoted(journal, api):
    Api.status = 403
    s = promote_verified(
        journal, "arlon", run_id="r1", operator="alice", config=PromotionConfig(url=api, token="t")
    )
    assert s.promoted == [] and "403" in s.errors["GOOD"]
    assert journal.host("GOOD").results["promote"]["status"] == "error"


def test_config_from_env_and_file(tmp_path):
    f = tmp_path / "promotion.yml"
    f.write_text("url: https://netapi.ghal.lan/v1/recovery/promote\ntoken_env: NET_TOKEN\n")
    cfg = load_config(f, env={"NET_TOKEN": "abc"})
    assert cfg.action == "network-api" and cfg.token == "abc"
    assert load_config(tmp_path / "none.yml", env={}).action == "recorded-decision"
    with pytest.raises(ConfigError, match="NET_TOKEN is empty"):
        load_config(f, env={})
    f.write_text("url: https://x\ntoken: plain\n")
    with pytest.raises(ConfigError, match="do not put the API token in a data file"):
        load_config(f, env={})


def test_a_run_without_a_network_api_records_the_decision_without_loading_an_http_client(
    tmp_path: Path,
) -> None:
    """No API configured: the decision is recorded and `requests` is never imported (a fresh
    interpreter: this test process has imported it already)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from rebuild.journal import Journal\n"
        "from rebuild.promote import PromotionConfig, promote_verified\n"
        "from tests.hosts import register_host\n"
        f"j = Journal.in_state_dir(Path({str(tmp_path)!r}))\n"
        "j.start_run('r1', 'arlon', 'alice')\n"
        "j.ensure_hosts([register_host('GOOD')])\n"
        f"for step in {[*STEPS, 'verified']!r}:\n"
        "    j.transition('GOOD', step, run_id='r1')\n"
        "s = promote_verified(j, 'arlon', run_id='r1', operator='alice', config=PromotionConfig())\n"
        "print(s.promoted, j.host('GOOD').results['promote']['status'], 'requests' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    ).stdout
    assert out.split() == ["['GOOD']", "promoted", "False"]
