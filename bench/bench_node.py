"""Execution-node benchmark (issue 17): what sending a batch to a node costs over running it here.

    python bench/bench_node.py                     # per-batch overhead only (about 1 min)
    python bench/bench_node.py --rehearsal 2       # plus N Arlon PCs rebuilt locally, then N through the node
    python bench/bench_node.py --whole-site        # plus the small Arlon register, locally then via the node

The node is Debian's sshd on loopback started here (tests/integration/test_node_over_ssh.py's
loopback_node), with this checkout's virtualenv as the node's environment: the figures are the
dispatch's own cost (ssh, agent start, transmit, worker start, process), not a network's.

1. Per batch: the node check alone (one ssh round trip running the node's python), then the
   2-host playbook of the node tests (tests/integration/data/node-smoke.yml, connection local)
   run `--repeat` times locally and through the node, alternately; medians and the difference.
2. `--rehearsal N`: a lab of Arlon (imaging 1 s); N PCs (one per tier of PAIRS) rebuilt through
   all four phases locally, then their twins of the same tier and model through the node; wall
   time of each `rebuild site` run.

3. `--whole-site`: the README's rehearsal register (27 Arlon machines), all four phases, in a fresh
   lab each way: once locally, once with every batch on the node. Both runs override the tier-0
   gates the same way, so the difference is the dispatch.

Results: bench/results/node.json (with the machine's load average at start: 2 shared cores here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))


from rebuild.errors import RebuildError  # noqa: E402
from rebuild.execution_node import ExecutionNode  # noqa: E402
from rebuild.journal import Journal, Phase  # noqa: E402
from rebuild.launcher import Playbook, run_playbook  # noqa: E402
from rebuild.node_ssh import check_reachable  # noqa: E402

DATA = ROOT / "tests" / "integration" / "data"
# Pairs of PCs of one tier and model: the first of each is rebuilt locally, the second through the
# node, so both runs have the same waves and batches.
PAIRS = (("ARL-URG-0001", "ARL-URG-0002"), ("ARL-USI-0001", "ARL-USI-0002"))


def _smoke(folder: Path, node: ExecutionNode | None, ident: str) -> float:
    started = time.monotonic()
    outcome = run_playbook(
        Playbook(
            what=f"bench {ident}",
            playbook=DATA / "node-smoke.yml",
            inventory=DATA / "node-smoke-inventory.yml",
            state_dir=folder / ident / "state",
            private_dir=folder / ident / "runner",
            artifact_dir=folder / ident / "artifacts",
            ident=ident,
            limit="all",
            event_handler=lambda event: True,
            node=node,
        )
    )
    if outcome.status != "failed":  # pc-bad fails by design, on both
        raise RebuildError(f"bench {ident}: unexpected status {outcome.status}")
    return time.monotonic() - started


def per_batch(node: ExecutionNode, folder: Path, repeat: int) -> dict[str, Any]:
    checks = []
    for _ in range(repeat):
        started = time.monotonic()
        check_reachable(node)
        checks.append(time.monotonic() - started)
    local, remote = [], []
    for n in range(repeat):
        local.append(_smoke(folder, None, f"local-{n}"))
        remote.append(_smoke(folder, node, f"remote-{n}"))
    median_local, median_remote = statistics.median(local), statistics.median(remote)
    return {
        "node_check_s": sorted(round(c, 3) for c in checks),
        "smoke_local_s": [round(t, 2) for t in local],
        "smoke_node_s": [round(t, 2) for t in remote],
        "median_local_s": round(median_local, 2),
        "median_node_s": round(median_remote, 2),
        "per_batch_overhead_s": round(median_remote - median_local, 2),
    }


def _rehearse(lab: Any, hosts: list[str]) -> tuple[float, str]:
    """`rebuild site arlon` on `hosts` (all of the lab's Arlon machines when empty)."""
    from conftest import rehearsal_site_options

    from rebuild.orchestrator import run_site

    started = time.monotonic()
    result = run_site(rehearsal_site_options(lab, hosts, "bench: no directory server in it"))
    return time.monotonic() - started, result.status


def rehearsal(node: ExecutionNode, folder: Path, count: int) -> dict[str, Any]:
    from conftest import _running_lab
    from test_node_over_ssh import data_with_node

    local_hosts, node_hosts = [p[0] for p in PAIRS[:count]], [p[1] for p in PAIRS[:count]]
    with _running_lab(folder / "lab", site="arlon") as lab:
        os.environ.update(lab.env)
        local_s, local_status = _rehearse(lab, local_hosts)
        data = data_with_node(folder, "arlon", node)
        os.environ["REBUILD_DATA_DIR"] = str(data)
        try:
            node_s, node_status = _rehearse(lab, node_hosts)
        finally:
            del os.environ["REBUILD_DATA_DIR"]
    return {
        "hosts_per_run": count,
        "local": {"hosts": local_hosts, "wall_s": round(local_s, 1), "status": local_status},
        "node": {"hosts": node_hosts, "wall_s": round(node_s, 1), "status": node_status},
    }


def whole_site(node: ExecutionNode, folder: Path) -> dict[str, Any]:
    from conftest import _running_lab
    from test_node_over_ssh import data_with_node

    runs: dict[str, Any] = {}
    for where in ("local", "node"):
        with _running_lab(folder / f"lab-{where}", site="arlon") as lab:
            os.environ.update(lab.env)
            if where == "node":
                os.environ["REBUILD_DATA_DIR"] = str(data_with_node(folder, "arlon", node))
            try:
                wall, status = _rehearse(lab, [])
            finally:
                os.environ.pop("REBUILD_DATA_DIR", None)
            with Journal.in_state_dir(lab.state_dir) as journal:
                phases = [h.phase for h in journal.hosts("arlon")]
        runs[where] = {
            "wall_s": round(wall, 1),
            "status": status,
            "hosts": len(phases),
            "verified": sum(p is Phase.VERIFIED for p in phases),
        }
    runs["node_over_local"] = round(runs["node"]["wall_s"] / runs["local"]["wall_s"], 2)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="smoke runs each way (default 5)")
    parser.add_argument(
        "--rehearsal", type=int, default=0, metavar="N", help=f"PCs per run (max {len(PAIRS)})"
    )
    parser.add_argument(
        "--whole-site",
        action="store_true",
        help="the small Arlon register, locally then via the node",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "node.json")
    args = parser.parse_args()
    if not 0 <= args.rehearsal <= len(PAIRS) or args.repeat < 1:
        parser.error(f"--rehearsal must be 0 to {len(PAIRS)}, --repeat at least 1")
    from test_node_over_ssh import loopback_node

    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp:
        folder = Path(tmp)
        (folder / "node").mkdir()
        with loopback_node(folder / "node") as node:
            result["per_batch"] = per_batch(node, folder, args.repeat)
            if args.rehearsal:
                result["rehearsal"] = rehearsal(node, folder, args.rehearsal)
            if args.whole_site:
                result["whole_site"] = whole_site(node, folder)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
