"""Issue 17's Done-when against the SIMULATED lab: Arlon rehearsal batches through an execution node.

The node is Debian's sshd on loopback started by test_node_over_ssh's `node` fixture (this
worktree's virtualenv and project as the node's). Arlon's sites.yml entry gets `execution: {node}`
through a copy of the data folder (REBUILD_DATA_DIR). One lab of Arlon, three emergency PCs of the
same model, each rebuilt once through all four phases:

- ARL-URG-0002 locally, ARL-URG-0003 through the node: the same journal transitions and the same
  verification results, its JUnit file and log streamed back into the run's artifacts;
- ARL-URG-0001 through the node, the ssh connection cut once its reimage has started: the host
  stays where the journal had it; the rerun re-checks it and finishes; the lab saw one reimage;
- afterwards: nothing of the runs is left on the node, and no secret of the store (nor any
  per-batch key) is in the controller's run folders or in any process argument seen during the runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rebuild.errors import RebuildError
from rebuild.execution_node import ExecutionNode
from rebuild.journal import Journal, Phase
from rebuild.orchestrator import credentials, run_site

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import RunningLab, _running_lab, rehearsal_site_options
from test_node_over_ssh import SSHD, data_with_node
from test_node_over_ssh import node as node  # the sshd fixture, used by arlon_on_node

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not SSHD.exists(), reason="needs Debian's openssh-server (scripts/setup.sh)"),
]

# Windows 11 23H2 PCs of the emergencies; the first two in offices without a printer queue.
LOCAL, REMOTE, CUT = "ARL-URG-0002", "ARL-URG-0003", "ARL-URG-0001"


def _worker_folders() -> set[Path]:
    return set(Path("/tmp").glob("rebuild-worker-*"))


def _process_args() -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[1:]


def _reimages(lab: RunningLab, host: str) -> int:
    history = lab.client.twin(host)["history"]
    return sum(1 for e in history if e["event"] == "reimage" and e.get("status") == "started")


class Watch:
    """Samples every process's arguments during a run (a secret must never be in one) and, when
    asked, cuts the node's ssh connection once `cut_host` has started its reimage in the lab."""

    def __init__(self, lab: RunningLab, port: int, cut_host: str | None = None) -> None:
        self.lab, self.port, self.cut_host = lab, port, cut_host
        self.args: set[str] = set()
        self.cut: list[int] = []
        self.phase_at_cut: Phase | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._done.wait(0.3):
            lines = _process_args()
            self.args.update(line.split(None, 1)[-1] for line in lines)
            if self.cut_host is None or self.cut or _reimages(self.lab, self.cut_host) == 0:
                continue
            for line in lines:
                pid, args = line.split(None, 1)
                if args.startswith("ssh ") and f"-p {self.port}" in args and "rebuild.node_agent" in args:
                    os.kill(int(pid), 9)
                    self.cut.append(int(pid))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    with _running_lab(tmp_path_factory.mktemp("node-rehearsal") / "lab", site="arlon") as running:
        yield running


@pytest.fixture
def arlon_on_node(node: ExecutionNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ExecutionNode:
    """The project's data with Arlon's batches sent to the test's node (as an operator would write)."""
    data = data_with_node(tmp_path, "arlon", node)
    monkeypatch.setenv("REBUILD_DATA_DIR", str(data))
    return node


def _rehearse(lab: RunningLab, host: str) -> Any:
    return run_site(rehearsal_site_options(lab, [host], "node test: the directory is not part of it"))


def _secret_values(lab: RunningLab) -> set[str]:
    store = lab.store()
    values = set()
    for path in sorted((lab.state_dir / "secrets").glob("*.vault")):
        entry, name = path.name.split(".")[:2]
        value = store.get(entry, name)
        if value and not name.endswith("_user"):  # user names are not secrets
            values.add(str(value))
    return values


def _transitions(lab: RunningLab, host: str) -> list[tuple[str, str]]:
    with Journal.in_state_dir(lab.state_dir) as journal:
        return [(t.from_phase.value, t.to_phase.value) for t in journal.transitions(host=host)]


def _verification(lab: RunningLab, host: str) -> Any:
    """The verification as the journal keeps it, without what differs from host to host and
    run to run (its name and address, its duration, where its JUnit file and log were written)."""
    with Journal.in_state_dir(lab.state_dir) as journal:
        record = journal.host(host)
    kept = {k: v for k, v in record.results["verify"].items() if k not in ("duration_s", "junit", "log")}
    text = json.dumps(kept, sort_keys=True)
    for own in (host, lab.address(host), host.lower()):
        text = text.replace(own, "<host>")
    return record.phase, json.loads(text)


@pytest.fixture(scope="module")
def runs(lab: RunningLab) -> dict[str, Any]:
    """What the tests compare, filled by the first test (the runs are long: each is made once)."""
    return {"keys": set()}


@pytest.fixture(autouse=True)
def batch_keys(runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every per-batch key sealing a node's secrets is kept, to be searched for like a secret."""
    make = credentials.generate_secret

    def kept(length: int = 24) -> str:
        value = make(length)
        runs["keys"].add(value)
        return value

    monkeypatch.setattr(credentials, "generate_secret", kept)


def test_a_batch_through_the_node_gives_what_a_local_batch_gives(
    lab: RunningLab,
    arlon_on_node: ExecutionNode,
    runs: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var, value in lab.env.items():
        monkeypatch.setenv(var, value)
    before = _worker_folders()
    runs["secrets"] = _secret_values(lab)
    data_dir = os.environ.pop("REBUILD_DATA_DIR")  # the local run: Arlon's batches run here
    local = _rehearse(lab, LOCAL)
    monkeypatch.setenv("REBUILD_DATA_DIR", data_dir)
    runs["secrets"] |= _secret_values(lab)
    with Watch(lab, arlon_on_node.port) as watch:
        remote = _rehearse(lab, REMOTE)
    runs["args"] = set(watch.args)
    runs["secrets"] |= _secret_values(lab)
    assert (local.status, remote.status) == ("completed", "completed"), (local, remote)
    assert _verification(lab, LOCAL)[0] is Phase.VERIFIED
    assert _transitions(lab, REMOTE) == _transitions(lab, LOCAL)
    assert _verification(lab, REMOTE) == _verification(lab, LOCAL)
    assert _reimages(lab, REMOTE) == 1
    run_dir = remote.run_dir
    assert list((run_dir / "artifacts").glob("t1-b*/job_events/*.json"))  # streamed back from the node
    with Journal.in_state_dir(lab.state_dir) as journal:
        verified = journal.host(REMOTE).results["verify"]
    for kept in (verified["junit"], verified["log"]):  # the evidence came back, and the journal says where
        assert Path(kept).is_relative_to(run_dir / "artifacts") and Path(kept).exists(), kept
    assert _worker_folders() == before
    runs["before"] = before


def test_a_cut_connection_leaves_the_host_where_the_journal_had_it_and_the_rerun_finishes(
    lab: RunningLab,
    arlon_on_node: ExecutionNode,
    runs: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var, value in lab.env.items():
        monkeypatch.setenv(var, value)
    with Watch(lab, arlon_on_node.port, cut_host=CUT) as watch, pytest.raises(RebuildError) as caught:
        _rehearse(lab, CUT)
    runs.setdefault("args", set()).update(watch.args)
    runs.setdefault("secrets", set()).update(_secret_values(lab))
    assert len(watch.cut) == 1 and "execution node" in str(caught.value)
    with Journal.in_state_dir(lab.state_dir) as journal:
        assert journal.host(CUT).phase is Phase.REIMAGING  # where it was: not failed, not done
        assert journal.runs()[-1].status == "stopped"
    deadline = time.monotonic() + 30  # the agent saw its stdin end: worker stopped, folder removed
    while _worker_folders() != runs.get("before", _worker_folders()):
        assert time.monotonic() < deadline, "the node kept the cut run's folder"
        time.sleep(0.5)

    with Watch(lab, arlon_on_node.port) as watch:
        rerun = _rehearse(lab, CUT)
    runs["args"].update(watch.args)
    runs["secrets"] |= _secret_values(lab)
    assert rerun.status == "completed", rerun
    with Journal.in_state_dir(lab.state_dir) as journal:
        assert journal.host(CUT).phase is Phase.VERIFIED
        rechecked = [t for t in journal.transitions(host=CUT) if t.run_id == rerun.run_id]
    assert rechecked and rechecked[0].from_phase is Phase.REIMAGING  # the rerun took it from there
    assert _reimages(lab, CUT) == 1  # re-checked, not reimaged twice


def test_nothing_of_the_runs_stays_on_the_node_and_no_secret_is_in_the_artifacts(
    lab: RunningLab, runs: dict[str, Any]
) -> None:
    assert runs.get("secrets") and runs.get("args"), "the runs above did not run"
    assert _worker_folders() == runs["before"]
    assert not [line for line in _process_args() if "rebuild.node_agent" in line]
    assert runs["keys"]  # the node runs had their own keys
    secrets = runs["secrets"] | runs["keys"]
    leaked = [
        str(path)
        for path in sorted((lab.state_dir / "runs").rglob("*"))
        if path.is_file() and any(s.encode() in path.read_bytes() for s in secrets)
    ]
    assert leaked == []
    assert [a for a in runs["args"] if any(s in a for s in secrets)] == []


def test_a_later_stage_waits_at_its_redeploy_gate_on_the_node_too(
    lab: RunningLab, arlon_on_node: ExecutionNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15 through an execution node: tier 5's PC reimages while its server's stage runs,
    and its redeploy gate, a file in the node's batch folder, is opened through the batch's ssh
    channel once the server is verified."""
    for var, value in lab.env.items():
        monkeypatch.setenv(var, value)
    server, pc = "ARL-LIS01", "ARL-LAB-0001"
    before = _worker_folders()
    result = run_site(rehearsal_site_options(lab, [server, pc], "node test: the directory is not part of it"))
    assert result.status == "completed", (result.status, result.reason, result.failed)
    with Journal.in_state_dir(lab.state_dir) as journal:
        at: dict[tuple[str, Phase], float] = {}
        for t in journal.transitions(run_id=result.run_id):
            at.setdefault((t.host, t.to_phase), t.at)
        assert journal.host(pc).phase is Phase.VERIFIED, journal.host(pc).reason
    assert at[(pc, Phase.REIMAGING)] < at[(server, Phase.VERIFIED)] <= at[(pc, Phase.REDEPLOYING)]
    assert _worker_folders() == before
