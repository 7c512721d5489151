"""The crisis-cell report as a person sees it, rendered by Debian's headless Chromium.

Chromium is driven over its DevTools pipe (--remote-debugging-pipe): the page's rendered
text (`innerText`, which leaves out anything hidden), the layout of the tables and a
screenshot. The report comes from a real journal: a lab-rehearsal run where some hosts are
back, one is quarantined with failing checks and one failed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rebuild.journal import Journal
from rebuild.model import Host, Kind
from rebuild.report import write_report
from tests.hosts import register_host

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STEPS = ["reimaging", "reimaged", "hardening", "hardened", "redeploying", "redeployed", "verifying"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


class DevTools:
    """Minimal Chrome DevTools Protocol client over the pipe (fd 3 in, fd 4 out; NUL-separated JSON)."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        os.set_inheritable(to_chrome_r, True)
        os.set_inheritable(from_chrome_w, True)

        def wire_fds() -> None:
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "--window-size=1280,2000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            pass_fds=(3, 4),  # kept open after preexec dup2s them
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the DevTools pipe during {method}")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def host(name: str, service: str, tier: int, kind: Kind = Kind.WORKSTATION) -> Host:
    return register_host(name, kind=kind, service=service, tier=tier)


@pytest.fixture()
def report_html(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    with Journal.in_state_dir(state) as j:
        j.start_run("rehearsal-1", "arlon", "alice", rehearsal=True)
        j.ensure_hosts(
            [
                host("ARL-DC01", "directory", 0, Kind.SERVER),
                host("ARL-URG-0001", "emergency", 1),
                host("ARL-URG-0002", "emergency", 1),
                host("ARL-URG-0003", "emergency", 1),
                host("ARL-RAD-0001", "radiology", 6),
                host("ARL-RAD-0002", "radiology", 6),
            ]
        )
        for name in ("ARL-DC01", "ARL-URG-0001", "ARL-URG-0002", "ARL-URG-0003", "ARL-RAD-0001"):
            for step in STEPS:
                j.transition(name, step, run_id="rehearsal-1")
        for name in ("ARL-DC01", "ARL-URG-0001", "ARL-RAD-0001"):
            j.transition(name, "verified", run_id="rehearsal-1")
        j.transition(
            "ARL-URG-0003",
            "quarantined",
            run_id="rehearsal-1",
            reason="verification failed",
            result={
                "passed": False,
                "failed_checks": [
                    {
                        "check": "test_defender_realtime_protection_on",
                        "message": "Defender protection off: RealTimeProtectionEnabled is False",
                    }
                ],
            },
            result_key="verify",
        )
        j.transition(
            "ARL-URG-0002",
            "failed",
            run_id="rehearsal-1",
            failed_phase="verify",
            reason="verify: unreachable: WinRM timed out",
        )
    files = write_report(state, tmp_path / "out", "arlon")
    return files.html


def test_report_as_rendered_by_chromium(report_html: Path, tmp_path: Path):
    tools = DevTools(tmp_path / "profile")
    try:
        target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tools.call("Page.enable", session=session)
        tools.call("Page.navigate", {"url": report_html.as_uri()}, session=session)

        def js(expr: str) -> Any:
            out = tools.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)
            return out["result"].get("value")

        for _ in range(50):
            if js("document.readyState") == "complete":
                break
        text = js("document.body.innerText")
        # Banner: visible, first thing on the page, saying it is a simulation.
        assert text.lstrip().startswith("SIMULATED — lab rehearsal")
        banner_box = js("JSON.stringify(document.getElementById('simulated-banner').getBoundingClientRect())")
        assert json.loads(banner_box)["height"] > 20

        # Counts per service as a person reads them in the table (Back / In progress / ... columns).
        rows = js("""Array.from(document.querySelectorAll('#services tr[data-service]')).map(
                     r => Array.from(r.cells).map(c => c.innerText.trim()))""")
        by_service = {r[2]: r for r in rows}
        assert by_service["emergency"][3:9] == [
            "3",
            "1",
            "0",
            "0",
            "1",
            "1",
        ]  # machines, back, prog, todo, failed, quar
        assert by_service["radiology"][3:9] == ["2", "1", "0", "1", "0", "0"]
        assert by_service["directory"][3:5] == ["1", "1"]

        # The quarantined host with its failing check, and the failed one with its reason.
        cells = """document.querySelectorAll('#problems tr[data-host="ARL-URG-0003"] td')"""
        problem = js(f"""Array.from({cells}).map(
                        c => c.innerText.trim())""")
        assert problem[0] == "ARL-URG-0003" and problem[3] == "Quarantined"
        # Columns: host, site, service, status, phase, held back by, reason, failing checks.
        assert problem[5] == ""  # no named hold-back condition (e.g. patch_level) for this one
        assert "test_defender_realtime_protection_on: Defender protection off" in problem[7]
        assert "ARL-URG-0002" in text and "WinRM timed out" in text

        # The progress chart is drawn inline (no network), with its legend.
        assert js("document.querySelectorAll('svg.chart polyline').length") == 4
        assert "Quarantined: 1" in js("document.querySelector('svg.chart').textContent")
        assert js("performance.getEntriesByType('resource').length") == 0  # nothing fetched

        shot = tools.call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session
        )
        png = base64.b64decode(shot["data"])
        assert png.startswith(b"\x89PNG") and len(png) > 20_000  # a real page, not a blank one
        (tmp_path / "report.png").write_bytes(png)
    finally:
        tools.close()


def test_dump_dom_cli_form(report_html: Path, tmp_path: Path):
    """The plain `chromium --headless --dump-dom` form works on the report too (no script needed)."""
    out = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'p2'}", "--dump-dom", report_html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert 'data-host="ARL-URG-0003"' in out and "SIMULATED — lab rehearsal" in out
    assert shutil.which("chromium") or Path(CHROMIUM).exists()
