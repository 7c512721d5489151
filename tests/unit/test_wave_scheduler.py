"""The wave scheduler with fake batches (no Ansible, no lab): a later stage reimages and hardens
while the stage before runs, and waits at its redeploy gate until that stage is over; the imaging
capacity, plan order and the circuit breaker hold as within one stage."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rebuild import contract
from rebuild.journal import Journal, Phase
from rebuild.orchestrator.batch import BatchRun
from rebuild.orchestrator.breaker import Breaker, Trip
from rebuild.orchestrator.events import EventMapper
from rebuild.orchestrator.interrupt import Interrupt
from rebuild.orchestrator.repair import fail_unfinished
from rebuild.orchestrator.resume import playbook_redeploy_gated
from rebuild.orchestrator.scheduler import Outcome, WaveScheduler
from rebuild.yamlfile import load_yaml
from tests.hosts import register_host

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "playbooks" / "site.yml"
WAIT_S = 20  # how long a test waits for the scheduler's thread to get somewhere (not a timing)


class FakeBatch:
    """A batch whose hosts are reimaged the moment they get a slot (or fail there, `failing`; or
    stay reimaging until the test frees them, `slow`); it ends by itself once every host has its
    slot and its redeploy gate is open, unless the test ends it (`manual`: its redeploy and
    verify take until then)."""

    def __init__(
        self, name: str, hosts: list[str], held: bool, news: queue.Queue[Any], log: list[tuple[str, str]]
    ) -> None:
        self.name, self.hosts, self.held, self.news, self.log = name, hosts, held, news, log
        self.gate_open = False
        self.waiting = list(hosts)
        self.imaging: set[str] = set()
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.failing: set[str] = set()
        self.slow: set[str] = set()
        self.manual = False
        self.cancelled = False
        self._failures: dict[str, str] = {}
        self._lock = threading.Lock()

    def open_gate(self) -> None:
        self.gate_open = True
        self.log.append(("gate", self.name))
        self._maybe_end()

    def open_slot(self) -> None:
        host = self.waiting.pop(0)
        self.log.append(("slot", host))
        if host in self.failing:
            self._failures[host] = "reimage | boot: the image server did not answer"
        if host in self.slow:
            self.imaging.add(host)
        self._maybe_end()

    def reimaged(self, host: str) -> None:
        self.imaging.discard(host)
        self.news.put(self)  # a slot is free (as BatchRun.host_event reports it)

    def open_redeploy(self) -> None:
        assert self.held, f"{self.name}: redeploy gate opened twice or without one"
        self.held = False
        self.log.append(("redeploy", self.name))
        self._maybe_end()

    def cancel(self, reason: str) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.log.append(("cancel", self.name))
        self.waiting.clear()
        self.held = False
        if not self.gate_open:
            self.end()  # stopped at its gate: its runner is stopped
        self._maybe_end()

    def past_reimage(self) -> int:
        return len(self.hosts) - len(self.waiting) - len(self.imaging)

    def failures(self) -> dict[str, str]:
        return dict(self._failures)

    def end(self) -> None:
        with self._lock:
            if self.finished.is_set():
                return
            self.log.append(("finished", self.name))
            self.finished.set()
        self.news.put(self)

    def _maybe_end(self) -> None:
        if not self.manual and self.gate_open and not self.waiting and not self.held:
            self.end()


class Wave:
    """Runs a WaveScheduler over fake batches in its own thread, as WaveRunner would."""

    def __init__(
        self, stages: list[list[list[str]]], *, capacity: int = 2, depth: int = 4, overlap: bool = True
    ) -> None:
        self.stages = stages
        self.log: list[tuple[str, str]] = []
        self.batches: dict[str, FakeBatch] = {}
        self.held_at_start: dict[str, bool] = {}
        self.manual: set[str] = set()
        self.failing: set[str] = set()
        self.slow: set[str] = set()
        self.breaker = Breaker(threshold=0.2)
        self.breaker.start_wave(1)
        self.outcome: Outcome | None = None
        self.scheduler = WaveScheduler(
            capacity=capacity,
            pipeline_depth=depth,
            gated=True,
            overlap=overlap,
            dry_run=False,
            breaker=self.breaker,
            interrupt=Interrupt(),
            start_batch=self._start,  # type: ignore[arg-type]  # a FakeBatch stands in for a BatchRun
            batch_finished=self._finished,  # type: ignore[arg-type]
            tripped=lambda trip: ("stopped", trip.explain()),
        )
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _start(self, batch: list[str], gated: bool, held: bool, news: queue.Queue[Any]) -> FakeBatch:
        name = batch[0].split("-")[0]
        fake = FakeBatch(name, batch, held, news, self.log)
        fake.manual = name in self.manual
        fake.failing = self.failing & set(batch)
        fake.slow = self.slow & set(batch)
        self.batches[name] = fake
        self.held_at_start[name] = held
        self.log.append(("start", name))
        return fake

    def _finished(self, fake: FakeBatch) -> Outcome | None:
        trip: Trip | None = self.breaker.record_batch(len(fake.hosts), fake.failures())
        return ("stopped", trip.explain()) if trip is not None else None

    def _run(self) -> None:
        self.outcome = self.scheduler.run(self.stages, sample=2)  # type: ignore[arg-type]

    def start(self) -> Wave:
        self.thread.start()
        return self

    def until(self, what: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not what():
            assert time.monotonic() < deadline, f"the scheduler never got there: {self.log}"
            time.sleep(0.01)

    def join(self) -> Outcome | None:
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), f"the wave never ended: {self.log}"
        return self.outcome

    def at(self, event: tuple[str, str]) -> int:
        return self.log.index(event)


def test_a_later_stage_reimages_while_the_stage_before_runs_and_redeploys_after_it() -> None:
    # Stage 1: the server (S); stage 2: two batches of PCs (P, Q).
    wave = Wave([[["S-1"]], [["P-1", "P-2"], ["Q-1"]]], capacity=2)
    wave.manual = {"S"}  # the server's redeploy and verify last until the test ends them
    wave.start()
    wave.until(lambda: ("slot", "Q-1") in wave.log)
    # The PCs took their imaging slots while the server still runs, in plan order ...
    assert wave.held_at_start == {"S": False, "P": True, "Q": True}
    assert [h for e, h in wave.log if e == "slot"] == ["S-1", "P-1", "P-2", "Q-1"]
    # ... but none of them may go on to redeploy before the server's batch is over.
    assert not [e for e in wave.log if e[0] == "redeploy"]
    wave.batches["S"].end()
    assert wave.join() is None
    assert wave.at(("finished", "S")) < wave.at(("redeploy", "P"))
    assert wave.at(("finished", "S")) < wave.at(("redeploy", "Q"))


def test_the_imaging_capacity_holds_across_stages() -> None:
    # Capacity 1: the PC gets its slot only once the server is past reimage.
    wave = Wave([[["S-1"]], [["P-1"]]], capacity=1)
    wave.manual = {"S"}
    wave.slow = {"S-1"}
    wave.start()
    wave.until(lambda: "P" in wave.batches and wave.batches["P"].gate_open)
    time.sleep(0.6)  # a scheduler round or so: it must not give P a slot meanwhile
    assert ("slot", "P-1") not in wave.log
    wave.batches["S"].reimaged("S-1")
    wave.until(lambda: ("slot", "P-1") in wave.log)
    wave.batches["S"].end()
    wave.join()


def test_the_redeploy_gate_waits_for_every_earlier_stage() -> None:
    # Three stages (tier 0: directory, then DNS, then what needs DNS): the third's redeploy waits
    # for both; the second, held itself, opens once the first is over.
    wave = Wave([[["A-1"]], [["B-1"]], [["C-1"]]], capacity=3)
    wave.manual = {"A", "B"}
    wave.start()
    wave.until(lambda: ("slot", "C-1") in wave.log)
    assert wave.held_at_start == {"A": False, "B": True, "C": True}
    wave.batches["A"].end()
    wave.until(lambda: ("redeploy", "B") in wave.log)
    time.sleep(0.6)  # a scheduler round or so: C must still wait for B
    assert ("redeploy", "C") not in wave.log
    wave.batches["B"].end()
    wave.join()
    assert wave.at(("finished", "B")) < wave.at(("redeploy", "C"))


def test_without_overlap_a_stage_starts_only_after_the_one_before() -> None:
    wave = Wave([[["S-1"]], [["P-1"]]], overlap=False)
    wave.manual = {"S"}
    wave.start()
    wave.until(lambda: ("slot", "S-1") in wave.log)
    time.sleep(0.6)
    assert "P" not in wave.batches
    wave.batches["S"].end()
    wave.join()
    assert wave.held_at_start == {"S": False, "P": False}  # never held: nothing ran before it
    assert wave.at(("finished", "S")) < wave.at(("start", "P"))


def test_a_stage_started_after_the_one_before_ended_is_not_held() -> None:
    wave = Wave([[["S-1"]], [["P-1"]]], depth=1)  # one batch in flight at once
    wave.start()
    wave.join()
    assert wave.held_at_start == {"S": False, "P": False}


def test_a_breaker_trip_cancels_the_held_redeploy_gate() -> None:
    # The server stage fails (1 of 1): the site stops; the PCs, reimaged and hardened meanwhile,
    # are let go at their redeploy gate, which never opens.
    wave = Wave([[["S-1"]], [["P-1", "P-2"]]], capacity=3)
    wave.manual = {"S"}
    wave.failing = {"S-1"}
    wave.breaker.threshold = 0.5
    wave.start()
    wave.until(lambda: ("slot", "P-2") in wave.log)  # the sample (2) is not reached yet
    wave.batches["S"].end()
    outcome = wave.join()
    assert outcome is not None and outcome[0] == "stopped"
    assert ("cancel", "P") in wave.log
    assert not [e for e in wave.log if e[0] == "redeploy"]


def test_an_interrupt_cancels_the_held_redeploy_gate() -> None:
    wave = Wave([[["S-1"]], [["P-1"]]])
    wave.manual = {"S"}
    wave.start()
    wave.until(lambda: ("slot", "P-1") in wave.log)
    wave.scheduler.interrupt.requested = True  # SIGINT: the runners stop (their cancel callback)
    wave.until(lambda: ("cancel", "P") in wave.log)
    wave.batches["S"].end()
    wave.join()
    assert ("cancel", "S") in wave.log
    assert not [e for e in wave.log if e[0] == "redeploy"]


@pytest.mark.parametrize("overlap", [True, False])
def test_a_stop_with_batches_not_yet_started_ends_the_wave_without_them(overlap: bool) -> None:
    # One batch in flight at once: the server's batch trips the breaker when it ends, while the
    # PCs' batch has not started; it is let go untouched (this used to wait forever).
    wave = Wave([[["S-1"]], [["P-1"]]], depth=1, overlap=overlap)
    wave.failing = {"S-1"}
    outcome = wave.start().join()
    assert outcome is not None and outcome[0] == "stopped"
    assert "P" not in wave.batches


def test_the_breaker_sees_the_earlier_stage_s_failures_before_a_later_slot_opens() -> None:
    # The server stage's two hosts failed their reimage and the stage still runs (in flight):
    # the PCs of the next stage must not get a slot.
    wave = Wave([[["S-1", "S-2"]], [["P-1"]]], capacity=2, depth=4)
    wave.manual = {"S"}
    wave.failing = {"S-1", "S-2"}
    wave.start()
    wave.until(lambda: ("cancel", "P") in wave.log or ("slot", "P-1") in wave.log)
    wave.batches["S"].end()
    outcome = wave.join()
    assert outcome is not None and outcome[0] == "stopped"
    assert ("slot", "P-1") not in wave.log
    assert not wave.batches["P"].gate_open  # stopped at its batch gate: it touched nothing


# -- BatchRun and the mapper at the redeploy gate ------------------------------------------------


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal.in_state_dir(tmp_path)
    j.start_run("r1", "arlon", "op")
    j.ensure_hosts([register_host(n) for n in ("PC1", "PC2")])
    return j


def _done(host: str, phase: str) -> dict[str, Any]:
    res = {"rebuild_phase": phase, "facts": {}}
    return {"event": "runner_on_ok", "event_data": {"host": host, "task": f"{phase} done", "res": res}}


def _held_batch(journal: Journal, tmp_path: Path, phases: dict[str, list[str]]) -> BatchRun:
    news: queue.Queue[BatchRun] = queue.Queue()
    gates = tmp_path / "gates"
    run = BatchRun(
        "t1-b002",
        2,
        [register_host(n) for n in phases],
        news,
        gate=contract.gate_file(gates, "t1-b002"),
        slot_dir=contract.slot_dir(gates, "t1-b002"),
        to_reimage=[h for h, p in phases.items() if p[:1] == ["reimage"]],
        redeploy_gate=contract.redeploy_gate_file(gates, "t1-b002"),
    )
    run.mapper = EventMapper(
        journal, "r1", phases=phases, hold_from=contract.REDEPLOY_GATE_PHASE, on_host_event=run.host_event
    )
    return run


def test_a_held_host_enters_redeploy_only_when_its_gate_opens(journal: Journal, tmp_path: Path) -> None:
    for phase in (Phase.REIMAGING, Phase.REIMAGED, Phase.HARDENING, Phase.HARDENED):
        journal.transition("PC2", phase, run_id="r1")
    journal.transition("PC2", Phase.REDEPLOYING, run_id="r1")
    journal.transition("PC2", Phase.REDEPLOYED, run_id="r1")  # an earlier run: resumes at verify
    run = _held_batch(journal, tmp_path, {"PC1": list(contract.PHASES), "PC2": ["verify"]})
    run.open_gate()
    assert journal.host("PC2").phase is Phase.REDEPLOYED  # resumes at verify: held too, not started
    run.open_slot()
    assert run.mapper is not None
    run.mapper(_done("PC1", "reimage"))
    run.mapper(_done("PC1", "harden"))
    assert journal.host("PC1").phase is Phase.HARDENED  # waits at the gate, journaled as hardened
    assert run.redeploy_gate is not None and not run.redeploy_gate.exists()
    run.open_redeploy()
    assert run.redeploy_gate.exists() and not run.held
    assert journal.host("PC1").phase is Phase.REDEPLOYING  # journal first, then the file
    assert journal.host("PC2").phase is Phase.VERIFYING
    run.mapper(_done("PC1", "redeploy"))
    assert journal.host("PC1").phase is Phase.VERIFYING  # past the gate, phases follow as usual


def test_a_cancelled_redeploy_gate_leaves_its_hosts_hardened_for_the_rerun(
    journal: Journal, tmp_path: Path
) -> None:
    phases = {"PC1": list(contract.PHASES), "PC2": list(contract.PHASES)}
    run = _held_batch(journal, tmp_path, phases)
    run.open_gate()
    run.open_slot()
    assert run.mapper is not None
    run.mapper(_done("PC1", "reimage"))
    run.mapper(_done("PC1", "harden"))
    run.cancel("the site is stopping - circuit breaker")
    assert run.redeploy_gate is not None
    cancel = contract.cancel_file(run.redeploy_gate)
    assert cancel.read_text().startswith("the site is stopping")
    assert run.slot_dir is not None
    assert contract.cancel_file(contract.slot_file(run.slot_dir, "PC2")).exists()  # had no slot yet
    # rebuild_gate fails the waits with rebuild_not_started: neither host is failed.
    for host in ("PC1", "PC2"):
        res = {contract.NOT_STARTED_KEY: True, "msg": "not started: the site is stopping"}
        run.mapper({"event": "runner_on_failed", "event_data": {"host": host, "task": "gate", "res": res}})
    before = {"PC1": Phase.PENDING, "PC2": Phase.PENDING}
    fail_unfinished(journal, "r1", ["PC1", "PC2"], before, phases, run.mapper, "failed", 2, tmp_path)
    assert journal.host("PC1").phase is Phase.HARDENED and not run.mapper.failed
    assert journal.host("PC2").phase is Phase.PENDING
    # PC1 was reimaged and hardened in this batch: it counts for the breaker; PC2 was never touched.
    assert run.processed() == 1


# -- the playbook's redeploy gate -----------------------------------------------------------------


def test_only_a_playbook_with_the_redeploy_gate_between_harden_and_redeploy_overlaps(tmp_path: Path) -> None:
    assert playbook_redeploy_gated(SITE)
    assert not playbook_redeploy_gated(ROOT / "tests" / "integration" / "data" / "reimage-only.yml")
    plays = load_yaml(SITE)
    assert isinstance(plays, list)
    gate = next(n for n, p in enumerate(plays) if p["hosts"] == contract.REDEPLOY_GATE_GROUP)
    (task,) = plays[gate]["tasks"]
    assert task[contract.GATE_ACTION]["path"] == f"{{{{ {contract.REDEPLOY_GATE_FILE_VAR} }}}}"

    def variant(name: str, changed: list[Any]) -> Path:
        import yaml

        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump(changed, sort_keys=False), encoding="utf-8")
        return path

    late = [p for n, p in enumerate(plays) if n != gate]
    late.append(plays[gate])  # after redeploy and verify: it would hold nothing back
    assert not playbook_redeploy_gated(variant("late", late))
    busy = [dict(p, roles=["verify"]) if n == gate else p for n, p in enumerate(plays)]
    assert not playbook_redeploy_gated(variant("busy", busy))  # the gate's play touches hosts
    no_later = [p for p in plays if not {"redeploy", "verify"} & set(p.get("roles") or [])]
    assert not playbook_redeploy_gated(variant("no-later", no_later))  # nothing to hold back
