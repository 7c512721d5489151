"""Where a site run's wall time went, read from the artifacts the run already leaves behind.

    python bench/site_breakdown.py <state_dir>/runs/<run>          # text
    python bench/site_breakdown.py <state_dir>/runs/<run> --json   # one JSON object

Input: ansible-runner's job events (state/runs/<run>/artifacts/<batch>/job_events/*.json, each
with its creation time and, for a finished task, the task's start, end and duration per host)
and the time ansible-runner wrote each batch's `command` file (just before it started
ansible-playbook). Nothing is re-run and the lab is not asked anything.

The critical path is walked backwards from the batch that ended last: each step takes the
batch that ended latest before the current one started, so the path is the chain of batches
the run waited for (the serial stages: tier-0 batches, then each wave). On that path the wall
time splits into
  - between batches: the orchestrator (plan, gates, journal writes, inventory) and waiting;
  - Ansible start-up: `command` written -> first job event (interpreter, collections, plugins);
  - per task category, the critical host's task durations (the host that finished last);
  - Ansible per-task overhead: the rest of the batch (strategy, callbacks, forks, results).
Connection set-up (WinRM/NTLM/TLS) is inside each task's duration: the events do not
separate it; bench/bench_lab.py measures it alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PHASES = ("reimage", "harden", "redeploy", "verify")


def category(action: str, task: str) -> str:
    """The breakdown bucket of one task (by module, then by what its name says it does)."""
    name = task.lower()
    if action == "rebuild_gate":
        return "gates and slot polling"
    if action.endswith("win_reboot"):
        return "reboots and their waits"
    if action in ("rebuild_boot_trigger", "rebuild_boot_entry"):
        return "boot: BMC power, WoL, PXE entry"
    if "wait" in name or action.endswith(("wait_for", "wait_for_connection")):
        return "waits for WinRM / readiness"
    if action == "rebuild_phase_done":
        return "journal (phase done)"
    if action.startswith("ansible.builtin."):
        return "controller-side tasks"
    return "module payloads on hosts"


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


@dataclass
class Batch:
    name: str
    command_at: float
    first_event: float = 0.0
    last_event: float = 0.0
    hosts: set[str] = field(default_factory=set)
    # host -> [(start, end, action, task)]
    tasks: dict[str, list[tuple[float, float, str, str]]] = field(default_factory=lambda: defaultdict(list))


def load_batches(run_dir: Path) -> list[Batch]:
    batches: list[Batch] = []
    if not (run_dir / "artifacts").is_dir():
        return batches
    for artifacts in sorted((run_dir / "artifacts").iterdir()):
        command = artifacts / "command"
        events_dir = artifacts / "job_events"
        if not command.exists() or not events_dir.is_dir():
            continue
        batch = Batch(artifacts.name, command.stat().st_mtime)
        created = []
        for path in events_dir.glob("*.json"):
            try:
                event = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a partial file of a batch still running
            if event.get("created"):
                created.append(_ts(event["created"]))
            data = event.get("event_data") or {}
            host = data.get("host")
            if host and data.get("start") and data.get("end"):
                batch.hosts.add(host)
                batch.tasks[host].append(
                    (
                        _ts(data["start"]),
                        _ts(data["end"]),
                        data.get("task_action") or "",
                        data.get("task") or "",
                    )
                )
        if created:
            batch.first_event, batch.last_event = min(created), max(created)
            batches.append(batch)
    return batches


def critical_path(batches: list[Batch]) -> list[Batch]:
    if not batches:
        return []
    current = max(batches, key=lambda b: b.last_event)
    path = [current]
    while True:
        before = [b for b in batches if b.last_event <= current.command_at]
        if not before:
            break
        current = max(before, key=lambda b: b.last_event)
        path.append(current)
    return list(reversed(path))


def breakdown(run_dir: Path) -> dict[str, object]:
    batches = load_batches(run_dir)
    if not batches:
        raise SystemExit(f"{run_dir}: no ansible-runner artifacts with job events")
    run_start = min((run_dir / "plan.json").stat().st_mtime, min(b.command_at for b in batches))
    run_end = max(b.last_event for b in batches)
    wall = run_end - run_start
    buckets: dict[str, float] = defaultdict(float)
    stages = []
    previous_end = run_start
    for batch in critical_path(batches):
        buckets["between batches (orchestrator, journal, waiting)"] += max(
            batch.command_at - previous_end, 0.0
        )
        startup = batch.first_event - batch.command_at
        buckets["Ansible start-up per batch"] += startup
        last_host = max(batch.tasks, key=lambda h: max(t[1] for t in batch.tasks[h]))
        in_tasks = 0.0
        for start, end, action, task in batch.tasks[last_host]:
            buckets[category(action, task)] += end - start
            in_tasks += end - start
        span = batch.last_event - batch.first_event
        buckets["Ansible per-task overhead (strategy, callbacks, results)"] += max(span - in_tasks, 0.0)
        stages.append(
            {
                "batch": batch.name,
                "hosts": len(batch.hosts),
                "wall_s": round(batch.last_event - batch.command_at, 1),
                "startup_s": round(startup, 2),
                "critical_host": last_host,
            }
        )
        previous_end = batch.last_event
    per_phase: dict[str, dict[str, float]] = {}
    for phase in PHASES:
        per_host: dict[str, float] = defaultdict(float)
        first, last = float("inf"), 0.0
        for batch in batches:
            for host, tasks in batch.tasks.items():
                for start, end, _action, task in tasks:
                    if task.lower().startswith(phase + " |"):
                        per_host[host] += end - start
                        first, last = min(first, start), max(last, end)
        if per_host:
            span = max(last - first, 1e-9)
            per_phase[phase] = {
                "hosts": len(per_host),
                "mean_task_s_per_host": round(sum(per_host.values()) / len(per_host), 1),
                "span_s": round(span, 1),
                "hosts_per_min": round(len(per_host) / span * 60, 1),
            }
    return {
        "run": run_dir.name,
        "batches": len(batches),
        "hosts": len({h for b in batches for h in b.hosts}),
        "wall_s": round(wall, 1),
        "critical_path_stages": len(stages),
        "critical_path_s": {k: round(v, 1) for k, v in sorted(buckets.items(), key=lambda kv: -kv[1])},
        "stages": stages,
        "phases": per_phase,
    }


def render(result: dict[str, object]) -> str:
    wall = float(result["wall_s"])  # type: ignore[arg-type]
    lines = [
        f"run {result['run']}: {result['hosts']} hosts, {result['batches']} batches, wall {wall:.0f} s, "
        f"{result['critical_path_stages']} serial stages on the critical path",
        "where the wall time went (critical path):",
    ]
    for name, seconds in result["critical_path_s"].items():  # type: ignore[attr-defined]
        lines.append(f"  {seconds:7.1f} s {seconds / max(wall, 1e-9):6.1%}  {name}")
    lines.append("per phase (task time per host, span, throughput):")
    for phase, row in result["phases"].items():  # type: ignore[attr-defined]
        lines.append(
            f"  {phase:9} {row['hosts']:4} hosts  {row['mean_task_s_per_host']:6.1f} s/host  "
            f"span {row['span_s']:6.1f} s  {row['hosts_per_min']:7.1f} hosts/min"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path, help="<state_dir>/runs/<run>")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.run_dir / "artifacts").is_dir():
        print(f"{args.run_dir}: not a run directory (no artifacts/ in it)", file=sys.stderr)
        return 2
    result = breakdown(args.run_dir)
    print(json.dumps(result, indent=1) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
