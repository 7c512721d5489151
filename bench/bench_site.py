"""Rehearsal benchmark of `rebuild site` against the SIMULATED lab, imaging time zero.

    python bench/bench_site.py arlon            # all of Arlon (bundled register)
    python bench/bench_site.py fleet            # every site of the bundled fleet, in restart order
    python bench/bench_site.py arlon --playbook tests/integration/data/reimage-only.yml

Starts a lab of the bundled register (inventories/example/register.csv) on a free 127.N prefix,
runs `rebuild site <site> --yes --json --rehearsal` as a child process per site and reports
wall time and controller CPU seconds (the rebuild process and everything it started: ansible,
its workers and modules - measured with wait4, so the lab daemon's CPU is not counted but it
shares the same cores, as it would not in a real recovery), the lab's CPU, the utilisation of
the machine's cores, and where the wall time went (bench/site_breakdown.py). Target for the
whole fleet: under 15 minutes on a 2-core machine. Simulated durations set to 0 here: imaging
and a server BMC's power changes (printed from the lab's daemon.json at start).

    python bench/bench_site.py arlon --time-box 20   # stop after 20 min; report what was done

A time-boxed run stops the site run at the deadline (SIGINT, as an operator's Ctrl-C; killed if
still running a minute later) and reports, from the journal, how many hosts finished each phase,
hosts/min per phase, the CPU used so far (the rebuild process, its reaped children and those
still running) and the projected wall time of the whole site at that rate.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import site_breakdown  # noqa: E402  (bench/ is not a package)


def _cpu_seconds(pid: int) -> float:
    """user + system CPU of a running process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _lab_pids(daemon_pid: int) -> list[int]:
    """The lab daemon and its children (the Redfish emulator): the SIMULATED hosts' CPU."""
    pids = [daemon_pid] if daemon_pid else []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1]) == daemon_pid:
                    pids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def _tree_cpu_seconds(root: int) -> float:
    """CPU of a running process, its reaped children and its live descendants (/proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    try:
        fields = Path(f"/proc/{root}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        total += _cpu_seconds(pid)
        stack.extend(children.get(pid, []))
    return total


# A host that finished a phase reached its phase's end state (journal `transitions.to_phase`).
_PHASE_ENDS = {"reimage": "reimaged", "harden": "hardened", "redeploy": "redeployed", "verify": "verified"}


def _done_per_phase(journal: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        return {
            phase: int(
                db.execute(
                    "SELECT COUNT(DISTINCT host) FROM transitions WHERE to_phase = ?", (end,)
                ).fetchone()[0]
            )
            for phase, end in _PHASE_ENDS.items()
        }


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """An operator's Ctrl-C, then, a minute later, the whole process group."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _run_site(
    site: str,
    lab: object,
    playbook: Path | None,
    threshold: float,
    logs: Path,
    time_box_s: float | None = None,
) -> dict[str, object]:
    token = (lab.lab_dir / "hypervisor.token").read_text().strip()  # type: ignore[attr-defined]
    env = {**os.environ, **lab.env, "REBUILD_HYPERVISOR_TOKEN": token}  # type: ignore[attr-defined]
    cmd = [
        sys.executable,
        "-m",
        "rebuild",
        "site",
        site,
        "--inventory",
        str(lab.inventory(site)),  # type: ignore[attr-defined]
        "--yes",
        "--new-journal",
        "--json",
        "--rehearsal",
        "--breaker-threshold",
        str(threshold),
        "--operator",
        "bench",
    ]
    if playbook:
        cmd += ["--playbook", str(playbook)]
    out = logs / f"{site}.jsonl"
    lab_pids = _lab_pids(int(lab.info.get("pid", 0)))  # type: ignore[attr-defined]
    lab_before = sum(_cpu_seconds(p) for p in lab_pids)
    started = time.monotonic()
    with out.open("w") as handle:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = started + time_box_s if time_box_s is not None else None
        while True:  # wait4 (not Popen.wait): it gives the children's CPU, and reaps only once
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline is not None else 0)
            if pid:
                break
            if deadline is not None and time.monotonic() >= deadline:
                elapsed = time.monotonic() - started
                done = _done_per_phase(lab.state_dir / "journal.sqlite")  # type: ignore[attr-defined]
                stopped = {
                    "elapsed_s": round(elapsed, 1),
                    "done_per_phase": done,
                    "hosts_per_min_per_phase": {k: round(v / elapsed * 60, 1) for k, v in done.items()},
                    "controller_cpu_s": round(_tree_cpu_seconds(proc.pid), 1),
                    "lab_cpu_s": round(sum(_cpu_seconds(p) for p in lab_pids) - lab_before, 1),
                }
                _stop(proc)
                return _time_boxed(site, lab, stopped)
            time.sleep(1.0)
    wall = time.monotonic() - started
    cpu = usage.ru_utime + usage.ru_stime
    lab_cpu = sum(_cpu_seconds(p) for p in lab_pids) - lab_before
    final: dict[str, object] = {}
    for line in out.read_text().splitlines():
        if line.startswith("{") and '"run_finished"' in line:
            final = json.loads(line)
    counts = final.get("counts", {}) if isinstance(final.get("counts"), dict) else {}
    hosts = sum(int(v) for v in counts.values()) or 1  # type: ignore[union-attr]
    runs = sorted((lab.state_dir / "runs").iterdir(), key=lambda p: p.stat().st_mtime)  # type: ignore[attr-defined]
    where = site_breakdown.breakdown(runs[-1]) if runs else {}
    if where:
        print(site_breakdown.render(where), flush=True)
    return {
        "site": site,
        "hosts": hosts,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "cpu_per_host_s": round(cpu / hosts, 3),
        "lab_cpu_s": round(lab_cpu, 1),
        "wall_per_host_s": round(wall / hosts, 3),
        "status": final.get("status", f"exit {os.waitstatus_to_exitcode(status)}"),
        "counts": counts,
        "cpu_utilisation": round((cpu + lab_cpu) / max(wall, 1e-9) / (os.cpu_count() or 1), 3),
        "breakdown": where,
    }


def _time_boxed(site: str, lab: object, stopped: dict[str, object]) -> dict[str, object]:
    """What a run stopped at its time box did, and the whole site's wall time at that rate."""
    done: dict[str, int] = stopped["done_per_phase"]  # type: ignore[assignment]
    with sqlite3.connect(f"file:{lab.state_dir / 'journal.sqlite'}?mode=ro", uri=True) as db:  # type: ignore[attr-defined]
        total = int(db.execute("SELECT COUNT(*) FROM hosts WHERE site = ?", (site,)).fetchone()[0])
    elapsed = float(stopped["elapsed_s"])  # type: ignore[arg-type]
    verified = max(done.get("verify", 0), 1)
    equivalents = sum(done.values()) / 4  # hosts' worth of four-phase work done
    cpu = float(stopped["controller_cpu_s"])  # type: ignore[arg-type]
    lab_cpu = float(stopped["lab_cpu_s"])  # type: ignore[arg-type]
    return {
        "site": site,
        "finished": False,
        "hosts": total,
        **stopped,
        "host_equivalents_four_phases": round(equivalents, 1),
        "controller_cpu_per_host_s": round(cpu / max(equivalents, 1e-9), 2),
        "lab_cpu_per_host_s": round(lab_cpu / max(equivalents, 1e-9), 2),
        "cpu_utilisation": round((cpu + lab_cpu) / elapsed / (os.cpu_count() or 1), 3),
        "projected_wall_s": round(elapsed * total / verified),
        "wall_s": round(elapsed, 1),
        "cpu_s": round(cpu, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scope", choices=["arlon", "fleet"])
    parser.add_argument("--playbook", type=Path, help="default: playbooks/site.yml (every phase)")
    parser.add_argument(
        "--breaker-threshold",
        type=float,
        default=0.99,
        help="the bench measures; it does not stop on failures (default 0.99)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the lab dir and logs")
    parser.add_argument("--site", help="with scope fleet: only this site (e.g. the smallest, bastogne)")
    parser.add_argument(
        "--time-box",
        type=float,
        metavar="MINUTES",
        help="stop each site run after MINUTES and report its rate and projection (default: run to the end)",
    )
    args = parser.parse_args()

    import conftest  # the lab fixture helpers: unique prefix, daemon up/down

    from rebuild.lab import fleet
    from rebuild.sites import load_sites

    work = Path(tempfile.mkdtemp(prefix="bench-site-"))
    sites = ["arlon"] if args.scope == "arlon" else [s.name for s in load_sites()]
    if args.site:
        sites = [args.site]
    results = []
    lab_started = time.monotonic()
    site_filter = "arlon" if args.scope == "arlon" else args.site
    # Restarts keep the rehearsal's 1 s downtime (WinRM refused while a twin restarts): at 0 a twin
    # is back at once and a loaded controller's late read meets the new boot (docs/lab.md).
    with conftest._running_lab(
        work / "lab",
        fleet.DEFAULT_REGISTER,
        site_filter,
        imaging_seconds=0.0,
        bmc_power_seconds=0,
        restart_seconds=1.0,
    ) as lab:
        durations = json.loads((lab.lab_dir / "daemon.json").read_text()).get("simulated_durations")
        print(
            f"SIMULATED lab up in {time.monotonic() - lab_started:.1f} s ({lab.info.get('twins')} twins); "
            f"simulated durations: {json.dumps(durations)}",
            flush=True,
        )
        for site in sites:
            if site not in lab.info["inventory"]:
                continue
            time_box = args.time_box * 60 if args.time_box else None
            result = _run_site(site, lab, args.playbook, args.breaker_threshold, work, time_box)
            results.append(result)
            print(json.dumps(result), flush=True)
    hosts = sum(int(r["hosts"]) for r in results)  # type: ignore[call-overload]
    wall = sum(float(r["wall_s"]) for r in results)  # type: ignore[arg-type]
    cpu = sum(float(r["cpu_s"]) for r in results)  # type: ignore[arg-type]
    lab_cpu = sum(float(r["lab_cpu_s"]) for r in results)  # type: ignore[arg-type]
    print(
        f"\n{args.scope}: {hosts} hosts, wall {wall:.0f} s ({wall / 60:.1f} min), "
        f"controller CPU {cpu:.0f} s, "
        f"{cpu / max(hosts, 1):.2f} CPU s/host, {wall / max(hosts, 1):.2f} wall s/host, "
        f"SIMULATED lab CPU {lab_cpu:.0f} s (same cores)"
        + ("  [target: whole fleet < 15 min]" if args.scope == "fleet" else "")
    )
    if args.keep:
        print(f"kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
