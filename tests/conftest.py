"""Shared pytest fixtures. The lab fixtures start a real SIMULATED lab daemon.

Fixtures (any test may use them; they start the same daemon as `rebuild lab up`):

- ``lab``: a lab of the small register (inventories/example/register-small.csv), all its
  sites, imaging 1 s, restarts 1 s (WinRM refused meanwhile, as `rebuild lab rehearse`), in a
  tmp dir, on a unique loopback prefix (127.N) and free ports (WinRM stays on 5985/5986 of each
  twin's own address). Function scope; stopped after.
- ``lab_factory(register=None, site=None, imaging_seconds=1.0)``: start more, or with other
  settings; every lab it started is stopped at the end of the test.
- ``shared_lab``: one small-register lab for the whole session, for tests that only read.

Each yields a ``RunningLab``:

    lab.lab_dir                    # Path of the lab (twins.sqlite, ca/, boot/, inventory/)
    lab.inventory("arlon")         # Path of the lab inventory overlay of a site
    lab.state_dir                  # product state dir seeded with each twin's rb-admin secret
    lab.key_file                   # the rehearsal's own vault key (<lab_dir>/state/vault-password)
    lab.store()                    # the product's SecretStore over lab.state_dir with that key
    lab.env                        # {"REBUILD_STATE_DIR": ..., "REBUILD_VAULT_PASSWORD_FILE": ...}
    lab.ca_bundle                  # the lab CA (what rebuild_ca_bundle points at)
    lab.address("ARL-SRV-0001")    # a twin's loopback address
    lab.client.status()            # {"twins": [{"name", "phase", ...}], "counts": {...}, "ready"}
    lab.client.set_fault("ARL-PC-0001", "never_wakes")   # or slow_host delay=3, ...
    lab.client.clear_fault("ARL-PC-0001")
    lab.client.requests()          # WS-Man requests answered per twin (round trips)
    lab.client.twin("ARL-PC-0001") # a twin's whole state as JSON, incl. "history" of lab events

Example: ``subprocess.run(["ansible", "-i", lab.inventory("arlon"), "-m",
"ansible.windows.win_ping", "site_arlon"], env={**os.environ, **lab.env})``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rebuild.errors import RebuildError
from rebuild.lab import daemon, fleet
from rebuild.lab.prefix import claim_prefix
from rebuild.secrets import SecretStore


@dataclass
class RunningLab:
    lab_dir: Path
    info: dict[str, Any]
    client: daemon.LabClient

    @property
    def state_dir(self) -> Path:
        return Path(self.info["state_dir"])

    @property
    def key_file(self) -> Path:
        """The rehearsal's vault key: created by the lab in its own directory (mode 0600)."""
        return self.state_dir / "vault-password"

    def store(self) -> SecretStore:
        return SecretStore(self.state_dir, key_file=self.key_file)

    @property
    def ca_bundle(self) -> Path:
        return Path(self.info["ca_bundle"])

    @property
    def env(self) -> dict[str, str]:
        return {
            "REBUILD_STATE_DIR": str(self.state_dir),
            "REBUILD_VAULT_PASSWORD_FILE": str(self.key_file),
            "REBUILD_LAB_DIR": str(self.lab_dir),
        }

    def inventory(self, site: str) -> Path:
        return Path(self.info["inventory"][site])

    def power_on_pcs(self) -> None:
        """Switch on the PCs containment left off: they boot their old, compromised disk, and answer
        WinRM once booted (restart_seconds later), as an operator waits for the logon screen."""
        booted = [twin["name"] for twin in self.client.status()["twins"] if twin["phase"] == "off"]
        for name in booted:
            assert self.client.power(name, "on")["booted"] == "disk"
        time.sleep(float(self.info.get("restart_seconds", 0)))
        for name in booted:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection((self.address(name), 5986), timeout=2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def address(self, host: str) -> str:
        for twin in self.client.status()["twins"]:
            if twin["name"] == host:
                return str(twin["address"])
        raise KeyError(host)


@contextlib.contextmanager
def _running_lab(
    directory: Path,
    register: Path | None = None,
    site: str | None = None,
    imaging_seconds: float = 1.0,
    bmc_power_seconds: int | None = None,
    restart_seconds: float = 1.0,  # as `rebuild lab rehearse`: restarts go through a downtime
) -> Iterator[RunningLab]:
    for attempt in range(3):
        prefix, lock = claim_prefix()
        options = daemon.DaemonOptions(
            lab_dir=directory,
            register=register or fleet.SMALL_REGISTER,
            site=site,
            address_prefix=prefix,
            imaging_seconds=imaging_seconds,
            bmc_power_seconds=bmc_power_seconds,
            restart_seconds=restart_seconds,
        )
        try:
            info = daemon.up(options, timeout=180)
        except RebuildError as exc:
            lock.close()
            # Another lab (not using these lock files) took the prefix between probe and bind.
            if "address already in use" in str(exc) and attempt < 2:
                continue
            raise
        try:
            yield RunningLab(directory, info, daemon.LabClient(directory))
        finally:
            daemon.down(directory)
            lock.close()
        return


@pytest.fixture
def lab_factory(tmp_path: Path) -> Iterator[Callable[..., RunningLab]]:
    with contextlib.ExitStack() as stack:
        count = 0

        def start(
            register: Path | None = None, site: str | None = None, imaging_seconds: float = 1.0
        ) -> RunningLab:
            nonlocal count
            count += 1
            return stack.enter_context(
                _running_lab(tmp_path / f"lab{count}", register, site, imaging_seconds)
            )

        yield start


@pytest.fixture
def lab(lab_factory: Callable[..., RunningLab]) -> RunningLab:
    return lab_factory()


@pytest.fixture(scope="session")
def shared_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    with _running_lab(tmp_path_factory.mktemp("shared-lab")) as running:
        yield running


@pytest.fixture
def lab_env(lab: RunningLab) -> dict[str, str]:
    """os.environ plus the lab's state-dir variables, for subprocesses (ansible, rebuild)."""
    return {**os.environ, **lab.env}


@pytest.fixture
def lab_prefix() -> Iterator[str]:
    """A claimed unique 127.N prefix, for tests that build lab pieces in-process."""
    prefix, lock = claim_prefix()
    try:
        yield prefix
    finally:
        lock.close()


# The tier-0 gates a rehearsal of a few PCs overrides: no directory server is rebuilt in it.
TIER0_GATES = ("krbtgt-reset-twice", "admin-accounts-rotated")


def rehearsal_site_argv(lab: RunningLab, hosts: list[str], why: str) -> list[str]:
    """`rebuild site arlon` as a rehearsal of just `hosts` (PCs that rejoin the domain with no
    directory server rebuilt in the test: the tier-0 gates are overridden, with `why` as reason)."""
    gates = [arg for gate in TIER0_GATES for arg in ("--override-gate", gate)]
    return [
        sys.executable,
        "-m",
        "rebuild",
        "site",
        "arlon",
        "--inventory",
        str(lab.inventory("arlon")),
        "--state-dir",
        str(lab.state_dir),
        "--yes",
        "--new-journal",
        "--rehearsal",
        "--limit",
        ",".join(hosts),
        "--json",
        *gates,
        "--reason",
        why,
    ]


def rehearsal_site_options(lab: RunningLab, hosts: list[str], why: str) -> Any:
    """The same run as `rehearsal_site_argv`, for `run_site` in this process (SiteRunOptions);
    no hosts means every Arlon machine of the lab."""
    from rebuild.orchestrator import SiteRunOptions
    from rebuild.orchestrator.options import DEFAULT_PLAYBOOK

    return SiteRunOptions(
        site="arlon",
        inventory=lab.inventory("arlon"),
        state_dir=lab.state_dir,
        operator="test-operator",
        yes=True,
        json=True,
        rehearsal=True,
        new_journal=True,
        playbook=DEFAULT_PLAYBOOK,
        limit=tuple(hosts),
        say=lambda text: None,
        override_gates={gate: why for gate in TIER0_GATES},
    )


def service_report(lab: RunningLab, out: Path, service: str) -> tuple[dict[str, str], str]:
    """The Arlon report written from the lab run's journal: the CSV row of `service`, and the HTML."""
    import csv
    import io

    from rebuild.report import write_report

    files = write_report(lab.state_dir, out, "arlon")
    rows = csv.DictReader(io.StringIO(files.csv.read_text(encoding="utf-8")))
    return next(r for r in rows if r["service"] == service), files.html.read_text(encoding="utf-8")


@pytest.fixture(autouse=True, scope="session")
def bundled_images_serviced_today(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The bundled fictional hospital's golden images count as serviced on the day the tests run.

    Their build days are data (inventories/data/images.yml, `built`) and the patch catalogue
    refuses images older than its limit at plan time: the suite must not start failing months
    from now because the fictional images aged. The session's data directory (REBUILD_DATA_DIR,
    inherited by every process the tests start) is the project's, with today as every image's
    build day and sites.yml pointing at that catalogue. The stale-image rule itself is tested
    with explicit dates (tests/unit/test_patch.py, test_careless_operator.py); lab twins use the
    lab's own catalogue, whose images are made when the lab starts.
    """
    import shutil

    import yaml

    from rebuild.tiers import DATA_DIR_ENV, PROJECT_ROOT

    data = tmp_path_factory.mktemp("data") / "data"
    shutil.copytree(PROJECT_ROOT / "inventories" / "data", data)
    images = yaml.safe_load((data / "images.yml").read_text(encoding="utf-8"))
    for entry in images["images"].values():
        entry["built"] = dt.date.today().isoformat()
    (data / "images.yml").write_text(yaml.safe_dump(images, sort_keys=False), encoding="utf-8")
    sites = yaml.safe_load((data / "sites.yml").read_text(encoding="utf-8"))
    sites["defaults"]["image_catalogue"] = str(data / "images.yml")
    (data / "sites.yml").write_text(yaml.safe_dump(sites, sort_keys=False), encoding="utf-8")
    before = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = str(data)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATA_DIR_ENV, None)
        else:
            os.environ[DATA_DIR_ENV] = before


# Wall time per test group (unit, lab, integration), printed before pytest's summary (issue 15),
# the product PowerShell's statement coverage, and in CI a skipped test fails the run (no_skips_in_ci.py).
import group_timing  # noqa: E402
import no_skips_in_ci  # noqa: E402
import ps_coverage_summary  # noqa: E402
from no_skips_in_ci import pytest_sessionfinish  # noqa: E402, F401


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    ps_coverage_summary.pytest_terminal_summary(terminalreporter)
    group_timing.pytest_terminal_summary(terminalreporter)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    group_timing.pytest_runtest_logreport(report)
    no_skips_in_ci.pytest_runtest_logreport(report)


REPO = Path(__file__).resolve().parents[1]


def ansible_ad_hoc(
    args: list[str], env: dict[str, str] | None = None, host: str = "localhost", connection: str = "local"
) -> dict[str, object]:
    """Run an ad-hoc module (on the controller unless `host`/`connection` say otherwise); return
    its JSON result."""
    cmd = [
        str(Path(sys.executable).parent / "ansible"),
        host,
        "-i",
        f"{host},",
        "-c",
        connection,
        "-o",
        *args,
    ]
    out = subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.oneline",
            **(env or {}),
        },
    )
    line = (out.stdout.strip().splitlines() or [""])[-1]
    assert "=>" in line, out.stdout + out.stderr
    head, body = line.split("=>", 1)
    result: dict[str, object] = json.loads(body)
    result["_failed"] = "FAILED" in head
    return result
