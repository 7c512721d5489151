"""`rebuild site` against the SIMULATED lab: the Done-when items of issue 4.

The runs use tests/integration/data/reimage-only.yml (the top playbook cut to its reimage role):
these tests prove the pipeline and the reimage phase; the later phases have their own suites.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rebuild.errors import ConfigError, SafetyError
from rebuild.journal import Journal, Phase
from rebuild.lab.state import StateStore
from rebuild.orchestrator import SiteRunOptions, run_site
from rebuild.register import EXPORT_HEADERS_EN
from rebuild.secrets import SecretStore

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TIER0_GATES = ("krbtgt-reset-twice", "admin-accounts-rotated")  # inventories/data/recovery_gates.yml
REIMAGE_ONLY = ROOT / "tests" / "integration" / "data" / "reimage-only.yml"
TRIGGER_EVENTS = {"boot", "reset", "packet", "reimage", "power"}


# -- helpers ------------------------------------------------------------------------------------


def _env(lab: Any) -> dict[str, str]:
    token = (lab.lab_dir / "hypervisor.token").read_text().strip()
    return {**lab.env, "REBUILD_HYPERVISOR_TOKEN": token}


@pytest.fixture
def lab_environ(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], None]:
    def apply(lab: Any) -> None:
        for key, value in _env(lab).items():
            monkeypatch.setenv(key, value)

    return apply


def _inventory_with(lab: Any, tmp_path: Path, site: str = "arlon", **group_vars: Any) -> Path:
    """The lab's inventory plus group vars (as an operator's inventory directory would carry)."""
    directory = tmp_path / f"inventory-{site}"
    (directory / "group_vars").mkdir(parents=True, exist_ok=True)
    link = directory / f"{site}.yml"
    if not link.exists():
        link.symlink_to(lab.inventory(site))
    (directory / "group_vars" / "all.yml").write_text(json.dumps(group_vars))
    return directory


def _options(lab: Any, inventory: Path | None = None, **kw: Any) -> SiteRunOptions:
    base: dict[str, Any] = {
        "site": "arlon",
        "inventory": inventory or lab.inventory("arlon"),
        "state_dir": lab.state_dir,
        "operator": "test-operator",
        "yes": True,
        "json": True,
        "playbook": REIMAGE_ONLY,
        "rehearsal": True,
        "new_journal": True,  # a fresh lab: the site's first run in this state directory
        "say": lambda text: None,
    }
    base.update(kw)
    return SiteRunOptions(**base)


def _histories(lab: Any) -> dict[str, list[dict[str, Any]]]:
    store = StateStore(lab.lab_dir / "twins.sqlite")
    try:
        return {name: state.history for name, state in store.items()}
    finally:
        store.close()


def _twins(lab: Any) -> dict[str, Any]:
    store = StateStore(lab.lab_dir / "twins.sqlite")
    try:
        return dict(store.items())
    finally:
        store.close()


def _secret_files(state_dir: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted((state_dir / "secrets").glob("*.vault"))}


def _intervals(journal: Journal, run_ids: set[str] | None = None) -> dict[str, tuple[float, float]]:
    """Per host: when it entered reimaging and when it left it (last attempt)."""
    spans: dict[str, tuple[float, float]] = {}
    start: dict[str, float] = {}
    for t in journal.transitions():
        if run_ids and t.run_id not in run_ids:
            continue
        if t.to_phase is Phase.REIMAGING:
            start[t.host] = t.at
        elif t.from_phase is Phase.REIMAGING and t.host in start:
            spans[t.host] = (start.pop(t.host), t.at)
    return spans


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    points = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    best = now = 0
    for _, delta in points:
        now += delta
        best = max(best, now)
    return best


# -- a whole site -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arlon_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, list[str]]]:
    """One full reimage of the small register's Arlon, capacity lowered to 2 to make the cap visible."""
    import conftest  # the lab fixtures' helpers (tests/conftest.py)

    with conftest._running_lab(tmp_path_factory.mktemp("site-lab"), imaging_seconds=1.0) as lab:
        saved = dict(os.environ)
        os.environ.update(_env(lab))
        try:
            result = run_site(_options(lab, imaging_capacity=2))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        yield lab, result, []


def test_full_site_reimages_every_twin_in_tier_order_within_capacity(
    arlon_run: tuple[Any, Any, list[str]],
) -> None:
    lab, result, _ = arlon_run
    assert result.status == "completed", result.reason
    assert result.exit_code == 0
    journal = Journal.in_state_dir(lab.state_dir)
    hosts = journal.hosts("arlon")
    assert hosts and all(h.phase is Phase.REIMAGED for h in hosts), [
        (h.name, h.phase, h.reason) for h in hosts
    ]

    # Every twin reports the catalogue's clean image (as the lab's state, not our journal, says).
    catalogue = json.loads(json.dumps(__import__("yaml").safe_load((lab.lab_dir / "images.yml").read_text())))
    twins = _twins(lab)
    for h in hosts:
        twin = twins[h.name]
        assert twin.phase == "clean", h.name
        entry = next(e for e in catalogue["images"].values() if e["image_id"] == twin.image_id)
        assert twin.image_sha256 == entry["sha256"]
        assert h.results["reimage"]["image_id"] == twin.image_id

    # Tier order: no host of tier k+1 starts reimaging before every host of tier k is done.
    spans = _intervals(journal, {result.run_id})
    tiers = {h.name: h.tier for h in hosts}
    for tier in sorted(set(tiers.values()))[1:]:
        earlier_end = max(end for n, (_, end) in spans.items() if tiers[n] < tier)
        this_start = min(start for n, (start, _) in spans.items() if tiers[n] == tier)
        assert this_start >= earlier_end, f"tier {tier} started before lower tiers were done"

    # Capacity: never more than 2 hosts reimaging at once; and it was actually used (2 at once).
    assert _max_overlap(list(spans.values())) == 2

    # The wipe is traceable to an operator confirmation for this site.
    confirmations = journal.confirmations(result.run_id)
    assert [(c["site"], c["operator"], c["how"]) for c in confirmations] == [
        ("arlon", "test-operator", "--yes")
    ]
    assert journal.run(result.run_id).rehearsal

    # No boot entry or answer file (with its secret) is left on the boot server.
    boot = Path(lab.info.get("boot_root", lab.lab_dir / "boot"))
    assert not list(boot.glob("mac-*.ipxe"))
    assert not list((boot / "unattend").glob("*.xml"))


def test_run_artifacts_and_logs_hold_no_secret(arlon_run: tuple[Any, Any, list[str]]) -> None:
    lab, result, _ = arlon_run
    store = lab.store()
    secrets = set()
    for path in (lab.state_dir / "secrets").glob("*.vault"):
        host, name = path.name.split(".")[:2]
        value = store.get(host, name)
        if value:
            secrets.add(str(value))
    secrets.add((lab.lab_dir / "hypervisor.token").read_text().strip())
    assert len(secrets) > 27  # new secrets + the pre-incident ones kept apart + the API token
    files = [p for p in result.run_dir.rglob("*") if p.is_file()]
    files += [lab.state_dir / "journal.sqlite"]
    assert any("job_events" in str(p) for p in files) and any(p.parent.name == "hosts" for p in files)
    leaks = [(str(p), s[:3] + "...") for p in files for s in secrets if s.encode() in p.read_bytes()]
    assert leaks == []


# -- dry run and interlocks: nothing is touched -------------------------------------------------


def test_dry_run_renders_everything_and_touches_nothing(lab: Any, lab_environ: Callable[[Any], None]) -> None:
    lab_environ(lab)
    secrets_before = _secret_files(lab.state_dir)
    phases_before = {t["name"]: t["phase"] for t in lab.client.status()["twins"]}
    assert set(phases_before.values()) == {"compromised", "off"}  # servers running, PCs contained
    result = run_site(
        _options(lab, dry_run=True, yes=False, ask=lambda p: pytest.fail("dry run asked to confirm"))
    )
    assert result.status == "dry-run"
    events = [
        e
        for hist in _histories(lab).values()
        for e in hist
        if e["event"] in TRIGGER_EVENTS or (e["event"] == "power_off" and e.get("via") != "containment")
    ]
    assert events == []
    assert {t["name"]: t["phase"] for t in lab.client.status()["twins"]} == phases_before
    journal = Journal.in_state_dir(lab.state_dir)
    assert {h.phase for h in journal.hosts("arlon")} == {Phase.PENDING}
    assert _secret_files(lab.state_dir) == secrets_before  # no secret rotated
    rendered = result.run_dir / "boot"
    n_hosts = len(journal.hosts("arlon"))
    assert len(list(rendered.glob("mac-*.ipxe"))) == n_hosts
    answers = list((rendered / "unattend").glob("*.xml"))
    assert len(answers) == n_hosts
    text = answers[0].read_text()
    assert "<WillWipeDisk>true</WillWipeDisk>" in text and "Romance Standard Time" in text
    assert "DRY-RUN-NO-SECRET" in text
    # UI language from the image's installed languages (fr-FR), locales Belgian; the system disk
    # is chosen in WinPE (criteria file per host), never DiskID 0.
    assert "<UILanguage>fr-FR</UILanguage>" in text and "<UserLocale>fr-BE</UserLocale>" in text
    assert "<DiskID>REBUILD-SYSTEM-DISK</DiskID>" in text and "<DiskID>0</DiskID>" not in text
    assert len(list((rendered / "unattend").glob("*.disk.json"))) == n_hosts
    assert (rendered / "winpe" / "rebuild" / "winpeshl.ini").is_file()
    # The real boot server got nothing.
    assert not list((lab.lab_dir / "boot").glob("mac-*.ipxe"))


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"site": "arlom"}, ConfigError, "arlon"),  # wrong site name: the error lists known sites
        ({"limit": ("ARL-DC01", "BAS-DC01")}, SafetyError, "BAS-DC01"),  # a host outside the site
        ({"limit": ("ARL-NOPE99",)}, SafetyError, "unknown host"),
        ({"yes": False, "ask": lambda prompt: "marche"}, SafetyError, "does not match"),
        (
            {"yes": False, "ask": lambda prompt: (_ for _ in ()).throw(EOFError())},
            SafetyError,
            "nothing was wiped",
        ),
        ({"force_hosts": ("ARL-DC01",), "limit": ("ARL-DC02",)}, SafetyError, "outside"),
        ({"imaging_capacity": 50}, SafetyError, "only lower"),
    ],
)
def test_refusals_wipe_nothing(
    shared_lab: Any,
    change: dict[str, Any],
    error: type[Exception],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in _env(shared_lab).items():
        monkeypatch.setenv(key, value)
    before = _secret_files(shared_lab.state_dir)
    with pytest.raises(error, match=message):
        run_site(_options(shared_lab, **change))
    events = [e for hist in _histories(shared_lab).values() for e in hist if e["event"] in TRIGGER_EVENTS]
    assert events == []
    assert _secret_files(shared_lab.state_dir) == before
    journal_path = shared_lab.state_dir / "journal.sqlite"
    if journal_path.exists():
        journal = Journal(journal_path)
        assert all(h.phase is Phase.PENDING for h in journal.hosts())
        assert all(t.to_phase is not Phase.REIMAGING for t in journal.transitions())


# -- resume after SIGKILL -------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_sigkill_mid_wave_then_rerun_finishes_without_reimaging_twice(
    lab_factory: Callable[..., Any],
) -> None:
    lab = lab_factory(imaging_seconds=3.0)
    env = {**os.environ, **_env(lab)}
    cmd = [
        sys.executable,
        "-m",
        "rebuild",
        "site",
        "arlon",
        "--inventory",
        str(lab.inventory("arlon")),
        "--yes",
        "--new-journal",
        "--rehearsal",
        "--json",
        "--playbook",
        str(REIMAGE_ONLY),
        "--operator",
        "test-operator",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal_path = lab.state_dir / "journal.sqlite"
    deadline = time.monotonic() + 300
    done_before: set[str] = set()
    caught: set[str] = set()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        if not journal_path.exists():
            continue
        hosts = Journal(journal_path).hosts("arlon")
        done_before = {h.name for h in hosts if h.phase is Phase.REIMAGED}
        caught = {h.name for h in hosts if h.phase is Phase.REIMAGING}
        if done_before and caught:
            break
    else:
        pytest.fail("never saw a wave with hosts both done and in flight")
    for pid in [*_descendants(proc.pid), proc.pid]:  # power loss: the controller and all it started
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(30)
    killed_at = time.time()

    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    journal = Journal(journal_path)
    hosts = journal.hosts("arlon")
    assert all(h.phase is Phase.REIMAGED for h in hosts), [(h.name, h.phase, h.reason) for h in hosts]
    runs = journal.runs("arlon")
    assert [r.status for r in runs] == ["interrupted", "completed"]
    history = _histories(lab)
    for name in done_before:
        # Done before the kill: the rerun never started it again, and the lab imaged it once.
        assert [t.to_phase for t in journal.transitions(name)] == [Phase.REIMAGING, Phase.REIMAGED]
        assert sum(1 for e in history[name] if e["event"] == "reimage" and e.get("status") == "started") == 1
    for name in caught:
        # Caught mid-reimage: re-checked in the rerun, not blindly wiped again if it was back.
        rerun_entries = [t for t in journal.transitions(name) if t.at > killed_at]
        assert rerun_entries[0].to_phase is Phase.REIMAGING and "re-check" in rerun_entries[0].detail


# -- circuit breaker ------------------------------------------------------------------------------

_HEADER = list(EXPORT_HEADERS_EN)


def _breaker_register(path: Path) -> Path:
    """Arlon with one server, a wave of 20 emergency PCs and 2 operating-room PCs after it."""
    rows = [
        [
            "GHAL-900001",
            "ARL-DC01",
            "Server",
            "Virtual",
            "Windows Server 2022",
            "Arlon",
            "Active Directory",
            "Office 1",
            "10.11.0.10",
            "00:50:56:09:00:01",
            "",
            "vm-9001",
            "",
            "In service",
            "",
        ]
    ]
    for i in range(1, 21):
        rows.append(
            [
                f"GHAL-9001{i:02d}",
                f"ARL-URG-{i:04d}",
                "PC",
                "Physical",
                "Windows 11 23H2",
                "Arlon",
                "Urgences",
                f"Urgences {i}",
                f"10.11.16.{10 + i}",
                f"98:fa:9b:09:01:{i:02x}",
                "",
                "",
                "",
                "In service",
                f"SN{i:05d}",
            ]
        )
    for i in range(1, 3):
        rows.append(
            [
                f"GHAL-9002{i:02d}",
                f"ARL-BLOC-{i:04d}",
                "PC",
                "Physical",
                "Windows 10 22H2",
                "Arlon",
                "Bloc opératoire",
                f"Bloc {i}",
                f"10.11.17.{10 + i}",
                f"3c:52:82:09:02:{i:02x}",
                "",
                "",
                "",
                "In service",
                f"SB{i:05d}",
            ]
        )
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(_HEADER)
        writer.writerows(rows)
    return path


def test_a_host_back_with_another_image_than_the_catalogue_is_not_accepted(
    lab: Any, tmp_path: Path, lab_environ: Callable[[Any], None]
) -> None:
    import yaml

    lab_environ(lab)
    host = "ARL-URG-0001"
    # Our catalogue disagrees with the image the boot server really holds (and the twin applies).
    catalogue = yaml.safe_load((lab.lab_dir / "images.yml").read_text())
    for entry in catalogue["images"].values():
        entry["sha256"] = "0" * 64
    altered = tmp_path / "images.yml"
    altered.write_text(yaml.safe_dump(catalogue))
    inventory = _inventory_with(lab, tmp_path, reimage__catalogue_file=str(altered))
    run_site(_options(lab, inventory=inventory, limit=(host,)))

    record = Journal.in_state_dir(lab.state_dir).host(host)
    assert record.phase is Phase.FAILED and record.failed_phase == "reimage", (record.phase, record.reason)
    assert "catalogue expects" in record.reason and "0" * 64 in record.reason
    twin = _twins(lab)[host]
    assert twin.phase == "clean" and twin.image_sha256 != "0" * 64  # it did come back, with its image


@pytest.mark.parametrize(("failing", "expect_stop"), [(6, True), (1, False)], ids=["30-percent", "5-percent"])
def test_breaker_stops_the_site_at_30_percent_not_at_5(
    lab_factory: Callable[..., Any],
    tmp_path: Path,
    lab_environ: Callable[[Any], None],
    failing: int,
    expect_stop: bool,
) -> None:
    lab = lab_factory(
        register=_breaker_register(tmp_path / "register.csv"), site="arlon", imaging_seconds=1.0
    )
    lab_environ(lab)
    doomed = [f"ARL-URG-{i:04d}" for i in range(1, failing + 1)]
    for name in doomed:
        lab.client.set_fault(name, "reimage_fails")
    inventory = _inventory_with(lab, tmp_path, reimage__wait_timeout=15)
    result = run_site(_options(lab, inventory=inventory))
    journal = Journal.in_state_dir(lab.state_dir)
    hosts = {h.name: h for h in journal.hosts("arlon")}
    for name in doomed:
        assert hosts[name].phase is Phase.FAILED and hosts[name].failed_phase == "reimage"
        assert "wait for WinRM" in hosts[name].reason
    emergency_ok = [h for h in hosts.values() if h.tier == 1 and h.name not in doomed]
    assert all(h.phase is Phase.REIMAGED for h in emergency_ok)
    later = [h for h in hosts.values() if h.tier == 2]
    run = journal.run(result.run_id)
    if expect_stop:
        assert result.status == "stopped" and result.exit_code == 4
        assert run.status == "stopped"
        assert "6 of 20" in run.reason and "wait for WinRM" in run.reason
        assert all(h.phase is Phase.PENDING for h in later)  # the site stopped: nothing more wiped
        events = [e for h in later for e in _histories(lab)[h.name] if e["event"] in TRIGGER_EVENTS]
        assert events == []
    else:
        assert result.status == "completed" and result.exit_code == 1  # done, with a failed host
        assert all(h.phase is Phase.REIMAGED for h in later)
        assert set(result.failed) == set(doomed)


def test_confirm_each_wave_stops_before_an_unconfirmed_wave(
    lab: Any, lab_environ: Callable[[Any], None]
) -> None:
    lab_environ(lab)
    answers = iter(["arlon", "no"])  # the run, then wave 2
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    with pytest.raises(SafetyError, match="does not match"):
        run_site(
            _options(lab, yes=False, ask=ask, confirm_each_wave=True, limit=("ARL-DC01", "ARL-URG-0001"))
        )
    journal = Journal.in_state_dir(lab.state_dir)
    assert journal.host("ARL-DC01").phase is Phase.REIMAGED
    assert journal.host("ARL-URG-0001").phase is Phase.PENDING
    assert "Wave 2" in prompts[1] and "tier 1" in prompts[1]
    (run,) = journal.runs("arlon")
    assert run.status == "stopped" and "does not match" in run.reason
    assert [c["how"] for c in journal.confirmations(run.id)] == ["typed site name"]
    assert not [e for e in _histories(lab)["ARL-URG-0001"] if e["event"] in TRIGGER_EVENTS]


@pytest.mark.timeout(900)
def test_batches_pipeline_within_capacity_through_every_phase(
    lab: Any, lab_environ: Callable[[Any], None]
) -> None:
    """Hosts take imaging slots in plan order as earlier ones are reimaged, not once their batch
    is verified; the imaging capacity still holds, and every host goes through all four phases."""
    from rebuild.orchestrator.options import DEFAULT_PLAYBOOK

    lab_environ(lab)
    # Tier 7 alone rejoins the domain with no directory server rebuilt: the tier-0 gates are let go.
    unrelated = {gate: "pipelining test: the directory is not part of it" for gate in TIER0_GATES}
    options = _options(lab, playbook=DEFAULT_PLAYBOOK, tier=7, imaging_capacity=2, pipeline_depth=3)
    options.override_gates = unrelated
    result = run_site(options)
    assert result.status == "completed", result.reason
    journal = Journal.in_state_dir(lab.state_dir)
    plan = json.loads((result.run_dir / "plan.json").read_text())
    batches = [b for wave in plan["waves"] for b in wave["batches"]]
    assert [len(b) for b in batches] == [2, 2, 1]  # tier 7 of the small register: 5 PCs, capacity 2
    hosts = {h.name: h for h in journal.hosts("arlon")}
    assert all(hosts[n].phase is Phase.VERIFIED for b in batches for n in b), [
        (n, hosts[n].phase, hosts[n].reason) for b in batches for n in b
    ]

    spans = _intervals(journal, {result.run_id})
    assert _max_overlap([spans[n] for b in batches for n in b]) <= 2  # capacity held
    verified_at = {
        t.host: t.at for t in journal.transitions(run_id=result.run_id) if t.to_phase is Phase.VERIFIED
    }
    in_order = [n for b in batches for n in b]
    starts = [spans[n][0] for n in in_order]
    assert starts == sorted(starts)  # slots are given in plan order
    for k, name in enumerate(in_order[2:], start=2):
        # a third host waits for a slot: one of the hosts before it was reimaged first ...
        assert spans[name][0] >= sorted(spans[n][1] for n in in_order[:k])[k - 2], name
    for earlier, later in itertools.pairwise(batches):
        # ... but no batch waits for the harden, redeploy and verify of the one before.
        assert min(spans[n][0] for n in later) < max(verified_at[n] for n in earlier)

    # One restart per host: harden leaves its restart-bound settings to the domain join's restart.
    twins = _twins(lab)
    for name in in_order:
        assert hosts[name].results["harden"]["restart_deferred"] is True, name
        events = [e["event"] for e in twins[name].history]
        since_image = events[len(events) - events[::-1].index("reimage") :]
        restarts = [i for i, e in enumerate(since_image) if e == "reboot"]
        assert len(restarts) == 1, (name, since_image)
        assert since_image.index("domain_joined") < restarts[0], (name, since_image)


def _entered(journal: Journal, run_id: str) -> dict[str, dict[Phase, float]]:
    """Per host: when it first entered each phase in run `run_id`."""
    at: dict[str, dict[Phase, float]] = {}
    for t in journal.transitions(run_id=run_id):
        at.setdefault(t.host, {}).setdefault(t.to_phase, t.at)
    return at


def _tier1(lab: Any, **kw: Any) -> SiteRunOptions:
    """Tier 1 of the small register alone, all four phases: the emergency server ARL-URG01 (one
    stage), then its three PCs (the next stage). Its hosts rejoin the domain with no directory
    server rebuilt: the tier-0 gates are let go."""
    from rebuild.orchestrator.options import DEFAULT_PLAYBOOK

    options = _options(lab, playbook=DEFAULT_PLAYBOOK, tier=1, **kw)
    options.override_gates = {
        gate: "stage overlap test: the directory is not part of it" for gate in TIER0_GATES
    }
    return options


SERVER, PCS = "ARL-URG01", ("ARL-URG-0001", "ARL-URG-0002", "ARL-URG-0003")


@pytest.mark.timeout(900)
def test_pcs_reimage_while_their_server_is_redeployed_and_redeploy_only_once_it_is_verified(
    lab: Any, lab_environ: Callable[[Any], None]
) -> None:
    """Issue 15: a wave's PC stage reimages and hardens while its server stage is redeployed and
    verified, and waits at its redeploy gate until that stage is over; the imaging capacity (1
    here) holds across the stages."""
    lab_environ(lab)
    result = run_site(_tier1(lab, imaging_capacity=1))
    assert result.status == "completed", (result.status, result.reason, result.failed)
    journal = Journal.in_state_dir(lab.state_dir)
    plan = json.loads((result.run_dir / "plan.json").read_text())
    # Capacity 1: one host per batch; the server's batch is stage 1, the PCs' three stage 2.
    assert [wave["batches"] for wave in plan["waves"]] == [[[SERVER], *([pc] for pc in PCS)]]
    hosts = {h.name: h for h in journal.hosts("arlon")}
    assert all(hosts[n].phase is Phase.VERIFIED for n in (SERVER, *PCS)), [
        (n, hosts[n].phase, hosts[n].reason) for n in (SERVER, *PCS)
    ]
    at = _entered(journal, result.run_id)
    spans = _intervals(journal, {result.run_id})
    assert _max_overlap([spans[n] for n in (SERVER, *PCS)]) <= 1  # capacity held across stages
    assert [spans[n][0] for n in (SERVER, *PCS)] == sorted(spans[n][0] for n in (SERVER, *PCS))
    server_redeploy, server_verified = at[SERVER][Phase.REDEPLOYING], at[SERVER][Phase.VERIFIED]
    for pc in PCS:
        # Servers before PCs for what needs them: no PC redeploys before its server is verified ...
        assert at[pc][Phase.REDEPLOYING] >= server_verified, pc
    # ... but the PCs did not wait for it to reimage: some PC reimaged while the server was
    # redeployed or verified (serial stages would start the first PC after server_verified).
    assert any(spans[pc][0] < server_verified and spans[pc][1] > server_redeploy for pc in PCS), (
        spans,
        server_redeploy,
        server_verified,
    )


@pytest.mark.timeout(900)
def test_a_site_stopping_lets_pcs_go_at_their_redeploy_gate_and_the_rerun_resumes_them(
    lab: Any, lab_environ: Callable[[Any], None]
) -> None:
    """Issue 15: the server stage fails verification (re-infected right after redeploy): the
    breaker stops the site while the PCs wait at their redeploy gate. They stop after harden,
    untouched further, journaled as hardened (not failed); the rerun continues them at redeploy."""
    lab_environ(lab)
    lab.client.set_fault(SERVER, "drift_after_redeploy", changes=["defender_off"])
    result = run_site(_tier1(lab))
    assert result.status == "stopped", (result.status, result.reason, result.failed)
    assert "circuit breaker" in result.reason
    journal = Journal.in_state_dir(lab.state_dir)
    assert journal.host(SERVER).phase is Phase.QUARANTINED
    first = _entered(journal, result.run_id)
    histories = _histories(lab)
    for pc in PCS:
        record = journal.host(pc)
        assert record.phase is Phase.HARDENED and not record.reason, (pc, record.phase, record.reason)
        assert Phase.REDEPLOYING not in first[pc]
        since_image = [e["event"] for e in histories[pc]][
            -[e["event"] for e in histories[pc]][::-1].index("reimage") :
        ]
        assert "domain_joined" not in since_image, (pc, since_image)  # untouched after harden

    lab.client.clear_fault(SERVER, "drift_after_redeploy")
    rerun = run_site(_tier1(lab, new_journal=False))
    assert rerun.status == "completed", (rerun.status, rerun.reason, rerun.failed)
    again = _entered(journal, rerun.run_id)
    histories = _histories(lab)
    for pc in PCS:
        assert journal.host(pc).phase is Phase.VERIFIED, (pc, journal.host(pc).reason)
        # resumed at redeploy: no second wipe, no second harden
        assert min(again[pc], key=again[pc].__getitem__) is Phase.REDEPLOYING, again[pc]
        assert sum(1 for e in histories[pc] if e["event"] == "reimage" and e.get("status") == "started") == 1


def test_reimaged_hosts_keep_their_own_secret_not_the_answer_files(
    lab: Any, lab_environ: Callable[[Any], None]
) -> None:
    """Issue 11.7 / 12.2 / 12.4: the answer file's one-time secret is replaced at first contact."""
    lab_environ(lab)
    hosts = ("ARL-URG-0001", "ARL-WDS01")  # a PXE-first PC; a physical server whose disk 0 is a SAN LUN
    run_site(_options(lab, limit=hosts))
    journal = Journal.in_state_dir(lab.state_dir)
    store = SecretStore(lab.state_dir)
    twins = _twins(lab)
    for host in hosts:
        record = journal.host(host)
        assert record.phase is Phase.REIMAGED, (host, record.phase, record.reason)
        rb_admin = twins[host].users["rb-admin"].password
        assert rb_admin == store.get(host) and rb_admin != store.get(host, "local_admin_bootstrap")
        assert twins[host].users["Administrator"].password == store.get(host, "builtin_admin")
        system = next(d["number"] for d in twins[host].disks if d["holds"] == "system")
        assert twins[host].wiped_disk == system
    assert twins["ARL-WDS01"].wiped_disk == 1  # not the SAN LUN at disk 0
    # The boot server served each host's files to that host's address only, and nothing is left.
    log = [json.loads(line) for line in (lab.lab_dir / "logs" / "bootserver.log").read_text().splitlines()]
    assert not list((lab.lab_dir / "boot" / "unattend").glob("*"))
    assert all(entry["status"] in (200, 404) for entry in log)


def test_a_missing_image_share_secret_is_named_before_anything_boots(
    lab: Any, lab_environ: Callable[[Any], None]
) -> None:
    lab_environ(lab)
    for path in (lab.state_dir / "secrets").glob("site-arlon.image_share_user*"):
        path.unlink()
    host = "ARL-URG-0001"
    run_site(_options(lab, limit=(host,)))
    record = Journal.in_state_dir(lab.state_dir).host(host)
    assert record.phase is Phase.FAILED and "image_share_user" in record.reason, record.reason
    assert not [e for e in _histories(lab)[host] if e["event"] in TRIGGER_EVENTS]  # nothing booted


def test_host_back_before_its_bootstrap_secret_was_replaced_is_not_wiped_again(
    lab: Any, lab_environ: Callable[[Any], None]
) -> None:
    lab_environ(lab)
    host = "ARL-WDS01"  # a server: a second reset through its BMC would wipe it again
    run_site(_options(lab, limit=(host,)))
    journal = Journal.in_state_dir(lab.state_dir)
    store = SecretStore(lab.state_dir)
    assert journal.host(host).phase is Phase.REIMAGED
    # As if the run died after the host came back, before the role replaced the bootstrap secret.
    twins = StateStore(lab.lab_dir / "twins.sqlite")
    try:
        state = twins.get(host)
        assert state is not None
        state.users["rb-admin"].password = str(store.get(host, "local_admin_bootstrap"))
        twins.put(host, state)
    finally:
        twins.close()
    journal.transition(host, Phase.REIMAGING, run_id=journal.runs()[-1].id, force=True)

    assert _twins(lab)[host].users["rb-admin"].password != store.get(host)
    assert Journal.in_state_dir(lab.state_dir).host(host).phase is Phase.REIMAGING
    run_site(_options(lab, limit=(host,)))
    record = Journal.in_state_dir(lab.state_dir).host(host)
    assert record.phase is Phase.REIMAGED, (record.phase, record.reason)
    history = _histories(lab)[host]
    assert [e["status"] for e in history if e["event"] == "reimage"] == ["started", "done"]  # once
    assert _twins(lab)[host].users["rb-admin"].password == store.get(host)
