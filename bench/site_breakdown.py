"""Where a site run's wall time went, read from the artifacts the run already leaves behind.

    python bench/site_breakdown.py <state_dir>/runs/<run>          # text
    python bench/site_breakdown.py <state_dir>/runs/<run> --json   # one JSON object

Input: ansible-runner's job events (state/runs/<run>/artifacts/<batch>/job_events/*.json, each
with its creation time and, for a finished task, the task's start, end and duration per host)
and the time ansible-runner wrote each batch's `command` file (just before it started
ansible-playbook). Nothing is re-run and the lab is not asked anything.

The critical path is walked backwards from the batch that ended last (critical_path below):
in a batch it follows the host that finished last; from its wait for an imaging slot or its
batch's gate to the host whose reimage freed the (last) slot it needed; from a batch's start to
the batch that ended last before it started; from a held batch (a wave's later stage, started
while the stage before ran, waiting at its redeploy gate) to the earlier stage's last batch,
where the gate was waiting for it. So the path is the chain of batches the run waited for, and
a held stage's reimage and harden are on it only for the part they took after the stage before
ended. On that path the wall time splits into
  - between batches: the orchestrator (plan, gates, journal writes, inventory) and waiting,
    including a redeploy gate's opening after the stage before ended;
  - Ansible start-up: `command` written -> first job event (interpreter, collections, plugins);
  - per task category, the critical host's task durations;
  - Ansible per-task overhead: the gaps between its tasks (strategy, callbacks, forks, results).
Per stage it reports the batch, its critical host, its wall on the path and, for a held one,
how much of its reimage and harden was hidden behind the stage before (the overlap's gain).
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


BETWEEN = "between batches (orchestrator, journal, waiting)"
STARTUP = "Ansible start-up per batch"
OVERHEAD = "Ansible per-task overhead (strategy, callbacks, results)"
Task = tuple[float, float, str, str]


def is_redeploy_gate(action: str, task: str) -> bool:
    """The task a held batch's hosts wait at until the wave's earlier stages are over."""
    return action == "rebuild_gate" and "redeploy gate" in task.lower()


def is_reimage_or_harden(task: str) -> bool:
    name = task.lower()
    return name.startswith(("reimage |", "harden |", "rebuild phase | reimage", "rebuild phase | harden"))


def last_host(batch: Batch) -> str:
    """The batch's critical host: the one whose last task ended last."""
    return max(batch.tasks, key=lambda h: max(t[1] for t in batch.tasks[h]))


def _ended_last_before(batches: list[Batch], at: float, but: Batch) -> Batch | None:
    before = [b for b in batches if b is not but and b.last_event <= at]
    return max(before, key=lambda b: b.last_event) if before else None


def _walk_tasks(tasks: list[Task], cursor: float, floor: float, buckets: dict[str, float]) -> float:
    """One host's tasks from `cursor` back to `floor` (a task across it counts its part after it):
    each task's time in its category, the gaps between tasks as Ansible's per-task overhead.
    Returns where the walk stopped (the earliest task start reached, never below floor)."""
    for start, end, action, task in sorted(tasks, key=lambda t: t[0], reverse=True):
        if end > cursor:
            continue  # after the path's point in this host (e.g. tasks after a gate walked already)
        if end <= floor:
            break
        buckets[OVERHEAD] += cursor - end
        buckets[category(action, task)] += end - max(start, floor)
        cursor = max(start, floor)
    return cursor


def _reimaged(tasks: list[Task]) -> float | None:
    """When the host's reimage ended (its imaging slot freed): its last reimage task's end."""
    ends = [
        end
        for _s, end, _a, task in tasks
        if task.lower().startswith(("reimage |", "rebuild phase | reimage"))
    ]
    return max(ends) if ends else None


Cause = tuple[Batch, str, float]


def _cause(batches: list[Batch], batch: Batch, host: str, wait: Task) -> Cause | None:
    """What a wait for an imaging slot or for a batch's gate waited for: the last slot freed
    inside it, i.e. the last reimage of another host that ended inside it (its own batch's too
    for a slot: free strategy). A batch's gate opens once every host of the batches before it
    has its slot: when capacity is short, at the moment a reimage frees the last one they need
    (the hosts' own slot waits end a poll later, often after the gate's, so they cannot date it)."""
    start, end, action, task = wait
    name = task.lower()
    if action != "rebuild_gate":
        return None
    if "imaging slot" in name:
        same_batch = True
    elif "this batch's gate" in name:
        same_batch = False
    else:
        return None
    best: Cause | None = None
    for other in batches:
        if other is batch and not same_batch:
            continue
        for other_host, tasks in other.tasks.items():
            if other is batch and other_host == host:
                continue
            at = _reimaged(tasks)
            if at is not None and start < at < end and (best is None or at > best[2]):
                best = (other, other_host, at)
    return best


def _walk_back(
    batches: list[Batch], batch: Batch, host: str, cursor: float, buckets: dict[str, float]
) -> tuple[float, Cause | None]:
    """Like _walk_tasks down to the batch's start, but a wait for an imaging slot or the batch's
    gate that another host let go (_cause) leaves the path to that host: its poll after the
    release counts as gates and slot polling. Returns the time reached and the host of another
    batch the path goes on to (None: it reached this batch's first task)."""
    while True:
        for wait in sorted(batch.tasks[host], key=lambda t: t[0], reverse=True):
            start, end, action, task = wait
            if end > cursor:
                continue
            buckets[OVERHEAD] += cursor - end
            cause = _cause(batches, batch, host, wait)
            if cause is not None:
                buckets[category(action, task)] += end - cause[2]
                if cause[0] is not batch:
                    return cause[2], cause
                host, cursor = cause[1], cause[2]
                break  # on in the batch's host that freed the slot
            buckets[category(action, task)] += end - start
            cursor = start
        else:
            return cursor, None


@dataclass
class Held:
    """Where a held batch met the wave's earlier stages at its redeploy gate."""

    earlier: Batch  # the batch of the earlier stages that ended last before the gate opened
    passed: float  # the last of the batch's hosts passed the gate (its redeploy play starts)
    arrived_host: str  # the host that reached the gate last
    arrived: float


def earlier_stages(plan: object) -> dict[str, set[str]]:
    """Per batch (its artifacts' name, `t<tier>-b<number>`), the batches of its wave's earlier
    stages, from the run's plan.json (`waves[].stages`: batch numbers per stage). Empty when the
    plan does not say (then a held batch's gate is taken to wait for any batch)."""
    earlier: dict[str, set[str]] = {}
    waves = plan.get("waves") if isinstance(plan, dict) else None
    for wave in waves if isinstance(waves, list) else []:
        stages = wave.get("stages") if isinstance(wave, dict) else None
        if not isinstance(stages, list):
            continue
        before: set[str] = set()
        for stage in stages:
            names = {f"t{wave.get('tier')}-b{number:03d}" for number in stage if isinstance(number, int)}
            for name in names:
                earlier[name] = set(before)
            before |= names
    return earlier


def held_at_gate(batches: list[Batch], batch: Batch, earlier_of: dict[str, set[str]]) -> Held | None:
    """The batch's redeploy gate, if it waited there for a batch of the earlier stages (per the
    plan, when it says) that ended while it ran."""
    gates = {
        host: (start, end)
        for host, tasks in batch.tasks.items()
        for start, end, action, task in tasks
        if is_redeploy_gate(action, task)
    }
    if not gates:
        return None  # not held: a wave's first stage, or started after the earlier stages ended
    passed = max(end for _start, end in gates.values())
    allowed = earlier_of.get(batch.name)
    candidates = batches if allowed is None else [b for b in batches if b.name in allowed]
    earlier = _ended_last_before(candidates, passed, batch)
    if earlier is None or earlier.last_event <= batch.command_at:
        return None  # nothing ended while it ran: the gate was open from the start
    arrived_host = max(gates, key=lambda h: gates[h][0])
    return Held(earlier, passed, arrived_host, gates[arrived_host][0])


def critical_path(
    batches: list[Batch], run_start: float, earlier_of: dict[str, set[str]] | None = None
) -> tuple[dict[str, float], list[dict[str, object]]]:
    """The run's critical path, walked backwards from the batch that ended last, split by kind.

    In a batch the path follows its critical host (the one that finished last) task by task back
    from the batch's end. A wait for an imaging slot or the batch's gate that another host let go
    (its reimage ended, freeing the slot it or the batches before it needed) hands the path
    to that host at that moment (_walk_back). At the batch's start it goes on through Ansible's
    start-up to the batch that ended last before this one's `command` was written (the gap:
    between batches).

    A held batch (a later stage of a wave, started while the stage before still ran) waited at
    its redeploy gate for that stage instead: the path goes back to the gate, then to the batch
    that ended last before the gate let the batch through (the earlier stage's last batch), at
    its end E. If every host reached the gate before E, all the batch did before is off the path
    (hidden behind the earlier stage: the overlap's gain) and the gate's part after E (the
    orchestrator seeing the stage end, the breaker's look, the gate file, one poll) counts as
    between batches, not as a gate cost. If a host reached it after E, that host's tasks after E
    are on the path (the overlap's excess: reimage and harden that took longer than the earlier
    stage's redeploy and verify), then the gate's poll; the earlier stage stays on the path up to E.
    """
    buckets: dict[str, float] = defaultdict(float)
    stages: list[dict[str, object]] = []
    last = max(batches, key=lambda b: b.last_event)
    batch: Batch | None = last
    host = last_host(last)
    entry = last.last_event  # where the path enters the batch (walking backwards)
    while batch is not None:
        held = held_at_gate(batches, batch, earlier_of or {}) if entry == batch.last_event else None
        stage: dict[str, object] = {
            "batch": batch.name,
            "hosts": len(batch.hosts),
            "critical_host": host,
            "wall_s": round(batch.last_event - batch.command_at, 1),
        }
        if held is None:
            cursor, cause = _walk_back(batches, batch, host, entry, buckets)
            if cause is not None:  # it waited for a slot or its gate: on in the batch that let it go
                stage.update(on_path_s=round(entry - cause[2], 1), startup_s=0.0, waited_for=cause[1])
                stages.append(stage)
                batch, host, entry = cause
                continue
            buckets[OVERHEAD] += max(cursor - batch.first_event, 0.0)
            buckets[STARTUP] += batch.first_event - batch.command_at
            before = _ended_last_before(batches, batch.command_at, batch)
            buckets[BETWEEN] += max(batch.command_at - (before.last_event if before else run_start), 0.0)
            stage.update(
                on_path_s=round(entry - batch.command_at, 1),
                startup_s=round(batch.first_event - batch.command_at, 2),
            )
            stages.append(stage)
            batch = before
            if before is not None:
                host, entry = last_host(before), before.last_event
            continue
        after_gate = [t for t in batch.tasks[host] if t[0] >= held.passed]
        cursor = _walk_tasks(after_gate, batch.last_event, held.passed, buckets)
        buckets[OVERHEAD] += cursor - held.passed  # incl. the play's wait for the last host
        earlier_end = held.earlier.last_event
        if held.arrived < earlier_end:
            buckets[BETWEEN] += held.passed - earlier_end
        else:
            buckets[category("rebuild_gate", "redeploy gate")] += held.passed - held.arrived
            before_gate = [t for t in batch.tasks[held.arrived_host] if t[1] <= held.arrived]
            cursor = _walk_tasks(before_gate, held.arrived, earlier_end, buckets)
            buckets[OVERHEAD] += cursor - earlier_end
        shown = held.arrived_host
        reimage_harden = [
            (start, end) for start, end, _a, task in batch.tasks[shown] if is_reimage_or_harden(task)
        ]
        total = sum(end - start for start, end in reimage_harden)
        hidden = sum(max(min(end, earlier_end) - start, 0.0) for start, end in reimage_harden)
        stage.update(
            on_path_s=round(batch.last_event - earlier_end, 1),
            startup_s=0.0,
            held_until=held.earlier.name,
            last_at_gate=shown,
            reimage_harden_s=round(total, 1),
            hidden_s=round(hidden, 1),
            excess_s=round(total - hidden, 1),
        )
        stages.append(stage)
        batch, host, entry = held.earlier, last_host(held.earlier), held.earlier.last_event
    return buckets, list(reversed(stages))


def breakdown(run_dir: Path) -> dict[str, object]:
    batches = load_batches(run_dir)
    if not batches:
        raise SystemExit(f"{run_dir}: no ansible-runner artifacts with job events")
    run_start = min((run_dir / "plan.json").stat().st_mtime, min(b.command_at for b in batches))
    run_end = max(b.last_event for b in batches)
    wall = run_end - run_start
    try:
        plan: object = json.loads((run_dir / "plan.json").read_text())
    except (OSError, ValueError):
        plan = {}
    buckets, stages = critical_path(batches, run_start, earlier_stages(plan))
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
        "overlap_hidden_s": round(sum(h for s in stages if isinstance(h := s.get("hidden_s"), float)), 1),
        "critical_path_s": {k: round(v, 1) for k, v in sorted(buckets.items(), key=lambda kv: -kv[1])},
        "stages": stages,
        "phases": per_phase,
    }


def render(result: dict[str, object]) -> str:
    wall = float(result["wall_s"])  # type: ignore[arg-type]
    lines = [
        f"run {result['run']}: {result['hosts']} hosts, {result['batches']} batches, wall {wall:.0f} s, "
        f"{result['critical_path_stages']} batches on the critical path "
        "(stages, and batches that waited for a slot)",
        "where the wall time went (critical path):",
    ]
    for name, seconds in result["critical_path_s"].items():  # type: ignore[attr-defined]
        lines.append(f"  {seconds:7.1f} s {seconds / max(wall, 1e-9):6.1%}  {name}")
    lines.append(
        "stages on the critical path (wall on the path; held: reimage+harden hidden behind the "
        f"stage before / on the path; {result['overlap_hidden_s']} s hidden in all):"
    )
    for stage in result["stages"]:  # type: ignore[attr-defined]
        held = (
            f"  held until {stage['held_until']}: {stage['reimage_harden_s']} s reimage+harden of "
            f"{stage['last_at_gate']}, {stage['hidden_s']} s hidden, {stage['excess_s']} s on the path"
            if "held_until" in stage
            else f"  (waited for an imaging slot or its gate: {stage['waited_for']})"
            if "waited_for" in stage
            else ""
        )
        lines.append(
            f"  {stage['batch']:10} {stage['hosts']:4} hosts  {stage['on_path_s']:6.1f} s  "
            f"critical host {stage['critical_host']}{held}"
        )
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
